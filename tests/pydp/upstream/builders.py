"""Small constructors shared by the upstream tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from pydp.upstream.hosts import EdsHealth, Endpoint, Host, LoadAssignment, Locality
from pydp.upstream.lb import create_load_balancer
from pydp.upstream.lb_base import LbConfig, LbContext, LbPolicy, PriorityAwareLb
from pydp.upstream.priority import HostSet, build_host_sets


def endpoint(
    n: int,
    *,
    priority: int = 0,
    weight: int = 1,
    health: EdsHealth = EdsHealth.HEALTHY,
    zone: str = "",
) -> Endpoint:
    return Endpoint(
        address=f"10.0.{n // 256}.{n % 256}",
        port=8080,
        priority=priority,
        locality=Locality(zone=zone),
        weight=weight,
        health=health,
    )


def assignment(
    endpoints: Sequence[Endpoint],
    locality_weights: Sequence[tuple[int, Locality, int]] = (),
    overprovisioning_factor: int = 140,
) -> LoadAssignment:
    return LoadAssignment(tuple(endpoints), tuple(locality_weights), overprovisioning_factor)


def host_sets(
    la: LoadAssignment, hosts: Sequence[Host] | None = None, locality_weighted: bool = False
) -> tuple[HostSet, ...]:
    live = list(hosts) if hosts is not None else [Host(e) for e in la.endpoints]
    return build_host_sets(live, la, locality_weighted)


def balancer(
    policy: LbPolicy, la: LoadAssignment, seed: int = 7, **settings: object
) -> tuple[PriorityAwareLb, list[Host]]:
    config = replace(LbConfig(policy=policy), **settings)  # type: ignore[arg-type]
    lb = create_load_balancer(config, random.Random(seed))
    assert isinstance(lb, PriorityAwareLb)
    hosts = [Host(e) for e in la.endpoints]
    lb.refresh(build_host_sets(hosts, la, config.locality_weighted))
    return lb, hosts


def pick_counts(
    lb: PriorityAwareLb, picks: int, context: LbContext | None = None
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(picks):
        host = lb.choose_host(context)
        key = host.label if host is not None else "none"
        counts[key] = counts.get(key, 0) + 1
    return counts


def label(n: int) -> str:
    return f"10.0.{n // 256}.{n % 256}:8080"


def keyed_contexts(count: int, seed: int = 3) -> list[LbContext]:
    rng = random.Random(seed)
    return [LbContext(hash_key=rng.getrandbits(64)) for _ in range(count)]
