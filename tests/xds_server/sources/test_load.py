from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xds_server.model import Model
from xds_server.sources.folder import load_folder
from xds_server.sources.load import LoadResult, ManifestError, load_texts

EXAMPLES = Path(__file__).parents[3] / "deploy" / "examples" / "manifests"

CART = """\
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: shop
spec:
  ports:
    - name: http
      port: 80
    - name: admin
      port: 9080
"""

CART_SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cart-1
  namespace: shop
  labels:
    kubernetes.io/service-name: cart
addressType: IPv4
ports:
  - name: http
    port: 8080
endpoints:
  - addresses: [127.0.0.11]
"""


def load(*files: tuple[str, str]) -> LoadResult:
    return load_texts(files)


def errors(*files: tuple[str, str]) -> list[str]:
    result = load(*files)
    assert result.model is None
    return [str(e) for e in result.errors]


def test_valid_files_build_a_model() -> None:
    result = load(("a.yaml", CART), ("b.yaml", CART_SLICE))
    assert result.errors == ()
    assert result.model is not None
    assert list(result.model.services) == [("shop", "cart")]
    assert [s.name for s in result.model.slices["shop", "cart"]] == ["cart-1"]


def test_error_names_file_line_document_object_and_field() -> None:
    text = dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: cart
          namespace: shop
        spec:
          ports:
          - name: http
            port: 80
          - name: grpc
            port: abc
    """)
    assert errors(("deploy/x.yaml", text)) == [
        "deploy/x.yaml:15: document 2 (Service shop/cart): spec.ports[1].port: "
        "must be an integer 1-65535, got 'abc'"
    ]


def test_error_record_fields() -> None:
    (error,) = load(("x.yaml", CART.replace("port: 80", "port: 0"))).errors
    assert error == ManifestError(
        file="x.yaml",
        message="must be an integer 1-65535, got 0",
        line=9,
        document=1,
        what="Service shop/cart",
        field="spec.ports[0].port",
    )


def test_unparseable_yaml_names_the_line() -> None:
    (error,) = errors(("x.yaml", CART + "---\nkind: [Service\n"))
    assert error == (
        "x.yaml:14: document 2: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 13)"
    )


def test_document_that_is_not_a_mapping() -> None:
    assert errors(("x.yaml", "---\n- a\n- b\n")) == [
        "x.yaml:2: document 1: must be a mapping (a Kubernetes object), got a list"
    ]


def test_duplicate_keys_name_the_object() -> None:
    (error,) = errors(("x.yaml", CART + "kind: Service\n"))
    assert error == (
        "x.yaml:12: document 1 (Service shop/cart): mapping key 'kind' already defined at line 2"
    )


def test_bad_utf8_names_the_line() -> None:
    result = load_texts([("x.yaml", b"a: 1\nb: \xff\n")])
    assert [str(e) for e in result.errors] == [
        "x.yaml:2: not UTF-8 text: invalid start byte at byte 8"
    ]


def test_missing_required_fields() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\nspec: {}\n"
    assert errors(("x.yaml", text)) == [
        "x.yaml:3: document 1 (Service shop/(no name)): metadata.name: required",
        "x.yaml:5: document 1 (Service shop/(no name)): spec.ports: required",
    ]


def test_all_errors_of_all_files_are_reported() -> None:
    bad_port = CART.replace("port: 9080", "port: 90800")
    bad_slice = CART_SLICE.replace("IPv4", "IPv7")
    assert [e.split(": ")[0] for e in errors(("a.yaml", bad_port), ("b.yaml", bad_slice))] == [
        "a.yaml:11",
        "b.yaml:8",
    ]


def test_kinds_the_mesh_does_not_read_are_notes_not_errors() -> None:
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart, namespace: shop}\n"
    result = load(("a.yaml", CART), ("b.yaml", deployment))
    assert result.errors == ()
    assert result.notes == (
        "b.yaml:1: document 1: Deployment shop/cart: skipped "
        "(the mesh does not read apps/v1 Deployment)",
    )


def test_duplicate_objects_name_both_places() -> None:
    assert errors(("a.yaml", CART), ("b/c.yaml", "# again\n" + CART)) == [
        "b/c.yaml:2: document 1 (Service shop/cart): defined twice, first at a.yaml:1: document 1"
    ]


def test_same_name_in_another_namespace_or_kind_is_no_duplicate() -> None:
    other = CART.replace("namespace: shop", "namespace: default")
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: cart, namespace: shop}\n"
    assert load(("a.yaml", CART), ("b.yaml", other), ("c.yaml", pod)).ok


def test_slice_port_name_is_checked_against_its_service() -> None:
    bad = CART_SLICE.replace("  - name: http\n", "  - name: metrics\n")
    assert errors(("a.yaml", CART), ("b.yaml", bad)) == [
        "b.yaml:10: document 1 (EndpointSlice shop/cart-1): ports[0].name: "
        "Service shop/cart has no port named 'metrics' (it has 'http', 'admin')"
    ]


def test_slice_without_its_service_is_a_note() -> None:
    result = load(("b.yaml", CART_SLICE))
    assert result.ok
    assert result.notes == (
        "b.yaml:1: document 1: EndpointSlice shop/cart-1: Service shop/cart is not defined",
    )


def test_slice_without_service_name_label() -> None:
    text = CART_SLICE.replace("  labels:\n    kubernetes.io/service-name: cart\n", "")
    assert errors(("a.yaml", CART), ("b.yaml", text)) == [
        "b.yaml:3: document 1 (EndpointSlice shop/cart-1): "
        'metadata.labels["kubernetes.io/service-name"]: required: the name of its Service'
    ]


def test_list_items_are_objects() -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [yaml.safe_load(CART), yaml.safe_load(CART_SLICE.replace("8080", "x"))],
    }
    text = yaml.safe_dump(listing, sort_keys=False)
    (error,) = errors(("list.yaml", text))
    assert error.startswith("list.yaml:")
    assert ": document 1, items[1] (EndpointSlice shop/cart-1): ports[0].port: must be" in error
    assert load(("list.yaml", text.replace("port: x", "port: 8080"))).ok


def test_list_items_must_be_a_list() -> None:
    assert errors(("x.yaml", "apiVersion: v1\nkind: List\nitems: 3\n")) == [
        "x.yaml:3: document 1 (List): items: must be a list of objects, got 3"
    ]


def test_no_files_give_an_empty_model() -> None:
    assert load() == LoadResult(Model.build())


def test_shipped_examples_load_without_errors() -> None:
    result = load_folder(EXAMPLES)
    assert result.errors == ()
    model = result.model
    assert model is not None
    assert {ns for ns, _ in model.services} == {"default", "shop"}
    two_ports = [s for s in model.services.values() if len(s.ports) == 2]
    assert two_ports
    assert any(p.port == 80 for s in model.services.values() for p in s.ports)
    endpoints = [e for slices in model.slices.values() for s in slices for e in s.endpoints]
    addresses = [a for e in endpoints for a in e.addresses]
    assert len(addresses) == len(set(addresses))
    assert all(a.startswith("127.0.0.") for a in addresses)
    assert any(e.terminating and e.serving for e in endpoints)
    assert {p.service_account for p in model.pods.values()} >= {"frontend", "reviews"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.y*ml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid_kubernetes(path: Path) -> None:
    version = kubernetes_validate.latest_version()
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, version, strict=True)


_SCALARS = st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return strategy | _VALUES


_OBJECTS = st.fixed_dictionaries(
    {
        "apiVersion": _maybe(st.sampled_from(["v1", "discovery.k8s.io/v1", "apps/v1"])),
        "kind": _maybe(st.sampled_from(["Service", "EndpointSlice", "Pod", "List"])),
        "metadata": _maybe(
            st.fixed_dictionaries(
                {"name": _maybe(st.sampled_from(["a", "b"]))},
                optional={
                    "namespace": _maybe(st.just("shop")),
                    "labels": _maybe(st.just({"kubernetes.io/service-name": "a"})),
                },
            )
        ),
    },
    optional={
        "spec": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "ports": _maybe(st.lists(_maybe(st.just({"port": 80, "name": "http"})))),
                    "clusterIP": _VALUES,
                    "selector": _VALUES,
                },
            )
        ),
        "addressType": _maybe(st.just("IPv4")),
        "ports": _maybe(st.lists(_maybe(st.just({"port": 8080, "name": "http"})), max_size=2)),
        "endpoints": _maybe(
            st.lists(_maybe(st.just({"addresses": ["127.0.0.1"], "conditions": {}})), max_size=2)
        ),
        "status": _VALUES,
        "items": _VALUES,
    },
)

_TOKENS = st.sampled_from(
    [
        "apiVersion: v1\n",
        "kind: Service\n",
        "kind: List\nitems:\n",
        "metadata:\n",
        "  name: a\n",
        "spec:\n  ports:\n",
        "  - port: 80\n",
        "    name: x\n",
        "---\n",
        "- ",
        ": ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "<<: *a\n",
        "!!binary ",
        "!!python/name:os ",
        "2001-13-01",
        "\t",
        "  ",
        "\n",
        "~",
        "'",
        '"',
        "\\x",
        "%YAML 1.1\n",
        "? ",
        "|\n",
        "\x00",
        "\ufeff",
    ]
)


def _check_result(result: LoadResult) -> None:
    assert (result.model is None) == bool(result.errors)
    for error in result.errors:
        assert str(error).startswith("m/f.yaml")
        assert error.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_bytes_load_or_give_errors(content: bytes) -> None:
    _check_result(load_texts([("m/f.yaml", content)]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_yamlish_text_loads_or_gives_errors(text: str) -> None:
    _check_result(load_texts([("m/f.yaml", text)]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OBJECTS, min_size=1, max_size=3))
def test_object_shaped_documents_load_or_give_errors(objects: list[dict[str, object]]) -> None:
    _check_result(load_texts([("m/f.yaml", yaml.safe_dump_all(objects))]))
