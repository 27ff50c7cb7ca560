"""TLS handshakes, verified and counted as Envoy counts them.

`accept` terminates TLS on an accepted connection (a filter chain with a
`DownstreamTlsContext`), `originate` starts it on a connection to an
upstream host; both return a `pydp.tls.stream.TlsStream`. Both finish what
`ssl` cannot do: the peer certificate's SANs are matched after the handshake,
and a mismatch ends the connection as a failed handshake would. Stats go
under the given prefix (`listener.<addr>.ssl.` or `cluster.<name>.ssl.`)
with Envoy's names: `handshake` (with `versions.<v>`, `ciphers.<c>`,
`no_certificate`, `session_reused`) on success; `fail_verify_no_cert` (with
`connection_error`) when a required client certificate is missing,
`fail_verify_error` when the chain does not verify, `fail_verify_san` when
no SAN matches, `connection_error` for the rest.
"""

from __future__ import annotations

import ssl

import trio

from pydp.stats import Stats
from pydp.tls.contexts import ClientContext, ServerContext
from pydp.tls.peer import TlsPeer
from pydp.tls.san import cert_facts, sans_match
from pydp.tls.stream import TlsStream

_NO_CERT = "PEER_DID_NOT_RETURN_A_CERTIFICATE"


class TlsFailure(Exception):
    """The handshake failed or the peer's certificate was refused; `stats` says how."""

    def __init__(self, stats: tuple[str, ...], detail: str) -> None:
        super().__init__(detail)
        self.stats = stats


def failure_stats(exc: BaseException) -> tuple[str, ...]:
    """Envoy's `ssl.*` counters for a failed handshake (the stream raises from `ssl`'s error)."""
    cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return ("fail_verify_error",)
    if isinstance(cause, ssl.SSLError) and cause.reason == _NO_CERT:
        return ("connection_error", "fail_verify_no_cert")
    return ("connection_error",)


def count_handshake(stats: Stats, prefix: str, tls: TlsStream, peer_cert: bool) -> None:
    stats.inc(prefix + "handshake")
    version = tls.version()
    if version:
        stats.inc(f"{prefix}versions.{version}")
    cipher = tls.cipher()
    if cipher:
        stats.inc(f"{prefix}ciphers.{cipher[0]}")
    if not peer_cert:
        stats.inc(prefix + "no_certificate")
    if tls.session_reused:
        stats.inc(prefix + "session_reused")


async def accept(
    stream: trio.abc.Stream,
    context: ServerContext,
    stats: Stats,
    prefix: str,
) -> tuple[TlsStream, TlsPeer]:
    """Terminate TLS on `stream`; raises `TlsFailure` (counted)."""
    tls = TlsStream(stream, context.ssl_context, server_side=True)
    await _handshake(tls, stats, prefix)
    der = tls.getpeercert(binary_form=True)
    facts = cert_facts(der) if der else None
    matchers = context.config.common.san_matchers
    if facts is not None and not sans_match(matchers, facts.uri_sans, facts.dns_sans):
        _count(stats, prefix, ("fail_verify_san",))
        raise TlsFailure(
            ("fail_verify_san",), f"no SAN of {facts.uri_sans + facts.dns_sans} matches"
        )
    count_handshake(stats, prefix, tls, der is not None)
    if facts is None:
        return tls, TlsPeer(local_uri_sans=context.local_uri_sans)
    return tls, TlsPeer(
        uri_sans=facts.uri_sans,
        dns_sans=facts.dns_sans,
        subject=facts.subject,
        sha256=facts.sha256,
        local_uri_sans=context.local_uri_sans,
    )


async def _handshake(tls: TlsStream, stats: Stats, prefix: str) -> None:
    try:
        await tls.do_handshake()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        failed = failure_stats(exc)
        _count(stats, prefix, failed)
        raise TlsFailure(failed, f"TLS handshake failed: {exc.__cause__ or exc}") from exc


async def originate(
    stream: trio.abc.Stream, context: ClientContext, stats: Stats, prefix: str
) -> TlsStream:
    """Start TLS on a connection to an upstream host; raises `TlsFailure` (counted)."""
    tls = TlsStream(
        stream, context.ssl_context, server_side=False, server_hostname=context.config.sni or None
    )
    await _handshake(tls, stats, prefix)
    der = tls.getpeercert(binary_form=True)
    matchers = context.config.common.san_matchers
    if matchers:
        facts = cert_facts(der) if der else None
        if facts is None or not sans_match(matchers, facts.uri_sans, facts.dns_sans):
            _count(stats, prefix, ("fail_verify_san",))
            sans = (facts.uri_sans + facts.dns_sans) if facts else ()
            raise TlsFailure(("fail_verify_san",), f"no SAN of {sans} matches")
    count_handshake(stats, prefix, tls, der is not None)
    return tls


def _count(stats: Stats, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        stats.inc(prefix + name)
