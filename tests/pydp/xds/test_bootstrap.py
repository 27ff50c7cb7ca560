from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pydp.xds.bootstrap import BootstrapError, load_bootstrap, parse_bootstrap

BOOTSTRAP_YAML = """\
node:
  id: app-1.default
  cluster: app.default
  metadata: {NAMESPACE: default, SERVICE_ACCOUNT: default, OUTBOUND_PORT: "15001",
             INBOUND_PORT: "15006", APP_PORT: "8080", OUTBOUND_ADDRESS: 127.0.0.1}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 15000}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18000}}}
"""


def base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(BOOTSTRAP_YAML)
    return copy.deepcopy(data)


def test_reads_the_bootstrap_xds_server_writes(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(BOOTSTRAP_YAML)
    config = load_bootstrap(path)
    assert (config.node_id, config.node_cluster) == ("app-1.default", "app.default")
    assert config.metadata["OUTBOUND_PORT"] == "15001"
    assert config.node.metadata.fields["NAMESPACE"].string_value == "default"
    assert config.node.user_agent_name == "pydp"
    assert (config.admin_address, config.admin_port) == ("127.0.0.1", 15000)
    assert (config.xds_host, config.xds_port) == ("127.0.0.1", 18000)
    assert not config.delta and config.node_on_first_message_only
    assert (config.backoff_base, config.backoff_max, config.initial_fetch_timeout) == (
        0.5,
        30.0,
        15.0,
    )
    assert config.source == str(path)


def test_reads_json_and_delta_and_retry_back_off(tmp_path: Path) -> None:
    data = base()
    ads = data["dynamic_resources"]["ads_config"]
    ads["api_type"] = "DELTA_GRPC"
    ads["grpc_services"][0]["envoy_grpc"]["retry_policy"] = {
        "retry_back_off": {"base_interval": "0.25s"}
    }
    data["dynamic_resources"]["cds_config"]["initial_fetch_timeout"] = "3s"
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(data))
    config = load_bootstrap(path)
    assert config.delta
    assert (config.backoff_base, config.backoff_max) == (0.25, 2.5)
    assert config.initial_fetch_timeout == 3.0


def test_google_grpc_target_uri() -> None:
    data = base()
    data["dynamic_resources"]["ads_config"]["grpc_services"] = [
        {"google_grpc": {"target_uri": "dns:///xds.mesh-system:15010", "stat_prefix": "xds"}}
    ]
    config = parse_bootstrap(data)
    assert (config.xds_host, config.xds_port) == ("xds.mesh-system", 15010)


def test_misspelt_field_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(BOOTSTRAP_YAML.replace("ads_config:", "ads_confg:"))
    with pytest.raises(BootstrapError, match=r"envoy\.yaml: .*no field named \"ads_confg\""):
        load_bootstrap(path)


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    data = base()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["node", "id"], None, r"node\.id: is required"),
        (["node", "cluster"], None, r"node\.cluster: is required"),
        (["dynamic_resources", "ads_config"], None, r"dynamic_resources\.ads_config: is required"),
        (
            ["dynamic_resources", "ads_config", "api_type"],
            "REST",
            r"dynamic_resources\.ads_config\.api_type: REST is not",
        ),
        (
            ["dynamic_resources", "ads_config", "transport_api_version"],
            None,
            r"dynamic_resources\.ads_config\.transport_api_version: AUTO is not supported: set V3",
        ),
        (
            ["dynamic_resources", "lds_config"],
            None,
            r"dynamic_resources\.lds_config: is required: set `ads: \{\}`",
        ),
        (
            ["dynamic_resources", "cds_config"],
            {"path_config_source": {"path": "/etc/cds.yaml"}},
            r"dynamic_resources\.cds_config: uses path_config_source; pydp supports only `ads",
        ),
        (
            ["dynamic_resources", "ads_config", "grpc_services"],
            [{"envoy_grpc": {"cluster_name": "nope"}}],
            r"dynamic_resources\.ads_config\.grpc_services\[0\]\.envoy_grpc\.cluster_name: 'nope'",
        ),
        (
            ["dynamic_resources", "ads_config", "grpc_services"],
            [],
            r"dynamic_resources\.ads_config\.grpc_services: names no gRPC service",
        ),
    ],
)
def test_missing_or_unsupported_fields_are_named(path: list[str], value: Any, message: str) -> None:
    with pytest.raises(BootstrapError, match=r"^test\.yaml: " + message):
        parse_bootstrap(_broken(path, value), "test.yaml")


def test_xds_cluster_must_speak_http2() -> None:
    data = base()
    del data["static_resources"]["clusters"][0]["typed_extension_protocol_options"]
    with pytest.raises(
        BootstrapError,
        match=r"clusters\[0\]\.typed_extension_protocol_options: .*http2_protocol_options",
    ):
        parse_bootstrap(data)


def test_xds_cluster_needs_an_endpoint_and_no_tls() -> None:
    data = base()
    data["static_resources"]["clusters"][0]["load_assignment"]["endpoints"] = []
    with pytest.raises(BootstrapError, match=r"clusters\[0\]\.load_assignment: has no endpoint"):
        parse_bootstrap(data)
    data = base()
    data["static_resources"]["clusters"][0]["transport_socket"] = {"name": "raw"}
    with pytest.raises(BootstrapError, match="TLS to the xDS server is not supported"):
        parse_bootstrap(data)


def test_bad_target_uri_and_unreadable_file(tmp_path: Path) -> None:
    data = base()
    data["dynamic_resources"]["ads_config"]["grpc_services"] = [
        {"google_grpc": {"target_uri": "xds-without-port", "stat_prefix": "xds"}}
    ]
    with pytest.raises(BootstrapError, match=r"target_uri: 'xds-without-port' is not of the form"):
        parse_bootstrap(data)
    with pytest.raises(BootstrapError, match=r"missing\.yaml: cannot be read"):
        load_bootstrap(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("node: [unclosed")
    with pytest.raises(BootstrapError, match=r"bad\.yaml: is not valid YAML"):
        load_bootstrap(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42")
    with pytest.raises(BootstrapError, match="mapping at the top level"):
        load_bootstrap(scalar)


def test_initial_metadata_is_carried_for_the_xds_call() -> None:
    doc = base()
    service = doc["dynamic_resources"]["ads_config"]["grpc_services"][0]
    service["initial_metadata"] = [{"key": "Authorization", "value": "Bearer t0ken"}]
    config = parse_bootstrap(doc, "b.yaml")
    assert config.initial_metadata == (("authorization", "Bearer t0ken"),)
    service["initial_metadata"] = [{"key": ":path", "value": "/x"}]
    with pytest.raises(BootstrapError, match=r"grpc_services\[0\]\.initial_metadata\[0\]"):
        parse_bootstrap(doc, "b.yaml")
