"""The cache of one watched collection: the objects as the API last showed them."""

from __future__ import annotations

from dataclasses import dataclass, field

from xds_server.sources.kube.reflector import Delta, RawObject, Replace, Upsert, object_key
from xds_server.sources.kube.resources import Resource


@dataclass
class Store:
    resource: Resource
    objects: dict[tuple[str, str], RawObject] = field(default_factory=dict)
    synced: bool = False  # a complete list has come in

    def apply(self, delta: Delta) -> bool:
        """Takes in one delta; True if the objects changed."""
        if isinstance(delta, Replace):
            fresh = {object_key(o): o for o in delta.objects}
            changed = not self.synced or fresh != self.objects
            self.objects, self.synced = fresh, True
            return changed
        key = object_key(delta.obj)
        if isinstance(delta, Upsert):
            if self.objects.get(key) == delta.obj:
                return False
            self.objects[key] = delta.obj
            return True
        return self.objects.pop(key, None) is not None
