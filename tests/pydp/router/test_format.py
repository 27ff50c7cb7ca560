"""Substitution format strings in header values: commands, `%REQ(...)%`, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.errors import ConfigError
from pydp.router._proto import Where
from pydp.router.format import FormatContext, RequestHeader, compile_format, render

WHERE = Where("route_config t", "v")
REQUEST = (
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"reviews"),
    (b":path", b"/a?b"),
    (b"x-id", b"first"),
    (b"x-alt", b"alt"),
    (b"x-id", b"second"),
    (b"x-empty", b""),
)
WITH_REQUEST = FormatContext(request_headers=REQUEST)


@pytest.mark.parametrize(
    ("text", "ctx", "value"),
    [
        ("plain", FormatContext(), b"plain"),
        ("100%%", FormatContext(), b"100%"),
        ("%%UPSTREAM_HOST%%", FormatContext(), b"%UPSTREAM_HOST%"),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            FormatContext(downstream_remote_address=("10.0.0.1", 5)),
            b"10.0.0.1:5",
        ),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            FormatContext(downstream_remote_address=("::1", 5)),
            b"[::1]:5",
        ),
        (
            "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            FormatContext(downstream_remote_address=("::1", 5)),
            b"ip=::1",
        ),
        ("%DOWNSTREAM_REMOTE_PORT%", FormatContext(downstream_remote_address=("::1", 5)), b"5"),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS%",
            FormatContext(downstream_local_address=("1.2.3.4", 80)),
            b"1.2.3.4:80",
        ),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
            FormatContext(downstream_local_address=("1.2.3.4", 80)),
            b"1.2.3.4",
        ),
        ("%DOWNSTREAM_LOCAL_PORT%", FormatContext(downstream_local_address=("1.2.3.4", 80)), b"80"),
        ("%UPSTREAM_HOST%", FormatContext(upstream_host=("10.1.1.1", 8080)), b"10.1.1.1:8080"),
        ("%UPSTREAM_HOST%", FormatContext(), b""),
        ("%UPSTREAM_HOST()%", FormatContext(upstream_host=("10.1.1.1", 1)), b"10.1.1.1:1"),
        ("%REQ(x-id)%", WITH_REQUEST, b"first"),
        ("%REQ(X-Id)%", WITH_REQUEST, b"first"),
        ("id=%REQ(x-id)%;", WITH_REQUEST, b"id=first;"),
        ("%REQ(x-id):3%", WITH_REQUEST, b"fir"),
        ("%REQ(x-id):0%", WITH_REQUEST, b""),
        ("%REQ(x-id):99%", WITH_REQUEST, b"first"),
        ("%REQ(x-missing?x-alt)%", WITH_REQUEST, b"alt"),
        ("%REQ(x-id?x-alt)%", WITH_REQUEST, b"first"),
        ("%REQ(x-missing?x-other)%", WITH_REQUEST, b""),
        ("%REQ(x-missing?)%", WITH_REQUEST, b""),
        ("%REQ(?x-alt)%", WITH_REQUEST, b"alt"),
        ("%REQ(x-empty?x-alt)%", WITH_REQUEST, b""),
        ("%REQ(:AUTHORITY)%%REQ(:path)%", WITH_REQUEST, b"reviews/a?b"),
        ("%REQ(host)%", WITH_REQUEST, b""),
        ("%REQ(x-id)%", FormatContext(), b""),
    ],
)
def test_formatter(text: str, ctx: FormatContext, value: bytes) -> None:
    assert render(compile_format(text, WHERE), ctx) == value


def test_request_header_values_are_bytes_as_received() -> None:
    ctx = FormatContext(request_headers=[(b"x-raw", b"caf\xc3\xa9 \xff")])
    assert render(compile_format("%REQ(x-raw):6%", WHERE), ctx) == b"caf\xc3\xa9 "
    assert render(compile_format("<%REQ(x-raw)%>", WHERE), ctx) == b"<caf\xc3\xa9 \xff>"


def test_with_request_keeps_the_addresses() -> None:
    ctx = FormatContext(("1.1.1.1", 1), ("2.2.2.2", 2), ("3.3.3.3", 3))
    assert ctx.with_request(REQUEST) == FormatContext(
        ("1.1.1.1", 1), ("2.2.2.2", 2), ("3.3.3.3", 3), REQUEST
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("50%", "couldn't find valid command at position 2"),
        ("%lower%", "couldn't find valid command"),
        ("%START_TIME%", "unsupported substitution command %START_TIME%"),
        ("%RESP(x)%", "unsupported substitution command %RESP%"),
        ("%DOWNSTREAM_REMOTE_ADDRESS(x)%", "does not take any parameters or length"),
        ("%DOWNSTREAM_REMOTE_ADDRESS:5%", "does not take any parameters or length"),
        ("%REQ%", "REQ requires parameters"),
        ("%REQ()%", "REQ requires parameters"),
        ("%REQ():5%", "REQ requires parameters"),
        ("%REQ(a?b?c)%", "More than 1 alternative header specified in token: a?b?c"),
        ("%REQ(x y)%", "Format string contains invalid characters"),
        ('%REQ(x?y"z)%', "Format string contains invalid characters"),
        ("%REQ(:)%", "Format string contains invalid characters"),
        ("%REQ(caf\u00e9)%", "Format string contains invalid characters"),
        ("%REQ(x", "couldn't find valid command at position 0"),
        ("%REQ(x):a%", "couldn't find valid command at position 0"),
    ],
)
def test_formatter_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_format(text, WHERE)
    assert problem in err.value.problem


NAMES = st.sampled_from([b"x-a", b"x-b", b"x-c"])
HEADERS = st.lists(st.tuples(NAMES, st.binary(max_size=6)), max_size=6)


@given(
    HEADERS,
    NAMES,
    st.none() | NAMES,
    st.none() | st.integers(min_value=0, max_value=8),
)
def test_request_header_is_the_first_main_value_else_the_first_alternative(
    headers: list[tuple[bytes, bytes]],
    main: bytes,
    alternative: bytes | None,
    max_length: int | None,
) -> None:
    values = {name: [v for k, v in headers if k == name] for name in (b"x-a", b"x-b", b"x-c")}
    expected = b""
    if values[main]:
        expected = values[main][0]
    elif alternative is not None and values[alternative]:
        expected = values[alternative][0]
    if max_length is not None:
        expected = expected[:max_length]
    command = RequestHeader(main, alternative, max_length)
    assert command(FormatContext(request_headers=headers)) == expected
