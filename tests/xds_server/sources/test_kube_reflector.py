"""The list+watch state machine and the cache, fed in memory."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xds_server.sources.kube.reflector import (
    Backoff,
    CallFailed,
    ListCall,
    Reflector,
    Remove,
    Replace,
    Upsert,
    WatchCall,
)
from xds_server.sources.kube.resources import (
    ENDPOINT_SLICES,
    NAMESPACES,
    PEER_AUTHENTICATIONS,
    SERVICES,
)
from xds_server.sources.kube.store import Store


def item(name: str, version: str = "1", namespace: str | None = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"metadata": meta, "spec": {"ports": [{"port": 80}]}}


def page(*items: dict[str, Any], version: str = "10", token: str = "") -> dict[str, Any]:
    return {
        "kind": "ServiceList",
        "metadata": {"resourceVersion": version, "continue": token},
        "items": list(items),
    }


def event(kind: str, obj: object) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def gone() -> dict[str, Any]:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    return event("ERROR", status)


def fixed(value: float = 0.0) -> Reflector:
    return Reflector(SERVICES, Backoff(rand=lambda: value), rand=lambda: value)


def test_a_list_then_a_watch_from_its_resource_version() -> None:
    r = fixed()
    assert r.next_call() == ListCall(limit=500)
    replace = r.listed(page(item("a"), item("b")))
    assert isinstance(replace, Replace)
    assert [o["metadata"]["name"] for o in replace.objects] == ["a", "b"]
    # List items come without apiVersion and kind; the reflector puts them back.
    assert {(o["apiVersion"], o["kind"]) for o in replace.objects} == {("v1", "Service")}
    assert r.next_call() == WatchCall("10", 300)


def test_the_watch_timeout_is_spread_over_the_range() -> None:
    r = Reflector(SERVICES, rand=lambda: 0.999)
    r.listed(page())
    call = r.next_call()
    assert isinstance(call, WatchCall)
    assert call.timeout_seconds == 599


def test_group_resources_get_their_group_version() -> None:
    r = Reflector(ENDPOINT_SLICES)
    replace = r.listed(page(item("s")))
    assert replace is not None
    assert replace.objects[0]["apiVersion"] == "discovery.k8s.io/v1"
    assert replace.objects[0]["kind"] == "EndpointSlice"


def test_a_paged_list_is_one_replace_at_the_end() -> None:
    r = fixed()
    assert r.listed(page(item("a"), token="next-1")) is None
    assert r.next_call() == ListCall(limit=500, continue_token="next-1")
    assert r.listed(page(item("b"), token="next-2")) is None
    replace = r.listed(page(item("c"), version="77"))
    assert replace is not None
    assert [o["metadata"]["name"] for o in replace.objects] == ["a", "b", "c"]
    assert r.next_call() == WatchCall("77", 300)


def test_a_failure_in_the_middle_of_a_paged_list_starts_it_again() -> None:
    r = fixed()
    assert r.listed(page(item("a"), token="next")) is None
    r.failed()
    assert r.next_call() == ListCall(limit=500)
    replace = r.listed(page(item("b")))
    assert replace is not None
    assert [o["metadata"]["name"] for o in replace.objects] == ["b"]


def test_events_become_deltas_and_move_the_resource_version() -> None:
    r = fixed()
    r.listed(page())
    added = r.received(event("ADDED", item("a", "11")))
    modified = r.received(event("MODIFIED", item("a", "12")))
    deleted = r.received(event("DELETED", item("a", "13")))
    assert isinstance(added, Upsert)
    assert isinstance(modified, Upsert)
    assert isinstance(deleted, Remove)
    assert added.obj["kind"] == "Service"
    assert r.next_call() == WatchCall("13", 300)


def test_a_bookmark_moves_the_resource_version_and_changes_nothing() -> None:
    r = fixed()
    r.listed(page())
    bookmark = {"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": "99"}}
    assert r.received(event("BOOKMARK", bookmark)) is None
    assert r.next_call() == WatchCall("99", 300)


def test_a_clean_end_resumes_the_watch_where_it_was() -> None:
    r = fixed()
    r.listed(page(version="5"))
    r.received(event("ADDED", item("a", "6")))
    r.ended()
    assert r.next_call() == WatchCall("6", 300)


def test_gone_in_the_stream_raises_with_its_status_and_the_next_call_is_a_list() -> None:
    r = fixed()
    r.listed(page())
    with pytest.raises(CallFailed) as caught:
        r.received(gone())
    assert caught.value.status == 410
    assert str(caught.value) == "watch: Expired: too old"
    assert r.failed() == 0.0
    assert r.next_call() == ListCall(limit=500)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not an object", "watch: event is not a JSON object"),
        ({"type": "SURPRISE", "object": item("a")}, "watch: unknown event type 'SURPRISE'"),
        (event("ADDED", {"metadata": {}}), "watch: ADDED event: an object has no metadata.name"),
        (event("ADDED", ["a"]), "watch: ADDED event: an object is not a mapping"),
        (event("ERROR", {"code": 500}), "watch: Error"),
    ],
)
def test_malformed_events_fail_the_watch_naming_what_is_wrong(line: object, message: str) -> None:
    r = fixed()
    r.listed(page())
    with pytest.raises(CallFailed) as caught:
        r.received(line)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "list is not a JSON object"),
        ({"items": {}}, "list: items is not a list"),
        ({"items": [{"metadata": {"name": 3}}]}, "list: an object has no metadata.name"),
    ],
)
def test_malformed_lists_fail_naming_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(CallFailed) as caught:
        fixed().listed(body)
    assert str(caught.value) == message


def test_back_off_starts_at_zero_doubles_to_the_maximum_and_resets_on_health() -> None:
    r = Reflector(SERVICES, Backoff(initial=0.5, maximum=4.0, jitter=0.2, rand=lambda: 0.0))
    assert [r.failed() for _ in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    r.listed(page())
    assert r.failed() == 4.0, "a successful list alone is not health"
    r.listed(page())
    r.received(event("ADDED", item("a")))
    assert r.failed() == 0.0


def test_jitter_shortens_a_delay_by_at_most_its_fraction() -> None:
    backoff = Backoff(initial=1.0, jitter=0.2, rand=lambda: 0.999)
    backoff.next()
    assert 0.8 < backoff.next() < 0.81


def test_the_store_follows_replace_upsert_and_remove() -> None:
    store = Store(SERVICES)
    assert store.apply(Replace(()))
    assert store.synced
    assert not store.apply(Replace(())), "the same list changes nothing"
    a = {**item("a"), "kind": "Service"}
    assert store.apply(Upsert(a))
    assert not store.apply(Upsert(dict(a))), "an equal object changes nothing"
    assert store.apply(Upsert({**a, "spec": {}}))
    assert store.apply(Remove(a))
    assert not store.apply(Remove(a))
    assert store.objects == {}


def test_cluster_scoped_objects_are_keyed_by_name() -> None:
    store = Store(NAMESPACES)
    store.apply(Replace(({"metadata": {"name": "shop"}},)))
    assert set(store.objects) == {("", "shop")}


_NAMES = st.sampled_from(["a", "b", "c"])
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _NAMES, st.integers(0, 3)),
        st.tuples(st.just("delete"), _NAMES, st.just(0)),
        st.sampled_from([("gone", "", 0), ("drop", "", 0), ("list", "", 0)]),
    ),
    max_size=40,
)


@given(_STEPS)
def test_the_cache_always_catches_up_with_the_server(steps: list[tuple[str, str, int]]) -> None:
    """A simulated API server changes objects; the watch breaks now and then.

    While the watch is up, the cache equals the server's state; while it is
    down, changes are missed but the cache keeps what it had (it is never
    emptied); the next list brings it back to the server's state.
    """
    server: dict[str, int] = {}
    version = 0
    r = fixed()
    store = Store(SERVICES)

    def obj(name: str, value: int) -> dict[str, Any]:
        return {**item(name, str(version)), "spec": {"value": value}}

    def cached() -> dict[str, int]:
        return {name: o["spec"]["value"] for (_, name), o in store.objects.items()}

    for kind, name, value in [("list", "", 0), *steps, ("list", "", 0)]:
        version += 1
        before = cached()
        watching = isinstance(r.next_call(), WatchCall)
        if kind == "list":
            if not watching:
                objects = (obj(n, v) for n, v in server.items())
                replace = r.listed(page(*objects, version=str(version)))
                assert replace is not None
                store.apply(replace)
            assert cached() == server
            continue
        if kind in ("gone", "drop"):
            if watching and kind == "gone":
                with pytest.raises(CallFailed):
                    r.received(gone())
            r.failed()
        elif kind == "put":
            server[name] = value
            if watching:
                delta = r.received(event("MODIFIED", obj(name, value)))
                assert delta is not None
                store.apply(delta)
        elif name in server:
            del server[name]
            if watching:
                delta = r.received(event("DELETED", obj(name, 0)))
                assert delta is not None
                store.apply(delta)
        if watching and kind in ("put", "delete"):
            assert cached() == server
        else:
            assert cached() == before


def test_a_custom_resource_without_its_crd_reads_as_empty_and_is_listed_again() -> None:
    r = Reflector(PEER_AUTHENTICATIONS, Backoff(rand=lambda: 0.0))
    r.failed()
    empty = r.absent(CallFailed("list: 404 Not Found", 404))
    assert empty == Replace(())
    assert r.next_call() == ListCall(limit=500)
    assert r.backoff.attempts == 0
    assert r.absent(CallFailed("list: 500", 500)) is None


def test_a_missing_builtin_resource_is_a_failure_not_an_empty_list() -> None:
    assert Reflector(SERVICES).absent(CallFailed("list: 404 Not Found", 404)) is None
