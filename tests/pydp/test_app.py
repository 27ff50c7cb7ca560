"""The runtime over the config store: compilers, NACKs, clusters across updates, access logs.

xDS responses go through a real `AdsSession` (decode, compile, ACK or NACK),
so what the control plane would be sent is checked too; connections use
stand-in handlers on loopback sockets.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from envoy.config.cluster.v3 import cluster_pb2

from api import contract
from pydp.app import App
from pydp.config_dump import to_json
from pydp.listener.manager import ConnectionHandlers
from pydp.runtime import AccessLogEntry
from pydp.xds import BootstrapConfig
from pydp.xds.session import AdsSession
from tests.harness.net import loopback
from tests.pydp.listener.builders import FAULT, FILE_LOG, hcm, listener, router
from tests.pydp.xds.builders import assignment, eds_cluster, node, route, sotw, static_cluster

CDS, EDS, LDS, RDS = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
)


async def answer_with_stat_prefix(
    stream: trio.abc.Stream,
    remote: Any,
    local: Any,
    config: Any,
    name: str,
    runtime: Any,
    **_: Any,
) -> None:
    await stream.send_all(f"{name}:{config.stat_prefix}".encode())


class Pools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def cluster_removed(self, name: str) -> None:
        self.calls.append(("cluster_removed", name))

    def hosts_changed(self, name: str, hosts: list[tuple[str, int]]) -> None:
        self.calls.append(("hosts_changed", sorted(hosts)))


async def never_connect(host: str, port: int, method: str) -> Any:
    await trio.sleep_forever()


def make_app() -> App:
    config = BootstrapConfig(node=node(), xds_host="127.0.0.1", xds_port=9)
    handlers = ConnectionHandlers(answer_with_stat_prefix, answer_with_stat_prefix)
    return App(config, handlers=handlers, pools=Pools(), connect=never_connect)


@pytest.fixture
async def app(nursery: trio.Nursery) -> AsyncIterator[App]:
    running = make_app()
    await nursery.start(running.run)
    yield running


class Control:
    """Sends State of the World responses through the session, as the xDS client does."""

    def __init__(self, app: App) -> None:
        self.session = AdsSession(node(), app.store, delta=False, node_on_first_message_only=False)
        self.session.connect()
        self.nonce = 0

    def send(self, type_url: str, version: str, *messages: Any) -> list[Any]:
        self.nonce += 1
        return self.session.handle(sotw(type_url, version, f"n{self.nonce}", messages))


def web(prefix: str, address: str, **fields: Any) -> Any:
    inline = {
        "name": "local",
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}],
            }
        ],
    }
    config = hcm(stat_prefix=prefix, route_config=inline, **fields)
    del config["rds"]
    return listener(config, name="web", address=address, port=0)


async def ask(app: App, name: str) -> bytes:
    active = app.listeners.listener(name)
    assert active is not None
    stream = await trio.open_tcp_stream(active.config.address, active.port)
    data = b""
    async with stream:
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                data += chunk
    return data


async def test_a_rejected_listener_is_nacked_and_the_last_good_one_keeps_serving(
    app: App,
) -> None:
    control = Control(app)
    address = loopback()
    control.send(CDS, "1", static_cluster("c"))
    control.send(LDS, "1", web("good", address))
    assert app.server_state() == "LIVE"
    assert await ask(app, "web") == b"web:good"
    port = app.listeners.listener("web").port  # type: ignore[union-attr]

    bad = web(
        "bad",
        address,
        http_filters=[
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT}},
            router(),
        ],
    )
    [nack] = control.send(LDS, "2", bad)
    assert nack.version_info == "1"
    assert nack.error_detail.code == 13
    assert nack.error_detail.message == (
        "listener web: filter_chains[0].filters[0].typed_config.http_filters[0]: "
        "unsupported HTTP filter envoy.filters.http.fault "
        "(type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault): "
        "pydp supports only envoy.filters.http.rbac and envoy.filters.http.router"
    )
    assert app.listeners.listener("web").port == port  # type: ignore[union-attr]
    assert await ask(app, "web") == b"web:good"
    assert app.stats.counters["listener_manager.lds.update_rejected"] == 1
    assert app.stats.counters["listener_manager.lds.update_success"] == 1

    dump = _dump(app)
    [dynamic] = dump["configs"][1]["dynamic_listeners"]
    assert dynamic["active_state"]["version_info"] == "1"
    assert dynamic["error_state"]["details"] == nack.error_detail.message
    assert dynamic["error_state"]["version_info"] == "2"
    assert dynamic["error_state"]["failed_configuration"]["name"] == "web"

    control.send(LDS, "3", web("fixed", address))
    assert await ask(app, "web") == b"web:fixed"
    fixed = _dump(app)["configs"][1]["dynamic_listeners"][0]
    assert "error_state" not in fixed


def _dump(app: App) -> dict[str, Any]:
    return to_json(app.config_dump(False))


async def test_a_listener_that_cannot_bind_is_nacked(app: App) -> None:
    control = Control(app)
    address = loopback()
    with socket.socket() as taken:
        taken.bind((address, 0))
        taken.listen()
        port = taken.getsockname()[1]
        [nack] = control.send(LDS, "1", listener(name="web", address=address, port=port))
    assert nack.error_detail.message.startswith(
        f"listener web: address: cannot bind '{address}:{port}': "
    )
    assert app.listeners.listener("web") is None


async def test_an_access_log_file_that_cannot_be_opened_is_nacked(app: App, tmp_path: Path) -> None:
    path = tmp_path / "missing" / "access.log"
    logs = [{"name": "f", "typed_config": {"@type": FILE_LOG, "path": str(path)}}]
    [nack] = Control(app).send(LDS, "1", web("p", loopback(), access_log=logs))
    assert nack.error_detail.message.startswith(
        f"listener web: access_log[0].path: unable to open file '{path}': "
    )


async def test_access_log_entries_go_to_the_listeners_files(app: App, tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    logs = [
        {"name": "f", "typed_config": {"@type": FILE_LOG, "path": str(path)}},
        {
            "name": "g",
            "typed_config": {
                "@type": FILE_LOG,
                "path": str(path),
                "log_format": {"text_format": "%RESPONSE_CODE% %UPSTREAM_CLUSTER%\n"},
            },
        },
    ]
    Control(app).send(LDS, "1", web("p", loopback(), access_log=logs))
    app.access_log("web", AccessLogEntry(start_time=0.0, response_code=200, upstream_cluster="c"))
    app.access_log("unknown", AccessLogEntry(start_time=0.0))
    app.access_log_files.flush()
    assert path.read_text() == (
        '[1970-01-01T00:00:00.000Z] "- - -" 200 - 0 0 0 - "-" "-" "-" "-" "-"\n200 c\n'
    )


async def test_clusters_keep_their_state_across_eds_updates_and_are_rebuilt_when_changed(
    app: App,
) -> None:
    control = Control(app)
    pools = app.pools
    assert isinstance(pools, Pools)
    control.send(CDS, "1", eds_cluster("c"))
    assert app.cluster("c") is None  # warming: no endpoints yet
    two = assignment("c", 8080)
    two.endpoints[0].lb_endpoints.add().endpoint.address.socket_address.CopyFrom(
        two.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    )
    two.endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value = 8081
    control.send(EDS, "1", two)
    first = app.cluster("c")
    assert first is not None and len(first.hosts) == 2
    kept = first.hosts[("127.0.0.1", 8080)]
    kept.active_requests = 3
    assert pools.calls[-1] == ("hosts_changed", [("127.0.0.1", 8080), ("127.0.0.1", 8081)])

    control.send(EDS, "2", assignment("c", 8080))
    assert app.cluster("c") is first
    assert list(first.hosts) == [("127.0.0.1", 8080)]
    assert first.hosts[("127.0.0.1", 8080)] is kept and kept.active_requests == 3
    assert pools.calls[-1] == ("hosts_changed", [("127.0.0.1", 8080)])
    assert app.stats.counters["cluster.c.membership_change"] == 1
    assert app.stats.counters["cluster.c.update_success"] == 2

    changed = eds_cluster("c")
    changed.connect_timeout.seconds = 3
    control.send(CDS, "2", changed)
    second = app.cluster("c")
    assert second is not None and second is not first
    assert list(second.hosts) == [("127.0.0.1", 8080)]
    assert ("cluster_removed", "c") in pools.calls
    assert app.stats.counters["cluster_manager.cluster_modified"] == 1

    control.send(CDS, "3")
    assert app.cluster("c") is None
    assert app.stats.counters["cluster_manager.cluster_removed"] == 1
    assert not any(name.startswith("cluster.c.") for name in app.stats_view().counters)


def routes(cluster: str) -> Any:
    config = route("outbound", cluster)
    config.virtual_hosts[0].routes[0].match.prefix = "/"
    return config


async def test_route_updates_count_under_the_connection_managers_rds_stats(app: App) -> None:
    control = Control(app)
    address = loopback()
    control.send(CDS, "1", static_cluster("c"))
    rds = hcm(stat_prefix="outbound")
    control.send(LDS, "1", listener(rds, name="web", address=address, port=0))
    control.send(RDS, "1", routes("c"))  # counted: it activates the listener
    assert control.send(RDS, "2", routes("other"))[0].error_detail.code == 0
    assert control.send(RDS, "3", route("outbound"))[0].error_detail.code == 13
    assert app.stats.counters["http.outbound.rds.outbound.update_success"] == 2
    assert app.stats.counters["http.outbound.rds.outbound.update_rejected"] == 1
    table = app.route_table("outbound")
    assert table is not None and table.name == "outbound"


async def test_server_state_goes_from_pre_initializing_to_live() -> None:
    app = make_app()
    assert app.server_state() == "PRE_INITIALIZING"
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        assert app.server_state() == "INITIALIZING"
        control = Control(app)
        control.send(CDS, "1", static_cluster("c"))
        assert app.server_state() == "INITIALIZING"
        control.send(LDS, "1", web("p", loopback()))
        assert app.server_state() == "LIVE"
        view = app.stats_view()
        assert view.gauges["server.live"] == 1 and view.gauges["server.state"] == 0
        assert view.gauges["cluster.c.membership_healthy"] == 1
        assert view.counters["cluster.c.upstream_rq_total"] == 0
        assert view.text_readouts["cluster_manager.cds.version_text"] == "1"
        await app.drain(0.5)
        assert app.server_state() == "DRAINING"
        assert app.listeners.listener("web") is None
        nursery.cancel_scope.cancel()


async def test_alt_stat_name_names_the_cluster_stats(app: App) -> None:
    cluster = static_cluster("c")
    cluster.alt_stat_name = "short"
    Control(app).send(CDS, "1", cluster)
    view = app.stats_view()
    assert view.gauges["cluster.short.membership_total"] == 1
    assert "cluster.c.membership_total" not in view.gauges
    assert isinstance(cluster, cluster_pb2.Cluster)


async def test_config_dump_versions_are_those_of_the_update_that_changed_each_resource(
    app: App,
) -> None:
    control = Control(app)
    control.send(CDS, "1", static_cluster("c"))
    control.send(CDS, "2", static_cluster("c"), static_cluster("d", 8081))
    clusters = _dump(app)["configs"][0]
    assert clusters["version_info"] == "2"
    versions = {
        entry["cluster"]["name"]: entry["version_info"]
        for entry in clusters["dynamic_active_clusters"]
    }
    assert versions == {"c": "1", "d": "2"}  # an unchanged cluster keeps its version, as in Envoy
