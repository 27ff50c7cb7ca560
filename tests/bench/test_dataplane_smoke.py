"""`python -m bench.dataplane --quick` runs both proxies and prints every figure (never timed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+(?:\.\d+)?"
FIVE = rf" +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$"


def test_quick_run_prints_every_figure_for_both_proxies_and_both_protocols() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.dataplane", "--quick", "--h2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exited {done.returncode}:\n{out}{done.stderr}"
    title = r"^(HTTP/1\.1, wrk|HTTP/2 \(h2c\), h2load) .*, 1 s, 1 worker\(s\)$"
    titles = re.findall(title, out, re.M)
    assert titles == ["HTTP/1.1, wrk", "HTTP/2 (h2c), h2load"]
    header = r"^ +req/s +p50 ms +p99 ms +RSS MiB +CPU us/rq$"
    assert len(re.findall(header, out, re.M)) == 2
    for row in ("envoy", "pydp", "pydp/envoy"):
        assert len(re.findall(rf"^  {re.escape(row)}{FIVE}", out, re.M)) == 2, row
    for tool in ("wrk", "h2load"):
        usage = rf"^  during (envoy|pydp): backend CPU {NUMBER}% of a core, {tool} CPU {NUMBER}%$"
        assert [m.group(1) for m in re.finditer(usage, out, re.M)] == ["envoy", "pydp"], tool
    assert "warning:" not in out
