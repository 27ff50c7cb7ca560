"""Records of live worlds, and what `clean_stale` removes (in folders of the test's own)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.pods import records
from conformance.pods.records import Record


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Point the records at private folders; namespaces are files there, removal deletes them."""
    removed: list[str] = []
    for attr in ("RECORDS", "NETNS_DIR", "ETC_NETNS"):
        folder = tmp_path / attr.lower()
        folder.mkdir()
        monkeypatch.setattr(records, attr, folder)

    def remove_namespace(netns: str) -> None:
        removed.append(netns)
        (records.NETNS_DIR / netns).unlink()

    monkeypatch.setattr(records, "remove_namespace", remove_namespace)
    return removed


def world(prefix: str, *pods: str) -> None:
    for name in (f"{prefix}-node", *(f"{prefix}-{p}" for p in pods)):
        (records.NETNS_DIR / name).touch()
    for pod in pods:
        (records.ETC_NETNS / f"{prefix}-{pod}").mkdir()
        (records.ETC_NETNS / f"{prefix}-{pod}" / "hosts").write_text("127.0.0.1 localhost\n")


def dead_record(prefix: str, pid: int) -> None:
    records.RECORDS.joinpath(f"{prefix}.json").write_text(
        json.dumps({"prefix": prefix, "pid": pid, "started": "0"})
    )
    records.RECORDS.joinpath(prefix).mkdir()


def test_a_record_knows_its_owner_alive(folders: list[str]) -> None:
    record = Record.claim(f"xm{os.getpid()}-gw0-1")
    assert record.alive()
    assert json.loads(record.path.read_text())["pid"] == os.getpid()
    assert record.files.is_dir() and record.files.stat().st_mode & 0o777 == 0o755
    assert record.owns(f"{record.prefix}-client")
    assert not record.owns(f"{record.prefix}0-client")
    assert not Record(record.prefix, os.getpid(), "1").alive()  # the pid reused by another


def test_clean_stale_removes_dead_worlds_and_keeps_live_ones(folders: list[str]) -> None:
    live = Record.claim(f"xm{os.getpid()}-gw0-7")
    world(live.prefix, "client")
    world("xm999999-gw1-1", "reviews-1")
    dead_record("xm999999-gw1-1", 999999)
    world("xm42-main-3", "client")  # no record at all: killed before it wrote one? stale
    (records.NETNS_DIR / "someone-else").touch()

    gone = records.clean_stale()

    assert sorted(folders) == [
        "xm42-main-3-client",
        "xm42-main-3-node",
        "xm999999-gw1-1-node",
        "xm999999-gw1-1-reviews-1",
    ]
    assert sorted(os.listdir(records.NETNS_DIR)) == sorted(
        [f"{live.prefix}-client", f"{live.prefix}-node", "someone-else"]
    )
    assert os.listdir(records.ETC_NETNS) == [f"{live.prefix}-client"]
    assert sorted(os.listdir(records.RECORDS)) == [live.prefix, f"{live.prefix}.json"]
    assert "folder " + str(records.ETC_NETNS / "xm42-main-3-client") in gone
    assert records.clean_stale() == []


def test_remove_world_takes_only_its_own_prefix(folders: list[str]) -> None:
    world("xm5-main-1", "a")
    world("xm5-main-10", "a")
    records.remove_world("xm5-main-1")
    assert sorted(os.listdir(records.NETNS_DIR)) == ["xm5-main-10-a", "xm5-main-10-node"]
    assert os.listdir(records.ETC_NETNS) == ["xm5-main-10-a"]
