"""Cluster mode: service account tokens checked by the API server's TokenReview."""

from __future__ import annotations

import asyncio
from typing import Any

import kmock
import kubernetes
import pytest

from xds_server.auth.gate import UNAUTHENTICATED, Denied
from xds_server.auth.tokenreview import (
    Review,
    TokenReviewAuthenticator,
    identity_of,
    kubernetes_reviewer,
)
from xds_server.ca.identity import Identity


def test_service_account_user_is_the_identity() -> None:
    review = Review(True, "system:serviceaccount:shop:web")
    assert identity_of(review) == Identity("shop", "web")


@pytest.mark.parametrize(
    ("review", "detail"),
    [
        (Review(False, error="token expired"), "refused the token: token expired"),
        (Review(True, "alice"), "'alice' is not a service account's"),
        (Review(True, "system:serviceaccount:shop"), "malformed service account user"),
    ],
)
def test_refusals_say_why(review: Review, detail: str) -> None:
    with pytest.raises(Denied, match=detail) as e:
        identity_of(review)
    assert e.value.status == UNAUTHENTICATED


def test_against_an_emulated_api_server() -> None:
    """The real `kubernetes` client posts a TokenReview; the answer decides."""
    seen: list[Any] = []

    def answer(request: kmock.Request) -> dict[str, Any]:
        seen.append(request.data)
        token = request.data["spec"]["token"]
        status: dict[str, Any] = (
            {"authenticated": True, "user": {"username": "system:serviceaccount:shop:web"}}
            if token == "good"
            else {"authenticated": False, "error": "invalid bearer token"}
        )
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": request.data["spec"],
            "status": status,
        }

    async def main() -> None:
        handler = kmock.RawHandler()
        handler["post /apis/authentication.k8s.io/v1/tokenreviews"] << answer
        async with kmock.Server(handler) as server:
            configuration = kubernetes.client.Configuration()
            configuration.host = str(server.url).rstrip("/")
            with kubernetes.client.ApiClient(configuration) as client:
                authenticator = TokenReviewAuthenticator(
                    kubernetes_reviewer(client, audiences=("xdsmesh",))
                )
                assert await authenticator.authenticate("good") == Identity("shop", "web")
                with pytest.raises(Denied, match="invalid bearer token"):
                    await authenticator.authenticate("bad")

    asyncio.run(asyncio.wait_for(main(), 20))
    assert seen[0]["spec"] == {"token": "good", "audiences": ["xdsmesh"]}
