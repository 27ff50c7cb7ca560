"""deploy/: every manifest valid for the Kubernetes version the README names, and coherent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from xds_server import cli
from xds_server.app import KubeSettings
from xds_server.inject.options import DEFAULT_XDS_ADDRESS
from xds_server.sources.kube.resources import MODEL_RESOURCES, NAMESPACES

from .kustomize import build

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33"  # as the README says ("Running in a cluster")
KUSTOMIZATIONS = [DEPLOY / "base", *sorted((DEPLOY / "overlays").iterdir())]
Obj = dict[str, Any]


def manifests() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.y*ml") if p.name != "kustomization.yaml")


def find(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def test_the_readme_names_the_version_the_manifests_are_checked_against() -> None:
    assert f"Kubernetes {KUBERNETES_VERSION}" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", manifests(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_is_valid_kubernetes(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_kustomization_renders_to_valid_kubernetes(directory: Path) -> None:
    objects = build(directory)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert find(objects, "Deployment", "xds-server")


BASE = build(DEPLOY / "base")
DEPLOYMENT = find(BASE, "Deployment", "xds-server")
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]


def test_the_control_plane_is_two_stateless_replicas_that_stay_available() -> None:
    assert DEPLOYMENT["spec"]["replicas"] == 2
    assert DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "volumes" not in POD["spec"], "stateless: nothing mounted"
    pdb = find(BASE, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= POD["metadata"]["labels"].items()
    assert POD["metadata"]["annotations"]["xdsmesh.io/inject"] == "false"


def test_probes_are_on_the_admin_port_and_resources_are_requested() -> None:
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    assert ports == {"grpc-xds": 18000, "http-admin": 18001}
    assert CONTAINER["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http-admin"}
    assert CONTAINER["livenessProbe"]["httpGet"]["port"] == "http-admin"
    assert set(CONTAINER["resources"]["requests"]) == {"cpu", "memory"}
    assert CONTAINER["securityContext"]["readOnlyRootFilesystem"] is True
    assert POD["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_arguments_are_what_xds_server_serve_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: True)
    args = cli._parser().parse_args(CONTAINER["args"])
    assert args.command == "serve"
    assert cli._kube_settings(args) == KubeSettings(in_cluster=True)
    assert args.xds_address == "0.0.0.0:18000"
    assert args.admin_address == "0.0.0.0:18001"
    assert args.max_connection_age == 1800
    overlay = find(build(DEPLOY / "overlays" / "example"), "Deployment", "xds-server")
    overlay_args = cli._parser().parse_args(
        overlay["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    settings = cli._kube_settings(overlay_args)
    assert isinstance(settings, KubeSettings)
    assert settings.namespace_selector == "xdsmesh.io/mesh=enabled"


def test_the_service_is_where_injected_sidecars_look_for_the_control_plane() -> None:
    service = find(BASE, "Service", "xds-server")
    host, _, port = DEFAULT_XDS_ADDRESS.partition(":")
    assert host == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    grpc = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    assert grpc == [
        {"name": "grpc-xds", "port": 18000, "targetPort": "grpc-xds", "appProtocol": "grpc"}
    ]
    assert service["spec"]["selector"].items() <= POD["metadata"]["labels"].items()


def test_rbac_reads_exactly_the_kinds_the_server_watches() -> None:
    role = find(BASE, "ClusterRole")
    granted = {
        (group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    watched = {(r.group, r.plural) for r in (*MODEL_RESOURCES, NAMESPACES)}
    assert granted == watched
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"list", "watch"}
    binding = find(BASE, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = find(BASE, "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    assert POD["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_everything_lives_in_the_control_plane_namespace() -> None:
    namespace = find(BASE, "Namespace")["metadata"]["name"]
    for obj in BASE:
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == namespace, obj["kind"]


def test_the_example_overlay_sets_image_and_replicas() -> None:
    overlay = find(build(DEPLOY / "overlays" / "example"), "Deployment", "xds-server")
    assert overlay["spec"]["replicas"] == 3
    image = overlay["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/platform/xdsmesh:0.1.0"


def test_the_mtls_overlay_keeps_the_ca_in_a_secret_it_may_touch() -> None:
    objects = build(DEPLOY / "overlays" / "mtls")
    container = find(objects, "Deployment", "xds-server")["spec"]["template"]["spec"]
    args = cli._parser().parse_args(container["containers"][0]["args"])
    assert args.ca_secret == "xdsmesh-system/xdsmesh-ca"
    namespace, name = args.ca_secret.split("/")
    role = find(objects, "Role", "xdsmesh-ca")
    assert role["metadata"]["namespace"] == namespace
    granted = {
        (verb, name_)
        for rule in role["rules"]
        if rule["resources"] == ["secrets"]
        for verb in rule["verbs"]
        for name_ in rule.get("resourceNames", ["*"])
    }
    assert granted == {("create", "*"), ("get", name), ("patch", name)}
    review = find(objects, "ClusterRole", "xdsmesh-xds-server-tokenreview")
    assert review["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    account = find(objects, "ServiceAccount")["metadata"]
    for binding in (
        find(objects, "RoleBinding", "xdsmesh-ca"),
        find(objects, "ClusterRoleBinding", "xdsmesh-xds-server-tokenreview"),
    ):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
