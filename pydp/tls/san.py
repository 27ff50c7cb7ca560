"""Subject alternative names: what a certificate says, and Envoy's `match_typed_subject_alt_names`.

Python's `ssl` checks the chain but cannot match SANs, so pydp matches them
itself once the handshake is done, as Envoy's default certificate validator
would have during it: a certificate passes when any one matcher matches any
one SAN of the matcher's type (URI or DNS here). A DNS matcher with `exact`
follows DNS rules, as Envoy's does: case-insensitive, and a wildcard SAN
`*.example.com` stands for one label (`a.example.com`, not `example.com`
nor `a.b.example.com`). No matcher: every certificate passes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from pydp.errors import ConfigError

Message = Any
URI = "URI"
DNS = "DNS"
_SAN_TYPES = {1: "EMAIL", 2: DNS, 3: URI, 4: "IP_ADDRESS", 5: "OTHER_NAME"}
_STRING_FIELDS = {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"}


@dataclass(frozen=True, slots=True)
class StringMatch:
    """An `envoy.type.matcher.v3.StringMatcher` on text."""

    kind: str  # "exact" | "prefix" | "suffix" | "contains" | "safe_regex"
    value: str
    ignore_case: bool = False
    regex: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(text) is not None
        value = self.value
        if self.ignore_case:
            text, value = text.lower(), value.lower()
        if self.kind == "exact":
            return text == value
        if self.kind == "prefix":
            return text.startswith(value)
        if self.kind == "suffix":
            return text.endswith(value)
        return value in text


@dataclass(frozen=True, slots=True)
class SanMatcher:
    """One `SubjectAltNameMatcher`: a SAN type and how its values must look."""

    san_type: str  # URI or DNS
    match: StringMatch

    def matches(self, uri_sans: Sequence[str], dns_sans: Sequence[str]) -> bool:
        if self.san_type == URI:
            return any(self.match.matches(san) for san in uri_sans)
        if self.match.kind == "exact":
            return any(dns_name_match(self.match.value, san) for san in dns_sans)
        return any(self.match.matches(san) for san in dns_sans)


def sans_match(
    matchers: Sequence[SanMatcher], uri_sans: Sequence[str], dns_sans: Sequence[str]
) -> bool:
    """Whether a certificate with these SANs passes `matchers` (any one matching suffices)."""
    return not matchers or any(m.matches(uri_sans, dns_sans) for m in matchers)


def dns_name_match(name: str, san: str) -> bool:
    """Envoy's `dnsNameMatch`: `san` (possibly `*.<domain>`) names host `name`."""
    name, san = name.lower(), san.lower()
    if name == san:
        return True
    if len(san) > 1 and san.startswith("*.") and len(name) > len(san) - 1:
        head, tail = name[: len(name) - len(san) + 1], name[len(name) - len(san) + 1 :]
        return "." not in head and tail == san[1:]
    return False


def compile_string_match(proto: Message, resource: str, path: str) -> StringMatch:
    for descriptor, _ in proto.ListFields():
        if descriptor.name not in _STRING_FIELDS:
            raise ConfigError(resource, f"{path}.{descriptor.name}", "is not supported by pydp")
    kind = proto.WhichOneof("match_pattern")
    ignore_case = bool(proto.ignore_case)
    if kind is None:
        raise ConfigError(resource, path, "one of exact, prefix, suffix, contains, safe_regex")
    if kind == "safe_regex":
        # Imported here: pydp.router imports the clusters, which import this module.
        from pydp.router._proto import Where  # noqa: PLC0415
        from pydp.router.regex import compile_re2  # noqa: PLC0415

        where = Where(resource, f"{path}.safe_regex")
        for descriptor, _ in proto.safe_regex.ListFields():
            if descriptor.name not in ("regex", "google_re2"):
                raise where.at(descriptor.name).error("is not supported by pydp")
        if ignore_case:
            raise ConfigError(resource, f"{path}.ignore_case", "has no effect for safe_regex")
        return StringMatch(
            kind,
            proto.safe_regex.regex,
            regex=compile_re2(proto.safe_regex.regex, where.at("regex")),
        )
    value = getattr(proto, kind)
    if not value and kind != "exact":
        raise ConfigError(resource, f"{path}.{kind}", "must not be empty")
    return StringMatch(kind, value, ignore_case)


def compile_san_matchers(
    protos: Sequence[Message], resource: str, path: str
) -> tuple[SanMatcher, ...]:
    """`match_typed_subject_alt_names`; SAN types other than URI and DNS are refused."""
    out = []
    for i, proto in enumerate(protos):
        at = f"{path}[{i}]"
        for descriptor, _ in proto.ListFields():
            if descriptor.name not in ("san_type", "matcher"):
                raise ConfigError(resource, f"{at}.{descriptor.name}", "is not supported by pydp")
        san_type = _SAN_TYPES.get(proto.san_type)
        if san_type not in (URI, DNS):
            raise ConfigError(
                resource,
                f"{at}.san_type",
                f"{san_type or 'SAN_TYPE_UNSPECIFIED'} is not supported by pydp (URI and DNS are)",
            )
        if not proto.HasField("matcher"):
            raise ConfigError(resource, f"{at}.matcher", "is required")
        out.append(
            SanMatcher(san_type, compile_string_match(proto.matcher, resource, f"{at}.matcher"))
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CertFacts:
    """What pydp reads from a peer's (or its own) certificate."""

    uri_sans: tuple[str, ...] = ()
    dns_sans: tuple[str, ...] = ()
    subject: str = ""
    sha256: str = ""


def cert_facts(der: bytes) -> CertFacts:
    """The SANs, subject (RFC 4514) and SHA-256 (hex) of a DER certificate."""
    digest = hashlib.sha256(der).hexdigest()
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
    except ValueError:
        return CertFacts(sha256=digest)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return CertFacts(subject=subject, sha256=digest)
    return CertFacts(
        tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        tuple(san.get_values_for_type(x509.DNSName)),
        subject,
        digest,
    )


def pem_uri_sans(chain_pem: bytes) -> tuple[str, ...]:
    """The URI SANs of the first certificate of a PEM chain."""
    try:
        cert = x509.load_pem_x509_certificates(chain_pem)[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, IndexError, x509.ExtensionNotFound):
        return ()
    return tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
