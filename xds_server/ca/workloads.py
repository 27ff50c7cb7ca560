"""The certificate of each workload identity: issued on demand, renewed at half life.

A certificate is re-issued when half of its lifetime has passed (as Istio
does), or at once when the authority's signer has changed (a root rotation
reached its signing stage). `next_due` is the earliest moment at which some
certificate or the trust bundle changes: the server publishes again then, and
every connected proxy's view asks for its certificate anew. A certificate
nobody asked for by then is forgotten (`prune`), and issued afresh if its
workload comes back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from xds_server.ca.authority import Authority
from xds_server.ca.certs import key_pem, new_key, pem, workload_certificate
from xds_server.ca.identity import Identity

DEFAULT_TTL = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True, eq=False)
class Issued:
    identity: Identity
    cert: x509.Certificate
    chain_pem: bytes  # the leaf, then the intermediates up to (not including) the root
    key_pem: bytes
    issued_at: dt.datetime
    renew_at: dt.datetime
    signer: bytes  # fingerprint of the CA certificate that signed it


def issue(authority: Authority, identity: Identity, now: dt.datetime, ttl: dt.timedelta) -> Issued:
    signer = authority.signer(now)
    key = new_key()
    cert = workload_certificate(signer, key, identity.spiffe_id(authority.trust_domain), now, ttl)
    lifetime = cert.not_valid_after_utc - now
    return Issued(
        identity=identity,
        cert=cert,
        chain_pem=pem(cert, *signer.intermediates),
        key_pem=key_pem(key),
        issued_at=now,
        renew_at=now + lifetime / 2,
        signer=signer.fingerprint,
    )


class WorkloadCertificates:
    def __init__(self, authority: Authority, ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.authority = authority
        self.ttl = ttl
        self._issued: dict[Identity, Issued] = {}
        self.on_issue: list[Callable[[Issued], None]] = []  # e.g. to wake the renewal timer

    def get(self, identity: Identity, now: dt.datetime) -> Issued:
        """The current certificate of `identity`, issuing one if it has none or it is due."""
        found = self._issued.get(identity)
        if found is None or now >= found.renew_at or found.signer != self._signer(now):
            found = self._issued[identity] = issue(self.authority, identity, now, self.ttl)
            for callback in self.on_issue:
                callback(found)
        return found

    def _signer(self, now: dt.datetime) -> bytes:
        return self.authority.signer(now).fingerprint

    def next_due(self, now: dt.datetime) -> dt.datetime | None:
        moments = [i.renew_at for i in self._issued.values()]
        change = self.authority.next_change(now)
        if change is not None:
            moments.append(change)
        return min(moments, default=None)

    def prune(self, now: dt.datetime) -> list[Identity]:
        """Forget the certificates that were due and were not asked for again."""
        gone = [i for i, c in self._issued.items() if now >= c.renew_at]
        for identity in gone:
            del self._issued[identity]
        return gone

    def identities(self) -> list[Identity]:
        return sorted(self._issued)
