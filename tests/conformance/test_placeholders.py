"""Placeholders are filled per run and observations are turned back into them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.placeholders import Bindings, PlaceholderError, find

BINDINGS = Bindings(
    {"a": "127.200.1.11", "b": "127.200.1.12"},
    {"http": 40001, "admin": 40002},
    {"127.200.1.2": "{proxy}"},
)


def test_substitute_keeps_ports_integers() -> None:
    doc = {
        "ports": [{"port": "{port:http}"}],
        "addresses": ["{backend:a}"],
        "url": "http://{backend:b}:{port:admin}/x",
    }
    assert BINDINGS.substitute(doc) == {
        "ports": [{"port": 40001}],
        "addresses": ["127.200.1.11"],
        "url": "http://127.200.1.12:40002/x",
    }


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(PlaceholderError, match="backend:zz"):
        BINDINGS.substitute("{backend:zz}")


def test_find_walks_nested_values() -> None:
    found = set(find({"k": ["{backend:a}", {"{port:p}": 1}], "n": 3}))
    assert found == {("backend", "a"), ("port", "p")}


def test_normalize_reverses_addresses_without_touching_longer_ones() -> None:
    seen = {
        "address": "127.200.1.11:40001",
        "xff": "127.200.1.2",
        "other": "127.200.1.111",
        "list": ["x 127.200.1.12 y"],
    }
    assert BINDINGS.normalize(seen) == {
        "address": "{backend:a}:{port:http}",
        "xff": "{proxy}",
        "other": "127.200.1.111",
        "list": ["x {backend:b} y"],
    }


tokens = st.sampled_from(
    ["{backend:a}", "{backend:b}", "{backend:a}:{port:http}", "{backend:b}:{port:admin}", " ", "/x"]
)


@given(st.lists(tokens, max_size=8))
def test_normalize_undoes_substitute(parts: list[str]) -> None:
    text = "|".join(parts)
    assert BINDINGS.normalize(BINDINGS.substitute(text)) == text
