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
    """The request as the router sees it: `:path` split once, query parsed on demand."""

    __slots__ = ("_query", "authority", "path", "path_only")

    def __init__(self, headers: Headers) -> None:
        super().__init__(headers)
        path = authority = None
        for key, value in headers:
            if key[:1] != b":":
                continue
            if key == b":path" and path is None:
                path = value
            elif key == b":authority" and authority is None:
                authority = value
        self.path: bytes = path if path is not None else b""
        self.authority: bytes | None = authority
        cut = len(self.path)
        for sep in (b"?", b"#"):
            at = self.path.find(sep, 0, cut)
            if at >= 0:
                cut = at
        self.path_only: bytes = self.path[:cut]
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
