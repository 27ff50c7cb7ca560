"""pydp authenticates its xDS stream with the token its bootstrap carries, as Envoy does."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.harness import manifests
from tests.harness.net import free_port, wait_until
from tests.harness.procs import control_plane
from tests.harness.pydp_proc import pydp


def test_the_bootstrap_token_admits_pydp_and_its_absence_does_not(tmp_path: Path) -> None:
    folder, ca_dir = tmp_path / "manifests", tmp_path / "ca"
    folder.mkdir()
    manifests.write(folder / "a.yaml", manifests.service("a", "default", 80, 8080, []))
    with control_plane(folder, tmp_path, "--ca-dir", str(ca_dir)) as cp:
        ports = ["--admin-port", str(free_port()), "--outbound-port", str(free_port()),
                 "--inbound-port", str(free_port())]  # fmt: skip
        bootstrap = cp.bootstrap("app-1.default", "default", "--ca-dir", str(ca_dir), *ports)
        services = yaml.safe_load(bootstrap)["dynamic_resources"]["ads_config"]["grpc_services"]
        assert any(m["key"] == "authorization" for m in services[0]["initial_metadata"])
        with pydp(bootstrap, tmp_path, ready=False) as admitted:

            def acked() -> bool:
                # the proxy shows up once its first response is sent; the ACK follows
                return any(
                    p["proxy"] == "app-1.default" and p["types"]["cds"].get("state") == "ACKED"
                    for p in cp.syncz()
                    if "cds" in p["types"]
                )

            try:
                wait_until(acked)
            except TimeoutError:
                raise AssertionError(f"{cp.syncz()}\n{admitted.process.output()}") from None

        doc = yaml.safe_load(cp.bootstrap("app-2.default", "default", *ports))
        doc["dynamic_resources"]["ads_config"]["grpc_services"][0].pop("initial_metadata", None)
        with pydp(yaml.safe_dump(doc), tmp_path, name="refused", ready=False) as refused:
            wait_until(lambda: "authorization" in refused.process.output(), timeout=15)
            assert not any(p["proxy"] == "app-2.default" for p in cp.syncz())
