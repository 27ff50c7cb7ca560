"""The same RBAC filters and requests through the real Envoy and through pydp, over plaintext.

The filters are the control plane's translation of a few AuthorizationPolicies
plus one written by hand with the other matcher forms; the connection manager
sets XFCC as the control plane does with mTLS (SANITIZE_SET, so plaintext
requests lose a forged one). Both data planes must answer every request with
the same status, body and reply headers, let the same requests through to
their backend with the same XFCC, and count the same `rbac` stats.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.json_format import MessageToDict, ParseDict

from pydp.listener.compile_http import compile_http_connection_manager
from pydp.listener.fields import At
from tests.harness.net import free_port, loopback
from tests.harness.procs import binary, process
from tests.pydp.proxy.backend import Backend, Backends, Received, Reply
from tests.pydp.proxy.client import Answer, h1_request
from tests.pydp.proxy.harness import FakeRuntime
from tests.pydp.rbac.helpers import CLIENT, http_filter, serving_with_peer
from xds_server.model import AuthorizationPolicy, PolicyOperation, PolicyRule, PolicySource
from xds_server.translate.rbac import rbac_filters

APP_PORT = 8080
POLICIES = (
    AuthorizationPolicy(
        "b",
        "no-admin",
        "DENY",
        rules=(PolicyRule(operations=(PolicyOperation(paths=("/admin*", "*.bak")),)),),
    ),
    AuthorizationPolicy(
        "b",
        "readers",
        "ALLOW",
        rules=(
            PolicyRule(operations=(PolicyOperation(methods=("GET", "HEAD"), paths=("/api/*",)),)),
            PolicyRule(operations=(PolicyOperation(methods=("PUT",), ports=(APP_PORT,)),)),
            PolicyRule(
                sources=(PolicySource(principals=(CLIENT,)),),
                operations=(PolicyOperation(methods=("DELETE",)),),
            ),
            PolicyRule(
                sources=(PolicySource(not_namespaces=("a",)),),
                operations=(PolicyOperation(methods=("PATCH",), not_paths=("/api/private*",)),),
            ),
        ),
    ),
)
BY_HAND = {
    "rules_stat_prefix": "hand",
    "track_per_rule_stats": True,
    "rules": {
        "action": "DENY",
        "policies": {
            "blocked header": {
                "permissions": [{"header": {"name": "x-block", "present_match": True}}],
                "principals": [{"any": True}],
            },
            "secrets": {
                "permissions": [
                    {
                        "and_rules": {
                            "rules": [
                                {
                                    "url_path": {
                                        "path": {"safe_regex": {"regex": ".*/[a-z]+\\.key"}}
                                    }
                                },
                                {"not_rule": {"header": {"name": "x-role", "exact_match": "ops"}}},
                            ]
                        }
                    },
                    {"url_path": {"path": {"prefix": "/API/INTERNAL", "ignore_case": True}}},
                ],
                "principals": [{"not_id": {"authenticated": {}}}],
            },
        },
    },
}
FORGED = ("x-forwarded-client-cert", "By=spiffe://evil;URI=spiffe://cluster.local/ns/x/sa/admin")
REQUESTS: list[tuple[str, str, Sequence[tuple[str, str]], bytes]] = [
    ("GET", "/api/v1/items?x=1", [FORGED], b""),
    ("HEAD", "/api/v1", [], b""),
    ("GET", "/other", [], b""),
    ("POST", "/api/v1", [], b"payload"),
    ("PUT", "/anything", [], b"x"),
    ("DELETE", "/api/v1/items/1", [], b""),
    ("PATCH", "/api/public", [], b""),
    ("PATCH", "/api/private/x", [], b""),
    ("GET", "/admin/users", [], b""),
    ("GET", "/api/db.bak", [], b""),
    ("GET", "/api/x", [("x-block", "")], b""),
    ("GET", "/api/keys/tls.key", [], b""),
    ("GET", "/api/keys/tls.key", [("x-role", "ops")], b""),
    ("GET", "/api/internal/x", [], b""),
    ("POST", "/pkg.Svc/Call", [("content-type", "application/grpc")], b"\0\0\0\0\0"),
]


def connection_manager(port: int) -> dict[str, Any]:
    """The connection manager of an inbound listener on `port`, as JSON."""
    filters = [
        MessageToDict(f, preserving_proto_field_name=True)
        for f in rbac_filters(POLICIES, "cluster.local", APP_PORT, port)
    ]
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "inbound",
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"uri": True},
        "route_config": {
            "name": "inbound",
            "virtual_hosts": [
                {
                    "name": "app",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}],
                }
            ],
        },
        "http_filters": [
            *filters,
            http_filter(BY_HAND, name="by-hand"),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }


def bootstrap(address: str, port: int, backend: Backend) -> dict[str, Any]:
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "inbound",
                    "address": {"socket_address": {"address": address, "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager(port),
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "app",
                    "connect_timeout": "1s",
                    "type": "STATIC",
                    "load_assignment": {
                        "cluster_name": "app",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": backend.address[0],
                                                    "port_value": backend.address[1],
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }


@asynccontextmanager
async def envoy(tmp: Path, backend: Backend) -> AsyncIterator[tuple[tuple[str, int], str]]:
    """Envoy serving the connection manager; yields (listener address, admin address)."""
    address = loopback()
    port = free_port(address)
    config = tmp / "envoy.json"
    config.write_text(json.dumps(bootstrap(address, port, backend)))
    admin_path = tmp / "admin"
    args = [
        binary("envoy"),
        "-c",
        str(config),
        "--use-dynamic-base-id",
        "--disable-hot-restart",
        "-l",
        "error",
        "--admin-address-path",
        str(admin_path),
    ]
    with process(args, tmp / "envoy.log") as proc:
        with trio.fail_after(30):
            while True:
                assert proc.proc.poll() is None, proc.output()
                admin = admin_path.read_text().strip() if admin_path.exists() else ""
                if admin:
                    host, admin_port = admin.rsplit(":", 1)
                    try:
                        ready = await h1_request((host, int(admin_port)), path="/ready")
                    except OSError:
                        ready = None
                    if ready is not None and ready.status == 200:
                        break
                await trio.sleep(0.05)
        yield (address, port), admin


async def ask(proxy: tuple[str, int]) -> list[Answer]:
    return [
        await h1_request(proxy, method, path, headers, body)
        for method, path, headers, body in REQUESTS
    ]


def reply(answer: Answer) -> tuple[Any, ...]:
    """What must be identical: status and body, and all headers of local replies."""
    if answer.header("x-envoy-upstream-service-time") is not None:
        return answer.status, answer.body
    headers = [(k, v) for k, v in answer.headers if k != b"date"]
    return answer.status, answer.body, headers


def app(received: Received) -> Reply:
    body = b"" if received.header(":method") == "HEAD" else b"app"
    return Reply(200, [(b"content-type", b"text/plain")], body)


def seen(backend: Backend) -> list[tuple[str, str, str | None]]:
    return [
        (r.header(":method") or "", r.path, r.header("x-forwarded-client-cert"))
        for r in backend.received
    ]


async def test_envoy_and_pydp_authorize_alike(
    runtime: FakeRuntime, backends: Backends, tmp_path: Path
) -> None:
    envoy_app = await backends.start(app)
    pydp_app = await backends.start(app)
    runtime.add_cluster("app", [pydp_app.address])

    def pydp_config(port: int) -> Any:
        config = connection_manager(port)
        del config["@type"]
        message = ParseDict(config, hcm_pb2.HttpConnectionManager())
        return compile_http_connection_manager(message, At("listener inbound"))

    async with serving_with_peer(runtime, pydp_config, None) as proxy:
        pydp_answers = await ask(proxy)
    async with envoy(tmp_path, envoy_app) as (listener, admin):
        envoy_answers = await ask(listener)
        host, admin_port = admin.rsplit(":", 1)
        stats = await h1_request((host, int(admin_port)), path="/stats?filter=rbac")

    statuses = [a.status for a in envoy_answers]
    assert statuses.count(403) >= 8 and statuses.count(200) >= 5  # both outcomes exercised
    for request, envoy_answer, pydp_answer in zip(
        REQUESTS, envoy_answers, pydp_answers, strict=True
    ):
        assert reply(pydp_answer) == reply(envoy_answer), request
    assert seen(pydp_app) == seen(envoy_app)
    envoy_stats = dict(line.split(": ") for line in stats.body.decode().splitlines())
    pydp_stats = {k: str(v) for k, v in runtime.stats.counters.items() if ".rbac." in k}
    assert pydp_stats == envoy_stats
    assert envoy_stats["http.inbound.rbac.hand.policy.secrets.denied"] == "2"
