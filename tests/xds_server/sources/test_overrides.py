"""Raw xDS overrides: parsed with errors that say where, applied over the translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.config.route.v3 import route_pb2

from api import contract
from tests.xds_server.factories import PROFILE, model
from xds_server.pipeline import build_snapshot
from xds_server.snapshot import InconsistentSnapshot
from xds_server.sources.overrides import OverridesSource, load, parse_document

ROUTE = """\
"@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
name: outbound
virtual_hosts:
  - name: reviews
    domains: ["reviews"]
    routes:
      - match: {prefix: /}
        route: {cluster: "outbound|8080||a.default.svc.cluster.local"}
"""


def test_a_route_override_replaces_the_translated_one_for_every_proxy(tmp_path: Path) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE)
    overrides, errors = load(tmp_path)
    assert errors == []
    snapshot = build_snapshot(
        model(("a", ("127.0.0.11",))), 1, contract.CLUSTER_DOMAIN, overrides=overrides
    )
    view = snapshot.view(PROFILE)
    routes = view.get(contract.TYPE_ROUTE)
    assert set(routes) == {contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND}
    outbound = route_pb2.RouteConfiguration.FromString(routes[contract.ROUTE_OUTBOUND].payload)
    assert [v.name for v in outbound.virtual_hosts] == ["reviews"]


def test_a_cluster_override_is_shared(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        '"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster\n'
        "name: extra\ntype: STATIC\nconnect_timeout: 1s\n"
    )
    overrides, errors = load(tmp_path)
    assert errors == []
    snapshot = build_snapshot(model(), 1, contract.CLUSTER_DOMAIN, overrides=overrides)
    assert "extra" in snapshot.view(PROFILE).get(contract.TYPE_CLUSTER)


def test_an_override_naming_a_missing_cluster_makes_the_snapshot_inconsistent(
    tmp_path: Path,
) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE)
    overrides, _ = load(tmp_path)
    snapshot = build_snapshot(model(), 1, contract.CLUSTER_DOMAIN, overrides=overrides)
    with pytest.raises(InconsistentSnapshot, match="missing cluster"):
        snapshot.view(PROFILE)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "expected a mapping"),
        ({"@type": "type.googleapis.com/nope", "name": "x"}, "@type must be one of"),
        ({"@type": contract.TYPE_CLUSTER, "name": "x", "no_such_field": 1}, "no_such_field"),
        ({"@type": contract.TYPE_CLUSTER}, "has no name"),
    ],
)
def test_bad_documents_say_where_and_what(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_document(doc, "f.yaml: document 3")
    assert str(caught.value).startswith("f.yaml: document 3: ")


def test_a_broken_folder_keeps_the_last_good_overrides(tmp_path: Path) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE)
    source = OverridesSource(tmp_path)
    good = source.reload()
    assert good is not None and source.errors == []
    (tmp_path / "bad.yaml").write_text("'@type': nope\n")
    assert source.reload() is None
    assert source.last_good is good
    [error] = source.errors
    assert "bad.yaml: document 1: @type must be one of" in error
