"""What the tests of the test bed share: the check that this machine can host pods."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from conformance.pods.bed import Bed, Pod, fetch_command
from conformance.pods.system import unavailable


def require_pods() -> None:
    """Skip where pods cannot be made (not root); as root, a missing program is a failure."""
    if os.geteuid() != 0:
        pytest.skip("pods need root (network namespaces and iptables)")
    reason = unavailable()
    assert reason is None, f"{reason}: tests/run.sh installs them when run as root"


async def fetch(bed: Bed, pod: Pod, url: str, *headers: str) -> dict[str, Any]:
    """Run the plain client in `pod` and return what it printed."""
    done = await bed.exec(pod, fetch_command(url, *headers))
    assert done.stdout, f"no output from the client: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def stat(text: str, name: str) -> int:
    """A counter from an admin `/stats` page (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0
