"""The data planes the suite can drive. Adding one is one entry in `REGISTRY`.

Each is started from the bootstrap file that `xds-server bootstrap` prints
and is ready when `GET <ready_path>` on its admin port answers 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.procs import executable


@dataclass(frozen=True, slots=True)
class DataPlane:
    name: str
    program: str
    arguments: tuple[str, ...]  # "{config}" stands for the bootstrap file
    ready_path: str = "/ready"

    def command(self, config: Path) -> list[str]:
        """The command line, or raises LookupError if the program is not installed."""
        found = executable(self.program)
        if found is None:
            raise LookupError(f"data plane {self.name}: {self.program!r} is not installed")
        return [found, *(a.replace("{config}", str(config)) for a in self.arguments)]


REGISTRY: dict[str, DataPlane] = {
    "envoy": DataPlane(
        "envoy",
        "envoy",
        (
            "-c",
            "{config}",
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
            "--log-level",
            "warn",
            "--drain-time-s",
            "1",
        ),
    ),
    "pydp": DataPlane("pydp", "pydp", ("run", "-c", "{config}")),
}
REFERENCE = "envoy"
