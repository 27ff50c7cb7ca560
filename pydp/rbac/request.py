"""What an RBAC policy can see of one request: its headers, its peer, its local port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydp.router.request import HeaderView

if TYPE_CHECKING:
    from pydp.tls.peer import TlsPeer

Headers = Sequence[tuple[bytes, bytes]]
_UNSET = b"\0unset"


class RbacRequest:
    """One request as the RBAC filters see it, after the connection manager's mutations.

    `peer` is the downstream connection's TLS peer (None on plaintext: no
    `authenticated` principal matches); `local_port` is the port the
    connection arrived on (`destination_port`). The path without its query
    and fragment, and the peer's names as bytes, are computed on first use.
    """

    __slots__ = ("_path", "_peer_names", "headers", "local_port", "peer")

    def __init__(self, headers: Headers, peer: TlsPeer | None, local_port: int) -> None:
        self.headers = HeaderView(headers)
        self.peer = peer
        self.local_port = local_port
        self._path: bytes | None = _UNSET
        self._peer_names: tuple[tuple[bytes, ...], bytes] | None = None

    @property
    def path(self) -> bytes | None:
        """`:path` without its query and fragment (Envoy's `removeQueryAndFragment`);
        None when the request has no `:path`."""
        path = self._path
        if path is _UNSET:
            path = self.headers.first(b":path")
            if path is not None:
                for stop in (b"?", b"#"):
                    cut = path.find(stop)
                    if cut >= 0:
                        path = path[:cut]
            self._path = path
        return path

    def peer_names(self) -> tuple[tuple[bytes, ...], bytes]:
        """(URI SANs then DNS SANs, subject) of the peer certificate, as bytes.

        Only called when `peer` is set."""
        names = self._peer_names
        if names is None:
            peer = self.peer
            assert peer is not None
            sans = tuple(n.encode() for n in (*peer.uri_sans, *peer.dns_sans))
            names = self._peer_names = (sans, peer.subject.encode())
        return names
