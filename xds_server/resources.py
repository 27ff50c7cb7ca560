"""Translated resources, by type, before they are versioned into a snapshot.

The translator returns these; `snapshot.py` serializes, versions and checks
them. Values are Envoy API protobuf messages from `xds-protos`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api import contract

Message = Any  # a protobuf message from xds-protos (the package ships no type stubs)


@dataclass
class Resources:
    clusters: dict[str, Message] = field(default_factory=dict)
    endpoints: dict[str, Message] = field(default_factory=dict)
    listeners: dict[str, Message] = field(default_factory=dict)
    routes: dict[str, Message] = field(default_factory=dict)
    secrets: dict[str, Message] = field(default_factory=dict)
    # Problems the translator worked around (e.g. a domain claimed twice): logged, never fatal.
    warnings: list[str] = field(default_factory=list)

    def by_type(self) -> dict[str, dict[str, Message]]:
        return {
            contract.TYPE_CLUSTER: self.clusters,
            contract.TYPE_ENDPOINT: self.endpoints,
            contract.TYPE_LISTENER: self.listeners,
            contract.TYPE_ROUTE: self.routes,
            contract.TYPE_SECRET: self.secrets,
        }

    def merged(self, other: Resources) -> Resources:
        """These resources with `other`'s added; a name in both is an error."""
        out = Resources()
        for mine, theirs, dest in zip(
            self.by_type().values(), other.by_type().values(), out.by_type().values(), strict=True
        ):
            clash = mine.keys() & theirs.keys()
            if clash:
                raise ValueError(f"resource names defined twice: {sorted(clash)}")
            dest.update(mine)
            dest.update(theirs)
        out.warnings = [*self.warnings, *other.warnings]
        return out
