"""Where the Kubernetes client gets its configuration: the pod it runs in, or a kubeconfig.

Nothing here imports the client until a client is made, so that the command
line can decide which source to use without paying for the import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class KubeSetupError(Exception):
    """No usable Kubernetes configuration; the message says what was tried."""


def in_pod(token: Path = SERVICE_ACCOUNT_TOKEN) -> bool:
    """True inside a Kubernetes pod that has a service account token mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and token.is_file()


def make_client(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False
) -> Any:
    """An `ApiClient` from the pod's service account, or from a kubeconfig file."""
    import kubernetes  # noqa: PLC0415

    configuration = kubernetes.client.Configuration()
    config: Any = kubernetes.config
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
    except (kubernetes.config.ConfigException, OSError) as e:
        source = "the pod's service account" if in_cluster else (kubeconfig or "the kubeconfig")
        raise KubeSetupError(f"cannot configure the Kubernetes client from {source}: {e}") from e
    return kubernetes.client.ApiClient(configuration)
