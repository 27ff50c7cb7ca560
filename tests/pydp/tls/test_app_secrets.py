"""The app with secrets: SDS compiled and counted, contexts fed, NACKs, `/config_dump`."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf.json_format import ParseDict

from api import contract
from pydp.app import App
from pydp.config_dump import to_json
from pydp.xds import BootstrapConfig
from pydp.xds.session import AdsSession
from tests.pydp.tls.pki import Pki, cert_secret_message, roots_secret_message
from tests.pydp.xds.builders import assignment, node, sotw

CDS, EDS, SDS = contract.TYPE_CLUSTER, contract.TYPE_ENDPOINT, contract.TYPE_SECRET
MESH = Pki()
ADS: dict[str, Any] = {"ads": {}}


def mesh_cluster(name: str) -> Any:
    return ParseDict(
        {
            "name": name,
            "type": "EDS",
            "eds_cluster_config": {"eds_config": ADS},
            "transport_socket": {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "UpstreamTlsContext",
                    "common_tls_context": {
                        "tls_certificate_sds_secret_configs": [
                            {"name": "default", "sds_config": ADS}
                        ],
                        "validation_context_sds_secret_config": {
                            "name": "ROOTCA",
                            "sds_config": ADS,
                        },
                    },
                },
            },
        },
        cluster_pb2.Cluster(),
    )


class Control:
    def __init__(self, app: App) -> None:
        self.session = AdsSession(node(), app.store, delta=False, node_on_first_message_only=False)
        self.session.connect()
        self.nonce = 0

    def send(self, type_url: str, version: str, *messages: Any) -> list[Any]:
        self.nonce += 1
        return self.session.handle(sotw(type_url, version, f"n{self.nonce}", messages))


@pytest.fixture
def app() -> App:
    return App(BootstrapConfig(node=node(), xds_host="127.0.0.1", xds_port=9), admin=False)


def test_secrets_reach_the_tls_contexts_and_are_counted(app: App) -> None:
    control = Control(app)
    control.send(CDS, "1", mesh_cluster("mesh"))
    control.send(EDS, "1", assignment("mesh"))
    assert "mesh" not in app.store.snapshot.clusters  # warming: its secrets have not come
    leaf = MESH.leaf(uris=("spiffe://cluster.local/ns/a/sa/b",))
    control.send(
        SDS, "1", cert_secret_message("default", leaf), roots_secret_message("ROOTCA", MESH)
    )
    cluster = app.store.snapshot.clusters["mesh"]
    assert cluster.tls is not None
    context = app.tls.client(cluster.tls, "http/1.1")
    assert context.digests == (
        app.store.snapshot.secrets["default"].digest,
        app.store.snapshot.secrets["ROOTCA"].digest,
    )
    assert app.stats.counters["sds.default.update_success"] == 1
    assert app.stats.counters["sds.ROOTCA.update_success"] == 1
    app.tls.close()


def test_a_secret_pydp_cannot_use_is_nacked_and_the_last_good_one_stays(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    control = Control(app)
    control.send(CDS, "1", mesh_cluster("mesh"))
    good = cert_secret_message("default", MESH.leaf())
    control.send(SDS, "1", good)
    bad = cert_secret_message("default", MESH.leaf())
    bad.tls_certificate.private_key.filename = "/etc/key.pem"
    with caplog.at_level(logging.WARNING):
        [nack] = control.send(SDS, "2", bad)
    assert nack.error_detail.message == (
        "secret default: tls_certificate.private_key.filename: "
        "pydp takes TLS material inline only (inline_bytes or inline_string)"
    )
    assert app.store.snapshot.secrets["default"].certificate_chain == (
        good.tls_certificate.certificate_chain.inline_bytes
    )
    assert app.stats.counters["sds.default.update_rejected"] == 1


def test_config_dump_redacts_the_key_of_an_active_secret(app: App) -> None:
    control = Control(app)
    control.send(CDS, "1", mesh_cluster("mesh"))
    leaf = MESH.leaf()
    control.send(
        SDS, "1", cert_secret_message("default", leaf), roots_secret_message("ROOTCA", MESH)
    )
    secrets = to_json(app.config_dump(False), "dynamic_active_secrets")["configs"]
    [default] = [s for s in secrets if s["name"] == "default"]
    key = default["secret"]["tls_certificate"]["private_key"]["inline_bytes"]
    assert base64.b64decode(key) == b"[redacted]"
    assert base64.b64encode(leaf.key_pem).decode() not in str(to_json(app.config_dump(False)))
