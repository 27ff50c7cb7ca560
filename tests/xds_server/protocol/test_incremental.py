"""Incremental refresh (from the snapshots' change sets) agrees with comparing everything."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import contract
from tests.xds_server.factories import Views, cluster, delta, model, parse_sotw, sotw
from xds_server.model import Model
from xds_server.protocol.state import Response, TypeState
from xds_server.protocol.stream import DeltaStream, SotwStream, Stream

CDS, EDS, LDS, RDS = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
)
SERVICES = ("a", "b", "c", "d")
ROUTES = (contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND)

worlds = st.lists(
    st.dictionaries(
        st.sampled_from(SERVICES),
        st.lists(st.sampled_from(("127.0.0.11", "127.0.0.12", "127.0.0.13")), max_size=3),
        min_size=0,
        max_size=4,
    ),
    min_size=1,
    max_size=6,
)


def build(world: dict[str, list[str]]) -> Model:
    return model(*((name, tuple(sorted(set(ips)))) for name, ips in sorted(world.items())))


class Proxy:
    """Acts as Envoy does: subscribes, follows clusters with EDS, ACKs everything."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.delta = isinstance(stream, DeltaStream)

    def request(
        self, type_url: str, names: tuple[str, ...] = (), nonce: str = ""
    ) -> list[Response]:
        if self.delta:
            req = delta(type_url, subscribe=names if not nonce else (), nonce=nonce)
        else:
            req = sotw(type_url, names=names, nonce=nonce)
        return self.stream.receive(req).responses

    def settle(self, pending: list[Response]) -> None:
        while pending:
            response = pending.pop(0)
            names = self.names(response.type_url)
            pending += self.request(response.type_url, names, nonce=response.nonce)
            eds = self.stream.states.get(EDS)
            wanted = (
                tuple(sorted(self.stream.states[CDS].sent)) if CDS in self.stream.states else ()
            )
            if response.type_url == CDS and eds is not None and set(wanted) != eds.names:
                if self.delta:
                    pending += self.stream.receive(
                        delta(EDS, subscribe=wanted, unsubscribe=tuple(eds.names - set(wanted)))
                    ).responses
                else:
                    pending += self.request(EDS, wanted, nonce=eds.nonce)

    def names(self, type_url: str) -> tuple[str, ...]:
        if type_url == RDS:
            return ROUTES
        if type_url == EDS:
            return tuple(sorted(self.stream.states[CDS].sent))
        return ()

    def start(self) -> None:
        pending = self.request(CDS) + self.request(LDS)
        self.settle(pending)
        self.settle(self.request(EDS, self.names(EDS)))
        self.settle(self.request(RDS, ROUTES))

    def held(self) -> dict[str, dict[str, str]]:
        return {t: {n: e.version for n, e in s.sent.items()} for t, s in self.stream.states.items()}


@settings(max_examples=60, deadline=None)
@given(worlds, st.booleans())
def test_incremental_and_full_comparison_agree(
    sequence: list[dict[str, list[str]]], use_delta: bool
) -> None:
    kind = DeltaStream if use_delta else SotwStream
    fast_views = Views(build(sequence[0]))
    slow_views = Views(build(sequence[0]), remember=False)
    fast, slow = Proxy(kind(fast_views)), Proxy(kind(slow_views))
    fast.start()
    slow.start()
    assert fast.held() == slow.held()
    for world in sequence[1:]:
        fast_views.publish(build(world))
        slow_views.publish(build(world))
        fast.settle(fast.stream.refresh())
        slow.settle(slow.stream.refresh())
        assert fast.held() == slow.held()
        # Whatever the path, the proxy ends up holding exactly the world's clusters.
        expected = {cluster(n) for n in world} | {contract.inbound_cluster_name(contract.APP_PORT)}
        assert set(fast.stream.states[CDS].sent) == expected


def test_sotw_eds_carries_only_what_changed() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    proxy = Proxy(SotwStream(views))
    proxy.start()
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.13",))))
    [push] = proxy.stream.refresh()
    assert push.type_url == EDS and push.names == (cluster("b"),)
    assert len(parse_sotw(push.payload).resources) == 1


def test_an_ack_after_sync_costs_no_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    views = Views(model(*((f"s{i}", ("127.0.0.11",)) for i in range(50))))
    proxy = Proxy(SotwStream(views))
    proxy.start()
    views.publish(
        model(*((f"s{i}", ("127.0.0.12",) if i == 7 else ("127.0.0.11",)) for i in range(50)))
    )
    [push] = proxy.stream.refresh()
    calls: list[str] = []
    original = TypeState.diff

    def counting(self: TypeState, *args: Any) -> Any:
        calls.append(self.type_url)
        return original(self, *args)

    monkeypatch.setattr(TypeState, "diff", counting)
    assert proxy.request(EDS, proxy.names(EDS), nonce=push.nonce) == []
    assert calls == []
