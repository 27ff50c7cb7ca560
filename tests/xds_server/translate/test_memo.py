import dataclasses
from functools import _CacheInfo

from api import contract
from api.contract import NodeProfile
from tests.xds_server.translate.models import endpoint_slice, ready, service
from xds_server.model import Model, ServicePort
from xds_server.translate import cache_info, translate_node, translate_shared
from xds_server.translate.routes import outbound_virtual_host


def _model(web_ip: str = "10.96.0.1", web_endpoint: str = "10.0.0.1") -> Model:
    return Model.build(
        [
            service("web", "shop", ServicePort(80, "http"), cluster_ip=web_ip),
            service("api", "shop", ServicePort(9090, "grpc"), cluster_ip="10.96.0.2"),
        ],
        [
            endpoint_slice("web", ready(web_endpoint), namespace="shop"),
            endpoint_slice("api", ready("10.0.0.9"), namespace="shop", port_name="grpc"),
        ],
    )


WEB = "outbound|80||web.shop.svc.cluster.local"
API = "outbound|9090||api.shop.svc.cluster.local"


def _vhosts(model: Model) -> dict[str, object]:
    routes = translate_node(model, NodeProfile("shop")).routes[contract.ROUTE_OUTBOUND]
    return {vh.name: vh for vh in routes.virtual_hosts}


def test_translating_twice_gives_equal_output() -> None:
    profile = NodeProfile("shop")
    assert translate_shared(_model()) == translate_shared(_model())
    assert translate_node(_model(), profile) == translate_node(_model(), profile)


def test_equal_models_share_messages() -> None:
    first, second = translate_shared(_model()), translate_shared(_model())
    assert first.clusters[WEB] is second.clusters[WEB]
    assert first.endpoints[WEB] is second.endpoints[WEB]


def test_endpoint_change_rebuilds_only_that_assignment() -> None:
    before = translate_shared(_model())
    after = translate_shared(_model(web_endpoint="10.0.0.5"))
    assert after.endpoints[WEB] is not before.endpoints[WEB]
    assert after.endpoints[WEB] != before.endpoints[WEB]
    assert after.clusters[WEB] is before.clusters[WEB]
    assert after.clusters[API] is before.clusters[API]
    assert after.endpoints[API] is before.endpoints[API]


def test_service_change_rebuilds_only_its_virtual_host() -> None:
    model, changed = _model(), _model(web_ip="10.96.0.50")
    web, api = (model.services[("shop", n)] for n in ("web", "api"))
    new_web, new_api = (changed.services[("shop", n)] for n in ("web", "api"))
    assert outbound_virtual_host(new_api, new_api.ports[0], "cluster.local", True) is (
        outbound_virtual_host(api, api.ports[0], "cluster.local", True)
    )
    assert outbound_virtual_host(new_web, new_web.ports[0], "cluster.local", True) != (
        outbound_virtual_host(web, web.ports[0], "cluster.local", True)
    )
    before, after = _vhosts(model), _vhosts(changed)
    assert after["web.shop.svc.cluster.local:80"] != before["web.shop.svc.cluster.local:80"]
    assert after["api.shop.svc.cluster.local:9090"] == before["api.shop.svc.cluster.local:9090"]
    node_before = translate_node(model, NodeProfile("shop"))
    node_after = translate_node(changed, NodeProfile("shop"))
    for name in (contract.LISTENER_OUTBOUND, contract.LISTENER_INBOUND):
        assert node_after.listeners[name] is node_before.listeners[name]
    inbound = contract.inbound_cluster_name(contract.APP_PORT)
    assert node_after.clusters[inbound] is node_before.clusters[inbound]
    assert node_after.routes[contract.ROUTE_INBOUND] is node_before.routes[contract.ROUTE_INBOUND]


def test_one_service_change_recomputes_only_that_service() -> None:
    profile = NodeProfile("shop")
    translate_shared(_model())
    translate_node(_model(), profile)
    before = cache_info()
    translate_shared(_model(web_endpoint="10.0.0.77"))
    translate_node(_model(web_endpoint="10.0.0.77"), profile)
    middle = cache_info()
    translate_shared(_model(web_ip="10.96.0.77"))
    translate_node(_model(web_ip="10.96.0.77"), profile)
    after = cache_info()

    def misses(a: dict[str, _CacheInfo], b: dict[str, _CacheInfo]) -> dict[str, int]:
        return {k: b[k].misses - a[k].misses for k in a}

    assert misses(before, middle) == {"clusters": 0, "endpoints": 1, "virtual_hosts": 0}
    # A new ClusterIP changes the web Service itself: its CLA key and its virtual host.
    assert misses(middle, after) == {"clusters": 0, "endpoints": 1, "virtual_hosts": 1}


def test_unrelated_service_change_keeps_messages_identical() -> None:
    model = _model()
    before = translate_shared(model)
    api_key = ("shop", "api")
    services = dict(model.services)
    services[api_key] = dataclasses.replace(services[api_key], labels=(("v", "2"),))
    after = translate_shared(Model(services, model.slices, model.pods))
    assert after.clusters[WEB] is before.clusters[WEB]
    assert after.endpoints[WEB] is before.endpoints[WEB]
    assert after.clusters[API] is before.clusters[API]
