"""`xds-server serve --kubernetes`: the flags, in-pod detection, and the real process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import kmock
import pytest
import yaml
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2 as tls_secret_pb2
from envoy.service.discovery.v3 import discovery_pb2

from api import contract
from api.contract import NodeProfile
from tests.harness.net import free_port, loopback
from tests.harness.procs import binary
from tests.xds_server.factories import node
from xds_server import cli
from xds_server.app import KubeSettings
from xds_server.sources.kube.config import in_pod
from xds_server.sources.kube.resources import SERVICES

from .kube_harness import (
    UNAVAILABLE_STATUS,
    Client,
    cluster,
    cluster_name,
    eventually,
    run,
    service,
)


def parse(*argv: str) -> KubeSettings | str | None:
    return cli._kube_settings(cli._parser().parse_args(["serve", *argv]))


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ((), "give --manifests DIR, or --kubernetes to watch a cluster"),
        (
            ("--manifests", "m", "--namespace", "a", "--context", "c"),
            "--manifests serves a folder; --context, --namespace are for --kubernetes",
        ),
        (("--kubernetes", "--namespace", "Shop"), "namespace must be a DNS label"),
        (
            ("--kubernetes", "--namespace", "a", "--namespace-selector", "x=y"),
            "select namespaces by name or by label, not both",
        ),
        (("--kubernetes", "--namespace-selector", "a b"), "label selector 'a b': cannot read"),
    ],
)
def test_flags_that_do_not_fit_are_refused(
    argv: tuple[str, ...], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: False)
    outcome = parse(*argv)
    assert isinstance(outcome, str) and outcome.startswith(problem)


def test_a_refusal_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: False)
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve"])
    assert caught.value.code == 2
    assert "give --manifests DIR, or --kubernetes" in capsys.readouterr().err


def test_the_manifests_folder_stays_the_default_off_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: True)
    assert parse("--manifests", "m") is None


def test_in_a_pod_the_cluster_is_watched_with_the_service_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: True)
    assert parse("--namespace", "shop,web") == KubeSettings(
        in_cluster=True, namespaces=("shop,web",)
    )
    assert parse("--kubeconfig", "k") == KubeSettings(kubeconfig="k", in_cluster=False)


def test_off_a_pod_kubernetes_uses_the_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: False)
    assert parse("--kubernetes", "--context", "kind") == KubeSettings(context="kind")


def test_a_pod_is_recognised_by_its_token_and_the_api_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert not in_pod(token)
    token.write_text("t")
    assert in_pod(token)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert not in_pod(token)


def test_a_bad_kubeconfig_is_an_error_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nope.yaml"
    code = cli.main(["serve", "--kubernetes", "--kubeconfig", str(missing)])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[-1].startswith(f"cannot configure the Kubernetes client from {missing}: ")


async def _answers(url: str, status: int) -> bool:
    return await asyncio.to_thread(_status, url) == status


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def test_the_server_process_serves_a_cluster_once_it_has_listed_it(tmp_path: Path) -> None:
    """`xds-server serve --kubernetes` as a user runs it: not ready until the first list."""

    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            blocked = True
            lists = k.emulator[kmock.action.LIST, kmock.resource("", "v1", "services")]
            lists[lambda _: blocked] << 500 << UNAVAILABLE_STATUS
            config = tmp_path / "kubeconfig"
            config.write_text(yaml.safe_dump(_kubeconfig(str(k.server.url).rstrip("/"))))
            host = loopback()
            xds = f"{host}:{free_port(host)}"
            admin = f"{host}:{free_port(host)}"
            log_file = tmp_path / "xds-server.log"
            with log_file.open("wb") as log_out:
                process = await asyncio.create_subprocess_exec(
                    binary("xds-server"),
                    "serve",
                    "--kubernetes",
                    "--kubeconfig",
                    str(config),
                    "--xds-address",
                    xds,
                    "--admin-address",
                    admin,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_out,
                    env={**os.environ, "KUBERNETES_SERVICE_HOST": ""},
                )
            try:
                ready = f"http://{admin}/ready"
                await eventually(lambda: _answers(ready, 503), "the admin port to answer")
                await eventually(lambda: k.requests(SERVICES, "list") >= 2, "a failed list")
                assert await _answers(ready, 503), "not ready before the first list"
                blocked = False
                await eventually(lambda: _answers(ready, 200), "readiness")
                async with grpc.aio.insecure_channel(xds) as channel:
                    cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                    await cds.subscribe()
                    await cds.until(lambda r: cluster_name("a") in r)
                    cds.close()
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            log = log_file.read_text()
            assert "list: 500 Internal Server Error: etcdserver: request timed out" in log
            assert "configuration from the Kubernetes API (all namespaces)" in log

    run(scenario)


def _kubeconfig(server: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "test"}}],
        "current-context": "emulator",
    }


def test_a_ca_secret_needs_a_cluster(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "in_pod", lambda: False)
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve", "--manifests", str(tmp_path), "--ca-secret", "xdsmesh-system/ca"])
    assert caught.value.code == 2
    assert "--ca-secret keeps the CA in a Kubernetes Secret: it needs --kubernetes" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli.main(["serve", "--kubernetes", "--ca-dir", "d", "--ca-secret", "xdsmesh-system/ca"])
    assert "not allowed with argument" in capsys.readouterr().err


def _token_reviews(emulator: kmock.KubernetesEmulator) -> Any:
    """The API server's answer: `good` is shop/web's token, if meant for xdsmesh.

    A TokenReview is not stored; the emulator stores every created object, so
    the review is deleted again, else the next one would conflict with it."""

    def answer(request: kmock.Request) -> dict[str, object]:
        for key, obj in list(emulator.objects.items()):
            if key[0].plural == "tokenreviews" and not obj.deleted:
                obj.delete()
        return _token_review(request.data["spec"])

    return answer


def _token_review(spec: dict[str, Any]) -> dict[str, object]:
    good = spec["token"] == "good" and spec.get("audiences") == [contract.XDS_TOKEN_AUDIENCE]
    status: dict[str, object] = (
        {"authenticated": True, "user": {"username": "system:serviceaccount:shop:web"}}
        if good
        else {"authenticated": False, "error": "invalid bearer token"}
    )
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": spec,
        "status": status,
    }


async def _first_secret(xds: str, token: str) -> discovery_pb2.DiscoveryResponse:
    """What a proxy of shop/web asking for its certificate with `token` gets first."""
    async with grpc.aio.insecure_channel(xds) as channel:
        ads: Any = channel.stream_stream(
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        call = ads(metadata=(("authorization", f"Bearer {token}"),))
        request = discovery_pb2.DiscoveryRequest(
            type_url=contract.TYPE_SECRET, resource_names=["default"]
        )
        profile = NodeProfile(namespace="shop", service_account="web")
        request.node.CopyFrom(node("web-1.shop", profile))
        await call.write(request)
        response = await asyncio.wait_for(call.read(), 10)
        call.cancel()
        assert isinstance(response, discovery_pb2.DiscoveryResponse), await call.details()
        return response


def test_the_server_process_keeps_its_ca_in_a_secret(tmp_path: Path) -> None:
    """`serve --kubernetes --ca-secret NS/NAME`: the first start generates the root there,
    and a proxy proves itself with a service account token for the audience `xdsmesh`."""

    async def scenario() -> None:
        async with cluster() as k:
            k.emulator["post /apis/authentication.k8s.io/v1/tokenreviews"] << _token_reviews(
                k.emulator
            )
            config = tmp_path / "kubeconfig"
            config.write_text(yaml.safe_dump(_kubeconfig(str(k.server.url).rstrip("/"))))
            host = loopback()
            admin, xds = f"{host}:{free_port(host)}", f"{host}:{free_port(host)}"
            log_file = tmp_path / "xds-server.log"
            with log_file.open("wb") as log_out:
                process = await asyncio.create_subprocess_exec(
                    *(binary("xds-server"), "serve", "--kubernetes", "--kubeconfig", str(config)),
                    *("--xds-address", xds, "--admin-address", admin),
                    *("--ca-secret", "xdsmesh-system/mesh-ca"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_out,
                    env={**os.environ, "KUBERNETES_SERVICE_HOST": ""},
                )
            try:
                await eventually(lambda: _answers(f"http://{admin}/ready", 200), "readiness")
                path = "/api/v1/namespaces/xdsmesh-system/secrets/mesh-ca"
                async with k.emulator.get(path) as response:
                    assert response.status == 200, await response.text()
                    secret = await response.json()
                granted = await _first_secret(xds, "good")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await _first_secret(xds, "stolen")
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 20) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert set(secret["data"]) == {"root-cert.pem", "root-key.pem"}
            [resource] = granted.resources
            issued = tls_secret_pb2.Secret.FromString(resource.value)
            assert issued.name == "default" and issued.tls_certificate.private_key.inline_bytes
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "invalid bearer token" in str(refused.value.details())
            assert "generated a CA in Secret xdsmesh-system/mesh-ca" in log_file.read_text()

    run(scenario)
