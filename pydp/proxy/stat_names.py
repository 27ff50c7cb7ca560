"""Envoy's stat names for the data path, built once per prefix.

Counters the upstream objects keep themselves (retries, circuit breaker
overflows, outlier detection: `UpstreamCluster.stats()`) are not repeated
here; `Stats` holds what only the data path sees.
"""

from __future__ import annotations

from functools import cache


class HttpStatNames:
    """`http.<stat_prefix>.*` of one connection manager."""

    def __init__(self, prefix: str) -> None:
        p = f"http.{prefix}."
        self.cx_total = p + "downstream_cx_total"
        self.cx_active = p + "downstream_cx_active"
        self.cx_http1_total = p + "downstream_cx_http1_total"
        self.cx_http2_total = p + "downstream_cx_http2_total"
        self.cx_http1_active = p + "downstream_cx_http1_active"
        self.cx_http2_active = p + "downstream_cx_http2_active"
        self.cx_destroy = p + "downstream_cx_destroy"
        self.cx_protocol_error = p + "downstream_cx_protocol_error"
        self.cx_idle_timeout = p + "downstream_cx_idle_timeout"
        self.cx_rx_bytes_total = p + "downstream_cx_rx_bytes_total"
        self.cx_tx_bytes_total = p + "downstream_cx_tx_bytes_total"
        self.rq_total = p + "downstream_rq_total"
        self.rq_http1_total = p + "downstream_rq_http1_total"
        self.rq_http2_total = p + "downstream_rq_http2_total"
        self.rq_active = p + "downstream_rq_active"
        self.rq_completed = p + "downstream_rq_completed"
        self.rq_time = p + "downstream_rq_time"
        self.rq_rx_reset = p + "downstream_rq_rx_reset"
        self.rq_tx_reset = p + "downstream_rq_tx_reset"
        self.rq_idle_timeout = p + "downstream_rq_idle_timeout"
        self.rq_timeout = p + "downstream_rq_timeout"
        self.rq_header_timeout = p + "downstream_rq_header_timeout"
        self.rq_response_before_rq_complete = p + "downstream_rq_response_before_rq_complete"
        self.rq_class = {c: f"{p}downstream_rq_{c}xx" for c in range(1, 6)}
        self.no_route = p + "no_route"
        self.no_cluster = p + "no_cluster"
        self.rq_redirect = p + "rq_redirect"
        self.rq_direct_response = p + "rq_direct_response"
        self.router_rq_total = p + "rq_total"
        self.rq_reset_after_downstream_response_started = (
            p + "rq_reset_after_downstream_response_started"
        )


class RbacStatNames:
    """`http.<stat_prefix>.rbac.*` of one RBAC filter, as Envoy joins them: the rules and
    shadow rules stat prefixes go after `rbac.`, with a `.` added when missing."""

    def __init__(self, prefix: str, rules_prefix: str, shadow_prefix: str) -> None:
        rbac = f"http.{prefix}.rbac."
        rules = _join(rbac, rules_prefix)
        self.rules = rules
        self.allowed = rules + "allowed"
        self.denied = rules + "denied"
        shadow = _join(rbac, shadow_prefix)
        self.shadow_allowed = shadow + "shadow_allowed"
        self.shadow_denied = shadow + "shadow_denied"
        # What Envoy creates (at zero) with the filter.
        self.created = (self.allowed, self.denied, self.shadow_allowed, self.shadow_denied)
        self._policies: dict[tuple[str, bool], str] = {}

    def policy(self, name: str, allowed: bool) -> str:
        """`...rbac.<rules_prefix>policy.<name>.allowed|denied` (`track_per_rule_stats`)."""
        key = (name, allowed)
        stat = self._policies.get(key)
        if stat is None:
            verdict = "allowed" if allowed else "denied"
            stat = self._policies[key] = f"{self.rules}policy.{name}.{verdict}"
        return stat


def _join(scope: str, prefix: str) -> str:
    if not prefix:
        return scope
    return scope + prefix if prefix.endswith(".") else f"{scope}{prefix}."


class ClusterStatNames:
    """`cluster.<name>.*` the data path counts."""

    def __init__(self, name: str) -> None:
        p = f"cluster.{name}."
        self.prefix = p
        self.rq_total = p + "upstream_rq_total"
        self.rq_completed = p + "upstream_rq_completed"
        self.rq_time = p + "upstream_rq_time"
        self.rq_timeout = p + "upstream_rq_timeout"
        self.rq_per_try_timeout = p + "upstream_rq_per_try_timeout"
        self.rq_rx_reset = p + "upstream_rq_rx_reset"
        self.rq_tx_reset = p + "upstream_rq_tx_reset"
        self.rq_pending_total = p + "upstream_rq_pending_total"
        self.rq_pending_active = p + "upstream_rq_pending_active"
        self.cx_total = p + "upstream_cx_total"
        self.cx_active = p + "upstream_cx_active"
        self.cx_http1_total = p + "upstream_cx_http1_total"
        self.cx_http2_total = p + "upstream_cx_http2_total"
        self.cx_connect_fail = p + "upstream_cx_connect_fail"
        self.cx_connect_timeout = p + "upstream_cx_connect_timeout"
        self.cx_destroy = p + "upstream_cx_destroy"
        self.cx_none_healthy = p + "upstream_cx_none_healthy"
        self.cx_rx_bytes_total = p + "upstream_cx_rx_bytes_total"
        self.cx_tx_bytes_total = p + "upstream_cx_tx_bytes_total"
        self._codes: dict[int, tuple[str, str]] = {}
        self._retry_codes: dict[int, tuple[str, str]] = {}

    def code(self, status: int) -> tuple[str, str]:
        """(`upstream_rq_<code>`, `upstream_rq_<class>xx`)."""
        names = self._codes.get(status)
        if names is None:
            p = self.prefix
            names = self._codes[status] = (
                f"{p}upstream_rq_{status}",
                f"{p}upstream_rq_{status // 100}xx",
            )
        return names

    def retry_code(self, status: int) -> tuple[str, str]:
        """(`retry.upstream_rq_<code>`, `retry.upstream_rq_<class>xx`): retried responses."""
        names = self._retry_codes.get(status)
        if names is None:
            p = self.prefix
            names = self._retry_codes[status] = (
                f"{p}retry.upstream_rq_{status}",
                f"{p}retry.upstream_rq_{status // 100}xx",
            )
        return names


class TcpStatNames:
    """`tcp.<stat_prefix>.*` of one TCP proxy."""

    def __init__(self, prefix: str) -> None:
        p = f"tcp.{prefix}."
        self.cx_total = p + "downstream_cx_total"
        self.cx_rx_bytes_total = p + "downstream_cx_rx_bytes_total"
        self.cx_tx_bytes_total = p + "downstream_cx_tx_bytes_total"
        self.cx_no_route = p + "downstream_cx_no_route"
        self.idle_timeout = p + "idle_timeout"
        self.upstream_flush_total = p + "upstream_flush_total"


@cache
def http_names(prefix: str) -> HttpStatNames:
    return HttpStatNames(prefix)


@cache
def rbac_names(prefix: str, rules_prefix: str, shadow_prefix: str) -> RbacStatNames:
    return RbacStatNames(prefix, rules_prefix, shadow_prefix)


@cache
def cluster_names(name: str) -> ClusterStatNames:
    return ClusterStatNames(name)


@cache
def tcp_names(prefix: str) -> TcpStatNames:
    return TcpStatNames(prefix)
