"""Envoy's RBAC HTTP filter for pydp, without I/O.

`compile_rbac_filter` turns an `envoy.extensions.filters.http.rbac.v3.RBAC`
into an `RbacFilter` (raising `pydp.errors.ConfigError` for what pydp cannot
honour); `run_filters(filters, RbacRequest(...))` gives the `Verdict` of each
filter of a connection manager, in order, up to the first denial. The data
path (`pydp.proxy.request`) answers a denial with 403 and counts the stats.
"""

from pydp.rbac.compile import RBAC_FILTER, RBAC_TYPE, compile_rbac_filter, compile_rules
from pydp.rbac.engine import Policy, RbacEngine, RbacFilter, Verdict, run_filters
from pydp.rbac.request import RbacRequest

__all__ = [
    "RBAC_FILTER",
    "RBAC_TYPE",
    "Policy",
    "RbacEngine",
    "RbacFilter",
    "RbacRequest",
    "Verdict",
    "compile_rbac_filter",
    "compile_rules",
    "run_filters",
]
