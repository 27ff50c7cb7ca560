"""Cluster mode: a Kubernetes service account token, checked with the TokenReview API.

The API server says whether the token is valid (and, with audiences, meant
for us) and whose it is: `system:serviceaccount:<namespace>:<name>`. The
blocking `kubernetes` client call runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xds_server.auth.gate import UNAUTHENTICATED, Denied
from xds_server.ca.identity import Identity

SERVICE_ACCOUNT_USER = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Review:
    """What the API server answered: authenticated, and as whom (or why not)."""

    authenticated: bool
    username: str = ""
    error: str = ""


Reviewer = Callable[[str], Review]


def identity_of(review: Review) -> Identity:
    if not review.authenticated:
        raise Denied(
            UNAUTHENTICATED, f"TokenReview refused the token: {review.error or 'not authenticated'}"
        )
    if not review.username.startswith(SERVICE_ACCOUNT_USER):
        raise Denied(UNAUTHENTICATED, f"token of {review.username!r} is not a service account's")
    namespace, _, name = review.username[len(SERVICE_ACCOUNT_USER) :].partition(":")
    if not namespace or not name:
        raise Denied(UNAUTHENTICATED, f"malformed service account user {review.username!r}")
    return Identity(namespace, name)


class TokenReviewAuthenticator:
    def __init__(self, review: Reviewer) -> None:
        self._review = review

    async def authenticate(self, token: str) -> Identity:
        return identity_of(await asyncio.to_thread(self._review, token))


def kubernetes_reviewer(api_client: object, audiences: Sequence[str] = ()) -> Reviewer:
    """A reviewer that asks the API server `api_client` talks to."""
    import kubernetes  # noqa: PLC0415

    api = kubernetes.client.AuthenticationV1Api(api_client)

    def review(token: str) -> Review:
        body = kubernetes.client.V1TokenReview(
            spec=kubernetes.client.V1TokenReviewSpec(token=token, audiences=list(audiences) or None)
        )
        try:
            status = api.create_token_review(body).status
        except kubernetes.client.ApiException as e:
            return Review(False, error=f"TokenReview API error {e.status}: {e.reason}")
        if status is None:
            return Review(False, error="TokenReview returned no status")
        user = status.user.username if status.user is not None else ""
        return Review(bool(status.authenticated), user or "", status.error or "")

    return review
