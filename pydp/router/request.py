"""A read-only view of one request's headers, with the lookups routing needs computed lazily."""

from __future__ import annotations

from collections.abc import Sequence

Headers = Sequence[tuple[bytes, bytes]]


class HeaderView:
    """Header lookups on an HTTP/2-style header list (lowercase names)."""

    __slots__ = ("_by_name", "headers")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self._by_name: dict[bytes, list[bytes]] | None = None

    def get_all(self, name: bytes) -> list[bytes]:
        by_name = self._by_name
        if by_name is None:
            by_name = {}
            for key, value in self.headers:
                values = by_name.get(key)
                if values is None:
                    by_name[key] = [value]
                else:
                    values.append(value)
            self._by_name = by_name
        return by_name.get(name, [])

    def first(self, name: bytes) -> bytes | None:
        values = self.get_all(name)
        return values[0] if values else None


class RequestView(HeaderView):
    """The request as the router sees it: `:path` split once, query parsed on demand.

    The pseudo-headers are read by position when the list follows the events
    contract (`:method`, `:scheme`, `:authority`, `:path` first), else found by name."""

    __slots__ = ("_query", "authority", "path", "path_only", "scheme")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self._by_name = None
        if (
            len(headers) >= 4
            and headers[3][0] == b":path"
            and headers[2][0] == b":authority"
            and headers[1][0] == b":scheme"
        ):
            path: bytes = headers[3][1]
            self.authority: bytes | None = headers[2][1]
            self.scheme: bytes = headers[1][1]
        else:
            found: dict[bytes, bytes] = {}
            for key, value in headers:
                if key[:1] == b":" and key not in found:
                    found[key] = value
            path = found.get(b":path", b"")
            self.authority = found.get(b":authority")
            self.scheme = found.get(b":scheme", b"")
        self.path: bytes = path
        cut = path.find(b"?")
        if cut < 0:
            cut = len(path)
        fragment = path.find(b"#", 0, cut)
        self.path_only: bytes = path[:fragment] if fragment >= 0 else path[:cut]
        self._query: dict[bytes, bytes] | None = None

    @property
    def query(self) -> dict[bytes, bytes]:
        """First value of each query parameter, undecoded, as Envoy's route matcher reads it."""
        query = self._query
        if query is None:
            query = {}
            path = self.path
            start = path.find(b"?") + 1
            if start:
                while start < len(path):
                    end = path.find(b"&", start)
                    if end < 0:
                        end = len(path)
                    name, _, value = path[start:end].partition(b"=")
                    query.setdefault(name, value)
                    start = end + 1
            self._query = query
        return query
