"""pydp's xDS client: bootstrap, ADS (State of the World and Delta), warming, reconnect.

Use: `config = load_bootstrap(path)`; `store = ConfigStore(compilers, handler)`;
`await nursery.start(XdsClient(config, store).run)`; the data path reads
`store.snapshot`, and `handler.config_updated` hears of every change.
"""

from pydp.xds.bootstrap import BootstrapConfig, BootstrapError, load_bootstrap, parse_bootstrap
from pydp.xds.client import Backoff, XdsClient
from pydp.xds.decode import Resource, Update
from pydp.xds.session import AdsSession
from pydp.xds.store import (
    Compiler,
    ConfigHandler,
    ConfigStore,
    ListenerChanges,
    Nack,
    Snapshot,
    TypeDump,
)

__all__ = [
    "AdsSession",
    "Backoff",
    "BootstrapConfig",
    "BootstrapError",
    "Compiler",
    "ConfigHandler",
    "ConfigStore",
    "ListenerChanges",
    "Nack",
    "Resource",
    "Snapshot",
    "TypeDump",
    "Update",
    "XdsClient",
    "load_bootstrap",
    "parse_bootstrap",
]
