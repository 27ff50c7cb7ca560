"""Header mutations: `*_headers_to_add` / `*_headers_to_remove` at every level of a route config.

Theory of operation: each level (route configuration, virtual host, route,
weighted cluster) compiles to one `HeaderMutation`, the counterpart of Envoy's
`HeaderParser`. Applying one mutation to a header list:

1. removes every header named in `remove`;
2. formats every value to add against the list as it is *after* the removals
   and *before* any addition of this same mutation, dropping empty values
   unless `keep_empty_value`;
3. sorts each value by its append action, judged against that same list:
   APPEND_IF_EXISTS_OR_ADD always adds, ADD_IF_ABSENT adds when the name is
   absent, OVERWRITE_IF_EXISTS overwrites when present, OVERWRITE_IF_EXISTS_OR_ADD
   always overwrites;
4. applies all overwrites (drop every value of the name, append the new one),
   then all additions.

Decisions carry mutations in the order Envoy evaluates them; a later mutation
wins when two overwrite the same header.

Values are substitution format strings (`pydp.router.format`). `%REQ(...)%`
reads the request headers as they are when the mutation runs:
request mutations read the very list they mutate (so a level sees what the
levels before it added, as Envoy evaluates its parsers in turn over one
header map), response mutations read the request as it was sent upstream
(Envoy's router mutates the downstream request headers in place).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields
from pydp.router.format import FormatContext, FormatPart, compile_format, render

HeaderList = list[tuple[bytes, bytes]]


class AppendAction(enum.IntEnum):
    APPEND_IF_EXISTS_OR_ADD = 0
    ADD_IF_ABSENT = 1
    OVERWRITE_IF_EXISTS_OR_ADD = 2
    OVERWRITE_IF_EXISTS = 3


@dataclass(frozen=True, slots=True)
class HeaderToAdd:
    name: bytes
    value: tuple[FormatPart, ...]
    action: AppendAction
    keep_empty_value: bool


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    """One level's headers to remove and to add (Envoy's `HeaderParser`)."""

    remove: tuple[bytes, ...] = ()
    add: tuple[HeaderToAdd, ...] = ()

    def apply(self, headers: HeaderList, ctx: FormatContext) -> None:
        """Apply in place to `headers`."""
        if self.remove:
            gone = set(self.remove)
            headers[:] = [h for h in headers if h[0] not in gone]
        if not self.add:
            return
        present = {name for name, _ in headers}
        appends: HeaderList = []
        overwrites: HeaderList = []
        for entry in self.add:
            value = render(entry.value, ctx)
            if not value and not entry.keep_empty_value:
                continue
            action = entry.action
            if action == AppendAction.APPEND_IF_EXISTS_OR_ADD:
                appends.append((entry.name, value))
            elif action == AppendAction.ADD_IF_ABSENT:
                if entry.name not in present:
                    appends.append((entry.name, value))
            elif action == AppendAction.OVERWRITE_IF_EXISTS_OR_ADD or entry.name in present:
                overwrites.append((entry.name, value))
        for name, value in overwrites:
            headers[:] = [h for h in headers if h[0] != name]
            headers.append((name, value))
        headers.extend(appends)


NO_MUTATION = HeaderMutation()


def _modifiable_name(key: str, where: Where, verb: str) -> bytes:
    if not key:
        raise where.error("header name must not be empty")
    if len(key) > 16384:
        raise where.error("header name is too long")
    if any(c in key for c in "\0\r\n"):
        raise where.error("header name contains a forbidden character")
    if key.startswith(":") or key.lower() == "host":
        raise where.error(f":-prefixed or host headers may not be {verb}")
    return key.encode("utf-8").lower()


def _compile_add(option: Any, where: Where) -> HeaderToAdd:
    check_fields(option, where, ("header", "append", "append_action", "keep_empty_value"))
    if not option.HasField("header"):
        raise where.at("header").error("value is required")
    header = option.header
    check_fields(header, where.at("header"), ("key", "value"))
    name = _modifiable_name(header.key, where.at("header").at("key"), "modified")
    if len(header.value) > 16384 or any(c in header.value for c in "\0\r\n"):
        raise where.at("header").at("value").error("invalid header value")
    action = AppendAction(option.append_action)
    if option.HasField("append"):
        if action != AppendAction.APPEND_IF_EXISTS_OR_ADD:
            raise where.error("Both append and append_action are set and it's not allowed")
        if not option.append.value:
            action = AppendAction.OVERWRITE_IF_EXISTS_OR_ADD
    value = compile_format(header.value, where.at("header").at("value"))
    return HeaderToAdd(name, value, action, bool(option.keep_empty_value))


def compile_mutation(to_add: Any, to_remove: Any, where: Where, side: str) -> HeaderMutation:
    """Compile `<side>_headers_to_add` / `<side>_headers_to_remove` of one message."""
    add_field, remove_field = f"{side}_headers_to_add", f"{side}_headers_to_remove"
    add = tuple(_compile_add(o, where.at(add_field, i)) for i, o in enumerate(to_add))
    remove = tuple(
        _modifiable_name(k, where.at(remove_field, i), "removed") for i, k in enumerate(to_remove)
    )
    if not add and not remove:
        return NO_MUTATION
    return HeaderMutation(remove, add)


def apply_mutations(
    headers: Sequence[tuple[bytes, bytes]],
    mutations: Sequence[HeaderMutation],
    ctx: FormatContext | None = None,
) -> HeaderList:
    """A new header list: `headers` with each mutation applied in order."""
    out = list(headers)
    context = ctx if ctx is not None else FormatContext()
    for mutation in mutations:
        mutation.apply(out, context)
    return out
