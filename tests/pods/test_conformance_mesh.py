"""The zero-trust scenarios (mTLS, peer modes, authorization, rotation) as pods, on both planes.

Every scenario that turns the mesh's CA on runs in pods mode on Envoy and on
pydp, and `mtls-between-sidecars` also across them (Envoy calling pydp, pydp
calling Envoy); every run must pass and agree with Envoy's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conformance import load
from conformance.results import PASS
from tests.harness.reports import failed_logs
from tests.pods.support import require_pods

ZERO_TRUST = {
    "mtls-between-sidecars",
    "strict-refuses-plaintext",
    "permissive-accepts-both",
    "peer-mode-change",
    "foreign-trust-domain-refused",
    "authz-by-principal",
    "authz-by-namespace",
    "authz-by-method-and-path",
    "cert-rotation-under-traffic",
}
XFCC = "x-forwarded-client-cert"
CALLER = "URI=spiffe://cluster.local/ns/default/sa/frontend"


def run(names: list[str], out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = ["run", "--pods", "--dataplane", "envoy", "--dataplane", "pydp"]
    args += ["--jobs", "2", "--json", str(out), "--scenario", *names]
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        check=False,
    )


def step(run: dict[str, Any], label: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in run["steps"] if s["label"] == label)
    return found


def test_zero_trust_scenarios_pass_on_envoy_and_pydp_and_across(tmp_path: Path) -> None:
    require_pods()
    names = sorted(s.name for s in load.load_all() if s.ca is not None)
    assert set(names) >= ZERO_TRUST
    out = tmp_path / "result.json"
    done = run(names, out, tmp_path)
    result = {s["name"]: s for s in json.loads(out.read_text())["scenarios"]}
    assert sorted(result) == names, done.stdout + done.stderr
    envoy = {name: s["outcomes"]["envoy"] for name, s in result.items()}
    assert envoy == dict.fromkeys(names, PASS), done.stdout + failed_logs(out)  # Envoy holds
    assert done.returncode == 0, done.stdout + done.stderr + failed_logs(out)
    for name, scenario in result.items():
        assert set(scenario["outcomes"].values()) == {PASS}, (name, scenario["outcomes"])
        assert scenario["differences"] == [], name

    mtls = result["mtls-between-sidecars"]
    assert sorted(mtls["outcomes"]) == ["envoy", "envoy->pydp", "pydp", "pydp->envoy"]
    for plane, each in mtls["runs"].items():
        seen = step(each, "the workload learns the caller's SPIFFE ID")["observation"]
        assert CALLER in seen["upstream"]["headers"][XFCC][0], plane
    for plane, each in result["cert-rotation-under-traffic"]["runs"].items():
        renewed = step(each, "every sidecar ACKs three renewed certificates")["observation"]
        assert renewed == {"renewed": {"conformance": 3, "late": 3, "reviews-1": 3}}, plane
        mesh = step(each, "traffic through the mesh")["observation"]
        assert mesh["statuses"] == ["200"] and mesh["requests"] > 50, plane
    for plane, each in result["strict-refuses-plaintext"]["runs"].items():
        refused = step(each, "plaintext from a pod without a sidecar is refused")["observation"]
        assert refused["status"] is None and refused["error"], plane


def test_a_peer_mode_change_settles_at_once_over_delta_too(tmp_path: Path) -> None:
    """Over Delta, Envoy never asks again for the endpoints of a cluster it warms (R8)."""
    require_pods()
    out = tmp_path / "result.json"
    done = run(["peer-mode-change", "--xds", "delta"], out, tmp_path)
    [scenario] = json.loads(out.read_text())["scenarios"]
    assert scenario["outcomes"] == {"envoy": PASS, "pydp": PASS}, done.stdout + done.stderr
