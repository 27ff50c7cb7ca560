"""The CA in a Kubernetes Secret, through the real `kubernetes` client and kmock's emulator."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import kmock
import kubernetes
import pytest

from xds_server.ca.certs import CertificateError
from xds_server.ca.identity import Identity
from xds_server.ca.secret_store import SecretFiles, parse_reference
from xds_server.ca.store import ROOT_CERT, ROOT_KEY, TOKEN_KEY, load_authority, token_key
from xds_server.ca.workloads import issue

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
SECRETS = "/api/v1/namespaces/xdsmesh-system/secrets"
Scenario = Callable[[kmock.KubernetesEmulator, Any], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            configuration = kubernetes.client.Configuration()
            configuration.host = str(server.url).rstrip("/")
            with kubernetes.client.ApiClient(configuration) as client:
                await scenario(emulator, client)

    asyncio.run(asyncio.wait_for(main(), 30))


async def secret_data(emulator: kmock.KubernetesEmulator, name: str) -> dict[str, bytes]:
    async with emulator.get(f"{SECRETS}/{name}") as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return {k: base64.b64decode(v) for k, v in body.get("data", {}).items()}


def test_first_replica_creates_the_secret_and_the_next_one_reads_the_same_root() -> None:
    async def scenario(emulator: kmock.KubernetesEmulator, client: Any) -> None:
        first = SecretFiles(client, "xdsmesh-system", "mesh-ca")
        authority, generated = await asyncio.to_thread(load_authority, first, "cluster.local", NOW)
        assert generated
        stored = await secret_data(emulator, "mesh-ca")
        assert set(stored) == {ROOT_CERT, ROOT_KEY}

        second = SecretFiles(client, "xdsmesh-system", "mesh-ca")
        again, generated = await asyncio.to_thread(load_authority, second, "cluster.local", NOW)
        assert not generated
        assert again.roots(NOW) == authority.roots(NOW)
        issued = issue(again, Identity("shop", "web"), NOW, dt.timedelta(hours=1))
        assert issued.cert.issuer == authority.roots(NOW)[0].subject

    run(scenario)


def test_files_are_added_beside_other_keys_and_never_replaced() -> None:
    async def scenario(emulator: kmock.KubernetesEmulator, client: Any) -> None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mesh-ca", "namespace": "xdsmesh-system"},
            "data": {"note": base64.b64encode(b"kept").decode()},
        }
        async with emulator.post(SECRETS, json=secret) as response:
            assert response.status == 200, await response.text()
        files = SecretFiles(client, "xdsmesh-system", "mesh-ca")
        key = await asyncio.to_thread(token_key, files)
        assert await asyncio.to_thread(token_key, files) == key
        assert await asyncio.to_thread(files.add, {TOKEN_KEY: b"x" * 32}) is False
        stored = await secret_data(emulator, "mesh-ca")
        assert stored == {"note": b"kept", TOKEN_KEY: key}
        assert await asyncio.to_thread(files.read) == {TOKEN_KEY: key}

    run(scenario)


def test_a_replica_that_loses_the_creation_race_reads_the_winners_root() -> None:
    async def scenario(emulator: kmock.KubernetesEmulator, client: Any) -> None:
        winner = SecretFiles(client, "xdsmesh-system", "mesh-ca")
        authority, _ = await asyncio.to_thread(load_authority, winner, "cluster.local", NOW)

        class Late(SecretFiles):
            """Read before the winner created the Secret: its first get finds nothing."""

            misses = 1

            def _get(self) -> Any:
                if self.misses:
                    self.misses -= 1
                    return None
                return super()._get()

        late = Late(client, "xdsmesh-system", "mesh-ca")
        assert await asyncio.to_thread(late.add, {ROOT_CERT: b"mine", ROOT_KEY: b"mine"}) is False
        stored = await secret_data(emulator, "mesh-ca")
        assert stored[ROOT_CERT] != b"mine"
        again, generated = await asyncio.to_thread(load_authority, late, "cluster.local", NOW)
        assert not generated
        assert again.roots(NOW) == authority.roots(NOW)

    run(scenario)


def test_a_refused_read_names_the_secret_and_the_permission() -> None:
    async def scenario(emulator: kmock.KubernetesEmulator, client: Any) -> None:
        emulator[f"get {SECRETS}/mesh-ca"] << 403
        files = SecretFiles(client, "xdsmesh-system", "mesh-ca")
        with pytest.raises(CertificateError) as e:
            await asyncio.to_thread(files.read)
        message = str(e.value)
        assert "Secret xdsmesh-system/mesh-ca: cannot get it: 403" in message
        assert "needs get on secrets in xdsmesh-system" in message

    run(scenario)


@pytest.mark.parametrize("text", ["mesh-ca", "/mesh-ca", "ns/", "a/b/c"])
def test_a_reference_is_namespace_slash_name(text: str) -> None:
    with pytest.raises(ValueError, match="is not NAMESPACE/NAME"):
        parse_reference(text)
    assert parse_reference("xdsmesh-system/mesh-ca") == ("xdsmesh-system", "mesh-ca")
