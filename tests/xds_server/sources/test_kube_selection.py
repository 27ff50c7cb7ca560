"""Namespace selection and label selectors."""

from __future__ import annotations

import pytest

from xds_server.sources.kube.selection import NamespaceSelection, SelectorError, parse_selector


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("mesh=on", {"mesh": "on"}, True),
        ("mesh==on", {"mesh": "on"}, True),
        ("mesh=on", {"mesh": "off"}, False),
        ("mesh!=off", {}, True),
        ("mesh!=off", {"mesh": "off"}, False),
        ("mesh", {"mesh": ""}, True),
        ("mesh", {}, False),
        ("!mesh", {}, True),
        ("!mesh", {"mesh": "on"}, False),
        ("tier in (web, api)", {"tier": "api"}, True),
        ("tier in (web,api)", {"tier": "db"}, False),
        ("tier notin (db)", {"tier": "web"}, True),
        ("tier notin (db)", {}, True),
        ("example.com/mesh=on, tier in (a,b)", {"example.com/mesh": "on", "tier": "b"}, True),
        ("example.com/mesh=on,tier in (a,b)", {"example.com/mesh": "on", "tier": "c"}, False),
    ],
)
def test_selectors_match_as_kubectl_does(
    selector: str, labels: dict[str, str], matches: bool
) -> None:
    assert parse_selector(selector).matches(labels) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("", "label selector is empty"),
        ("a=b=c", "label selector 'a=b=c': cannot read 'a=b=c'"),
        ("tier in ()", "label selector 'tier in ()': cannot read 'tier in ()'"),
        ("-bad=x", "label selector '-bad=x': key must be a label name, got '-bad'"),
        ("a=b c", "label selector 'a=b c': cannot read 'a=b c'"),
    ],
)
def test_bad_selectors_are_refused_naming_the_requirement(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(selector)
    assert str(caught.value) == message


def test_names_may_be_repeated_or_comma_separated_and_are_deduplicated() -> None:
    selection = NamespaceSelection.of(("shop,default", "shop", " web "))
    assert selection.names == ("shop", "default", "web")
    assert selection.scopes() == ("shop", "default", "web")
    assert str(selection) == "namespaces shop, default, web"


def test_no_names_and_no_selector_is_every_namespace_in_one_scope() -> None:
    selection = NamespaceSelection.of()
    assert selection.scopes() == (None,)
    assert str(selection) == "all namespaces"


def test_a_selector_watches_across_namespaces() -> None:
    selection = NamespaceSelection.of(selector="mesh=on")
    assert selection.scopes() == (None,)
    assert str(selection) == "namespaces labelled mesh=on"


@pytest.mark.parametrize(
    ("names", "selector", "message"),
    [
        (("shop",), "mesh=on", "select namespaces by name or by label, not both"),
        (("Shop",), None, "namespace must be a DNS label (lowercase letters, digits, '-'), got"),
    ],
)
def test_bad_selections_are_refused(
    names: tuple[str, ...], selector: str | None, message: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        NamespaceSelection.of(names, selector)
    assert str(caught.value).startswith(message)
