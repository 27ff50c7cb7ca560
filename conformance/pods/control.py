"""The control plane of a world: `xds-server serve` in the node namespace, on the bridge.

It is the suite's `ControlPlane` (manifests folder, injected xDS, admin
queries) with the process started inside the node namespace, listening on the
bridge address where every pod's sidecar reaches it, and its admin endpoint
queried from inside that namespace. With `ca_dir` it runs the mesh's CA
(`--ca-dir`, and `ca_flags` such as `--cert-ttl 3s`). `pod_bootstrap` prints a pod's bootstrap
with `xds-server bootstrap`, every port the contract's default, since each
pod has its own addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from api import contract
from conformance import procs
from conformance.controlplane import ControlPlane, ControlPlaneError
from conformance.netplan import NetPlan
from conformance.pods import system
from conformance.pods.sockets import inside

XDS_PORT = 18000
ADMIN_PORT = 18001


class PodControlPlane(ControlPlane):
    def __init__(
        self,
        program: str,
        workdir: Path,
        netns: str,
        address: str,
        *,
        inject: bool = False,
        ca_dir: Path | None = None,
        ca_flags: Sequence[str] = (),
    ) -> None:
        plan = NetPlan(
            client="",
            proxy=contract.OUTBOUND_ADDRESS,
            control=address,
            backends={},
            ports={},
            admin_port=contract.ADMIN_PORT,
            outbound_port=contract.OUTBOUND_PORT,
            inbound_port=contract.INBOUND_PORT,
            xds_port=XDS_PORT,
            control_admin_port=ADMIN_PORT,
        )
        super().__init__(program, workdir, plan, inject)
        self.netns = netns
        self.ca_dir = ca_dir
        self.ca_flags = tuple(ca_flags)
        if ca_flags and ca_dir is None:
            raise ValueError(f"CA flags {list(ca_flags)} without a CA folder")

    async def start(self) -> None:
        args = self.serve_args()
        if self.ca_dir is not None:
            args += ["--ca-dir", str(self.ca_dir), *self.ca_flags]
        log = self.workdir / "xds-server.log"
        self.proc = system.start("xds-server", [*system.in_pod(self.netns), *args], log)
        with inside(self.netns):
            await procs.wait_ready(self.proc, self.admin, within=30)

    async def get_json(self, path: str) -> Any:
        with inside(self.netns):
            return await super().get_json(path)

    async def pod_bootstrap(
        self, node_id: str, namespace: str, service_account: str, app_port: int, delta: bool
    ) -> str:
        """The bootstrap `xds-server bootstrap` prints for a pod's sidecar."""
        args = [
            self.program,
            "bootstrap",
            "--node-id",
            node_id,
            "--namespace",
            namespace,
            "--service-account",
            service_account,
            "--xds-address",
            self.xds_address,
            "--app-port",
            str(app_port),
        ]
        if delta:
            args.append("--delta")
        if self.ca_dir is not None:
            args += ["--ca-dir", str(self.ca_dir)]
        result = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneError(
                f"xds-server bootstrap failed ({result.returncode}): {result.stderr.decode()}"
            )
        return result.stdout.decode()
