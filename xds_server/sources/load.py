"""The contents of manifest files into one validated `Model`, all or nothing.

Each file is split into YAML documents; a document is one Kubernetes object
or a `v1 List` of them (what `kubectl get -o yaml` prints). Each object is
parsed on its own (`parse.py`), then the checks that need several objects
run: the same object defined twice, and EndpointSlice ports naming a port
their Service lacks. Every problem found becomes a `ManifestError` naming the
file, line, document, object and field; if there is any, there is no model.
Objects of kinds the mesh does not read, and EndpointSlices whose Service is
not defined, become notes. Nothing here touches the filesystem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import yaml

from xds_server.model import EndpointSlice, Model, ObjectKey, Pod, Service
from xds_server.sources.documents import Document, line_of, read_documents
from xds_server.sources.fields import FieldPath, render_path, show
from xds_server.sources.parse import (
    InvalidObject,
    Parsed,
    Skipped,
    check_slice_ports,
    describe,
    parse_object,
)


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


@dataclass
class _Loader:
    errors: list[ManifestError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    objects: dict[ObjectKey, tuple[Parsed, _Origin]] = field(default_factory=dict)

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
                self._add_object(_Origin(place, document.node, prefix), obj)

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

    def _add_object(self, origin: _Origin, obj: object) -> None:
        try:
            parsed = parse_object(obj)
        except InvalidObject as e:
            for problem in e.problems:
                place, field = origin.at(problem.path), render_path(problem.path)
                self.errors.append(ManifestError.at(place, e.what, field, problem.message))
            return
        if isinstance(parsed, Skipped):
            self.notes.append(f"{origin.place}: {parsed}")
            return
        first = self.objects.get(parsed.key)
        if first is None:
            self.objects[parsed.key] = (parsed, origin)
            return
        message = f"defined twice, first at {first[1].place}"
        self.errors.append(ManifestError.at(origin.place, str(parsed.key), "", message))

    def finish(self) -> LoadResult:
        services = {
            (o.namespace, o.name): o for o, _ in self.objects.values() if isinstance(o, Service)
        }
        slices = [(o, at) for o, at in self.objects.values() if isinstance(o, EndpointSlice)]
        for endpoint_slice, origin in slices:
            service = services.get((endpoint_slice.namespace, endpoint_slice.service_name))
            if service is None:
                missing = f"Service {endpoint_slice.namespace}/{endpoint_slice.service_name}"
                self.notes.append(f"{origin.place}: {endpoint_slice.key}: {missing} is not defined")
                continue
            for problem in check_slice_ports(endpoint_slice, service):
                place, field = origin.at(problem.path), render_path(problem.path)
                what = str(endpoint_slice.key)
                self.errors.append(ManifestError.at(place, what, field, problem.message))
        if self.errors:
            return LoadResult(None, tuple(self.errors), tuple(self.notes))
        model = Model.build(
            services.values(),
            (s for s, _ in slices),
            (o for o, _ in self.objects.values() if isinstance(o, Pod)),
        )
        return LoadResult(model, (), tuple(self.notes))


def _decode(name: str, content: bytes) -> str | ManifestError:
    try:
        return content.decode()
    except UnicodeDecodeError as e:
        line = content.count(b"\n", 0, e.start) + 1
        return ManifestError(name, f"not UTF-8 text: {e.reason} at byte {e.start}", line)
