"""pydp's admin server: Envoy's admin endpoints on the bootstrap's admin address.

`AdminHandler.handle(method, target)` is the whole behaviour, without I/O:
it maps a request line to an `AdminResponse` as Envoy's admin would (status,
body wording, content type; mutating endpoints need POST; an unknown path
gets 404 with the list of commands). `serve_admin` is the thin trio + h11
adapter around it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

from pydp import admin_views, stats_export
from pydp.config_dump import UnknownResource, to_json

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"
MAX_REQUEST = 64 * 1024


@dataclass(frozen=True, slots=True)
class AdminResponse:
    status: int
    body: bytes
    content_type: str = TEXT


class AdminBackend(Protocol):
    """What the admin endpoints read from the running proxy (`pydp.app.App`)."""

    def server_state(self) -> str: ...  # LIVE | DRAINING | PRE_INITIALIZING | INITIALIZING
    def stats_view(self) -> stats_export.StatsView: ...
    def config_dump(self, include_eds: bool) -> Any: ...
    def cluster_entries(self) -> list[admin_views.ClusterEntry]: ...
    def host_counters(self, cluster: str, host: Any) -> Mapping[str, int]: ...
    def listener_entries(self) -> list[admin_views.ListenerEntry]: ...
    def server_info(self) -> dict[str, Any]: ...
    def request_quit(self) -> None: ...
    def drain_listeners(self) -> None: ...


Query = dict[str, str]
Endpoint = Callable[[Query], AdminResponse]
HELP = (
    ("/", "Admin home page"),
    ("/clusters", "upstream cluster status"),
    ("/config_dump", "dump current Envoy configs"),
    ("/drain_listeners", "drain listeners"),
    ("/help", "print out list of admin commands"),
    ("/listeners", "print listener info"),
    ("/quitquitquit", "exit the server"),
    ("/ready", "print server state, return 200 if LIVE, otherwise return 503"),
    ("/server_info", "print server version/status information"),
    ("/stats", "print server stats"),
    ("/stats/prometheus", "print server stats in prometheus format"),
)
_MUTATING = {"/quitquitquit", "/drain_listeners"}


def _text(body: str, status: int = 200) -> AdminResponse:
    return AdminResponse(status, body.encode())


def _json(value: Any) -> AdminResponse:
    return AdminResponse(200, (json.dumps(value, indent=1) + "\n").encode(), JSON)


def help_text() -> str:
    return "".join(
        f"  {path}{' (POST)' if path in _MUTATING else ''}: {text}\n" for path, text in HELP
    )


class AdminHandler:
    """Envoy's admin endpoints over an `AdminBackend`."""

    def __init__(self, backend: AdminBackend) -> None:
        self.backend = backend
        self._endpoints: dict[str, Endpoint] = {
            "/": self._help,
            "/help": self._help,
            "/ready": self._ready,
            "/stats": self._stats,
            "/stats/prometheus": self._prometheus,
            "/config_dump": self._config_dump,
            "/clusters": self._clusters,
            "/listeners": self._listeners,
            "/server_info": self._server_info,
            "/quitquitquit": self._quit,
            "/drain_listeners": self._drain,
        }

    def handle(self, method: str, target: str) -> AdminResponse:
        parts = urlsplit(target)
        path = parts.path or "/"
        endpoint = self._endpoints.get(path)
        if endpoint is None:
            return _text("invalid path. admin commands are:\n" + help_text(), 404)
        if path in _MUTATING and method != "POST":
            log.error('admin path "%s" mutates state, method=%s rather than POST', path, method)
            return _text(f"Method {method} not allowed, POST required.", 405)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            return endpoint(query)
        except Exception as exc:
            log.exception("admin: %s %s failed", method, target)
            return _text(f"{type(exc).__name__}: {exc}\n", 500)

    def _help(self, query: Query) -> AdminResponse:
        return _text("admin commands are:\n" + help_text())

    def _ready(self, query: Query) -> AdminResponse:
        state = self.backend.server_state()
        return _text(state + "\n", 200 if state == "LIVE" else 503)

    def _pattern(self, query: Query) -> re.Pattern[str] | AdminResponse | None:
        text = query.get("filter")
        if not text:
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            return _text(f"Invalid re2 regex: {exc}", 400)

    def _stats(self, query: Query) -> AdminResponse:
        pattern = self._pattern(query)
        if isinstance(pattern, AdminResponse):
            return pattern
        view = self.backend.stats_view()
        fmt = query.get("format", "")
        if fmt == "prometheus":
            return _text(stats_export.render_prometheus(view, pattern))
        if fmt == "json":
            return AdminResponse(200, stats_export.render_json(view, pattern).encode(), JSON)
        if fmt not in ("", "text"):
            return _text("usage: /stats?format=(html|active-html|json|prometheus|text)\n", 400)
        return _text(stats_export.render_text(view, pattern, used_only="usedonly" in query))

    def _prometheus(self, query: Query) -> AdminResponse:
        pattern = self._pattern(query)
        if isinstance(pattern, AdminResponse):
            return pattern
        return _text(stats_export.render_prometheus(self.backend.stats_view(), pattern))

    def _config_dump(self, query: Query) -> AdminResponse:
        dump = self.backend.config_dump("include_eds" in query)
        resource = query.get("resource") or None
        try:
            return _json(to_json(dump, resource))
        except UnknownResource:
            return _text(f"{resource} not found in config dump", 404)

    def _clusters(self, query: Query) -> AdminResponse:
        entries = self.backend.cluster_entries()
        if query.get("format") == "json":
            return _json(admin_views.clusters_json(entries, self.backend.host_counters))
        return _text(admin_views.clusters_text(entries, self.backend.host_counters))

    def _listeners(self, query: Query) -> AdminResponse:
        entries = self.backend.listener_entries()
        if query.get("format") == "json":
            return _json(admin_views.listeners_json(entries))
        return _text(admin_views.listeners_text(entries))

    def _server_info(self, query: Query) -> AdminResponse:
        return _json(self.backend.server_info())

    def _quit(self, query: Query) -> AdminResponse:
        self.backend.request_quit()
        return _text("OK\n")

    def _drain(self, query: Query) -> AdminResponse:
        self.backend.drain_listeners()
        return _text("OK\n")


async def serve_admin(
    handler: AdminHandler,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin endpoints on `host:port` until cancelled; `started` with the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        task_status.started(int(bound))

        async def connection(stream: trio.SocketStream) -> None:
            await _connection(handler, stream)

        await trio.serve_listeners(connection, listeners, handler_nursery=nursery)


async def _connection(handler: AdminHandler, stream: trio.abc.Stream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    try:
        while True:
            request = await _next_request(conn, stream)
            if request is None:
                return
            response = handler.handle(request.method.decode(), request.target.decode())
            headers = [
                ("content-type", response.content_type),
                ("content-length", str(len(response.body))),
                ("cache-control", "no-cache, max-age=0"),
                ("x-content-type-options", "nosniff"),
                ("server", "envoy"),
            ]
            data = conn.send(h11.Response(status_code=response.status, headers=headers))
            data += conn.send(h11.Data(data=response.body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(data or b"")
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _next_request(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(MAX_REQUEST)
            conn.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
