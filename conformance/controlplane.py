"""The `xds-server` process of a run, its folders, and what it says about the proxy.

The run writes Kubernetes objects into `manifests/` (one file per object,
atomically, as kubectl or an editor would) and injected xDS resources into
`xds/`; the server watches both. Injection needs the server flag
`--xds-overrides DIR` (see `conformance/README.md`); `supports_injection`
tells whether the installed server has it.

Readiness of a change is read from the server's admin endpoint: the snapshot
version (`/debug/errors`) and, per proxy and type, whether the last push was
ACKed or NACKed (`/debug/syncz`).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import trio
import yaml

from conformance import procs
from conformance.client import Exchange, send
from conformance.netplan import NetPlan

OVERRIDES_FLAG = "--xds-overrides"
SETTLED = ("ACKED", "NACKED")


class ControlPlaneError(RuntimeError):
    pass


@cache
def supports_injection(program: str) -> bool:
    out = subprocess.run(
        [program, "serve", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    return OVERRIDES_FLAG in out.stdout


def _file_name(kind: str, *parts: str) -> str:
    text = "-".join(parts)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{kind.lower()}-{safe}-{digest}.yaml"


def _write(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)


class ControlPlane:
    def __init__(self, program: str, workdir: Path, plan: NetPlan, inject: bool) -> None:
        self.program = program
        self.workdir = workdir
        self.plan = plan
        self.inject = inject
        self.manifests = workdir / "manifests"
        self.overrides = workdir / "xds"
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.overrides.mkdir(parents=True, exist_ok=True)
        self.proc: procs.Proc | None = None
        self.xds_address = f"{plan.control}:{plan.xds_port}"
        self.admin = (plan.control, plan.control_admin_port)

    # Objects and resources.

    def apply(self, objects: list[Any]) -> None:
        for obj in objects:
            meta = obj.get("metadata", {})
            name = _file_name(obj["kind"], meta.get("namespace", "default"), meta["name"])
            _write(self.manifests / name, obj)

    def delete(self, refs: list[dict[str, str]]) -> None:
        for ref in refs:
            path = self.manifests / _file_name(ref["kind"], ref["namespace"], ref["name"])
            if not path.exists():
                raise ControlPlaneError(
                    f"delete: no {ref['kind']} {ref['namespace']}/{ref['name']}"
                )
            path.unlink()

    def apply_xds(self, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            name = resource.get("name") or resource.get("cluster_name") or ""
            _write(self.overrides / _file_name(_short(resource["@type"]), name), resource)

    def delete_xds(self, refs: list[dict[str, str]]) -> None:
        for ref in refs:
            path = self.overrides / _file_name(_short(ref["@type"]), ref["name"])
            if not path.exists():
                raise ControlPlaneError(f"xds_delete: no injected {ref['@type']} {ref['name']!r}")
            path.unlink()

    # The process.

    def serve_args(self) -> list[str]:
        """The `xds-server serve` command line for this world."""
        args = [self.program, "serve", "--manifests", str(self.manifests)]
        args += ["--xds-address", self.xds_address]
        args += ["--admin-address", f"{self.admin[0]}:{self.admin[1]}"]
        args += ["--debounce-quiet", "0.05", "--debounce-max", "0.5"]
        if self.inject:
            args += [OVERRIDES_FLAG, str(self.overrides)]
        return args

    async def start(self) -> None:
        args = self.serve_args()
        self.proc = procs.start("xds-server", args, self.workdir / "xds-server.log")
        await procs.wait_ready(self.proc, self.admin, within=30)

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()

    async def bootstrap(self, node_id: str, namespace: str, app_port: int, delta: bool) -> str:
        plan = self.plan
        args = [
            self.program,
            "bootstrap",
            "--node-id",
            node_id,
            "--namespace",
            namespace,
            "--xds-address",
            self.xds_address,
            "--admin-address",
            plan.proxy,
            "--admin-port",
            str(plan.admin_port),
            "--outbound-address",
            plan.proxy,
            "--outbound-port",
            str(plan.outbound_port),
            "--inbound-port",
            str(plan.inbound_port),
            "--app-port",
            str(app_port),
        ]
        if delta:
            args.append("--delta")
        result = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneError(
                f"xds-server bootstrap failed ({result.returncode}): {result.stderr.decode()}"
            )
        return result.stdout.decode()

    # What it says.

    async def get_json(self, path: str) -> Any:
        reply = await send(
            Exchange(path=path, authority=f"{self.admin[0]}:{self.admin[1]}", timeout=5), self.admin
        )
        if reply.status != 200:
            raise ControlPlaneError(f"GET {path}: {reply.status or reply.error}")
        return json.loads(reply.body)

    async def snapshot_version(self) -> int:
        version: int = (await self.get_json("/debug/errors"))["snapshot"]
        return version

    async def errors(self) -> list[str]:
        errors: list[str] = (await self.get_json("/debug/errors"))["errors"]
        return errors

    async def proxy_states(self, node_id: str) -> dict[str, str] | None:
        """Per type (`cds`, `rds`...): ACKED, NACKED or SENT; None if not connected."""
        for proxy in await self.get_json("/debug/syncz"):
            if proxy["proxy"] == node_id:
                return {short: t["state"] for short, t in proxy["types"].items()}
        return None


def _short(type_url: str) -> str:
    return type_url.rsplit(".", 1)[-1]
