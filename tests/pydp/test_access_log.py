"""Access log lines: Envoy's default format, custom formats, Envoy's parse errors, files."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from pydp.access_log import (
    DEFAULT_FORMAT,
    AccessLogFiles,
    FormatError,
    format_entry,
    formatter,
    parse_format,
)
from pydp.runtime import AccessLogEntry

# 2016-04-15T20:17:00.310Z, the moment of the example in Envoy's documentation.
START = 1460751420.310


def http_entry(**fields: object) -> AccessLogEntry:
    values: dict[str, object] = {
        "start_time": START,
        "method": "POST",
        "path": "/api/v1/locations",
        "protocol": "HTTP/2",
        "response_code": 204,
        "bytes_received": 154,
        "bytes_sent": 0,
        "duration_ms": 226,
        "upstream_service_time": "100",
        "x_forwarded_for": "10.0.35.28",
        "user_agent": "nsq2http",
        "request_id": "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2",
        "authority": "locations",
        "upstream_host": "tcp://10.0.2.1:80",
    }
    values.update(fields)
    return AccessLogEntry(**values)  # type: ignore[arg-type]


def test_the_default_format_prints_envoys_documented_example() -> None:
    assert format_entry(http_entry()) == (
        '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 '
        '"10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" '
        '"tcp://10.0.2.1:80"\n'
    )


def test_a_tcp_connection_prints_dashes_where_envoy_does() -> None:
    entry = AccessLogEntry(
        start_time=START,
        bytes_received=12,
        bytes_sent=34,
        duration_ms=5,
        upstream_host="10.0.0.1:5432",
    )
    assert format_entry(entry) == (
        '[2016-04-15T20:17:00.310Z] "- - -" 0 - 12 34 5 - "-" "-" "-" "-" "10.0.0.1:5432"\n'
    )


def test_response_flags_and_an_empty_field_print_as_envoy_does() -> None:
    line = format_entry(http_entry(response_code=503, response_flags="UF,URX", user_agent=""))
    assert '" 503 UF,URX 154 0 226 100 "10.0.35.28" "-" "cc21' in line


def test_custom_formats_with_the_common_commands() -> None:
    entry = http_entry(
        downstream_remote_address="10.1.2.3:4567",
        upstream_cluster="outbound|80||a",
        extra={"x-custom": "yes", "resp:content-type": "text/plain", "ROUTE_NAME": "r1"},
    )
    text = (
        "100%% %PROTOCOL% %REQ(:PATH):4% %REQ(X-MISSING?USER-AGENT)% %REQ(x-custom)% "
        "%RESP(CONTENT-TYPE)% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "
        "%UPSTREAM_CLUSTER% %ROUTE_NAME% %RESPONSE_CODE_DETAILS% %START_TIME(%s.%3f)% "
        "%START_TIME(%Y/%m/%d %E3S)% %REQUEST_HEADER(:METHOD)% "
        "%RESPONSE_HEADER(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
    )
    assert format_entry(entry, text) == (
        "100% HTTP/2 /api nsq2http yes text/plain 10.1.2.3:4567 10.1.2.3 outbound|80||a r1 - "
        "1460751420.310 2016/04/15 00.310 POST 100"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%FOO%", "Not supported field in StreamInfo: FOO"),
        (
            "%PROTOCOL",
            "Incorrect configuration: %PROTOCOL. Couldn't find valid command at position 0",
        ),
        ("a % b", "Incorrect configuration: a % b. Couldn't find valid command at position 2"),
        ("%DURATION:2%", "DURATION does not take any parameters or length"),
        ("%REQ()%", "REQ requires parameters"),
    ],
)
def test_format_errors_carry_envoys_wording(text: str, message: str) -> None:
    with pytest.raises(FormatError) as caught:
        parse_format(text)
    assert str(caught.value) == message


def test_formats_are_parsed_once() -> None:
    assert formatter("%PROTOCOL%\n") is formatter("%PROTOCOL%\n")
    assert formatter(None) is formatter(None)
    assert formatter(None).source == DEFAULT_FORMAT


@given(st.text(alphabet=st.characters(exclude_characters="%", exclude_categories=["Cs"])))
def test_text_without_commands_is_printed_as_it_is(text: str) -> None:
    assert format_entry(http_entry(), text) == text


@given(st.text(alphabet="abc%", max_size=12))
def test_doubled_percent_signs_print_one(text: str) -> None:
    doubled = text.replace("%", "%%")
    assert format_entry(http_entry(), doubled) == text


async def test_files_are_appended_and_flushed_on_the_timer(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("earlier\n")
    files = AccessLogFiles()
    files.write(str(path), "one\n")
    files.write(str(path), "two\n")
    assert path.read_text() == "earlier\n"  # buffered, as Envoy buffers
    async with trio.open_nursery() as nursery:
        nursery.start_soon(files.run_flusher, 0.01)
        with trio.fail_after(5):
            while path.read_text() == "earlier\n":  # noqa: ASYNC110
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    files.close()
    assert path.read_text() == "earlier\none\ntwo\n"


def test_a_file_that_cannot_be_opened_raises_and_writing_to_it_is_dropped(tmp_path: Path) -> None:
    files = AccessLogFiles()
    missing = str(tmp_path / "no" / "such" / "dir.log")
    with pytest.raises(OSError):
        files.open(missing)
    files.write(missing, "lost\n")
    files.flush()


def test_stdout_is_a_destination(capfd: pytest.CaptureFixture[str]) -> None:
    files = AccessLogFiles()
    files.write("/dev/stdout", "to stdout\n")
    files.close()
    assert capfd.readouterr().out == "to stdout\n"
