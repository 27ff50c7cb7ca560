"""Envoy's default tag extraction: flat stat names to a Prometheus name and labels.

Theory of operation. Envoy derives tags with its default rules
(`source/common/config/well_known_names.cc`), reproduced in `RULES`. Each
rule is a regular expression whose first group is cut out of the name and
whose second group is the tag value, or a dotted token pattern (`$` is the
captured token, `*` any one token, `**` any number). As in Envoy's
`TagProducerImpl`, every rule runs against the original name; rules without a
literal first token run first, then those whose first token matches the
name's, each group in the order it is declared (regular expressions before
token patterns); the cut ranges are removed together at the end. So
`cluster.outbound|80||a.b.upstream_rq_2xx` becomes
`cluster.b.upstream_rq_xx` with `envoy.response_code_class=2` and
`envoy.cluster_name=outbound|80||a`: dots in a cluster name and all, exactly
as stock Envoy does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

_ADDRESS = r"(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)"
_EXPANSIONS = {
    "<ADDRESS>": _ADDRESS,
    "<CIPHER>": r"[\w-]+",
    "<TLS_VERSION>": r"TLSv\d\.\d",
    "<TAG_VALUE>": r"[^\.]+",
    "<ROUTE_CONFIG_NAME>": r"[\w\-\./]+",
    "<SCOPED_ROUTE_CONFIG_NAME>": r"[\w\-\.]+",
    "<LISTENER_OR_CLUSTER_WITH_NAME>": r"(?:listener|cluster)\..*?",
    "<PROXY_PROTOCOL_VERSION>": r"\d",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One default tag extraction rule: a regex (`pattern`) or a token pattern (`tokens`)."""

    tag: str
    pattern: str = ""
    tokens: str = ""
    substr: str = ""
    negative: str = ""
    regex: re.Pattern[str] | None = field(default=None, compare=False)

    @property
    def prefix(self) -> str:
        """The literal first token a name must have for the rule to apply ("" if none)."""
        if self.tokens:
            first = self.tokens.split(".", 1)[0]
            return "" if first in ("$", "*", "**") else first
        match = re.match(r"\^([A-Za-z0-9_]+)\\\.", self.pattern)
        return match.group(1) if match else ""


def _re(tag: str, pattern: str, substr: str = "", negative: str = "") -> Rule:
    for key, value in _EXPANSIONS.items():
        pattern = pattern.replace(key, value)
    return Rule(tag, pattern=pattern, substr=substr, negative=negative, regex=re.compile(pattern))


def _tok(tag: str, tokens: str) -> Rule:
    return Rule(tag, tokens=tokens)


RULES: tuple[Rule, ...] = (
    _re("envoy.response_code", r"_rq(_(\d{3}))$", "_rq_"),
    _re("envoy.response_code_class", r"_rq_((\d))xx$", "_rq_"),
    _re(
        "envoy.dynamodb.partition_id",
        r"^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>"
        r"(\.__partition_id=(\w{7}))$",
        ".dynamodb.table.",
    ),
    _re(
        "envoy.dynamodb.operation",
        r"^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)"
        r"(\.(<TAG_VALUE>))(?:\.|$)",
        ".dynamodb.",
    ),
    _tok("envoy.mongo_callsite", "mongo.*.collection.*.callsite.$.query.**"),
    _re(
        "envoy.dynamodb.table",
        r"^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)",
        ".dynamodb.",
    ),
    _tok("envoy.mongo_collection", "mongo.*.collection.$.**.query.*"),
    _tok("envoy.mongo_cmd", "mongo.*.cmd.$.**"),
    _tok("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**"),
    _tok("envoy.http_user_agent", "http.*.user_agent.$.**"),
    _tok("envoy.virtual_cluster", "vhost.*.vcluster.$.**"),
    _tok("envoy.fault_downstream_cluster", "http.*.fault.$.**"),
    _re("envoy.ssl_cipher", r"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$", ".ssl.ciphers."),
    _re(
        "envoy.ssl_curve",
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$",
        ".ssl.curves.",
    ),
    _re(
        "envoy.ssl_sigalg",
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$",
        ".ssl.sigalgs.",
    ),
    _re(
        "envoy.ssl_version",
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$",
        ".ssl.versions.",
    ),
    _re(
        "envoy.ssl_cipher_suite",
        r"^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$",
        ".ssl.ciphers.",
    ),
    _tok("envoy.grpc_bridge_service", "cluster.*.grpc.$.**"),
    _tok("envoy.tcp_prefix", "tcp.$.**"),
    _tok("envoy.udp_prefix", "udp.$.**"),
    _tok("envoy.clientssl_prefix", "auth.clientssl.$.**"),
    _tok("envoy.ratelimit_prefix", "ratelimit.$.**"),
    _tok("envoy.cluster_name", "cluster.$.**"),
    _re("envoy.http_conn_manager_prefix", r"^listener\..*?\.http\.((<TAG_VALUE>)\.)", ".http."),
    _tok("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**"),
    _tok("envoy.ext_authz_prefix", "http.*.ext_authz.$.**"),
    _tok("envoy.http_conn_manager_prefix", "http.$.**"),
    _re(
        "envoy.worker_id",
        r"^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)|server|listener_manager"
        r"|thread_local_cluster_manager)\.worker_((\d+)\.)",
    ),
    _re("envoy.listener_address", r"^listener\.((<ADDRESS>|<TAG_VALUE>)\.)", negative="admin"),
    _tok("envoy.virtual_host", "vhost.$.**"),
    _tok("envoy.mongo_prefix", "mongo.$.**"),
    _re(
        "envoy.rds_route_config",
        r"^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$",
        ".rds.",
    ),
    _re(
        "envoy.scoped_rds_config",
        r"^http\.<TAG_VALUE>\.scoped_rds\.((<SCOPED_ROUTE_CONFIG_NAME>)\.)\w+?$",
        ".scoped_rds.",
    ),
    _tok("envoy.route", "vhost.*.route.$.**"),
    _tok("envoy.thrift_prefix", "thrift.$.**"),
    _tok("envoy.redis_prefix", "redis.$.**"),
    _tok("envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**"),
    _tok("envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**"),
    _tok("envoy.local_listener_ratelimit_prefix", "listener_local_ratelimit.$.**"),
    _tok("envoy.dns_filter_prefix", "dns_filter.$.**"),
    _tok("envoy.connection_limit_prefix", "connection_limit.$.**"),
    _re(
        "envoy.rbac_policy_name",
        r"^http\.<TAG_VALUE>\.rbac\.(?:<TAG_VALUE>\.)?policy\.((<TAG_VALUE>)\.)"
        r"(allowed|shadow_allowed|denied|shadow_denied)$",
    ),
    _tok("envoy.rbac_prefix", "$.rbac.**"),
    _re(
        "envoy.rbac_http_prefix",
        r"^http\.<TAG_VALUE>\.rbac\.((<TAG_VALUE>)\.).*?",
        negative="policy",
    ),
    _re("envoy.proxy_protocol_prefix", r"^proxy_proto\.((<TAG_VALUE>)\.).+$", negative="versions"),
    _re(
        "envoy.proxy_protocol_version",
        r"^proxy_proto\.((?:<TAG_VALUE>\.)?versions\.v(<PROXY_PROTOCOL_VERSION>)\.)\w+$",
    ),
    _tok("envoy.google_grpc_client_prefix", "grpc.$.**"),
    _re(
        "envoy.tls_certificate",
        r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.certificate\.((<TAG_VALUE>)\.).*$",
        ".ssl.certificate",
    ),
    _re("envoy.xds_resource_name", r"^sds\.((<TAG_VALUE>)\.).+"),
)


def _ordered(rules: tuple[Rule, ...]) -> tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]]:
    """Rules without a prefix, and rules by prefix; regexes before token patterns in each."""
    ordered = [r for r in rules if r.regex is not None] + [r for r in rules if r.regex is None]
    free = tuple(r for r in ordered if not r.prefix)
    by_prefix: dict[str, list[Rule]] = {}
    for rule in ordered:
        if rule.prefix:
            by_prefix.setdefault(rule.prefix, []).append(rule)
    return free, {k: tuple(v) for k, v in by_prefix.items()}


_FREE, _BY_PREFIX = _ordered(RULES)
Tags = tuple[tuple[str, str], ...]


def _match_tokens(pattern: list[str], tokens: list[str]) -> int | None:
    """Index of the token `$` captures when `tokens` match `pattern`, else None."""

    def walk(p: int, t: int) -> int | None:
        if p == len(pattern):
            return -1 if t == len(tokens) else None
        step = pattern[p]
        if step == "**":
            for skip in range(len(tokens) - t + 1):
                found = walk(p + 1, t + skip)
                if found is not None:
                    return found
            return None
        if t == len(tokens):
            return None
        if step in ("*", "$") or step == tokens[t]:
            found = walk(p + 1, t + 1)
            if found is not None and step == "$":
                return t
            return found
        return None

    found = walk(0, 0)
    return None if found is None or found < 0 else found


def _apply(rule: Rule, name: str) -> tuple[str, tuple[int, int]] | None:
    """The tag value and the character range to cut, if `rule` matches `name`."""
    if rule.substr and rule.substr not in name:
        return None
    if rule.regex is not None:
        match = rule.regex.search(name)
        if match is None or match.group(2) is None:
            return None
        value = match.group(2)
        if rule.negative and value == rule.negative:
            return None
        return value, match.span(1)
    tokens = name.split(".")
    index = _match_tokens(rule.tokens.split("."), tokens)
    if index is None:
        return None
    start = sum(len(t) + 1 for t in tokens[:index])
    end = start + len(tokens[index])
    if end < len(name):
        end += 1  # the token and the dot after it
    elif start > 0:
        start -= 1
    return tokens[index], (start, end)


@functools.lru_cache(maxsize=65536)
def extract_tags(name: str) -> tuple[str, Tags]:
    """Envoy's tag-extracted name and tags (tag names as Envoy spells them)."""
    first = name.split(".", 1)[0] if "." in name else ""
    rules = _FREE + _BY_PREFIX.get(first, ())
    tags: list[tuple[str, str]] = []
    cuts: list[tuple[int, int]] = []
    for rule in rules:
        found = _apply(rule, name)
        if found is not None:
            tags.append((rule.tag, found[0]))
            cuts.append(found[1])
    if not cuts:
        return name, ()
    keep = [True] * len(name)
    for start, end in cuts:
        for i in range(start, end):
            keep[i] = False
    return "".join(c for c, k in zip(name, keep, strict=True) if k), tuple(tags)
