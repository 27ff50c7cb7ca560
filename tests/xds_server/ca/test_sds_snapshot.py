"""SDS secrets in snapshots: per identity, checked against the sockets, pushed on renewal."""

from __future__ import annotations

import datetime as dt

import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from api import contract
from api.contract import NodeProfile
from tests.xds_server.factories import parse_sotw, sotw
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.sds import SecretSource
from xds_server.ca.workloads import WorkloadCertificates
from xds_server.model import Endpoint, EndpointPort, EndpointSlice, Model, Pod, Service, ServicePort
from xds_server.pipeline import build_snapshot
from xds_server.protocol.stream import SotwStream
from xds_server.snapshot import InconsistentSnapshot, View
from xds_server.translate import MeshSecurity

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
MTLS = MeshSecurity(mtls=True)
CLUSTER = "outbound|8080||web.default.svc.cluster.local"


def mesh_model() -> Model:
    return Model.build(
        [Service("default", "web", (ServicePort(8080, "http"),))],
        [
            EndpointSlice(
                "default",
                "web-1",
                "web",
                (EndpointPort(8080, "http"),),
                (Endpoint(("10.0.0.1",), pod_name="web-1"),),
            )
        ],
        [Pod("default", "web-1", "web")],
    )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


class Views:
    def __init__(self, secrets: SecretSource) -> None:
        self.secrets = secrets
        self.snapshot = build_snapshot(mesh_model(), 1, "cluster.local", None, None, MTLS, secrets)

    def republish(self) -> None:
        self.snapshot = build_snapshot(
            mesh_model(),
            self.snapshot.version + 1,
            "cluster.local",
            self.snapshot,
            None,
            MTLS,
            self.secrets,
        )

    def view(self, profile: NodeProfile) -> tuple[int, View]:
        return self.snapshot.version, self.snapshot.view(profile)

    def changes_since(self, version: int, type_url: str) -> frozenset[str] | None:
        return None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secrets(clock: Clock) -> SecretSource:
    root = self_signed_root(new_key(), "cluster.local", START)
    certs = WorkloadCertificates(Authority.of(root, "cluster.local"), dt.timedelta(hours=1))
    return SecretSource(certs, clock)


def test_view_holds_the_identity_secrets_and_sockets_refer_to_them(secrets: SecretSource) -> None:
    snapshot = build_snapshot(mesh_model(), 1, "cluster.local", None, None, MTLS, secrets)
    view = snapshot.view(NodeProfile("default", "front"))
    assert sorted(view.get(contract.TYPE_SECRET)) == ["ROOTCA", "default"]
    assert view.node_names[contract.TYPE_SECRET] == {"ROOTCA", "default"}
    assert view.get(contract.TYPE_CLUSTER)[CLUSTER].secret_refs == {"default", "ROOTCA"}
    assert view.get(contract.TYPE_LISTENER)["inbound"].secret_refs == {"default", "ROOTCA"}
    assert view.get(contract.TYPE_LISTENER)["outbound"].secret_refs == frozenset()
    other = snapshot.view(NodeProfile("default", "web"))
    mine, theirs = (v.get(contract.TYPE_SECRET)["default"] for v in (view, other))
    assert mine.payload != theirs.payload


def test_a_socket_naming_a_missing_secret_is_refused() -> None:
    snapshot = build_snapshot(mesh_model(), 1, "cluster.local", None, None, MTLS, None)
    with pytest.raises(InconsistentSnapshot) as e:
        snapshot.view(NodeProfile("default", "front"))
    assert f"cluster {CLUSTER!r} needs missing secret 'ROOTCA'" in str(e.value)
    assert "listener 'inbound' needs missing secret 'default'" in str(e.value)


def _secret_names(payload: bytes) -> list[str]:
    response = parse_sotw(payload)
    assert response.type_url == contract.TYPE_SECRET
    out = []
    for resource in response.resources:
        secret = secret_pb2.Secret()
        assert resource.Unpack(secret)
        out.append(secret.name)
    return out


def test_renewal_pushes_only_the_new_certificate(secrets: SecretSource, clock: Clock) -> None:
    views = Views(secrets)
    stream = SotwStream(views)
    step = stream.receive(sotw(contract.TYPE_SECRET, ("default", "ROOTCA")))
    [response] = step.responses
    assert _secret_names(response.payload) == ["ROOTCA", "default"]
    stream.receive(
        sotw(contract.TYPE_SECRET, ("default", "ROOTCA"), response.nonce, response.version)
    )

    views.republish()
    assert stream.refresh() == []  # nothing due: same bytes, nothing sent

    clock.now = START + dt.timedelta(minutes=31)  # past half of the one-hour lifetime
    views.republish()
    [renewal] = stream.refresh()
    assert _secret_names(renewal.payload) == ["default"]
