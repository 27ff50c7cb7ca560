"""Suite-wide settings.

In CI (the `CI` environment variable is set) Hypothesis runs derandomized, so
a run is reproducible and a landing never hinges on a lucky draw; elsewhere it
explores with fresh random examples, which is how new counterexamples are found.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
