"""Virtual host selection by `:authority`, in Envoy's order.

1. exact domain; 2. the longest suffix wildcard (`*.foo.com`, `*-bar.foo.com`)
whose suffix is strictly shorter than the host; 3. the longest prefix
wildcard (`foo.*`), same rule; 4. the `*` virtual host. Domains and hosts
compare with ASCII letters folded. The port is part of the host unless
`ignore_port_in_host_matching` is set, when everything from the last ":"
(outside an IPv6 "[...]") is dropped first. Stripping the port from the
request itself (`strip_any_host_port`, `strip_matching_host_port`) is the
connection manager's job and happens before routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydp.router._proto import Where

V = TypeVar("V")


def port_start(host: bytes) -> int:
    """Index of the ":" that starts the port in `host`, or -1 (Envoy's `getPortStart`)."""
    colon = host.rfind(b":")
    if colon < 0:
        return -1
    bracket = host.rfind(b"]")
    if bracket < 0 or bracket < colon:
        return colon
    return -1


@dataclass(slots=True)
class VirtualHostTable(Generic[V]):
    route_config_name: str
    ignore_port: bool = False
    exact: dict[bytes, V] = field(default_factory=dict)
    suffixes: dict[int, dict[bytes, V]] = field(default_factory=dict)
    prefixes: dict[int, dict[bytes, V]] = field(default_factory=dict)
    default: V | None = None
    _suffix_order: list[tuple[int, dict[bytes, V]]] = field(default_factory=list)
    _prefix_order: list[tuple[int, dict[bytes, V]]] = field(default_factory=list)

    def add(self, domains: Sequence[str], vhost: V, where: Where) -> None:
        if not domains:
            raise where.at("domains").error("value must contain at least 1 item(s)")
        for i, domain_text in enumerate(domains):
            if any(c in domain_text for c in "\0\r\n"):
                raise where.at("domains", i).error("invalid domain")
            domain = domain_text.encode("utf-8").lower()
            if domain == b"*":
                if self.default is not None:
                    raise where.at("domains", i).error(
                        f"Only a single wildcard domain is permitted in route "
                        f"{self.route_config_name}"
                    )
                self.default = vhost
                continue
            if domain.startswith(b"*"):
                table, key = self.suffixes.setdefault(len(domain) - 1, {}), domain[1:]
            elif domain.endswith(b"*"):
                table, key = self.prefixes.setdefault(len(domain) - 1, {}), domain[:-1]
            else:
                table, key = self.exact, domain
            if key in table:
                raise where.at("domains", i).error(
                    f"Only unique values for domains are permitted. Duplicate entry of domain "
                    f"{domain.decode('utf-8')} in route {self.route_config_name}"
                )
            table[key] = vhost
        self._suffix_order = sorted(self.suffixes.items(), reverse=True)
        self._prefix_order = sorted(self.prefixes.items(), reverse=True)

    def find(self, authority: bytes | None) -> V | None:
        if not self.exact and not self.suffixes and not self.prefixes:
            return self.default
        if authority is None:
            return None
        host = authority
        if self.ignore_port:
            cut = port_start(host)
            if cut >= 0:
                host = host[:cut]
        host = host.lower()
        found = self.exact.get(host)
        if found is not None:
            return found
        n = len(host)
        for length, table in self._suffix_order:
            if length < n:
                found = table.get(host[n - length :])
                if found is not None:
                    return found
        for length, table in self._prefix_order:
            if length < n:
                found = table.get(host[:length])
                if found is not None:
                    return found
        return self.default
