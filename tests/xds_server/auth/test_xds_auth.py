"""xDS authentication: a proxy gets the secrets of the workload it proves, and nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc
import pytest
from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2

from api import contract
from api.contract import ContractError, NodeProfile
from tests.xds_server.factories import model, node
from xds_server import grpc_server
from xds_server.auth.gate import (
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    Denied,
    Gate,
    TokenKeyAuthenticator,
    bearer_token,
    check_claim,
)
from xds_server.auth.tokens import InvalidToken, mint, verify
from xds_server.bootstrap import render
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.sds import SecretSource
from xds_server.ca.workloads import WorkloadCertificates
from xds_server.hub import Hub
from xds_server.pipeline import Pipeline
from xds_server.translate import MeshSecurity

KEY = b"k" * 32
WEB = Identity("shop", "web")
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def test_tokens_prove_their_identity_only() -> None:
    token = mint(KEY, WEB)
    assert verify(KEY, token) == WEB
    assert verify(KEY, mint(KEY, Identity("shop", "svc.with.dots"))) == Identity(
        "shop", "svc.with.dots"
    )
    with pytest.raises(InvalidToken, match="not issued by this server"):
        verify(b"other" * 8, token)
    forged = token.replace(".web.", ".db.")
    with pytest.raises(InvalidToken, match="shop/db"):
        verify(KEY, forged)
    with pytest.raises(InvalidToken, match="not an xdsmesh1 token"):
        verify(KEY, "garbage")


def test_bearer_token_from_metadata() -> None:
    assert bearer_token([("x", "y"), ("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("Authorization", b"bearer  abc ")]) == "abc"
    with pytest.raises(Denied, match="no 'authorization: Bearer"):
        bearer_token([])
    with pytest.raises(Denied, match="not 'Bearer <token>'"):
        bearer_token([("authorization", "Basic abc")])


def test_claim_must_be_the_proven_identity() -> None:
    metadata = NodeProfile("shop", "web").metadata()
    assert check_claim(WEB, "web-1.shop", metadata) == WEB
    with pytest.raises(Denied) as e:
        check_claim(WEB, "db-1.shop", NodeProfile("shop", "db").metadata())
    assert e.value.status == PERMISSION_DENIED
    assert "claims to be shop/db but its token is for shop/web" in str(e.value)
    with pytest.raises(ContractError):
        check_claim(WEB, "nonamespace", {})


def test_bootstrap_carries_the_token_as_grpc_metadata() -> None:
    doc = render("web-1.shop", NodeProfile("shop", "web"), xds_token="tok")
    [service] = doc["dynamic_resources"]["ads_config"]["grpc_services"]
    assert service["initial_metadata"] == [{"key": "authorization", "value": "Bearer tok"}]
    [plain] = render("web-1.shop", NodeProfile("shop", "web"))["dynamic_resources"]["ads_config"][
        "grpc_services"
    ]
    assert "initial_metadata" not in plain


def _request(profile: NodeProfile, names: tuple[str, ...] = ("default", "ROOTCA")) -> Any:
    request = discovery_pb2.DiscoveryRequest(
        type_url=contract.TYPE_SECRET, resource_names=list(names)
    )
    request.node.CopyFrom(node(f"pod.{profile.namespace}", profile))
    return request


async def _ask(port: int, profile: NodeProfile, token: str | None) -> Any:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        multi: Any = channel.stream_stream(
            ADS,
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        call = multi(metadata=metadata)
        await call.write(_request(profile))
        return await asyncio.wait_for(call.read(), 10)


def run_server(scenario: Any) -> None:
    async def main() -> None:
        hub = Hub()
        pipeline = Pipeline(hub)
        pipeline.security = MeshSecurity(mtls=True)
        now = dt.datetime.now(dt.UTC)
        authority = Authority.of(self_signed_root(new_key(), "cluster.local", now), "cluster.local")
        pipeline.secrets = SecretSource(WorkloadCertificates(authority))
        pipeline.publish_now(model(("a", ("127.0.0.11",))))
        gate = Gate(TokenKeyAuthenticator(KEY))
        server, port = await grpc_server.start(hub, "127.0.0.1:0", gate=gate)
        try:
            await asyncio.wait_for(scenario(port, hub), 20)
        finally:
            await server.stop(None)

    asyncio.run(main())


def _leaf_uri(response: Any) -> str:
    for resource in response.resources:
        secret = secret_pb2.Secret()
        assert resource.Unpack(secret)
        if secret.name == "default":
            leaf = x509.load_pem_x509_certificates(
                secret.tls_certificate.certificate_chain.inline_bytes
            )[0]
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            [uri] = san.get_values_for_type(x509.UniformResourceIdentifier)
            return str(uri)
    raise AssertionError("no default secret")


def test_a_proxy_gets_the_certificate_of_the_identity_its_token_proves() -> None:
    async def scenario(port: int, hub: Hub) -> None:
        response = await _ask(port, NodeProfile("shop", "web"), mint(KEY, WEB))
        assert _leaf_uri(response) == "spiffe://cluster.local/ns/shop/sa/web"

    run_server(scenario)


@pytest.mark.parametrize(
    ("token", "status", "detail"),
    [
        (None, UNAUTHENTICATED, "carries no 'authorization: Bearer <token>'"),
        ("xdsmesh1.shop.db.AAAA", UNAUTHENTICATED, "not issued by this server"),
        (mint(b"x" * 32, Identity("shop", "db")), UNAUTHENTICATED, "not issued by this server"),
        # A valid token of another workload: no key of shop/db for it.
        (mint(KEY, WEB), PERMISSION_DENIED, "claims to be shop/db but its token is for shop/web"),
    ],
)
def test_a_proxy_cannot_obtain_another_workloads_key(
    token: str | None, status: str, detail: str
) -> None:
    async def scenario(port: int, hub: Hub) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await _ask(port, NodeProfile("shop", "db"), token)
        assert e.value.code() == grpc.StatusCode[status]
        assert detail in str(e.value.details())
        assert hub.snapshot.views() == {}  # no view, so no certificate, was made for it

    run_server(scenario)
