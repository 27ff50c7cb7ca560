"""A route's retry and hash policies, compiled by `pydp.upstream` (their consumer).

The router supplies what upstream cannot have: its header matchers (for
`retriable_headers` / `retriable_request_headers`) and its RE2 regexes (for a
header hash's `regex_rewrite`), both reporting errors at their full path.
"""

from __future__ import annotations

from typing import Any

from pydp.router._proto import Where
from pydp.router.matchers import HeaderMatcher, compile_header_matcher
from pydp.router.regex import Rewrite
from pydp.upstream.hashing import HashPolicy, compile_hash_policies
from pydp.upstream.retry import RetryPolicy, compile_retry_policy


def compile_retry(proto: Any, where: Where) -> RetryPolicy:
    def header_matcher(matcher: Any, path: str) -> HeaderMatcher:
        return compile_header_matcher(matcher, Where(where.resource, path))

    return compile_retry_policy(proto, where.resource, where.path, header_matcher)


def compile_hashes(protos: Any, where: Where) -> tuple[HashPolicy, ...]:
    def rewrite(proto: Any, path: str) -> Rewrite:
        return Rewrite.compile(proto, Where(where.resource, path))

    return compile_hash_policies(protos, where.resource, where.path, rewrite)
