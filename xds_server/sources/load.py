"""The contents of manifest files into one validated `Model`, all or nothing.

Each file is split into YAML documents; a document is one Kubernetes object
or a `v1 List` of them (what `kubectl get -o yaml` prints). The objects go
into an `Assembly` (`assemble.py`, shared with the Kubernetes source), which
parses each on its own and then runs the checks that need several objects:
the same object defined twice, and EndpointSlice ports naming a port their
Service lacks. Every problem found becomes a `ManifestError` naming the
file, line, document, object and field; if there is any, there is no model.
Objects of kinds the mesh does not read, and EndpointSlices whose Service is
not defined, become notes. Nothing here touches the filesystem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import yaml

from xds_server.model import Model
from xds_server.sources.assemble import Assembly, Finding
from xds_server.sources.documents import Document, line_of, read_documents
from xds_server.sources.fields import FieldPath, render_path, show
from xds_server.sources.parse import describe


@dataclass(frozen=True, slots=True)
class Place:
    file: str
    line: int
    document: int
    item: int | None = None

    def __str__(self) -> str:
        item = "" if self.item is None else f", items[{self.item}]"
        return f"{self.file}:{self.line}: document {self.document}{item}"


@dataclass(frozen=True, slots=True)
class ManifestError:
    """One problem in the manifests and where it is (a record; never raised)."""

    file: str
    message: str
    line: int | None = None
    document: int | None = None
    item: int | None = None
    what: str = ""
    field: str = ""

    @classmethod
    def at(cls, place: Place, what: str, field: str, message: str) -> ManifestError:
        return cls(place.file, message, place.line, place.document, place.item, what, field)

    def __str__(self) -> str:
        parts = [self.file if self.line is None else f"{self.file}:{self.line}"]
        if self.document is not None:
            item = "" if self.item is None else f", items[{self.item}]"
            what = f" ({self.what})" if self.what else ""
            parts.append(f"document {self.document}{item}{what}")
        elif self.what:
            parts.append(self.what)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass(frozen=True)
class LoadResult:
    """A model when the manifests are valid; otherwise every error found."""

    model: Model | None
    errors: tuple[ManifestError, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.model is not None


def load_texts(files: Iterable[tuple[str, str | bytes]]) -> LoadResult:
    """Loads `(file name, content)` pairs, in the order given."""
    loader = _Loader()
    for name, content in files:
        loader.add_file(name, content)
    return loader.finish()


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where an object came from, able to place any of its fields."""

    place: Place
    node: yaml.Node
    prefix: FieldPath

    def at(self, path: FieldPath) -> Place:
        return replace(self.place, line=line_of(self.node, self.prefix + path))

    def __str__(self) -> str:
        return str(self.place)


@dataclass
class _Loader:
    errors: list[ManifestError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    assembly: Assembly[_Origin] = field(init=False)

    def __post_init__(self) -> None:
        self.assembly = Assembly(self._error, self._note)

    def _error(self, finding: Finding[_Origin]) -> None:
        place, field = finding.origin.at(finding.path), render_path(finding.path)
        self.errors.append(ManifestError.at(place, finding.what, field, finding.message))

    def _note(self, finding: Finding[_Origin]) -> None:
        self.notes.append(f"{finding.origin}: {finding.what}: {finding.message}")

    def add_file(self, name: str, content: str | bytes) -> None:
        text = content if isinstance(content, str) else _decode(name, content)
        if isinstance(text, ManifestError):
            self.errors.append(text)
            return
        documents, problems = read_documents(text)
        by_number = {d.number: d.data for d in documents}
        for problem in problems:
            place = Place(name, problem.line, problem.document)
            what = describe(by_number.get(problem.document))
            self.errors.append(ManifestError.at(place, what, "", problem.message))
        for document in documents:
            for prefix, item, obj in self._objects_of(name, document):
                place = Place(name, line_of(document.node, prefix), document.number, item)
                self.assembly.add_object(_Origin(place, document.node, prefix), obj)

    def _objects_of(
        self, name: str, document: Document
    ) -> list[tuple[FieldPath, int | None, object]]:
        data = document.data
        if not (isinstance(data, Mapping) and data.get("kind") == "List"):
            return [((), None, data)]
        items = data.get("items")
        if isinstance(items, list):
            return [(("items", i), i, obj) for i, obj in enumerate(items)]
        place = Place(name, line_of(document.node, ("items",)), document.number)
        message = f"must be a list of objects, got {show(items)}"
        self.errors.append(ManifestError.at(place, "List", "items", message))
        return []

    def finish(self) -> LoadResult:
        model = self.assembly.finish()
        if self.errors:
            return LoadResult(None, tuple(self.errors), tuple(self.notes))
        return LoadResult(model, (), tuple(self.notes))


def _decode(name: str, content: bytes) -> str | ManifestError:
    try:
        return content.decode()
    except UnicodeDecodeError as e:
        line = content.count(b"\n", 0, e.start) + 1
        return ManifestError(name, f"not UTF-8 text: {e.reason} at byte {e.start}", line)
