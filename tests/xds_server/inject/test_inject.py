"""`xds-server inject`: what a pod gets, what it keeps, idempotence, and valid output."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xds_server.inject import options as o
from xds_server.inject.manifests import InjectError, inject_text
from xds_server.inject.options import InjectOptions
from xds_server.inject.pod import inject_template

# The Kubernetes version the project targets (README, "Running in a cluster").
KUBERNETES_VERSION = "1.33"
WORKLOADS = Path(__file__).parents[3] / "deploy" / "examples" / "workloads"
OPTS = InjectOptions()


def load(text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def inject(text: str, opts: InjectOptions = OPTS) -> tuple[list[Any], list[str]]:
    output, notes = inject_text(text, opts)
    return load(output), notes


def validate(documents: list[Any]) -> None:
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] == "Pod":
        return dict(document["spec"])
    if document["kind"] == "CronJob":
        return dict(document["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(document["spec"]["template"]["spec"])


def by_name(containers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in containers}


def arg(container: dict[str, Any], flag: str) -> str:
    args = container["args"]
    return str(args[args.index(flag) + 1])


REVIEWS = (WORKLOADS / "reviews.yaml").read_text()
MORE = (WORKLOADS / "more-kinds.yaml").read_text()


@pytest.mark.parametrize("path", sorted(WORKLOADS.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_and_their_injected_form_are_valid_kubernetes(path: Path) -> None:
    text = path.read_text()
    validate(load(text))
    injected, _ = inject(text)
    validate(injected)
    twice, _ = inject(yaml.safe_dump_all(injected))
    validate(twice)


def test_a_real_world_deployment_keeps_everything_it_had() -> None:
    before = load(REVIEWS)
    after, notes = inject(REVIEWS)
    assert notes == ["Deployment shop/reviews: injected"]
    assert after[:2] == before[:2], "the ServiceAccount and Service pass through"
    old, new = pod_spec(before[2]), pod_spec(after[2])
    assert new["containers"] == old["containers"], "containers, probes, env, mounts unchanged"
    assert [c["name"] for c in new["initContainers"]] == [o.INIT_NAME, o.PROXY_NAME, "migrate"]
    assert new["initContainers"][2:] == old["initContainers"]
    assert new["volumes"][:2] == old["volumes"]
    assert new["securityContext"] == old["securityContext"]
    assert new["serviceAccountName"] == "reviews"
    meta = after[2]["spec"]["template"]["metadata"]
    assert meta["labels"] == before[2]["spec"]["template"]["metadata"]["labels"]
    assert meta["annotations"]["prometheus.io/port"] == "9090"
    rest = {k: v for k, v in after[2]["spec"].items() if k != "template"}
    assert rest == {k: v for k, v in before[2]["spec"].items() if k != "template"}


def test_the_proxy_is_a_native_sidecar_with_its_bootstrap_from_the_downward_api() -> None:
    after, _ = inject(REVIEWS)
    init = by_name(pod_spec(after[2])["initContainers"])
    proxy = init[o.PROXY_NAME]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["image"] == o.DEFAULT_IMAGE
    assert proxy["command"] == ["python", "-m", "xds_server.inject.sidecar"]
    assert arg(proxy, "--dataplane") == "envoy"
    assert arg(proxy, "--xds-address") == "xds-server.xdsmesh-system.svc:18000"
    assert arg(proxy, "--app-port") == "9080", "the first port the containers declare"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in proxy["env"]}
    assert env == {
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
        "SERVICE_ACCOUNT": "spec.serviceAccountName",
    }
    assert proxy["securityContext"]["runAsUser"] == o.PROXY_UID
    assert proxy["securityContext"]["runAsNonRoot"] is True
    assert proxy["startupProbe"]["exec"]["command"][-3:] == ["--probe", "--admin-port", "15000"]
    assert proxy["volumeMounts"] == [
        {"name": o.VOLUME_NAME, "mountPath": o.CONFIG_DIR},
        {"name": o.TOKEN_VOLUME_NAME, "mountPath": o.TOKEN_DIR, "readOnly": True},
    ]


def test_the_proxy_gets_a_service_account_token_for_the_control_plane() -> None:
    after, _ = inject(REVIEWS)
    spec = pod_spec(after[2])
    proxy = by_name(spec["initContainers"])[o.PROXY_NAME]
    assert arg(proxy, "--xds-token-file") == "/var/run/secrets/xdsmesh/xds-token"
    [volume] = [v for v in spec["volumes"] if v["name"] == o.TOKEN_VOLUME_NAME]
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "xdsmesh", "expirationSeconds": 604800, "path": "xds-token"}
    assert "xdsmesh-token" not in str(spec["containers"]), "the application never sees it"


def test_the_init_container_captures_traffic_for_the_proxy_uid() -> None:
    after, _ = inject(REVIEWS)
    capture = by_name(pod_spec(after[2])["initContainers"])[o.INIT_NAME]
    assert capture["command"] == ["python", "-m", "xds_server.inject.capture"]
    assert arg(capture, "--proxy-uid") == str(o.PROXY_UID)
    assert arg(capture, "--inbound-port") == "15006"
    assert arg(capture, "--outbound-port") == "15001"
    assert arg(capture, "--include-inbound-ports") == "9080"
    caps = capture["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]}
    assert capture["securityContext"]["runAsUser"] == 0
    assert "restartPolicy" not in capture, "runs to completion before the proxy starts"


def test_annotations_choose_the_data_plane_port_and_capture() -> None:
    text = MORE.replace(
        'xdsmesh.io/app-port: "9080"',
        'xdsmesh.io/app-port: "9080"\n'
        '        xdsmesh.io/exclude-outbound-ports: "5432"\n'
        '        xdsmesh.io/include-outbound-ip-ranges: "10.96.0.0/12"',
    )
    after, _ = inject(text)
    init = by_name(pod_spec(after[0])["initContainers"])
    assert arg(init[o.PROXY_NAME], "--dataplane") == "pydp"
    assert arg(init[o.PROXY_NAME], "--app-port") == "9080"
    assert arg(init[o.INIT_NAME], "--exclude-outbound-ports") == "5432"
    assert arg(init[o.INIT_NAME], "--include-outbound-ip-ranges") == "10.96.0.0/12"
    status = json.loads(after[0]["spec"]["template"]["metadata"]["annotations"][o.STATUS])
    assert status["dataplane"] == "pydp"


def test_every_workload_kind_is_injected_and_opted_out_pods_are_left_alone() -> None:
    before = load(MORE)
    after, notes = inject(MORE)
    assert notes == [
        "StatefulSet shop/ratings: injected",
        "CronJob shop/nightly-report: injected",
        "Job shop/backfill: injected",
        "Pod shop/debug: left alone (xdsmesh.io/inject is false)",
        "DaemonSet kube-system/node-agent: left alone (it uses the host's network)",
    ]
    for document in after[:3]:
        names = [c["name"] for c in pod_spec(document)["initContainers"]]
        assert names == [o.INIT_NAME, o.PROXY_NAME]
    assert after[3:] == before[3:]
    assert after[0]["spec"]["volumeClaimTemplates"] == before[0]["spec"]["volumeClaimTemplates"]


def test_a_bare_pod_and_a_list_are_injected() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"xdsmesh.io/inject": "true"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [pod, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}],
    }
    after, notes = inject(yaml.safe_dump(listed))
    assert notes == ["Pod default/p: injected"]
    items = after[0]["items"]
    assert arg(by_name(items[0]["spec"]["initContainers"])[o.PROXY_NAME], "--app-port") == "8080"
    assert items[1] == listed["items"][1]
    validate(items)


def test_the_opt_out_label_works_as_the_annotation_does() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {o.INJECT: "false"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    after, notes = inject(yaml.safe_dump(pod))
    assert after == [pod]
    assert notes == ["Pod default/p: left alone (xdsmesh.io/inject is false)"]


def test_injecting_twice_changes_nothing() -> None:
    once, _ = inject_text(REVIEWS + "---\n" + MORE, OPTS)
    twice, _ = inject_text(once, OPTS)
    assert twice == once


def test_injecting_again_with_other_options_replaces_the_sidecar() -> None:
    once, _ = inject_text(REVIEWS, OPTS)
    other = InjectOptions(image="registry.example.com/xdsmesh:2", delta=True)
    again = load(inject_text(once, other)[0])
    direct = load(inject_text(REVIEWS, other)[0])
    assert again == direct
    proxy = by_name(pod_spec(again[2])["initContainers"])[o.PROXY_NAME]
    assert proxy["image"] == "registry.example.com/xdsmesh:2"
    assert "--delta" in proxy["args"]


_PORTS = st.lists(st.integers(1, 65535), max_size=3)


@settings(max_examples=50)
@given(
    init=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
    containers=st.lists(
        st.tuples(st.sampled_from(["x", "y", "z"]), _PORTS),
        min_size=1,
        max_size=3,
        unique_by=lambda c: c[0],
    ),
    volumes=st.lists(st.sampled_from(["v1", "v2"]), unique=True, max_size=2),
    dataplane=st.sampled_from(["envoy", "pydp"]),
)
def test_injection_is_idempotent_and_removable(
    init: list[str], containers: list[tuple[str, list[int]]], volumes: list[str], dataplane: str
) -> None:
    spec: dict[str, Any] = {
        "containers": [
            {"name": n, "image": "i", "ports": [{"containerPort": p} for p in ports]}
            for n, ports in containers
        ]
    }
    if init:
        spec["initContainers"] = [{"name": n, "image": "i"} for n in init]
    if volumes:
        spec["volumes"] = [{"name": n, "emptyDir": {}} for n in volumes]
    template = {"metadata": {"annotations": {o.DATAPLANE: dataplane}}, "spec": spec}
    once = inject_template(template, OPTS).template
    assert inject_template(once, OPTS).template == once
    assert once["spec"]["containers"] == spec["containers"]
    assert once["spec"]["initContainers"][2:] == spec.get("initContainers", [])
    assert template["spec"] == spec, "the input is not modified"
    stripped = copy.deepcopy(once)
    from xds_server.inject.pod import _remove_injected  # noqa: PLC0415

    _remove_injected(stripped["metadata"], stripped["spec"])
    assert stripped == template


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        (o.APP_PORT, "http", "annotation xdsmesh.io/app-port: must be a port number, got 'http'"),
        (o.DATAPLANE, "linkerd", "annotation xdsmesh.io/dataplane: must be one of envoy, pydp"),
    ],
)
def test_bad_annotations_are_errors_naming_the_object(
    annotation: str, value: str, message: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "annotations": {annotation: value}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    with pytest.raises(InjectError) as caught:
        inject_text(yaml.safe_dump(pod), OPTS, "pod.yaml")
    assert str(caught.value).startswith(f"pod.yaml: document 1: Pod shop/p: {message}")


def test_broken_yaml_is_an_error_with_its_line() -> None:
    with pytest.raises(InjectError) as caught:
        inject_text("kind: Pod\nmetadata: [\n", OPTS, "in.yaml")
    assert str(caught.value).startswith("in.yaml:3: document 1: invalid YAML")


def test_the_command_reads_a_file_and_writes_yaml_and_notes(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xds_server.cli",
            "inject",
            "-f",
            str(WORKLOADS / "reviews.yaml"),
            "-o",
            str(out),
            "--dataplane",
            "pydp",
            "--xds-address",
            "xds.mesh.svc:18000",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "xds-server inject: Deployment shop/reviews: injected\n"
    proxy = by_name(pod_spec(load(out.read_text())[2])["initContainers"])[o.PROXY_NAME]
    assert arg(proxy, "--dataplane") == "pydp"
    assert arg(proxy, "--xds-address") == "xds.mesh.svc:18000"


def test_the_command_reads_stdin_and_reports_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xds_server.cli", "inject"],
        input=REVIEWS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert load(done.stdout)[0] == load(REVIEWS)[0]
    failed = subprocess.run(
        [sys.executable, "-m", "xds_server.cli", "inject", "-f", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert "xds-server inject: " in failed.stderr and "/nonexistent.yaml" in failed.stderr
