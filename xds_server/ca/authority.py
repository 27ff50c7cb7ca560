"""The signing chain and the trust bundle over time, root rotation included.

Theory of operation. An `Authority` is an immutable value: a list of eras,
each a `Signer` with the moment it starts signing and the moment its root
stops being trusted. At any time `now`, the newest era that has started
signs, and the trust bundle is the root of every era still trusted (plus
roots the user added, such as the previous root of a rotation done by hand).

Rotating to a new signer is staged so that no connection breaks:

  1. at `now` the new root joins the bundle, the old one still signs: every
     proxy learns to trust both before it meets a certificate of the new one;
  2. at `now + overlap / 2` the new signer starts signing, and every workload
     certificate is re-issued under it (`workloads.py` sees the signer change);
  3. at `now + overlap` the old root leaves the bundle; by then no proxy holds
     a certificate it signed.

`next_change` tells when the bundle or the signer next changes, so the
server knows when to publish again. Nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from xds_server.ca.certs import CertificateError, Signer, pem
from xds_server.ca.identity import check_trust_domain

_BEGINNING = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Era:
    signer: Signer
    signs_from: dt.datetime
    trusted_until: dt.datetime | None = None  # None: while its root is valid


@dataclass(frozen=True, slots=True)
class Authority:
    trust_domain: str
    eras: tuple[Era, ...]
    extra_roots: tuple[x509.Certificate, ...] = ()

    @classmethod
    def of(
        cls, signer: Signer, trust_domain: str, extra_roots: tuple[x509.Certificate, ...] = ()
    ) -> Authority:
        """An authority that signs with `signer` from the beginning of time."""
        return cls(check_trust_domain(trust_domain), (Era(signer, _BEGINNING),), extra_roots)

    def signer(self, now: dt.datetime) -> Signer:
        started = [e for e in self.eras if e.signs_from <= now]
        if not started:
            raise CertificateError(f"no CA signs at {now.isoformat()}")
        return started[-1].signer

    def roots(self, now: dt.datetime) -> tuple[x509.Certificate, ...]:
        """The roots trusted at `now`, oldest first, each once."""
        candidates = [e.signer.root for e in self.eras if _trusted(e, now)]
        candidates += self.extra_roots
        out: dict[bytes, x509.Certificate] = {}
        for root in candidates:
            if root.not_valid_before_utc <= now < root.not_valid_after_utc:
                out.setdefault(root.fingerprint(hashes.SHA256()), root)
        return tuple(out.values())

    def bundle_pem(self, now: dt.datetime) -> bytes:
        return pem(*self.roots(now))

    def rotated(self, new: Signer, now: dt.datetime, overlap: dt.timedelta) -> Authority:
        """Rotate to `new`: trusted now, signing after `overlap / 2`, old roots gone after it."""
        if overlap < dt.timedelta(0):
            raise CertificateError(f"rotation overlap must not be negative, got {overlap}")
        end = now + overlap
        kept = tuple(
            replace(e, trusted_until=end if e.trusted_until is None else min(e.trusted_until, end))
            for e in self.eras
            if _trusted(e, now)
        )
        return replace(self, eras=(*kept, Era(new, now + overlap / 2)))

    def next_change(self, now: dt.datetime) -> dt.datetime | None:
        """The first moment after `now` at which the signer or the bundle changes."""
        moments = [e.signs_from for e in self.eras if e.signs_from > now]
        moments += [e.trusted_until for e in self.eras if e.trusted_until and e.trusted_until > now]
        moments += [r.not_valid_after_utc for r in self.roots(now)]
        return min(moments, default=None)


def _trusted(era: Era, now: dt.datetime) -> bool:
    return era.trusted_until is None or now < era.trusted_until
