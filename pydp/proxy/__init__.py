"""pydp's data path: HTTP and TCP proxying on trio, behaving as Envoy.

Entry points, called by the listener manager for each accepted connection:
`serve_http_connection` (an HTTP connection manager with the router) and
`serve_tcp_connection` (a TCP proxy). Both take a `ProxyRuntime`: the
`pydp.runtime.Runtime` plus `pools`, the process's running `PoolManager`.
"""

from pydp.proxy.context import ProxyRuntime
from pydp.proxy.downstream import serve_http_connection
from pydp.proxy.pools import PoolManager, open_pool_manager
from pydp.proxy.tcp import serve_tcp_connection

__all__ = [
    "PoolManager",
    "ProxyRuntime",
    "open_pool_manager",
    "serve_http_connection",
    "serve_tcp_connection",
]
