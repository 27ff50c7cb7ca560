"""Parsed objects from any source into one `Model`, with every problem found.

Both sources build their model here: the manifests folder (where an object's
origin is a file, line and document) and the Kubernetes API (where it is the
object as the API served it). An `Assembly` is generic in that origin: it
parses each object with `parse_object`, refuses a second object with the same
kind, namespace and name, and checks what needs several objects (EndpointSlice
ports that name no port of their Service). Each problem is handed to the
source as a `Finding` naming the origin, the object and the field, and the
source decides what a problem means: the folder refuses the whole load, the
Kubernetes source leaves the bad object out (or keeps its last good version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from xds_server.model import EndpointSlice, MeshPolicy, Model, ObjectKey, Pod, Service
from xds_server.sources.fields import FieldPath
from xds_server.sources.parse import (
    InvalidObject,
    Parsed,
    Skipped,
    check_slice_ports,
    parse_object,
)

OriginT = TypeVar("OriginT")

Outcome = Parsed | Skipped | InvalidObject


@dataclass(frozen=True, slots=True)
class Finding(Generic[OriginT]):
    """One problem (or note) about one object: where it came from, which object, which field."""

    origin: OriginT
    what: str
    message: str
    path: FieldPath = ()


def parse_outcome(obj: object) -> Outcome:
    """`parse_object`, with an invalid object as a value instead of an exception."""
    try:
        return parse_object(obj)
    except InvalidObject as e:
        return e


@dataclass
class Assembly(Generic[OriginT]):
    """Collects objects and reports each problem as it is found.

    `on_error` receives what makes a model wrong; `on_note` what is worth
    saying but harmless (skipped kinds, a slice whose Service is not there).
    The origin's `str()` names it in the message about a duplicate.
    """

    on_error: Callable[[Finding[OriginT]], None]
    on_note: Callable[[Finding[OriginT]], None]
    objects: dict[ObjectKey, tuple[Parsed, OriginT]] = field(default_factory=dict)

    def add_object(self, origin: OriginT, obj: object) -> bool:
        """Parses and adds `obj`; False if it was refused."""
        return self.add(origin, parse_outcome(obj))

    def add(self, origin: OriginT, outcome: Outcome) -> bool:
        """Adds an object already parsed; False if it was refused."""
        if isinstance(outcome, InvalidObject):
            for problem in outcome.problems:
                self.on_error(Finding(origin, outcome.what, problem.message, problem.path))
            return False
        if isinstance(outcome, Skipped):
            self.on_note(Finding(origin, outcome.what, f"skipped ({outcome.reason})"))
            return True
        first = self.objects.get(outcome.key)
        if first is not None:
            self.on_error(Finding(origin, str(outcome.key), f"defined twice, first at {first[1]}"))
            return False
        self.objects[outcome.key] = (outcome, origin)
        return True

    def finish(self) -> Model:
        """Runs the checks across objects and returns the model of every object added."""
        services = {
            (o.namespace, o.name): o for o, _ in self.objects.values() if isinstance(o, Service)
        }
        slices = [(o, at) for o, at in self.objects.values() if isinstance(o, EndpointSlice)]
        for endpoint_slice, origin in slices:
            what = str(endpoint_slice.key)
            service = services.get((endpoint_slice.namespace, endpoint_slice.service_name))
            if service is None:
                missing = f"Service {endpoint_slice.namespace}/{endpoint_slice.service_name}"
                self.on_note(Finding(origin, what, f"{missing} is not defined"))
                continue
            for problem in check_slice_ports(endpoint_slice, service):
                self.on_error(Finding(origin, what, problem.message, problem.path))
        return Model.build(
            services.values(),
            (s for s, _ in slices),
            (o for o, _ in self.objects.values() if isinstance(o, Pod)),
            (o for o, _ in self.objects.values() if isinstance(o, MeshPolicy)),
        )
