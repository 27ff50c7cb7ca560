"""Compile a Cluster's load balancing settings into `LbConfig`.

Two sources: the classic `lb_policy` enum with its per-policy config message
(`ring_hash_lb_config`, `least_request_lb_config`, ...), or the
`load_balancing_policy` list of typed extensions, of which the first one pydp
knows is used, as Envoy does. `common_lb_config` supplies the panic threshold,
locality weighted balancing, `fail_traffic_on_panic` and hostname hashing.
Slow start, bounded load (`hash_balance_factor`), subset balancing and
unknown policies are refused.
"""

from __future__ import annotations

import math
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
from envoy.extensions.load_balancing_policies.maglev.v3 import maglev_pb2
from envoy.extensions.load_balancing_policies.random.v3 import random_pb2
from envoy.extensions.load_balancing_policies.ring_hash.v3 import ring_hash_pb2
from envoy.extensions.load_balancing_policies.round_robin.v3 import round_robin_pb2

from pydp.errors import ConfigError
from pydp.upstream.fields import percent, reject_unknown, wrapped
from pydp.upstream.lb_base import DEFAULT_PANIC_THRESHOLD, HashFunction, LbConfig, LbPolicy

MAX_RING_SIZE = 8 * 1024 * 1024
MAX_MAGLEV_TABLE_SIZE = 5000011

Cluster = cluster_pb2.Cluster

_COMMON_LB_FIELDS = {
    "healthy_panic_threshold",
    "zone_aware_lb_config",
    "locality_weighted_lb_config",
    "update_merge_window",
    "ignore_new_hosts_until_first_hc",
    "close_connections_on_host_set_change",
    "consistent_hashing_lb_config",
}
_POLICIES = {
    Cluster.ROUND_ROBIN: LbPolicy.ROUND_ROBIN,
    Cluster.LEAST_REQUEST: LbPolicy.LEAST_REQUEST,
    Cluster.RANDOM: LbPolicy.RANDOM,
    Cluster.RING_HASH: LbPolicy.RING_HASH,
    Cluster.MAGLEV: LbPolicy.MAGLEV,
}


def _common_lb(cluster: Any, res: str) -> dict[str, Any]:
    common = cluster.common_lb_config
    reject_unknown(common, _COMMON_LB_FIELDS, res, "common_lb_config.")
    values: dict[str, Any] = {
        "healthy_panic_threshold": _panic_threshold(common, res),
        "locality_weighted": common.HasField("locality_weighted_lb_config"),
        "fail_traffic_on_panic": bool(common.zone_aware_lb_config.fail_traffic_on_panic),
    }
    if common.HasField("consistent_hashing_lb_config"):
        hashing = common.consistent_hashing_lb_config
        path = "common_lb_config.consistent_hashing_lb_config."
        reject_unknown(hashing, {"use_hostname_for_hashing"}, res, path)
        values["use_hostname_for_hashing"] = bool(hashing.use_hostname_for_hashing)
    return values


def _panic_threshold(common: Any, res: str) -> float:
    value = percent(
        common,
        "healthy_panic_threshold",
        DEFAULT_PANIC_THRESHOLD,
        res,
        "common_lb_config.healthy_panic_threshold",
    )
    return float(round(value))


def compile_lb_config(cluster: Any, res: str) -> LbConfig:
    """The load balancing settings of a Cluster message."""
    values = _common_lb(cluster, res)
    if cluster.HasField("load_balancing_policy"):
        values.update(_lb_policy_extension(cluster.load_balancing_policy, res))
        return LbConfig(**values)
    policy = _POLICIES.get(cluster.lb_policy)
    if policy is None:
        raise ConfigError(
            res,
            "lb_policy",
            f"unsupported load balancing policy {Cluster.LbPolicy.Name(cluster.lb_policy)}",
        )
    values["policy"] = policy
    if cluster.HasField("round_robin_lb_config"):
        reject_unknown(cluster.round_robin_lb_config, (), res, "round_robin_lb_config.")
    if cluster.HasField("least_request_lb_config"):
        lr = cluster.least_request_lb_config
        reject_unknown(lr, {"choice_count", "active_request_bias"}, res, "least_request_lb_config.")
        values.update(_least_request(lr, res, "least_request_lb_config."))
    if cluster.HasField("ring_hash_lb_config"):
        rh = cluster.ring_hash_lb_config
        values.update(_ring_hash(rh, res, "ring_hash_lb_config."))
    if cluster.HasField("maglev_lb_config"):
        values["table_size"] = _table_size(cluster.maglev_lb_config, res, "maglev_lb_config.")
    return LbConfig(**values)


def _least_request(lr: Any, res: str, path: str) -> dict[str, Any]:
    choice_count = int(wrapped(lr, "choice_count", 2))
    if choice_count < 2:
        raise ConfigError(res, path + "choice_count", "must be at least 2")
    values: dict[str, Any] = {"choice_count": choice_count}
    if lr.HasField("active_request_bias"):
        bias = float(lr.active_request_bias.default_value)
        if bias < 0 or math.isnan(bias):
            raise ConfigError(res, path + "active_request_bias", "must be a non-negative number")
        values["active_request_bias"] = bias
    return values


def _ring_hash(rh: Any, res: str, path: str) -> dict[str, Any]:
    reject_unknown(rh, {"minimum_ring_size", "maximum_ring_size", "hash_function"}, res, path)
    minimum = int(wrapped(rh, "minimum_ring_size", 1024))
    maximum = int(wrapped(rh, "maximum_ring_size", MAX_RING_SIZE))
    for name, value in (("minimum_ring_size", minimum), ("maximum_ring_size", maximum)):
        if value > MAX_RING_SIZE:
            raise ConfigError(res, path + name, f"must be at most {MAX_RING_SIZE}")
    if minimum > maximum:
        raise ConfigError(
            res,
            path + "minimum_ring_size",
            f"ring hash: minimum_ring_size ({minimum}) > maximum_ring_size ({maximum})",
        )
    if rh.hash_function not in (0, 1):
        raise ConfigError(res, path + "hash_function", f"unknown hash function {rh.hash_function}")
    function = HashFunction.MURMUR_HASH_2 if rh.hash_function == 1 else HashFunction.XX_HASH
    return {"minimum_ring_size": minimum, "maximum_ring_size": maximum, "hash_function": function}


def _table_size(msg: Any, res: str, path: str) -> int:
    size = int(wrapped(msg, "table_size", 65537))
    if size > MAX_MAGLEV_TABLE_SIZE:
        raise ConfigError(res, path + "table_size", f"must be at most {MAX_MAGLEV_TABLE_SIZE}")
    if not _is_prime(size):
        raise ConfigError(res, path + "table_size", "The table size of maglev must be prime number")
    return size


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


_EXTENSIONS = {
    "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin": (
        LbPolicy.ROUND_ROBIN,
        round_robin_pb2.RoundRobin,
    ),
    "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest": (
        LbPolicy.LEAST_REQUEST,
        least_request_pb2.LeastRequest,
    ),
    "envoy.extensions.load_balancing_policies.random.v3.Random": (
        LbPolicy.RANDOM,
        random_pb2.Random,
    ),
    "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash": (
        LbPolicy.RING_HASH,
        ring_hash_pb2.RingHash,
    ),
    "envoy.extensions.load_balancing_policies.maglev.v3.Maglev": (
        LbPolicy.MAGLEV,
        maglev_pb2.Maglev,
    ),
}


def _lb_policy_extension(lbp: Any, res: str) -> dict[str, Any]:
    for i, entry in enumerate(lbp.policies):
        type_name = entry.typed_extension_config.typed_config.type_url.rsplit("/", 1)[-1]
        known = _EXTENSIONS.get(type_name)
        if known is None:
            continue
        policy, message_class = known
        message = message_class()
        entry.typed_extension_config.typed_config.Unpack(message)
        path = f"load_balancing_policy.policies[{i}].typed_extension_config.typed_config."
        return {"policy": policy, **_extension_settings(policy, message, res, path)}
    raise ConfigError(
        res, "load_balancing_policy", "didn't find a supported load balancing policy in the list"
    )


def _extension_settings(policy: LbPolicy, msg: Any, res: str, path: str) -> dict[str, Any]:
    values: dict[str, Any] = {"locality_weighted": False}
    if policy in (LbPolicy.ROUND_ROBIN, LbPolicy.LEAST_REQUEST, LbPolicy.RANDOM):
        allowed = {"locality_lb_config"}
        if policy is LbPolicy.LEAST_REQUEST:
            allowed |= {
                "choice_count",
                "active_request_bias",
                "enable_full_scan",
                "selection_method",
            }
            values.update(_least_request(msg, res, path))
            values["full_scan"] = (
                bool(wrapped(msg, "enable_full_scan", False)) or msg.selection_method == 1
            )
        reject_unknown(msg, allowed, res, path)
        if msg.HasField("locality_lb_config"):
            locality = msg.locality_lb_config
            if locality.WhichOneof("locality_config_specifier") == "locality_weighted_lb_config":
                values["locality_weighted"] = True
            else:
                zone_aware = locality.zone_aware_lb_config
                values["fail_traffic_on_panic"] = bool(zone_aware.fail_traffic_on_panic)
        return values
    hashing_fields = {
        "consistent_hashing_lb_config",
        "locality_weighted_lb_config",
        "use_hostname_for_hashing",
    }
    if policy is LbPolicy.RING_HASH:
        reject_unknown(
            msg,
            {"hash_function", "minimum_ring_size", "maximum_ring_size"} | hashing_fields,
            res,
            path,
        )
        values.update(_ring_hash_extension(msg, res, path))
    else:
        reject_unknown(msg, {"table_size"} | hashing_fields, res, path)
        values["table_size"] = _table_size(msg, res, path)
    values["locality_weighted"] = msg.HasField("locality_weighted_lb_config")
    values["fail_traffic_on_panic"] = False
    if msg.HasField("consistent_hashing_lb_config"):
        hashing = msg.consistent_hashing_lb_config
        reject_unknown(
            hashing, {"use_hostname_for_hashing"}, res, path + "consistent_hashing_lb_config."
        )
        values["use_hostname_for_hashing"] = bool(hashing.use_hostname_for_hashing)
    elif policy is LbPolicy.RING_HASH and msg.use_hostname_for_hashing:
        values["use_hostname_for_hashing"] = True
    return values


def _ring_hash_extension(msg: Any, res: str, path: str) -> dict[str, Any]:
    # The extension's enum is DEFAULT_HASH=0, XX_HASH=1, MURMUR_HASH_2=2.
    if msg.hash_function > 2:
        raise ConfigError(res, path + "hash_function", f"unknown hash function {msg.hash_function}")
    legacy = Cluster.RingHashLbConfig(hash_function=1 if msg.hash_function == 2 else 0)
    if msg.HasField("minimum_ring_size"):
        legacy.minimum_ring_size.CopyFrom(msg.minimum_ring_size)
    if msg.HasField("maximum_ring_size"):
        legacy.maximum_ring_size.CopyFrom(msg.maximum_ring_size)
    return _ring_hash(legacy, res, path)
