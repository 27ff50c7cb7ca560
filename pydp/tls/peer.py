"""What a verified TLS peer is to the HTTP layer (XFCC, RBAC)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsPeer:
    """A downstream connection's TLS facts once the handshake has verified the client.

    `uri_sans`, `dns_sans` and `subject` describe the client certificate (empty
    when the client presented none); `sha256` is the hex SHA-256 of its DER
    (XFCC `Hash=`); `local_uri_sans` are this proxy's own certificate's URI SANs
    (XFCC `By=`).
    """

    uri_sans: tuple[str, ...] = ()
    dns_sans: tuple[str, ...] = ()
    subject: str = ""
    sha256: str = ""
    local_uri_sans: tuple[str, ...] = ()

    @property
    def authenticated(self) -> bool:
        """Whether the client presented a certificate that was verified."""
        return bool(self.sha256)
