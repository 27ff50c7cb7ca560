"""The admin endpoint: readiness, metrics, syncz, config dump and errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from api import contract
from tests.xds_server.factories import NODE_ID, model, sotw
from xds_server import admin as admin_module
from xds_server.admin import Admin
from xds_server.hub import Hub
from xds_server.pipeline import Pipeline
from xds_server.protocol.stream import SotwStream


def connected() -> tuple[Hub, SotwStream]:
    hub = Hub()
    Pipeline(hub).publish_now(model(("a", ("127.0.0.11",))))
    stream = SotwStream(hub)
    conn = hub.connect(stream, "ipv4:127.0.0.1:5555")
    [cds] = stream.receive(sotw(contract.TYPE_CLUSTER)).responses
    hub.account(stream.receive(sotw(contract.TYPE_CLUSTER, nonce=cds.nonce, version=cds.version)))
    [lds] = stream.receive(sotw(contract.TYPE_LISTENER)).responses
    hub.account(stream.receive(sotw(contract.TYPE_LISTENER, nonce=lds.nonce, error="no way")))
    assert conn.stream is stream
    return hub, stream


def body(result: tuple[int, str, bytes]) -> Any:
    status, ctype, data = result
    assert status == 200 and ctype == "application/json"
    return json.loads(data)


def test_ready_only_once_marked() -> None:
    a = Admin(Hub())
    assert a.handle("/ready")[0] == 503
    a.ready = True
    assert a.handle("/ready")[0] == 200


def test_syncz_shows_acked_and_nacked_types_with_the_error() -> None:
    hub, stream = connected()
    [proxy] = body(Admin(hub).handle("/debug/syncz"))
    assert proxy["proxy"] == NODE_ID and proxy["variant"] == "sotw"
    assert proxy["types"]["cds"]["state"] == "ACKED"
    assert proxy["types"]["cds"]["acked"] == stream.states[contract.TYPE_CLUSTER].version
    lds = proxy["types"]["lds"]
    assert lds["state"] == "NACKED"
    assert lds["nack"]["error"] == "no way"
    assert lds["acked"] == ""


def test_config_dump_decodes_what_the_proxy_was_sent() -> None:
    hub, _ = connected()
    dump = body(Admin(hub).handle(f"/debug/config_dump?proxy={NODE_ID}"))
    names = {c["name"] for c in dump["cds"]["resources"]}
    assert contract.outbound_cluster_name(8080, contract.service_host("a", "default")) in names
    assert Admin(hub).handle("/debug/config_dump?proxy=nobody")[0] == 404


def test_metrics_count_pushes_and_nacks() -> None:
    hub, _ = connected()
    status, _, data = Admin(hub).handle("/metrics")
    text = data.decode()
    assert status == 200
    assert 'xds_nacks_total{type="lds"} 1.0' in text
    assert "xds_connected_proxies" in text
    assert 'xds_convergence_seconds_count{type="cds"} 1.0' in text


def test_errors_and_unknown_paths() -> None:
    a = Admin(Hub(), errors=lambda: ["x.yaml:3: broken"])
    assert body(a.handle("/debug/errors")) == {"snapshot": 0, "errors": ["x.yaml:3: broken"]}
    assert a.handle("/nope")[0] == 404


def test_served_over_a_socket() -> None:
    async def main() -> bytes:
        a = Admin(Hub())
        a.ready = True
        server = await admin_module.start(a, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ready HTTP/1.1\r\nhost: x\r\n\r\n")
        data = await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    data = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"ready\n")
