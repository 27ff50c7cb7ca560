"""Compiled request matchers: strings, headers, query parameters and the path specifier.

A header present several times matches when any one of its values matches
(what Envoy 1.40 does; older releases matched the values joined with ",").
Values are compared as bytes; `ignore_case` and `case_sensitive: false` fold
ASCII letters only, as absl's `EqualsIgnoreCase` does. Regexes run on the
value decoded as UTF-8 (undecodable bytes kept as surrogates) and must match
the whole value, as `RE2::FullMatch` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields, header_name
from pydp.router.regex import compile_regex_matcher
from pydp.router.request import Headers, HeaderView, RequestView

StringTest = Callable[[bytes], bool]
PathTest = Callable[[bytes], bool]

_INT64 = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*\Z")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def regex_test(pattern: re.Pattern[str]) -> StringTest:
    fullmatch = pattern.fullmatch
    return lambda value: fullmatch(_decode(value)) is not None


def _nonempty(value: str, where: Where) -> bytes:
    if not value:
        raise where.error("value must not be empty")
    return value.encode("utf-8")


def _prefix_test(prefix: bytes, ignore_case: bool) -> StringTest:
    if ignore_case:
        low, n = prefix.lower(), len(prefix)
        return lambda v: v[:n].lower() == low
    return lambda v: v.startswith(prefix)


def _suffix_test(suffix: bytes, ignore_case: bool) -> StringTest:
    if ignore_case:
        low, n = suffix.lower(), len(suffix)
        return lambda v: len(v) >= n and v[len(v) - n :].lower() == low
    return lambda v: v.endswith(suffix)


def _exact_test(exact: bytes, ignore_case: bool) -> StringTest:
    if ignore_case:
        low = exact.lower()
        return lambda v: len(v) == len(low) and v.lower() == low
    return lambda v: v == exact


def _contains_test(part: bytes, ignore_case: bool) -> StringTest:
    if ignore_case:
        low = part.lower()
        return lambda v: low in v.lower()
    return lambda v: part in v


def compile_string_matcher(proto: Any, where: Where) -> StringTest:
    """An `envoy.type.matcher.v3.StringMatcher` as a test on bytes."""
    check_fields(
        proto, where, ("exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case")
    )
    kind = proto.WhichOneof("match_pattern")
    ignore_case = bool(proto.ignore_case)
    if kind == "exact":
        return _exact_test(proto.exact.encode("utf-8"), ignore_case)
    if kind == "prefix":
        return _prefix_test(_nonempty(proto.prefix, where.at("prefix")), ignore_case)
    if kind == "suffix":
        return _suffix_test(_nonempty(proto.suffix, where.at("suffix")), ignore_case)
    if kind == "contains":
        return _contains_test(_nonempty(proto.contains, where.at("contains")), ignore_case)
    if kind == "safe_regex":
        if ignore_case:
            raise where.at("ignore_case").error("ignore_case has no effect for safe_regex")
        return regex_test(compile_regex_matcher(proto.safe_regex, where.at("safe_regex")))
    raise where.error("one of exact, prefix, suffix, contains, safe_regex is required")


def _range_test(start: int, end: int) -> StringTest:
    def test(value: bytes) -> bool:
        m = _INT64.match(value)
        if m is None:
            return False
        number = int(m.group(1))
        return _INT64_MIN <= number <= _INT64_MAX and start <= number < end

    return test


@dataclass(frozen=True, slots=True)
class HeaderMatcher:
    """One `HeaderMatcher`. `test` is None for presence matches."""

    name: bytes
    test: StringTest | None
    present: bool
    invert: bool
    treat_missing_as_empty: bool

    def matches(self, headers: HeaderView) -> bool:
        values = headers.get_all(self.name)
        test = self.test
        if not values:
            if not self.treat_missing_as_empty:
                if self.invert:
                    return test is None and self.present
                return test is None and not self.present
            values = [b""]
        matched = self.present if test is None else any(test(v) for v in values)
        return matched != self.invert

    def __call__(self, headers: Headers) -> bool:
        """`matches` on a plain header list: a `pydp.upstream.retry.HeaderPredicate`."""
        return self.matches(HeaderView(headers))


_HEADER_FIELDS = (
    "name",
    "exact_match",
    "safe_regex_match",
    "range_match",
    "present_match",
    "prefix_match",
    "suffix_match",
    "contains_match",
    "string_match",
    "invert_match",
    "treat_missing_header_as_empty",
)


def compile_header_matcher(proto: Any, where: Where) -> HeaderMatcher:
    check_fields(proto, where, _HEADER_FIELDS)
    name = header_name(proto.name, where.at("name"))
    kind = proto.WhichOneof("header_match_specifier")
    test: StringTest | None = None
    present = True
    if kind == "exact_match":
        exact = proto.exact_match.encode("utf-8")
        test = (lambda v: True) if not exact else _exact_test(exact, False)
    elif kind == "safe_regex_match":
        test = regex_test(compile_regex_matcher(proto.safe_regex_match, where.at(kind)))
    elif kind == "range_match":
        test = _range_test(int(proto.range_match.start), int(proto.range_match.end))
    elif kind == "present_match":
        present = bool(proto.present_match)
    elif kind == "prefix_match":
        test = _prefix_test(_nonempty(proto.prefix_match, where.at(kind)), False)
    elif kind == "suffix_match":
        test = _suffix_test(_nonempty(proto.suffix_match, where.at(kind)), False)
    elif kind == "contains_match":
        test = _contains_test(_nonempty(proto.contains_match, where.at(kind)), False)
    elif kind == "string_match":
        test = compile_string_matcher(proto.string_match, where.at(kind))
    return HeaderMatcher(
        name=name,
        test=test,
        present=present,
        invert=bool(proto.invert_match),
        treat_missing_as_empty=bool(proto.treat_missing_header_as_empty),
    )


def compile_header_matchers(protos: Any, where: Where, field: str) -> tuple[HeaderMatcher, ...]:
    return tuple(compile_header_matcher(p, where.at(field, i)) for i, p in enumerate(protos))


@dataclass(frozen=True, slots=True)
class QueryParameterMatcher:
    name: bytes
    test: StringTest | None

    def matches(self, request: RequestView) -> bool:
        value = request.query.get(self.name)
        if value is None:
            return False
        return self.test is None or self.test(value)


def compile_query_matcher(proto: Any, where: Where) -> QueryParameterMatcher:
    check_fields(proto, where, ("name", "string_match", "present_match"))
    if not proto.name:
        raise where.at("name").error("value must not be empty")
    if len(proto.name) > 1024:
        raise where.at("name").error("value must be at most 1024 characters")
    test = None
    if proto.HasField("string_match"):
        test = compile_string_matcher(proto.string_match, where.at("string_match"))
    # present_match (true or false) and no specifier at all both mean "present", as in Envoy.
    return QueryParameterMatcher(proto.name.encode("utf-8"), test)


@dataclass(frozen=True, slots=True)
class PathSpec:
    """The compiled path specifier of a route.

    `matched` is the part of the path a `prefix_rewrite` replaces: the
    configured prefix or path, or None for regex routes (the whole path
    without the query).
    """

    test: PathTest
    matched: bytes | None
    ignore_case: bool


def compile_path_spec(match: Any, where: Where) -> PathSpec:
    """The path test of a `RouteMatch`; it receives the path without query or fragment."""
    kind = match.WhichOneof("path_specifier")
    case_sensitive = match.case_sensitive.value if match.HasField("case_sensitive") else True
    ignore_case = not case_sensitive
    if kind == "prefix":
        prefix = match.prefix.encode("utf-8")
        return PathSpec(_prefix_test(prefix, ignore_case), prefix, ignore_case)
    if kind == "path":
        path = match.path.encode("utf-8")
        return PathSpec(_exact_test(path, ignore_case), path, ignore_case)
    if kind == "safe_regex":
        pattern = compile_regex_matcher(match.safe_regex, where.at("safe_regex"))
        return PathSpec(regex_test(pattern), None, False)
    if kind == "path_separated_prefix":
        text = match.path_separated_prefix
        if re.fullmatch(r"[^?#]+[^?#/]", text) is None:
            raise where.at(kind).error('value does not match regex pattern "^[^?#]+[^?#/]$"')
        prefix = text.encode("utf-8")
        starts = _prefix_test(prefix, ignore_case)
        n = len(prefix)

        def separated(path: bytes) -> bool:
            return starts(path) and (len(path) == n or path[n : n + 1] == b"/")

        return PathSpec(separated, prefix, ignore_case)
    if kind is None:
        raise where.error("one of prefix, path, safe_regex, path_separated_prefix is required")
    raise where.at(kind).error("unsupported match type")
