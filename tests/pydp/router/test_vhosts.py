from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.router import DirectResponse, NoRoute
from pydp.router.vhosts import port_start
from tests.pydp.router.util import body_route, request, table


def _vhosts(*domains: list[str], **config: Any) -> dict[str, Any]:
    return {
        "name": "rc",
        "virtual_hosts": [
            {"name": f"v{i}", "domains": d, "routes": [body_route("/", f"v{i}")]}
            for i, d in enumerate(domains)
        ],
        **config,
    }


ORDER = _vhosts(
    ["foo.com"],  # v0 exact
    ["*.foo.com"],  # v1 suffix
    ["*-bar.foo.com"],  # v2 longer suffix
    ["foo.*"],  # v3 prefix
    ["foo.bar.*"],  # v4 longer prefix
    ["*"],  # v5 default
    ["with.port:8080"],  # v6 exact with port
)


@pytest.mark.parametrize(
    ("host", "vhost"),
    [
        ("foo.com", "v0"),
        ("FOO.Com", "v0"),
        ("a.foo.com", "v1"),
        ("x-bar.foo.com", "v2"),
        ("-bar.foo.com", "v1"),  # "*-bar.foo.com" needs at least one character before "-bar"
        (".foo.com", "v5"),  # "*.foo.com" needs one too
        ("foo.org", "v3"),
        ("foo.bar.org", "v4"),
        ("foo.", "v5"),  # the prefix wildcard needs a character after "foo."
        ("foo.com:80", "v3"),  # the port is part of the host: not the exact domain
        ("with.port:8080", "v6"),
        ("with.port", "v5"),
        ("elsewhere", "v5"),
        ("", "v5"),
    ],
)
def test_selection_order(host: str, vhost: str) -> None:
    decision = table(ORDER).route(request("/", host))
    assert isinstance(decision, DirectResponse)
    assert decision.body == vhost.encode()


def test_suffix_wildcard_beats_prefix_wildcard_even_when_shorter() -> None:
    t = table(_vhosts(["*.com"], ["api.example.*"]))
    decision = t.route(request("/", "api.example.com"))
    assert isinstance(decision, DirectResponse) and decision.body == b"v0"


def test_no_default_means_no_route() -> None:
    t = table(_vhosts(["a.com"]))
    assert isinstance(t.route(request("/", "b.com")), NoRoute)


def test_only_default_ignores_authority() -> None:
    t = table(_vhosts(["*"]))
    headers = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")]
    decision = t.route(headers)
    assert isinstance(decision, DirectResponse) and decision.body == b"v0"


@pytest.mark.parametrize(
    ("host", "vhost"),
    [
        ("foo.com:8080", "v0"),
        ("foo.com", "v0"),
        ("[::1]:80", "v1"),
        ("[::1]", "v1"),
        ("x.foo.com:1", "v2"),
    ],
)
def test_ignore_port_in_host_matching(host: str, vhost: str) -> None:
    t = table(_vhosts(["foo.com"], ["[::1]"], ["*.foo.com"], ignore_port_in_host_matching=True))
    decision = t.route(request("/", host))
    assert isinstance(decision, DirectResponse) and decision.body == vhost.encode()


@pytest.mark.parametrize(
    ("host", "start"),
    [("a:1", 1), ("a", -1), ("[::1]", -1), ("[::1]:8", 5), ("a:", 1), ("::1", 1)],
)
def test_port_start(host: str, start: int) -> None:
    assert port_start(host.encode()) == start


@pytest.mark.parametrize(
    ("domains", "problem"),
    [
        ([["a.com"], ["A.COM"]], "Duplicate entry of domain a.com in route rc"),
        ([["*"], ["*"]], "Only a single wildcard domain is permitted in route rc"),
        ([["*.a.com"], ["*.a.com"]], "Duplicate entry of domain *.a.com"),
        ([["a.*", "a.*"]], "Duplicate entry of domain a.*"),
        ([[]], "at least 1 item"),
    ],
)
def test_domain_conflicts_are_refused(domains: list[list[str]], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        table(_vhosts(*domains))
    assert problem in str(err.value)
    assert err.value.field.startswith("virtual_hosts[")
