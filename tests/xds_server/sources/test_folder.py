from __future__ import annotations

from pathlib import Path

from xds_server.sources.folder import load_folder, manifest_files


def service(name: str, port: int = 80) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  ports: [{{port: {port}}}]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_yaml_files_recursively_sorted_hidden_skipped(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", "sub/c.yaml", "sub/deeper/d.yaml", "z.json", "notes.txt"]:
        write(tmp_path / name, "")
    for name in [".hidden.yaml", ".git/x.yaml", ".#a.yaml", "sub/.cache/e.yaml"]:
        write(tmp_path / name, "")
    found = [p.relative_to(tmp_path).as_posix() for p in manifest_files(tmp_path)]
    assert found == ["a.yml", "b.yaml", "sub/c.yaml", "sub/deeper/d.yaml"]


def test_folder_load_and_error_file_names(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", service("a"))
    write(tmp_path / "team" / "b.yaml", service("b", 0))
    result = load_folder(tmp_path)
    assert result.model is None
    assert [str(e) for e in result.errors] == [
        f"{tmp_path}/team/b.yaml:5: document 1 (Service default/b): spec.ports[0].port: "
        "must be an integer 1-65535, got 0"
    ]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    result = load_folder(tmp_path / "nope")
    assert result.model is None
    (error,) = result.errors
    assert error.file == str(tmp_path / "nope")
    assert "cannot list" in error.message


def test_empty_folder_loads_an_empty_model_with_a_note(tmp_path: Path) -> None:
    result = load_folder(tmp_path)
    assert result.model is not None
    assert result.model.services == {}
    assert result.notes == (f"{tmp_path}: no *.yaml or *.yml files",)


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    """A read that fails for another reason than absence (here ENOTDIR, which root meets too)."""
    (tmp_path / "plain").write_text("not a directory")
    path = tmp_path / "a.yaml"
    path.symlink_to(tmp_path / "plain" / "inner.yaml")
    result = load_folder(tmp_path)
    assert [str(e) for e in result.errors] == [f"{path}: cannot read: Not a directory"]


def test_configmap_volume_layout(tmp_path: Path) -> None:
    """Files are symlinks into a hidden `..data` symlink to a hidden timestamped directory."""
    write(tmp_path / "..2024_01_01" / "svc.yaml", service("a"))
    (tmp_path / "..data").symlink_to("..2024_01_01")
    (tmp_path / "svc.yaml").symlink_to("..data/svc.yaml")
    result = load_folder(tmp_path)
    assert result.model is not None
    assert list(result.model.services) == [("default", "a")]


def test_directory_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "a.yaml", service("a"))
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)
    result = load_folder(tmp_path)
    assert result.errors == ()
    assert result.model is not None
    assert list(result.model.services) == [("default", "a")]


def test_dangling_symlink_is_left_out(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", service("a"))
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    assert load_folder(tmp_path).ok
