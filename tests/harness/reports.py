"""What a conformance run that failed inside a test left behind, for the failure message."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.results import PASS


def failed_logs(out: Path) -> str:
    """The processes' logs of every run that did not pass, from a `--json` result."""
    if not out.exists():
        return ""
    text = []
    for scenario in json.loads(out.read_text())["scenarios"]:
        for plane, run in scenario["runs"].items():
            if run["outcome"] != PASS:
                for name, log in run["logs"].items():
                    text.append(f"\n--- {scenario['name']} on {plane}: {name} ---\n{log}")
    return "".join(text)
