"""The rule every xDS stream passes before it is served, when the mesh has a CA.

The proxy sends a bearer token in the stream's metadata (`authorization:
Bearer <token>`; the bootstrap's `initial_metadata`). An `Authenticator`
turns the token into the identity it proves; the gate then compares it with
the identity the proxy claims in its node metadata (`NAMESPACE`,
`SERVICE_ACCOUNT`), from which its view, and so its secrets, are made. A
stream without a valid token is refused as UNAUTHENTICATED, one whose claim
differs as PERMISSION_DENIED; as Istio does, the whole stream is refused, not
only its secrets, so a refused proxy learns at once and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from api.contract import NodeProfile
from xds_server.auth.tokens import InvalidToken, verify
from xds_server.ca.identity import Identity

AUTHORIZATION = "authorization"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"


class Denied(Exception):
    """A refused stream: `status` is the gRPC status name, the message says why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Identity:
        """The identity `token` proves; raises Denied."""


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    for key, value in metadata:
        if key.lower() != AUTHORIZATION:
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise Denied(
            UNAUTHENTICATED, "the xDS stream's authorization metadata is not 'Bearer <token>'"
        )
    raise Denied(
        UNAUTHENTICATED,
        "the xDS stream carries no 'authorization: Bearer <token>' metadata; this server "
        "gives certificates only to proxies that prove their workload (see xds-server bootstrap)",
    )


def check_claim(proven: Identity, node_id: str, metadata: Mapping[str, Any]) -> Identity:
    """The identity the node claims, if it is the proven one; raises Denied otherwise.

    A claim that breaks the sidecar contract raises `ContractError`.
    """
    profile = NodeProfile.from_metadata(node_id, metadata)
    claimed = Identity(profile.namespace, profile.service_account)
    if claimed != proven:
        raise Denied(
            PERMISSION_DENIED,
            f"node {node_id!r} claims to be {claimed} but its token is for {proven}",
        )
    return claimed


class Gate:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def admit(
        self,
        metadata: Iterable[tuple[str, str | bytes]],
        node_id: str,
        node_metadata: Mapping[str, Any],
    ) -> Identity:
        proven = await self.authenticator.authenticate(bearer_token(metadata))
        return check_claim(proven, node_id, node_metadata)


class TokenKeyAuthenticator:
    """The standalone mode: tokens minted by `xds-server bootstrap` with the server's key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    async def authenticate(self, token: str) -> Identity:
        try:
            return verify(self._key, token)
        except InvalidToken as e:
            raise Denied(UNAUTHENTICATED, f"xDS token refused: {e}") from None
