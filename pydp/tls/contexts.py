"""`ssl.SSLContext`s built from SDS secrets, cached, and replaced when a secret rotates.

Theory of operation. `TlsContexts` is made once per process. The app hands
it the active secrets on every configuration change (`update`); the data
path asks it for a context per connection: `server(config)` for a filter
chain's `ServerTlsConfig`, `client(config, protocol)` for a cluster's
`ClientTlsConfig` and the pool's HTTP protocol (its ALPN fallback when the
config names none, as Envoy's pools do). A context is built at the first
request for its (config, secret digests) and then served from a cache until
a secret it uses changes: `update` then builds the replacement for every
context in use at once, and the next lookup gets it; connections already
made keep the context they were made with (an `SSLContext` holds its
certificates in memory, so the files of the old secret can go). Contexts not
asked for between two updates are dropped rather than rebuilt.

A context is built from files (`SecretFiles`), as Python's `ssl` requires.
Servers speak TLS 1.2 and 1.3, clients TLS 1.2 unless told otherwise
(Envoy's defaults; a client whose minimum is 1.3 may use 1.3). Verification
of the chain is `ssl`'s, SAN matching is `pydp.tls.san`'s, after the
handshake.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydp.tls.config import ClientTlsConfig, CommonTls, ServerTlsConfig
from pydp.tls.files import SecretFiles
from pydp.tls.san import pem_uri_sans
from pydp.tls.secrets import TlsSecret

log = logging.getLogger(__name__)

HTTP2_ALPN = "h2"
HTTP11_ALPN = "http/1.1"


class TlsUnavailable(Exception):
    """A context cannot be built now: a secret is missing or unusable."""


@dataclass(frozen=True, slots=True, eq=False)
class ServerContext:
    """A filter chain's TLS server context, and what the verified peer is checked against."""

    ssl_context: ssl.SSLContext
    config: ServerTlsConfig
    digests: tuple[str, ...] = ()  # of the secrets it was built from
    local_uri_sans: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ClientContext:
    """A cluster's TLS client context, with the SNI to send."""

    ssl_context: ssl.SSLContext
    config: ClientTlsConfig
    digests: tuple[str, ...] = ()  # of the secrets it was built from


@dataclass(slots=True)
class _Slot:
    context: ServerContext | ClientContext
    generation: int
    used: bool = True


class TlsContexts:
    """The process's TLS contexts, keyed by configuration, rebuilt when secrets change."""

    def __init__(self, files: SecretFiles | None = None) -> None:
        self._files = files
        self._secrets: Mapping[str, TlsSecret] = {}
        self._generation = 0
        self._slots: dict[Any, _Slot] = {}
        self.builds = 0  # contexts built so far (tests and stats)

    @property
    def files(self) -> SecretFiles:
        if self._files is None:
            self._files = SecretFiles()
        return self._files

    def update(self, secrets: Mapping[str, TlsSecret]) -> None:
        """The active secrets changed: rebuild the contexts in use whose secrets changed."""
        before = {name: s.digest for name, s in self._secrets.items()}
        if before == {name: s.digest for name, s in secrets.items()}:
            self._secrets = secrets
            return
        self._secrets = secrets
        self._generation += 1
        for key, slot in list(self._slots.items()):
            if not slot.used:
                del self._slots[key]
                continue
            try:
                self._lookup(key)
            except TlsUnavailable as exc:
                log.warning("TLS context for %s not rebuilt: %s", _label(key), exc)
                del self._slots[key]
                continue
            self._slots[key].used = False
        if self._files is not None:
            self._files.retain(secrets.values())

    def server(self, config: ServerTlsConfig) -> ServerContext:
        """The server context of a filter chain; raises `TlsUnavailable`."""
        context = self._lookup(config)
        assert isinstance(context, ServerContext)
        return context

    def client(self, config: ClientTlsConfig, protocol_alpn: str = "") -> ClientContext:
        """The client context of a cluster, offering `protocol_alpn` when the config names no
        ALPN; raises `TlsUnavailable`."""
        context = self._lookup((config, "" if config.common.alpn else protocol_alpn))
        assert isinstance(context, ClientContext)
        return context

    def close(self) -> None:
        self._slots.clear()
        if self._files is not None:
            self._files.close()

    def _lookup(self, key: Any) -> ServerContext | ClientContext:
        slot = self._slots.get(key)
        if slot is not None:
            slot.used = True
            if slot.generation == self._generation:
                return slot.context
            if slot.context.digests == self._digests(_common(key)):
                slot.generation = self._generation
                return slot.context
        context = self._build(key)
        self._slots[key] = _Slot(context, self._generation)
        return context

    def _digests(self, common: CommonTls) -> tuple[str, ...]:
        return tuple(self._secret(name).digest for name in common.secrets())

    def _secret(self, name: str) -> TlsSecret:
        secret = self._secrets.get(name)
        if secret is None:
            raise TlsUnavailable(f"secret {name!r} has not arrived")
        return secret

    def _build(self, key: Any) -> ServerContext | ClientContext:
        common = _common(key)
        digests = self._digests(common)
        cert = self._secret(common.certificate) if common.certificate else None
        roots = self._secret(common.validation) if common.validation else None
        if isinstance(key, ServerTlsConfig):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.maximum_version = common.max_version or ssl.TLSVersion.TLSv1_3
            if roots is not None:
                context.verify_mode = (
                    ssl.CERT_REQUIRED if key.require_client_certificate else ssl.CERT_OPTIONAL
                )
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.maximum_version = common.max_version or max(
                ssl.TLSVersion.TLSv1_2, common.min_version
            )
            context.verify_mode = ssl.CERT_REQUIRED if roots is not None else ssl.CERT_NONE
        context.minimum_version = common.min_version
        context.options |= ssl.OP_NO_RENEGOTIATION
        try:
            if cert is not None:
                paths = self.files.paths(cert)
                assert paths.certificate_chain is not None and paths.private_key is not None
                context.load_cert_chain(paths.certificate_chain, paths.private_key)
            if roots is not None:
                context.load_verify_locations(self.files.paths(roots).trusted_ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsUnavailable(f"cannot load {', '.join(common.secrets())}: {exc}") from exc
        alpn = common.alpn or ((key[1],) if isinstance(key, tuple) and key[1] else ())
        if alpn:
            context.set_alpn_protocols(list(alpn))
        self.builds += 1
        if isinstance(key, ServerTlsConfig):
            local = pem_uri_sans(cert.certificate_chain) if cert is not None else ()
            return ServerContext(context, key, digests, local)
        return ClientContext(context, key[0], digests)


def _common(key: Any) -> CommonTls:
    config = key if isinstance(key, ServerTlsConfig) else key[0]
    common: CommonTls = config.common
    return common


def _label(key: Any) -> str:
    common = _common(key)
    return "/".join(common.secrets()) or "(no secrets)"
