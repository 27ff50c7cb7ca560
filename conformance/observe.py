"""What the runner records of one reply: precise, yet equal across runs and data planes.

An observation is plain JSON:

- `status`, `error` (the client's failure, e.g. a reset, else null);
- `backend`: the echo backend that answered (its `x-echo-backend` header), or null
  for a reply the proxy made itself (404, 503...);
- `headers`: the response headers the client got, name -> list of values;
- `trailers` likewise, and for gRPC `grpc` (status, message, message count);
- `upstream`: what the backend saw (method, path, query, authority, protocol,
  address, headers, body digest), read from the echo's JSON;
- `body`: for any other body, its length, sha256 and (short UTF-8 text) the text.

Legitimate differences are taken out, and only these:

- headers dropped entirely: `DROPPED_HEADERS` (`date`, `server`): a date, and the
  proxy's own name;
- headers whose presence is kept but value masked as `*`: `VOLATILE_HEADERS`
  (`x-request-id`, a random UUID; `x-envoy-upstream-service-time`, a duration),
  `content-length` of an echo reply, whose JSON holds run-specific addresses, and
  `x-envoy-expected-rq-timeout-ms` on a retry (attempt count above 1), which is
  the time left of the route timeout and so depends on how long earlier
  attempts took;
- in `x-forwarded-client-cert`, the fields that hold a certificate or its digest
  (`Hash`, `Cert`, `Chain`), masked as `*`: every run (and every renewal) issues
  new certificates; `By`, `URI`, `Subject` and `DNS` (identities) are kept;
- run-specific addresses and ports, replaced by their placeholders
  (`{backend:NAME}`, `{port:NAME}`, `{proxy}`, `{client}`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from conformance.client import Reply
from conformance.echo.app import BACKEND_HEADER
from conformance.echo.grpc_frame import FrameError, unframe
from conformance.placeholders import Bindings

DROPPED_HEADERS = frozenset({"date", "server"})
VOLATILE_HEADERS = frozenset({"x-request-id", "x-envoy-upstream-service-time"})
MASK = "*"
ATTEMPT_COUNT = "x-envoy-attempt-count"
EXPECTED_TIMEOUT = "x-envoy-expected-rq-timeout-ms"
MAX_TEXT = 2048
XFCC = "x-forwarded-client-cert"
XFCC_MASKED = frozenset({"Hash", "Cert", "Chain"})


def header_map(
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]], *, echo_body: bool = False
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in DROPPED_HEADERS:
            continue
        masked = name in VOLATILE_HEADERS or (echo_body and name == "content-length")
        kept = mask_xfcc(value) if name == XFCC else value
        out.setdefault(name, []).append(MASK if masked else kept)
    return dict(sorted(out.items()))


def mask_xfcc(value: str) -> str:
    """`x-forwarded-client-cert` with its per-certificate fields masked (`Hash=*`)."""
    elements = []
    for element in _split_unquoted(value, ","):
        pairs = []
        for pair in _split_unquoted(element, ";"):
            key, sep, _ = pair.partition("=")
            pairs.append(f"{key}={MASK}" if sep and key.strip() in XFCC_MASKED else pair)
        elements.append(";".join(pairs))
    return ",".join(elements)


def _split_unquoted(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside double quotes (backslash escapes inside)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def observe(reply: Reply, protocol: str, bindings: Bindings) -> dict[str, Any]:
    headers = dict(reply.headers)
    backend = headers.get(BACKEND_HEADER)
    upstream: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    grpc: dict[str, Any] | None = None
    payload = reply.body
    if protocol == "grpc":
        trailers = dict(reply.trailers) or headers
        grpc = {
            "status": _int(trailers.get("grpc-status")),
            "message": trailers.get("grpc-message"),
        }
        try:
            messages = unframe(payload)
        except FrameError as e:
            grpc["framing"] = str(e)
            messages = []
        grpc["messages"] = len(messages)
        if messages and backend is not None:
            upstream = _echo(messages[0])
            rest = b"".join(messages[1:])
            grpc["stream"] = {"length": len(rest), "sha256": hashlib.sha256(rest).hexdigest()}
        elif payload:
            body = _body(payload)
    elif backend is not None and headers.get("content-type") == "application/json":
        upstream = _echo(payload)
        if upstream is None:
            body = _body(payload)
    elif payload or reply.status is not None:
        body = _body(payload)
    observation: dict[str, Any] = {
        "status": reply.status,
        "error": reply.error,
        "backend": backend,
        "headers": header_map(reply.headers, echo_body=upstream is not None and grpc is None),
        "trailers": header_map(reply.trailers),
        "upstream": upstream,
        "body": body,
    }
    if grpc is not None:
        observation["grpc"] = grpc
    normalized: dict[str, Any] = bindings.normalize(observation)
    return normalized


def _echo(payload: bytes) -> dict[str, Any] | None:
    try:
        seen = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(seen, dict) or "headers" not in seen:
        return None
    pairs = [(n, v) for n, values in seen["headers"].items() for v in values]
    headers = header_map(pairs)
    if headers.get(ATTEMPT_COUNT, ["1"]) != ["1"] and EXPECTED_TIMEOUT in headers:
        headers[EXPECTED_TIMEOUT] = [MASK]
    seen["headers"] = headers
    seen.pop("name", None)
    return dict(sorted(seen.items()))


def _body(payload: bytes) -> dict[str, Any]:
    body: dict[str, Any] = {
        "length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    if len(payload) <= MAX_TEXT:
        with contextlib.suppress(UnicodeDecodeError):
            body["text"] = payload.decode()
    return body


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None
