"""The CA's files in a Kubernetes Secret (`--ca-secret NAMESPACE/NAME`), for replicas to share.

The Secret (type Opaque) holds the same file names as `--ca-dir` (see
`store`), one data key each. As with the directory, files are only added:
the first replica to start creates the Secret with a new root, and a
replica that loses that race (409 Conflict) reads the winner's. Adding to an
existing Secret patches in the new keys with the `resourceVersion` that was
read, so the API server refuses a write based on a stale read and the
addition is tried again on the new contents. Other keys are kept.

The server needs `get`, `create` and `patch` on Secrets in that namespace
(`deploy/overlays/mtls` grants them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from xds_server.ca.certs import CertificateError
from xds_server.ca.store import FILES

ATTEMPTS = 5
_NOT_FOUND, _CONFLICT = 404, 409


def parse_reference(text: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` as a pair; raises ValueError naming what is wrong."""
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"{text!r} is not NAMESPACE/NAME")
    return namespace, name


class SecretFiles:
    """The CA files in the Secret `namespace/name`, read and added with `client` (an ApiClient)."""

    def __init__(self, client: Any, namespace: str, name: str) -> None:
        import kubernetes  # noqa: PLC0415

        self._kubernetes = kubernetes
        self._api = kubernetes.client.CoreV1Api(client)
        self.namespace, self.name = namespace, name

    def __str__(self) -> str:
        return f"Secret {self.namespace}/{self.name}"

    def read(self) -> dict[str, bytes]:
        secret = self._get()
        return {} if secret is None else self._files(secret)

    def add(self, files: dict[str, bytes]) -> bool:
        for _ in range(ATTEMPTS):
            secret = self._get()
            if secret is None:
                if self._create(files):
                    return True
                continue  # another replica created it first: look at what it holds
            if set(files) & set(self._files(secret)):
                return False
            if self._patch(secret.metadata.resource_version, files):
                return True
        raise CertificateError(f"{self}: kept changing while files were added")

    def _files(self, secret: Any) -> dict[str, bytes]:
        out = {}
        for key, value in (secret.data or {}).items():
            if key in FILES:
                try:
                    out[key] = base64.b64decode(value, validate=True)
                except binascii.Error:
                    raise CertificateError(f"{self}: data key {key} is not base64") from None
        return out

    def _get(self) -> Any:
        try:
            return self._api.read_namespaced_secret(self.name, self.namespace)
        except self._kubernetes.client.ApiException as e:
            if e.status == _NOT_FOUND:
                return None
            raise self._error("get", e) from None

    def _create(self, files: dict[str, bytes]) -> bool:
        body = self._kubernetes.client.V1Secret(
            metadata=self._kubernetes.client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={"app.kubernetes.io/part-of": "xdsmesh"},
            ),
            type="Opaque",
            data={name: _encode(content) for name, content in files.items()},
        )
        try:
            self._api.create_namespaced_secret(self.namespace, body)
        except self._kubernetes.client.ApiException as e:
            if e.status == _CONFLICT:
                return False
            raise self._error("create", e) from None
        return True

    def _patch(self, version: str | None, files: dict[str, bytes]) -> bool:
        """Add `files` to the Secret as it was at `version` (the API server checks that)."""
        metadata = {"resourceVersion": version} if version else {}
        body = {
            "metadata": metadata,
            "data": {name: _encode(content) for name, content in files.items()},
        }
        try:
            self._api.patch_namespaced_secret(self.name, self.namespace, body)
        except self._kubernetes.client.ApiException as e:
            if e.status == _CONFLICT:
                return False
            raise self._error("patch", e) from None
        return True

    def _error(self, verb: str, e: Any) -> CertificateError:
        reason = f"{e.status} {e.reason}".strip()
        hint = (
            f" (the server's service account needs {verb} on secrets in {self.namespace})"
            if e.status == 403
            else ""
        )
        return CertificateError(f"{self}: cannot {verb} it: {reason}{hint}")


def _encode(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")
