"""Per-workload xDS tokens for the standalone mode: an HMAC over namespace and account.

A token is `xdsmesh1.<namespace>.<service-account>.<mac>`, the MAC being
HMAC-SHA256 of `<namespace>/<service-account>` under the server's token key
(kept with the CA, `xds-token.key`), in unpadded URL-safe base64. Whoever can
read the key can mint a token for any workload, as whoever can read a
Kubernetes signing key can; `xds-server bootstrap` reads it to provision a
sidecar. Tokens do not expire: rotating the key revokes them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from xds_server.ca.identity import Identity

PREFIX = "xdsmesh1"


class InvalidToken(ValueError):
    """A token that is malformed or was not minted with this server's key."""


def _mac(key: bytes, identity: Identity) -> str:
    digest = hmac.new(key, f"{identity}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(key: bytes, identity: Identity) -> str:
    if "." in identity.namespace:
        raise ValueError(f"namespace {identity.namespace!r} cannot contain '.'")
    return f"{PREFIX}.{identity.namespace}.{identity.service_account}.{_mac(key, identity)}"


def verify(key: bytes, token: str) -> Identity:
    """The identity `token` proves; raises InvalidToken."""
    prefix, _, rest = token.partition(".")
    namespace, _, rest = rest.partition(".")
    account, _, mac = rest.rpartition(".")
    if prefix != PREFIX or not namespace or not account or not mac:
        raise InvalidToken(f"not an {PREFIX} token")
    identity = Identity(namespace, account)
    if not hmac.compare_digest(mac, _mac(key, identity)):
        raise InvalidToken(f"token for {identity} was not issued by this server")
    return identity
