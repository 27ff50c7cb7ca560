"""Substitution format strings in header values (`%DOWNSTREAM_REMOTE_ADDRESS%`, `%REQ(x)%`).

Theory of operation: a format string compiles once into a tuple of parts,
each either literal bytes or a callable that computes bytes from a
`FormatContext`; `render` joins them per request. `%%` is a literal percent;
a `%` that does not start a known command is refused at compile time, as
Envoy refuses it, with Envoy's wording where Envoy has one.

Commands follow Envoy's syntax `%NAME(parameters):max_length%`. The ones
without parameters (`COMMANDS`) refuse parameters and a length (empty
parentheses are allowed, as in Envoy). `%REQ(main?alternative):max_length%`
is the first value of request header `main` (names are case-insensitive),
else the first value of `alternative`, cut to `max_length` bytes; nothing
when neither is present. A command with nothing to show renders empty,
which drops the header unless `keep_empty_value` (Envoy formats header
values with `omit_empty_values`, so never `-`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydp.router._proto import Where
from pydp.substitution import Command, FormatSyntaxError, split_format


@dataclass(frozen=True, slots=True)
class FormatContext:
    """What header formatters can read. Addresses are (ip, port); None when unknown.

    Envoy evaluates request header mutations before it picks an upstream host,
    so `upstream_host` is only meaningful for response mutations.
    `request_headers` (an HTTP/2-style list) is what `%REQ(...)%` reads.
    """

    downstream_remote_address: tuple[str, int] | None = None
    downstream_local_address: tuple[str, int] | None = None
    upstream_host: tuple[str, int] | None = None
    request_headers: Sequence[tuple[bytes, bytes]] = ()

    def with_request(self, headers: Sequence[tuple[bytes, bytes]]) -> FormatContext:
        """The same context, with `headers` for `%REQ(...)%` to read."""
        return FormatContext(
            self.downstream_remote_address,
            self.downstream_local_address,
            self.upstream_host,
            headers,
        )


def _ip(address: tuple[str, int] | None) -> bytes:
    return b"" if address is None else address[0].encode()


def _port(address: tuple[str, int] | None) -> bytes:
    return b"" if address is None else str(address[1]).encode()


def _ip_port(address: tuple[str, int] | None) -> bytes:
    if address is None:
        return b""
    ip, port = address
    return (f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}").encode()


COMMANDS: dict[str, Callable[[FormatContext], bytes]] = {
    "DOWNSTREAM_REMOTE_ADDRESS": lambda c: _ip_port(c.downstream_remote_address),
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": lambda c: _ip(c.downstream_remote_address),
    "DOWNSTREAM_REMOTE_PORT": lambda c: _port(c.downstream_remote_address),
    "DOWNSTREAM_LOCAL_ADDRESS": lambda c: _ip_port(c.downstream_local_address),
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": lambda c: _ip(c.downstream_local_address),
    "DOWNSTREAM_LOCAL_PORT": lambda c: _port(c.downstream_local_address),
    "UPSTREAM_HOST": lambda c: _ip_port(c.upstream_host),
}


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """`%REQ(main?alternative):max_length%`; `main` may be empty (it then never matches)."""

    main: bytes
    alternative: bytes | None = None
    max_length: int | None = None

    def __call__(self, ctx: FormatContext) -> bytes:
        main, alternative = self.main, self.alternative
        found: bytes | None = None
        for name, value in ctx.request_headers:
            if name == main:
                found = value
                break
            if found is None and name == alternative:
                found = value
        if found is None:
            return b""
        return found if self.max_length is None else found[: self.max_length]


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]*\Z")


def _request_header(
    parameters: str, max_length: int | None, text: str, where: Where
) -> RequestHeader:
    names = parameters.split("?")
    if len(names) > 2:
        raise where.error(
            f"{text!r}: More than 1 alternative header specified in token: {parameters}"
        )
    lowered = [name.encode("utf-8").lower() for name in names]
    for name in lowered:
        bare = name[1:] if name[:1] == b":" else name
        if (name[:1] == b":" and not bare) or not _TOKEN.match(bare.decode("latin-1")):
            raise where.error(
                f"{text!r}: Invalid header configuration. "
                "Format string contains invalid characters."
            )
    alternative = lowered[1] if len(lowered) == 2 and lowered[1] else None
    return RequestHeader(lowered[0], alternative, max_length)


FormatPart = bytes | Callable[[FormatContext], bytes]


def _command(command: Command, text: str, where: Where) -> Callable[[FormatContext], bytes]:
    name, parameters, length = command.name, command.argument or "", command.length
    if name == "REQ":
        if not parameters:
            raise where.error(f"{text!r}: REQ requires parameters")
        return _request_header(parameters, length, text, where)
    found = COMMANDS.get(name)
    if found is None:
        raise where.error(f"{text!r}: unsupported substitution command %{name}%")
    if parameters or length is not None:
        raise where.error(f"{text!r}: {name} does not take any parameters or length")
    return found


def compile_format(text: str, where: Where) -> tuple[FormatPart, ...]:
    """Split a substitution format string into literal bytes and command callables."""
    try:
        split = split_format(text)
    except FormatSyntaxError as e:
        raise where.error(f"{text!r}: {e}") from None
    return tuple(
        part.encode("utf-8") if isinstance(part, str) else _command(part, text, where)
        for part in split
    )


def render(parts: tuple[FormatPart, ...], ctx: FormatContext) -> bytes:
    if len(parts) == 1 and isinstance(parts[0], bytes):
        return parts[0]
    return b"".join(p if isinstance(p, bytes) else p(ctx) for p in parts)
