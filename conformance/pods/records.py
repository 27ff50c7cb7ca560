"""What live worlds own, and the removal of worlds whose process died.

A world writes its record (`/run/xdsmesh-pods/<prefix>.json`: owner pid and
the owner's start time, so a reused pid is not mistaken for the owner)
before it makes anything, and removes it last. Everything a world makes is
named with its prefix: namespaces in `/run/netns`, folders in `/etc/netns`,
the sidecars' files in `/run/xdsmesh-pods/<prefix>/`. So a name of the form
`xm<pid>-...` that no live record claims is stale: `clean_stale` lists names
first and records second, so that a world being made, whose record is
already written, is never taken for a dead one.

Removing a namespace first kills what still runs in it (`ip netns pids`),
since processes keep a namespace alive after its name is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.pods import names
from conformance.pods.system import run

RECORDS = Path("/run/xdsmesh-pods")
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")


def start_time(pid: int) -> str | None:
    """The kernel's start time of process `pid` (field 22 of its stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


@dataclass(frozen=True, slots=True)
class Record:
    prefix: str
    pid: int
    started: str

    @property
    def path(self) -> Path:
        return RECORDS / f"{self.prefix}.json"

    @property
    def files(self) -> Path:
        """A folder of the world that every user may read (the sidecars' bootstraps)."""
        return RECORDS / self.prefix

    @classmethod
    def claim(cls, prefix: str) -> Record:
        """Write the record of a new world of this process (before anything is made)."""
        pid = os.getpid()
        started = start_time(pid)
        assert started is not None
        record = cls(prefix, pid, started)
        RECORDS.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = record.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"prefix": prefix, "pid": pid, "started": started}))
        tmp.replace(record.path)
        record.files.mkdir(mode=0o755, exist_ok=True)
        record.files.chmod(0o755)
        return record

    def alive(self) -> bool:
        return start_time(self.pid) == self.started

    def owns(self, name: str) -> bool:
        return name == self.prefix or name.startswith(self.prefix + "-")


def load_records() -> list[Record]:
    out = []
    for path in sorted(RECORDS.glob("*.json")) if RECORDS.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            out.append(Record(str(doc["prefix"]), int(doc["pid"]), str(doc["started"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def world_names(folder: Path) -> list[str]:
    """The names in `folder` that are worlds' names."""
    try:
        return sorted(n for n in os.listdir(folder) if names.owner(n) is not None)
    except FileNotFoundError:
        return []


def remove_namespace(netns: str) -> None:
    """Kill what runs in `netns`, then delete it; a missing namespace is no error."""
    for _ in range(50):
        pids = [int(p) for p in run(["ip", "netns", "pids", netns], may_fail=True).split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    run(["ip", "netns", "del", netns], may_fail=True)


def remove_world(prefix: str) -> list[str]:
    """Remove every namespace and folder named with `prefix`, then its record; what went."""
    probe = Record(prefix, 0, "")
    gone = []
    for netns in world_names(NETNS_DIR):
        if probe.owns(netns):
            remove_namespace(netns)
            gone.append(f"namespace {netns}")
    for folder in (ETC_NETNS, RECORDS):
        for name in world_names(folder):
            path = folder / name
            if probe.owns(name) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                gone.append(f"folder {path}")
    with contextlib.suppress(FileNotFoundError):
        probe.path.unlink()
    return gone


def clean_stale() -> list[str]:
    """Remove every world whose owner is gone; what was removed."""
    found = set(world_names(NETNS_DIR)) | set(world_names(ETC_NETNS))
    found |= {n for n in world_names(RECORDS) if (RECORDS / n).is_dir()}
    records = load_records()
    gone = []
    for record in records:
        if not record.alive():
            gone += remove_world(record.prefix)
    for name in sorted(found):
        if not any(r.owns(name) for r in records):
            gone += remove_world(name)
    return gone
