"""The manifests folder on disk: which files count, and reading them.

Every `*.yaml` and `*.yml` file under the folder counts, recursively, in
sorted order. Names starting with a dot are skipped, files and directories
alike: editors' temporary files, `.git`, and the `..data` directories of a
Kubernetes ConfigMap volume, whose visible files are symlinks into `..data`
and are followed. A file that vanishes between listing and reading is left
out: it was deleted, and the watcher will reload again.
"""

from __future__ import annotations

import os
from pathlib import Path

from xds_server.sources.load import LoadResult, ManifestError, load_texts

SUFFIXES = (".yaml", ".yml")


def manifest_files(folder: Path, errors: list[ManifestError] | None = None) -> list[Path]:
    """The manifest files under `folder`; unreadable directories go to `errors`."""
    found: list[Path] = []
    seen: set[str] = set()

    def failed(e: OSError) -> None:
        if errors is not None:
            errors.append(ManifestError(e.filename or str(folder), f"cannot list: {e.strerror}"))

    for root, dirs, files in os.walk(folder, onerror=failed, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += (Path(root, f) for f in files if not f.startswith(".") and f.endswith(SUFFIXES))
    return sorted(found)


def load_folder(folder: str | Path) -> LoadResult:
    """Loads every manifest file under `folder` into one Model, or reports every error."""
    folder = Path(folder)
    errors: list[ManifestError] = []
    contents: list[tuple[str, bytes]] = []
    for path in manifest_files(folder, errors):
        try:
            contents.append((str(path), path.read_bytes()))
        except FileNotFoundError:
            continue
        except OSError as e:
            errors.append(ManifestError(str(path), f"cannot read: {e.strerror}"))
    result = load_texts(contents)
    notes = result.notes if contents else (f"{folder}: no *.yaml or *.yml files", *result.notes)
    if errors:
        return LoadResult(None, (*errors, *result.errors), notes)
    return LoadResult(result.model, result.errors, notes)
