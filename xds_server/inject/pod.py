"""One pod template, with the sidecar added: a pure function from dicts to dicts.

What a pod gets, in `spec.initContainers`, ahead of its own:

1. `xdsmesh-init` runs the capture (`python -m xds_server.inject.capture`)
   as root with NET_ADMIN and NET_RAW, and exits;
2. `xdsmesh-proxy`, a native sidecar (`restartPolicy: Always`, Kubernetes
   1.29 and later): it renders its bootstrap from the downward API and
   execs Envoy or pydp as UID 1337, whose traffic the capture lets through.
   Its startup probe holds the pod's other containers (its own init
   containers included) until the proxy is ready, so they never send
   traffic into a proxy that is not listening.

plus an in-memory `emptyDir` for the bootstrap, a projected service account
token for the audience `xdsmesh` (the sidecar's proof of identity on the xDS
stream when the control plane runs a CA), and the annotation
`xdsmesh.io/status` naming what was added. Injecting first removes what an
earlier injection added, so injecting twice gives what injecting once gave.
A pod that opts out (`xdsmesh.io/inject: "false"`, annotation or label) or
uses the host's network (the capture would rewrite the node's iptables) is
left as it is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api import contract
from xds_server.inject import options as o

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Injected:
    """The pod template after injection, or unchanged with the reason."""

    template: Obj
    skipped: str | None = None


def inject_template(template: Mapping[str, Any], opts: o.InjectOptions) -> Injected:
    """`template` (a pod, or a pod template: metadata and spec) with the sidecar."""
    out: Obj = copy.deepcopy(dict(template))
    meta = out.setdefault("metadata", {}) or {}
    out["metadata"] = meta
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return Injected(out, "it has no pod spec")
    opted_out = str(annotations.get(o.INJECT, labels.get(o.INJECT, ""))).lower() == "false"
    if opted_out:
        return Injected(out, f"{o.INJECT} is false")
    if spec.get("hostNetwork"):
        return Injected(out, "it uses the host's network")
    _remove_injected(meta, spec)
    annotations = meta.get("annotations") or {}

    dataplane = str(annotations.get(o.DATAPLANE, opts.dataplane))
    if dataplane not in o.DATAPLANES:
        raise ValueError(
            f"annotation {o.DATAPLANE}: must be one of {', '.join(o.DATAPLANES)}, got {dataplane!r}"
        )
    app_port = _app_port(annotations, spec)
    init = [_capture(opts, annotations, app_port), _proxy(opts, dataplane, app_port)]
    spec["initContainers"] = init + list(spec.get("initContainers") or [])
    volume = {"name": o.VOLUME_NAME, "emptyDir": {"medium": "Memory"}}
    spec["volumes"] = [*(spec.get("volumes") or []), volume, _token_volume()]
    status = {
        "dataplane": dataplane,
        "image": opts.image,
        "initContainers": [o.INIT_NAME, o.PROXY_NAME],
        "volumes": [o.VOLUME_NAME, o.TOKEN_VOLUME_NAME],
    }
    meta["annotations"] = {**annotations, o.STATUS: json.dumps(status, separators=(",", ":"))}
    return Injected(out)


def _remove_injected(meta: Obj, spec: Obj) -> None:
    """Takes out what an earlier injection added (its status annotation says what)."""
    annotations = meta.get("annotations") or {}
    if o.STATUS not in annotations:
        return
    ours = {o.INIT_NAME, o.PROXY_NAME}
    for field in ("initContainers", "containers"):
        if field in spec:
            spec[field] = [c for c in spec[field] or [] if c.get("name") not in ours]
    if "initContainers" in spec and not spec["initContainers"]:
        del spec["initContainers"]
    if "volumes" in spec:
        ours_volumes = {o.VOLUME_NAME, o.TOKEN_VOLUME_NAME}
        spec["volumes"] = [v for v in spec["volumes"] or [] if v.get("name") not in ours_volumes]
        if not spec["volumes"]:
            del spec["volumes"]
    del annotations[o.STATUS]
    meta["annotations"] = annotations


def _app_port(annotations: Mapping[str, Any], spec: Mapping[str, Any]) -> int:
    """The annotation, else the first TCP port the pod's containers declare, else 8080."""
    text = annotations.get(o.APP_PORT)
    if text is not None:
        value = str(text)
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise ValueError(f"annotation {o.APP_PORT}: must be a port number, got {value!r}")
        return int(value)
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("protocol", "TCP") == "TCP" and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return 8080


def _capture(opts: o.InjectOptions, annotations: Mapping[str, Any], app_port: int) -> Obj:
    def setting(key: str, default: str) -> str:
        return str(annotations.get(key, default))

    args = [
        "--proxy-uid",
        str(opts.proxy_uid),
        "--inbound-port",
        str(opts.inbound_port),
        "--outbound-port",
        str(opts.outbound_port),
        "--include-inbound-ports",
        setting(o.INCLUDE_INBOUND_PORTS, str(app_port)),
    ]
    for flag, key, default in (
        ("--exclude-inbound-ports", o.EXCLUDE_INBOUND_PORTS, ""),
        ("--exclude-outbound-ports", o.EXCLUDE_OUTBOUND_PORTS, opts.exclude_outbound_ports),
        (
            "--include-outbound-ip-ranges",
            o.INCLUDE_OUTBOUND_IP_RANGES,
            opts.include_outbound_ip_ranges,
        ),
        (
            "--exclude-outbound-ip-ranges",
            o.EXCLUDE_OUTBOUND_IP_RANGES,
            opts.exclude_outbound_ip_ranges,
        ),
    ):
        if value := setting(key, default):
            args += [flag, value]
    return _image(
        opts,
        {
            "name": o.INIT_NAME,
            "command": ["python", "-m", "xds_server.inject.capture"],
            "args": args,
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"memory": "64Mi"},
            },
            "securityContext": {
                "runAsUser": 0,
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]},
            },
        },
    )


def _proxy(opts: o.InjectOptions, dataplane: str, app_port: int) -> Obj:
    args = [
        "--dataplane",
        dataplane,
        "--xds-address",
        opts.xds_address,
        "--app-port",
        str(app_port),
        "--admin-port",
        str(opts.admin_port),
        "--config",
        f"{o.CONFIG_DIR}/bootstrap.yaml",
        "--xds-token-file",
        f"{o.TOKEN_DIR}/{o.TOKEN_FILE}",
    ]
    if opts.delta:
        args.append("--delta")
    probe_command = [
        "python",
        "-m",
        "xds_server.inject.sidecar",
        "--probe",
        "--admin-port",
        str(opts.admin_port),
    ]
    return _image(
        opts,
        {
            "name": o.PROXY_NAME,
            "restartPolicy": "Always",
            "command": ["python", "-m", "xds_server.inject.sidecar"],
            "args": args,
            "env": [
                _field_env("POD_NAME", "metadata.name"),
                _field_env("POD_NAMESPACE", "metadata.namespace"),
                _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            ],
            "volumeMounts": [
                {"name": o.VOLUME_NAME, "mountPath": o.CONFIG_DIR},
                {"name": o.TOKEN_VOLUME_NAME, "mountPath": o.TOKEN_DIR, "readOnly": True},
            ],
            "startupProbe": {
                "exec": {"command": probe_command},
                "periodSeconds": 1,
                "timeoutSeconds": 3,
                "failureThreshold": 600,
            },
            "readinessProbe": {
                "exec": {"command": probe_command},
                "periodSeconds": 10,
                "timeoutSeconds": 3,
            },
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "256Mi"},
            },
            "securityContext": {
                "runAsUser": opts.proxy_uid,
                "runAsGroup": opts.proxy_uid,
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        },
    )


def _token_volume() -> Obj:
    """The pod's service account token for the control plane (audience `xdsmesh`)."""
    token = {
        "audience": contract.XDS_TOKEN_AUDIENCE,
        "expirationSeconds": o.TOKEN_TTL,
        "path": o.TOKEN_FILE,
    }
    return {
        "name": o.TOKEN_VOLUME_NAME,
        "projected": {"sources": [{"serviceAccountToken": token}]},
    }


def _image(opts: o.InjectOptions, container: Obj) -> Obj:
    head = {"name": container.pop("name"), "image": opts.image}
    if opts.image_pull_policy:
        head["imagePullPolicy"] = opts.image_pull_policy
    return {**head, **container}


def _field_env(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
