"""Draining the connections a listener accepted under a configuration that is gone.

Theory of operation. Each listener holds one `Drain` at a time; a connection
joins the one current when it was accepted. When the listener's
configuration changes at the same address, or pydp stops (SIGTERM), that
`Drain` starts, as Envoy drains the connections of a filter chain an update
replaced: every HTTP connection is told to finish (HTTP/1.1: the response in
progress is its last, with `connection: close`, and an idle connection closes
at once; HTTP/2: GOAWAY, the open streams may finish), and every connection
of the drain, TCP proxy ones included, is cancelled at its deadline. New
connections meet the new configuration, and a new `Drain`. Nothing here runs
a task: the deadline is the connections' own cancel scopes'.
"""

from __future__ import annotations

import math
from typing import Protocol

import trio


class Drainable(Protocol):
    def start_drain(self) -> None:
        """Finish what is in progress, take nothing new, then close."""


class Drain:
    __slots__ = ("_members", "_scopes", "deadline", "draining")

    def __init__(self) -> None:
        self.draining = False
        self.deadline = math.inf
        self._members: set[Drainable] = set()
        self._scopes: set[trio.CancelScope] = set()

    def guard(self, scope: trio.CancelScope) -> None:
        """`scope` (a connection's) is cancelled at the drain deadline."""
        self._scopes.add(scope)
        scope.deadline = min(scope.deadline, self.deadline)

    def release(self, scope: trio.CancelScope) -> None:
        self._scopes.discard(scope)

    def join(self, member: Drainable) -> None:
        self._members.add(member)
        if self.draining:
            member.start_drain()

    def leave(self, member: Drainable) -> None:
        self._members.discard(member)

    def start(self, deadline: float) -> None:
        """Tell every member to finish; cancel what is left at `deadline` (or earlier)."""
        self.deadline = min(self.deadline, deadline)
        for scope in self._scopes:
            scope.deadline = min(scope.deadline, self.deadline)
        if self.draining:
            return
        self.draining = True
        for member in list(self._members):
            member.start_drain()

    def __len__(self) -> int:
        """The connections still open under this drain."""
        return len(self._scopes)
