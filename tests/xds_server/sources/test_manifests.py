"""ManifestSource state, and the watcher against a real folder.

The watch tests run the asyncio watcher with `asyncio.run` from plain test
functions (pytest runs `async def` tests under trio here). They wait for
what they expect with a deadline and never sleep for a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from xds_server.model import Model
from xds_server.sources.load import load_texts
from xds_server.sources.manifests import ManifestSource

DEADLINE = 20.0


def service(name: str, port: int = 80, namespace: str = "default") -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: {port}}}]
"""


def ports(model: Model | None) -> dict[str, int]:
    assert model is not None
    return {name: s.ports[0].port for (_, name), s in model.services.items()}


def write_atomically(path: Path, text: str) -> None:
    """As editors do: a temporary file renamed over the original."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


# ManifestSource without the watcher


def test_apply_keeps_last_good_model_and_reports_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xds_server.sources")
    source = ManifestSource("m")
    good = load_texts([("m/a.yaml", service("a"))])
    assert source.apply(good) == good.model
    assert source.last_good == good.model
    assert source.apply(load_texts([("m/a.yaml", service("a"))])) is None

    bad = load_texts([("m/a.yaml", service("a", 0))])
    assert source.apply(bad) is None
    assert source.last_good == good.model
    assert source.errors == [
        "m/a.yaml:5: document 1 (Service default/a): spec.ports[0].port: "
        "must be an integer 1-65535, got 0"
    ]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged[0].getMessage() == "manifests in m rejected (keeping the last good model):"
    assert logged[1].getMessage() == source.errors[0]
    assert all(r.name == "xds_server.sources" for r in logged)

    caplog.clear()
    assert source.apply(bad) is None
    assert not [r for r in caplog.records if r.levelno == logging.ERROR], "logged only once"

    fixed = load_texts([("m/a.yaml", service("a", 81))])
    assert source.apply(fixed) == fixed.model
    assert source.errors == []
    assert ports(source.last_good) == {"a": 81}


def test_notes_are_kept_and_logged_when_they_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xds_server.sources")
    source = ManifestSource("m")
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    result = load_texts([("m/a.yaml", config)])
    source.apply(result)
    source.apply(result)
    assert source.notes == list(result.notes)
    assert [r.getMessage() for r in caplog.records].count(result.notes[0]) == 1


def test_reload_reads_the_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(service("a"))
    source = ManifestSource(tmp_path)
    assert ports(source.reload()) == {"a": 80}
    assert source.reload() is None


# The watcher


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _next_model(models: asyncio.Queue[Model], want: dict[str, int]) -> None:
    """Waits for a model with the wanted Service ports; intermediate ones may come first."""
    deadline = time.monotonic() + DEADLINE
    seen: list[dict[str, int]] = []
    while not seen or seen[-1] != want:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no model with {want}; saw {seen}"
        try:
            seen.append(ports(await asyncio.wait_for(models.get(), remaining)))
        except TimeoutError:
            pytest.fail(f"no model with {want}; saw {seen}")


def _run_watching(
    folder: Path, scenario: Callable[[ManifestSource, asyncio.Queue[Model]], Awaitable[None]]
) -> None:
    async def main() -> None:
        source = ManifestSource(folder)
        models: asyncio.Queue[Model] = asyncio.Queue()

        async def on_model(model: Model) -> None:
            await models.put(model)

        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(source.watch(on_model, ready=ready, stop=stop, tick_ms=50))
        try:
            await asyncio.wait_for(ready.wait(), DEADLINE)
            await scenario(source, models)
        finally:
            stop.set()
            await asyncio.wait_for(task, DEADLINE)

    asyncio.run(main())


def test_watch_follows_edits_additions_renames_and_deletions(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(service("a"))

    async def scenario(source: ManifestSource, models: asyncio.Queue[Model]) -> None:
        await _next_model(models, {"a": 80})
        (tmp_path / "a.yaml").write_text(service("a", 81))
        await _next_model(models, {"a": 81})
        write_atomically(tmp_path / "a.yaml", service("a", 82))
        await _next_model(models, {"a": 82})
        (tmp_path / "team").mkdir()
        write_atomically(tmp_path / "team" / "b.yaml", service("b"))
        await _next_model(models, {"a": 82, "b": 80})
        os.rename(tmp_path / "team" / "b.yaml", tmp_path / "team" / "b.yaml.off")
        await _next_model(models, {"a": 82})
        (tmp_path / "a.yaml").unlink()
        await _next_model(models, {})
        assert source.errors == []

    _run_watching(tmp_path, scenario)


def test_watch_keeps_last_good_model_on_a_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="xds_server.sources")
    (tmp_path / "a.yaml").write_text(service("a"))
    broken = tmp_path / "b.yaml"

    async def scenario(source: ManifestSource, models: asyncio.Queue[Model]) -> None:
        await _next_model(models, {"a": 80})
        good = source.last_good
        write_atomically(broken, service("b").replace("port: 80", "port: abc"))
        await _until(lambda: bool(source.errors), "the broken file to be reported")
        assert source.last_good is good
        assert models.empty()
        expected = (
            f"{broken}:5: document 1 (Service default/b): spec.ports[0].port: "
            "must be an integer 1-65535, got 'abc'"
        )
        assert source.errors == [expected]
        logged = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert expected in [r.getMessage() for r in logged]
        assert all(r.name == "xds_server.sources" for r in logged)
        write_atomically(broken, service("b"))
        await _next_model(models, {"a": 80, "b": 80})
        assert source.errors == []

    _run_watching(tmp_path, scenario)


def test_watch_follows_a_configmap_volume_update(tmp_path: Path) -> None:
    first = tmp_path / "..2024_01_01"
    first.mkdir()
    (first / "svc.yaml").write_text(service("a"))
    (tmp_path / "..data").symlink_to(first.name)
    (tmp_path / "svc.yaml").symlink_to("..data/svc.yaml")

    async def scenario(source: ManifestSource, models: asyncio.Queue[Model]) -> None:
        await _next_model(models, {"a": 80})
        second = tmp_path / "..2024_01_02"
        second.mkdir()
        (second / "svc.yaml").write_text(service("a", 81))
        (tmp_path / "..data_tmp").symlink_to(second.name)
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await _next_model(models, {"a": 81})

    _run_watching(tmp_path, scenario)


def test_watch_accepts_a_plain_callback_and_stops_on_cancel(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(service("a"))

    async def main() -> None:
        seen: list[Model] = []
        ready = asyncio.Event()
        source = ManifestSource(tmp_path)
        task = asyncio.create_task(source.watch(seen.append, ready=ready, tick_ms=50))
        await asyncio.wait_for(ready.wait(), DEADLINE)
        assert [ports(m) for m in seen] == [{"a": 80}]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, DEADLINE)

    asyncio.run(main())
