"""`python -m bench.mesh_hop --quick` runs both pairs plaintext and mTLS and prints every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+(?:\.\d+)?"
FIVE = rf" +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$"


def test_quick_run_measures_both_planes_plaintext_and_over_mtls() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.mesh_hop", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exited {done.returncode}:\n{out}{done.stderr}"
    assert re.search(r"^HTTP/1\.1, wrk .*, 1 s, two sidecars", out, re.M), out
    rows = ["envoy plain", "envoy mtls", "pydp plain", "pydp mtls"]
    rows += ["envoy m/p", "pydp m/p", "p/e plain", "p/e mtls"]
    for row in rows:
        assert re.search(rf"^  {re.escape(row)}{FIVE}", out, re.M), f"{row}:\n{out}"
    # The mTLS rows are mTLS: each server sidecar counted handshakes (else a warning).
    assert "warning:" not in out, out
