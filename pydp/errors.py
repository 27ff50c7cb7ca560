"""Errors shared across pydp.

`ConfigError` is raised while compiling an xDS resource that pydp cannot
honour (an unsupported match type, filter or cluster type, a bad value). The
xDS client turns it into a NACK whose `error_detail` is the message, and keeps
the last good configuration in force.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A resource pydp cannot honour. The message names the resource and field."""

    def __init__(self, resource: str, field: str, problem: str) -> None:
        self.resource = resource
        self.field = field
        self.problem = problem
        super().__init__(f"{resource}: {field}: {problem}")
