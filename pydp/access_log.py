"""Access log lines as Envoy writes them, and the files they go to.

Theory of operation. A format string is parsed once (`parse_format`) into a
`Formatter`: literal text and command operators (`%COMMAND(ARG):MAXLEN%`,
`%%` for a literal `%`), with Envoy's parse errors for unknown commands,
missing parameters and unterminated operators. Formatting an
`AccessLogEntry` walks the parts; a value that is missing prints `-`, as in
Envoy. The fields of `AccessLogEntry` answer the operators of Envoy's default
format; anything else is read from `entry.extra`:

- `%REQ(name)%` / `%REQUEST_HEADER(name)%`: `extra[name.lower()]`
- `%RESP(name)%` / `%RESPONSE_HEADER(name)%`: `extra["resp:" + name.lower()]`
- `%TRAILER(name)%` / `%RESPONSE_TRAILER(name)%`: `extra["trailer:" + name.lower()]`
- any other supported command (`ROUTE_NAME`, `CONNECTION_ID`, ...): `extra[COMMAND]`

`AccessLogFiles` keeps one buffered sink per path (files are opened, and so
checked, when a listener is compiled, as Envoy does) and flushes them on a
timer.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import trio

from pydp.runtime import AccessLogEntry
from pydp.substitution import FormatSyntaxError, split_format

DEFAULT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n'
)
FLUSH_INTERVAL = 1.0
FLUSH_SIZE = 64 * 1024

Part = Callable[[AccessLogEntry], str]


class FormatError(ValueError):
    """A format string Envoy would refuse; the message is Envoy's."""


def _text(value: str) -> str:
    return value if value else "-"


def _number(value: int) -> str:
    return str(value)


_FIELDS: dict[str, Callable[[AccessLogEntry], str]] = {
    "PROTOCOL": lambda e: _text(e.protocol),
    "RESPONSE_CODE": lambda e: _number(e.response_code),
    "RESPONSE_FLAGS": lambda e: _text(e.response_flags),
    "BYTES_RECEIVED": lambda e: _number(e.bytes_received),
    "BYTES_SENT": lambda e: _number(e.bytes_sent),
    "DURATION": lambda e: _number(e.duration_ms),
    "UPSTREAM_HOST": lambda e: _text(e.upstream_host),
    "UPSTREAM_CLUSTER": lambda e: _text(e.upstream_cluster),
    "DOWNSTREAM_REMOTE_ADDRESS": lambda e: _text(e.downstream_remote_address),
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": lambda e: _without_port(e.downstream_remote_address),
    "HOSTNAME": lambda e: socket.gethostname(),
}
# Commands without parameters whose value the data path may put in `extra`.
_EXTRA_COMMANDS = frozenset(
    {
        "REQUEST_DURATION",
        "REQUEST_TX_DURATION",
        "RESPONSE_DURATION",
        "RESPONSE_TX_DURATION",
        "RESPONSE_CODE_DETAILS",
        "CONNECTION_TERMINATION_DETAILS",
        "RESPONSE_FLAGS_LONG",
        "UPSTREAM_LOCAL_ADDRESS",
        "UPSTREAM_REMOTE_ADDRESS",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        "DOWNSTREAM_LOCAL_ADDRESS",
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_LOCAL_PORT",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
        "REQUESTED_SERVER_NAME",
        "ROUTE_NAME",
        "CONNECTION_ID",
        "STREAM_ID",
        "UPSTREAM_WIRE_BYTES_SENT",
        "UPSTREAM_WIRE_BYTES_RECEIVED",
        "DOWNSTREAM_WIRE_BYTES_SENT",
        "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    }
)
_HEADER_COMMANDS = {
    "REQ": "",
    "REQUEST_HEADER": "",
    "RESP": "resp:",
    "RESPONSE_HEADER": "resp:",
    "TRAILER": "trailer:",
    "RESPONSE_TRAILER": "trailer:",
}
_REQUEST_FIELDS: dict[str, Callable[[AccessLogEntry], str]] = {
    ":method": lambda e: e.method,
    ":path": lambda e: e.path,
    ":authority": lambda e: e.authority,
    "host": lambda e: e.authority,
    "user-agent": lambda e: e.user_agent,
    "x-forwarded-for": lambda e: e.x_forwarded_for,
    "x-request-id": lambda e: e.request_id,
}


def _without_port(address: str) -> str:
    if not address or address == "-":
        return "-"
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address
    return host.removeprefix("[").removesuffix("]")


@dataclass(frozen=True, slots=True)
class Formatter:
    """A parsed format string; `format` renders one entry."""

    source: str
    parts: tuple[str | Part, ...]

    def format(self, entry: AccessLogEntry) -> str:
        return "".join(p if isinstance(p, str) else p(entry) for p in self.parts)


def parse_format(text: str) -> Formatter:
    """Parse an Envoy format string; raises `FormatError` with Envoy's message."""
    try:
        split = split_format(text)
    except FormatSyntaxError as e:
        raise FormatError(
            f"Incorrect configuration: {text}. Couldn't find valid command at position {e.position}"
        ) from None
    parts = tuple(
        part if isinstance(part, str) else _command(part.name, part.argument, part.length)
        for part in split
    )
    return Formatter(text, parts)


def _command(name: str, arg: str | None, max_length: int | None) -> Part:
    if name in _HEADER_COMMANDS:
        if not arg:
            raise FormatError(f"{name} requires parameters")
        return _truncated(_header(_HEADER_COMMANDS[name], arg), max_length)
    if name == "START_TIME":
        if max_length is not None:
            raise FormatError(f"{name} does not take any parameters or length")
        return _start_time(arg)
    if name in _FIELDS or name in _EXTRA_COMMANDS:
        if arg is not None or max_length is not None:
            raise FormatError(f"{name} does not take any parameters or length")
        if name in _FIELDS:
            return _FIELDS[name]
        return lambda e: e.extra.get(name) or "-"
    raise FormatError(f"Not supported field in StreamInfo: {name}")


def _truncated(part: Part, max_length: int | None) -> Part:
    if max_length is None:
        return part
    return lambda e: part(e)[:max_length]


def _header(prefix: str, arg: str) -> Part:
    names = [n.strip().lower() for n in arg.split("?", 1)]
    if any(not n for n in names):
        raise FormatError(
            f"Invalid header configuration. Format string contains empty header: {arg}"
        )
    if prefix == "" and names == ["x-envoy-original-path", ":path"]:
        return lambda e: _text(e.path)
    if prefix == "resp:" and names == ["x-envoy-upstream-service-time"]:
        return lambda e: _text(e.upstream_service_time)

    def lookup(entry: AccessLogEntry) -> str:
        for name in names:
            if prefix == "" and name in _REQUEST_FIELDS:
                value = _REQUEST_FIELDS[name](entry)
                if value and value != "-":
                    return value
                continue
            found = entry.extra.get(prefix + name)
            if found:
                return found
        return "-"

    return lookup


_TIME_DIRECTIVE = re.compile(r"%(?:([1-9])?f|E(\d)S|s)")


def _start_time(pattern: str | None) -> Part:
    if not pattern:
        return lambda e: _iso_millis(e.start_time)

    def render(entry: AccessLogEntry) -> str:
        seconds, micros = _split_time(entry.start_time)
        nanos = micros * 1000

        def directive(match: re.Match[str]) -> str:
            text = match.group(0)
            if text == "%s":
                return str(seconds)
            if match.group(2) is not None:
                digits = int(match.group(2))
                whole = time.strftime("%S", time.gmtime(seconds))
                return whole + ("." + f"{nanos:09d}"[:digits] if digits else "")
            digits = int(match.group(1) or 9)
            return f"{nanos:09d}"[:digits]

        expanded = _TIME_DIRECTIVE.sub(lambda m: directive(m).replace("%", "%%"), pattern)
        return time.strftime(expanded, time.gmtime(seconds))

    return render


def _split_time(start: float) -> tuple[int, int]:
    """Whole seconds and microseconds (a float epoch time holds no finer digits)."""
    seconds, micros = divmod(round(start * 1_000_000), 1_000_000)
    return seconds, micros


def _iso_millis(start: float) -> str:
    seconds, micros = _split_time(start)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros // 1000:03d}Z"


_DEFAULT = parse_format(DEFAULT_FORMAT)
_CACHE: dict[str, Formatter] = {}


def formatter(text: str | None) -> Formatter:
    """The formatter for a format string (None: Envoy's default), parsed once."""
    if text is None:
        return _DEFAULT
    found = _CACHE.get(text)
    if found is None:
        found = _CACHE[text] = parse_format(text)
    return found


def format_entry(entry: AccessLogEntry, text: str | None = None) -> str:
    """One access log line (with the trailing newline of the format, if any)."""
    return formatter(text).format(entry)


class Sink:
    """A buffered, append-only access log file (or stdout / stderr)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._buffer: list[bytes] = []
        self._size = 0
        self._file: BinaryIO
        if path == "/dev/stdout":
            self._file, self._owned = sys.stdout.buffer, False
        elif path == "/dev/stderr":
            self._file, self._owned = sys.stderr.buffer, False
        else:
            self._file, self._owned = open(path, "ab"), True  # noqa: SIM115

    def write(self, line: str) -> None:
        data = line.encode("utf-8", "replace")
        self._buffer.append(data)
        self._size += len(data)
        if self._size >= FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            self._file.write(data)
            self._file.flush()
        except (OSError, ValueError):
            pass  # a closed stdout or a full disk loses log lines, never requests

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._file.close()


class AccessLogFiles:
    """Every access log destination in use, by path."""

    def __init__(self) -> None:
        self._sinks: dict[str, Sink] = {}

    def open(self, path: str) -> Sink:
        """The sink for `path`, opened on first use; raises OSError if it cannot be."""
        sink = self._sinks.get(path)
        if sink is None:
            sink = self._sinks[path] = Sink(path)
        return sink

    def write(self, path: str, line: str) -> None:
        with contextlib.suppress(OSError):
            self.open(path).write(line)

    def flush(self) -> None:
        for sink in self._sinks.values():
            sink.flush()

    def close(self) -> None:
        for sink in self._sinks.values():
            sink.close()
        self._sinks.clear()

    async def run_flusher(self, interval: float = FLUSH_INTERVAL) -> None:
        """Flush every `interval` seconds until cancelled, and once more on the way out."""
        try:
            while True:
                await trio.sleep(interval)
                self.flush()
        finally:
            self.flush()
