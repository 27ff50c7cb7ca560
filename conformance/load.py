"""Reading scenario files: YAML in, a validated `Scenario` out, or an error naming the field.

Every problem is a `ScenarioError` that names the file and the path of the
field (`steps[3].expect.status`), so a broken scenario is fixed in one look.
The format is described in `conformance/README.md`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from api import contract
from conformance import placeholders
from conformance.fields import AGGREGATE, RequestReader, ScenarioError, pattern_body
from conformance.scenario import (
    DEFAULT_CLIENT,
    Backend,
    Client,
    Expect,
    ExpectedDifference,
    MeshCA,
    Scenario,
    Step,
)

__all__ = ["ScenarioError", "bundled_dir", "load_all", "load_file", "parse", "pattern_body"]

NAME = re.compile(r"^[a-z0-9][-a-z0-9_.]*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # namespaces, service accounts
TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]{1,255}$")
DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?[smhd]?$")
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
BACKEND_PROTOCOLS = ("h1", "h2", "grpc", "any")
XDS_TYPES = {
    contract.TYPE_CLUSTER: "name",
    contract.TYPE_ENDPOINT: "cluster_name",
    contract.TYPE_LISTENER: "name",
    contract.TYPE_ROUTE: "name",
}
XDS_STATES = ("ACKED", "NACKED")
MODES = ("loopback", "pods")
XDS_SHORT = tuple(contract.SHORT_TYPE_NAMES.values())
ACTIONS = (
    "request",
    "eventually",
    "traffic",
    "apply",
    "delete",
    "xds_apply",
    "xds_delete",
    "stop_backend",
    "start_backend",
    "restart_control_plane",
    "wait_for_config",
    "xds_state",
    "sleep",
    "count",
    "renewals",
)
_MODIFIERS = {
    "request": {"repeat", "concurrency", "expect", "anonymous_backends"},
    "eventually": {"timeout", "expect"},
    "traffic": {"during", "expect", "concurrency"},
    "wait_for_config": {"timeout"},
    "xds_state": {"timeout"},
    "count": {"expect"},
    "renewals": {"timeout"},
}
TOP_LEVEL = {
    "name",
    "description",
    "docs",
    "backends",
    "manifests",
    "xds",
    "steps",
    "expect_differs",
    "modes",
    "ca",
    "clients",
    "cross",
}


def bundled_dir() -> Path:
    return Path(str(resources.files("conformance") / "scenarios"))


def load_all(folder: Path | None = None) -> list[Scenario]:
    folder = folder or bundled_dir()
    found = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return [load_file(p) for p in found]


def load_file(path: Path) -> Scenario:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ScenarioError(str(path), "(file)", f"not valid YAML: {e}") from None
    scenario = parse(doc, str(path))
    if scenario.name != path.stem:
        raise ScenarioError(str(path), "name", f"{scenario.name!r} differs from the file name")
    return scenario


def parse(doc: Any, source: str) -> Scenario:
    return _Parser(source).scenario(doc)


class _Parser(RequestReader):
    def scenario(self, doc: Any) -> Scenario:
        top = self.mapping(doc, "(top level)", TOP_LEVEL)
        for required in ("name", "description", "backends", "steps"):
            if required not in top:
                raise self.fail(required, "is required")
        name = self.text(top["name"], "name")
        if not NAME.match(name):
            raise self.fail("name", f"{name!r} must be lowercase letters, digits, - _ .")
        modes = tuple(
            self.choice(m, f"modes[{i}]", MODES)
            for i, m in enumerate(self.seq(top.get("modes", ["loopback"]), "modes"))
        )
        if not modes:
            raise self.fail("modes", f"needs at least one of {', '.join(MODES)}")
        self.pods_only = modes == ("pods",)
        ca = self.mesh_ca(top["ca"]) if "ca" in top else None
        self.has_ca = ca is not None
        backends = self.backend_list(top["backends"])
        self.backends = {b.name for b in backends}
        clients = self.client_list(top.get("clients", {}))
        self.clients.update({c.name: c for c in clients})
        cross = top.get("cross", False)
        if not isinstance(cross, bool):
            raise self.fail("cross", "must be true or false")
        if cross:
            self.pods_field("cross")
        docs = top.get("docs", [])
        docs = (docs,) if isinstance(docs, str) else tuple(self.seq(docs, "docs"))
        manifests = tuple(
            self.manifest(m, f"manifests[{i}]")
            for i, m in enumerate(self.seq(top.get("manifests", []), "manifests"))
        )
        xds = tuple(
            self.xds_resource(r, f"xds[{i}]")
            for i, r in enumerate(self.seq(top.get("xds", []), "xds"))
        )
        raw_steps = self.seq(top["steps"], "steps")
        if not raw_steps:
            raise self.fail("steps", "needs at least one step")
        steps = tuple(self.step(s, f"steps[{i}]", str(i + 1)) for i, s in enumerate(raw_steps))
        differs = tuple(
            self.difference(d, f"expect_differs[{i}]")
            for i, d in enumerate(self.seq(top.get("expect_differs", []), "expect_differs"))
        )
        ports: set[str] = set()
        for where, value in (("manifests", top.get("manifests")), ("xds", top.get("xds"))):
            for kind, ref in placeholders.find(value):
                self.placeholder(kind, ref, where, ports)
        for i, value in enumerate(raw_steps):
            for kind, ref in placeholders.find(value):
                self.placeholder(kind, ref, f"steps[{i}]", ports)
        return Scenario(
            name=name,
            description=self.text(top["description"], "description"),
            source=self.source,
            backends=backends,
            manifests=manifests,
            steps=steps,
            docs=tuple(self.text(d, f"docs[{i}]") for i, d in enumerate(docs)),
            xds=xds,
            expect_differs=differs,
            ports=tuple(sorted(ports)),
            modes=modes,
            ca=ca,
            clients=clients,
            cross=cross,
        )

    def placeholder(self, kind: str, ref: str, where: str, ports: set[str]) -> None:
        if kind == "port":
            ports.add(ref)
        elif ref not in self.backends:
            raise self.fail(where, f"{{backend:{ref}}} names no backend of this scenario")

    def backend_list(self, value: Any) -> tuple[Backend, ...]:
        out = []
        for name, spec in self.mapping(value, "backends").items():
            where = f"backends.{name}"
            if not isinstance(name, str) or not NAME.match(name):
                raise self.fail(where, "a backend name must be lowercase letters, digits, - _ .")
            if name == DEFAULT_CLIENT:
                raise self.fail(where, f"{DEFAULT_CLIENT!r} is the client pod's name")
            if not isinstance(spec, Mapping):
                out.append(Backend(name, self.choice(spec, where, BACKEND_PROTOCOLS)))
                continue
            allowed = {"protocol", "namespace", "service_account", "labels"}
            obj = self.mapping(spec, where, allowed)
            identity = self.identity(obj, where)
            labels = None
            if "labels" in obj:
                self.pods_field(f"{where}.labels")
                labels = self.labels(obj["labels"], f"{where}.labels")
            protocol = self.choice(
                obj.get("protocol", "any"), f"{where}.protocol", BACKEND_PROTOCOLS
            )
            out.append(Backend(name, protocol, labels=labels, **identity))
        if not out:
            raise self.fail("backends", "needs at least one backend")
        return tuple(out)

    def client_list(self, value: Any) -> tuple[Client, ...]:
        out = []
        for name, spec in self.mapping(value, "clients").items():
            where = f"clients.{name}"
            self.pods_field(where)
            if not isinstance(name, str) or not NAME.match(name):
                raise self.fail(where, "a client name must be lowercase letters, digits, - _ .")
            if name in self.backends:
                raise self.fail(where, f"{name!r} is a backend's name too")
            allowed = {"namespace", "service_account", "labels", "sidecar"}
            obj = self.mapping(spec or {}, where, allowed)
            sidecar = obj.get("sidecar", True)
            if not isinstance(sidecar, bool):
                raise self.fail(f"{where}.sidecar", "must be true or false")
            if name == DEFAULT_CLIENT and not sidecar:
                raise self.fail(f"{where}.sidecar", f"the default client {name!r} has a sidecar")
            labels = self.labels(obj.get("labels", {}), f"{where}.labels")
            out.append(Client(name, labels=labels, sidecar=sidecar, **self.identity(obj, where)))
        return tuple(out)

    def identity(self, obj: Mapping[str, Any], where: str) -> dict[str, str]:
        """A pod's `namespace` and `service_account`, as given."""
        out = {}
        for key in ("namespace", "service_account"):
            if key in obj:
                self.pods_field(f"{where}.{key}")
                value = self.text(obj[key], f"{where}.{key}")
                if not DNS_LABEL.match(value):
                    raise self.fail(f"{where}.{key}", f"{value!r} is not a DNS label (RFC 1123)")
                out[key] = value
        return out

    def labels(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        out = []
        for key, label in self.mapping(value, where).items():
            if not isinstance(label, str):
                raise self.fail(f"{where}.{key}", f"must be a string, got {label!r}")
            out.append((self.text(key, where), label))
        return tuple(out)

    def mesh_ca(self, value: Any) -> MeshCA:
        self.pods_field("ca")
        if value is True:
            return MeshCA()
        obj = self.mapping(value or {}, "ca", {"cert_ttl", "mtls_mode", "trust_domain"})
        fields: dict[str, str] = {}
        if "cert_ttl" in obj:
            ttl = str(obj["cert_ttl"])
            if not DURATION.match(ttl):
                raise self.fail("ca.cert_ttl", f"must be a duration such as 3s or 24h, got {ttl!r}")
            fields["cert_ttl"] = ttl
        if "mtls_mode" in obj:
            fields["mtls_mode"] = self.choice(obj["mtls_mode"], "ca.mtls_mode", MTLS_MODES)
        if "trust_domain" in obj:
            domain = self.text(obj["trust_domain"], "ca.trust_domain")
            if not TRUST_DOMAIN.match(domain):
                raise self.fail(
                    "ca.trust_domain", f"{domain!r}: lowercase letters, digits, '.', '_', '-'"
                )
            fields["trust_domain"] = domain
        return MeshCA(**fields)

    def manifest(self, value: Any, where: str) -> dict[str, Any]:
        obj = self.mapping(value, where)
        for key in ("apiVersion", "kind"):
            self.text(obj.get(key), f"{where}.{key}")
        meta = self.mapping(obj.get("metadata"), f"{where}.metadata")
        self.text(meta.get("name"), f"{where}.metadata.name")
        return obj

    def xds_resource(self, value: Any, where: str) -> dict[str, Any]:
        obj = self.mapping(value, where)
        type_url = self.choice(obj.get("@type"), f"{where}.@type", tuple(XDS_TYPES))
        self.text(obj.get(XDS_TYPES[type_url]), f"{where}.{XDS_TYPES[type_url]}")
        return obj

    def difference(self, value: Any, where: str) -> ExpectedDifference:
        obj = self.mapping(value, where, {"dataplane", "reason"})
        return ExpectedDifference(
            self.text(obj.get("dataplane"), f"{where}.dataplane"),
            self.text(obj.get("reason"), f"{where}.reason"),
        )

    def step(self, value: Any, where: str, step_id: str) -> Step:
        obj = self.mapping(value, where)
        actions = [a for a in ACTIONS if a in obj]
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            raise self.fail(
                where, f"needs exactly one action of {', '.join(ACTIONS)} (found {found})"
            )
        action = actions[0]
        self.mapping(obj, where, {action, "name"} | _MODIFIERS.get(action, set()))
        arg = obj[action]
        at = f"{where}.{action}"
        name = self.text(obj["name"], f"{where}.name") if "name" in obj else ""
        fields: dict[str, Any] = {"id": step_id, "action": action, "name": name}
        if action in ("request", "eventually", "traffic"):
            fields["request"] = self.request(arg, at)
            aggregate = {"request": AGGREGATE, "traffic": {"backends_seen"}}.get(action, set())
            fields["expect"] = self.expect(obj.get("expect", {}), f"{where}.expect", aggregate)
            if action == "request":
                fields["repeat"] = self.integer(obj.get("repeat", 1), f"{where}.repeat", 1, 10_000)
                anonymous = obj.get("anonymous_backends", False)
                if not isinstance(anonymous, bool):
                    raise self.fail(f"{where}.anonymous_backends", "must be true or false")
                named = fields["expect"].distribution or fields["expect"].backends_seen
                if anonymous and named:
                    raise self.fail(
                        f"{where}.anonymous_backends",
                        "cannot go with distribution or backends_seen, which name backends",
                    )
                fields["anonymous_backends"] = anonymous
            if "concurrency" in obj:
                fields["concurrency"] = self.integer(
                    obj["concurrency"], f"{where}.concurrency", 1, 256
                )
            if action == "eventually":
                if "expect" not in obj:
                    raise self.fail(f"{where}.expect", "is required: what to wait for")
                fields["timeout"] = self.number(
                    obj.get("timeout", 10), f"{where}.timeout", 0.1, 120
                )
            if action == "traffic":
                during = self.seq(obj.get("during"), f"{where}.during")
                if not during:
                    raise self.fail(f"{where}.during", "needs the steps to run under traffic")
                fields["during"] = tuple(
                    self.step(s, f"{where}.during[{i}]", f"{step_id}.{i + 1}")
                    for i, s in enumerate(during)
                )
        elif action == "apply":
            items = self.seq(arg, at)
            fields["objects"] = tuple(self.manifest(m, f"{at}[{i}]") for i, m in enumerate(items))
        elif action == "delete":
            fields["objects"] = tuple(
                self.ref(r, f"{at}[{i}]") for i, r in enumerate(self.seq(arg, at))
            )
        elif action == "xds_apply":
            items = self.seq(arg, at)
            fields["objects"] = tuple(
                self.xds_resource(r, f"{at}[{i}]") for i, r in enumerate(items)
            )
        elif action == "xds_delete":
            items = self.seq(arg, at)
            fields["objects"] = tuple(self.xds_ref(r, f"{at}[{i}]") for i, r in enumerate(items))
        elif action in ("stop_backend", "start_backend"):
            fields["target"] = self.backend_name(arg, at)
        elif action == "restart_control_plane":
            opts = self.mapping(arg or {}, at, {"down"})
            fields["seconds"] = self.number(opts.get("down", 0.0), f"{at}.down", 0, 30)
        elif action == "wait_for_config":
            fields["timeout"] = self.number(obj.get("timeout", 10), f"{where}.timeout", 0.1, 120)
        elif action == "xds_state":
            states = self.mapping(arg, at)
            for short, state in states.items():
                self.choice(short, f"{at}", XDS_SHORT)
                self.choice(state, f"{at}.{short}", XDS_STATES)
            fields["expect"] = Expect(xds=tuple(sorted(states.items())))
            fields["timeout"] = self.number(obj.get("timeout", 10), f"{where}.timeout", 0.1, 120)
        elif action == "sleep":
            fields["seconds"] = self.number(arg, at, 0, 30)
        elif action == "renewals":
            self.ca_field(at)
            fields["renewals"] = self.integer(arg, at, 1, 20)
            fields["timeout"] = self.number(obj.get("timeout", 30), f"{where}.timeout", 0.1, 300)
        elif action == "count":
            fields["target"] = self.text(arg, at)
            expect = self.mapping(obj.get("expect"), f"{where}.expect", {"requests"})
            requests = self.integer(expect.get("requests"), f"{where}.expect.requests")
            fields["expect"] = Expect(requests=requests)
        return Step(**fields)

    def ref(self, value: Any, where: str) -> dict[str, str]:
        obj = self.mapping(value, where, {"apiVersion", "kind", "name", "namespace"})
        return {
            "kind": self.text(obj.get("kind"), f"{where}.kind"),
            "name": self.text(obj.get("name"), f"{where}.name"),
            "namespace": str(obj.get("namespace", "default")),
        }

    def xds_ref(self, value: Any, where: str) -> dict[str, str]:
        obj = self.mapping(value, where, {"@type", "name"})
        return {
            "@type": self.choice(obj.get("@type"), f"{where}.@type", tuple(XDS_TYPES)),
            "name": self.text(obj.get("name"), f"{where}.name"),
        }
