"""Upstream logic without I/O: clusters, hosts, load balancers, breakers, outliers, retries.

Everything here is plain objects fed in memory: time is passed in, randomness
is an injected `random.Random`. The connection adapter and the router call in.
"""

from pydp.upstream.breakers import CircuitBreakers, RoutingPriority
from pydp.upstream.cluster import ClusterConfig, UpstreamProtocol, compile_cluster
from pydp.upstream.cluster_state import UpstreamCluster
from pydp.upstream.hashing import HashPolicy, compile_hash_policies, compute_hash
from pydp.upstream.hosts import Host, LoadAssignment, compile_load_assignment
from pydp.upstream.lb_base import LbContext
from pydp.upstream.outlier import Failure, OutlierDetector
from pydp.upstream.retry import (
    ResetReason,
    RetryDecision,
    RetryPolicy,
    RetryState,
    RetryStatus,
    compile_retry_policy,
)

__all__ = [
    "CircuitBreakers",
    "ClusterConfig",
    "Failure",
    "HashPolicy",
    "Host",
    "LbContext",
    "LoadAssignment",
    "OutlierDetector",
    "ResetReason",
    "RetryDecision",
    "RetryPolicy",
    "RetryState",
    "RetryStatus",
    "RoutingPriority",
    "UpstreamCluster",
    "UpstreamProtocol",
    "compile_cluster",
    "compile_hash_policies",
    "compile_load_assignment",
    "compile_retry_policy",
    "compute_hash",
]
