from __future__ import annotations

import re

import pytest
from envoy.type.matcher.v3 import regex_pb2

from pydp.errors import ConfigError
from pydp.router._proto import Where
from pydp.router.regex import Rewrite, compile_re2

WHERE = Where("route_config t", "x")


@pytest.mark.parametrize(
    ("pattern", "text", "full_match"),
    [
        ("(?<year>[0-9]{4})", "2024", True),
        ("(?P<y>a)b", "ab", True),
        ("a{,2}", "a{,2}", True),
        ("a{,2}", "aa", False),
        ("a(?i)b", "aB", True),
        ("a(?i)b", "AB", False),
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "aC", False),
        ("x(a(?i)b|d)y", "xDy", True),
        ("[[:digit:]]+", "123", True),
        ("[[:alpha:][:digit:]]+", "a1", True),
        ("[^[:space:]]+", "a b", False),
        ("\\Qa.b\\E", "a.b", True),
        ("\\Qa.b\\E", "axb", False),
        ("\\x{41}", "A", True),
        ("a\\z", "a", True),
        ("\\d+", "٣", False),
        ("\\w", "é", False),
        ("[a&&b]", "&", True),
        ("(?s:.)", "\n", True),
    ],
)
def test_translation_keeps_re2_meaning(pattern: str, text: str, full_match: bool) -> None:
    assert (compile_re2(pattern, WHERE).fullmatch(text) is not None) is full_match


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a)\\1", "backreference"),
        ("a(?=b)", "lookahead"),
        ("a(?!b)", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?<!a)b", "lookbehind"),
        ("(?>a)", "atomic group"),
        ("a*+", "possessive"),
        ("a{2}+", "possessive"),
        ("a{1001}", "invalid repetition size"),
        ("a{1,1001}", "invalid repetition size"),
        ("a\\Z", "\\Z"),
        ("\\pL", "\\p"),
        ("\\C", "\\C"),
        ("(?U)a+", "ungreedy"),
        ("(?x)a", "group syntax"),
        ("(?#c)a", "comment"),
        ("[[:^alpha:]]", "negated POSIX"),
        ("[[:nope:]]", "invalid character class"),
        ("(", "missing )"),
        ("[a", "missing closing ]"),
        ("", "must not be empty"),
        ("a\\", "trailing backslash"),
    ],
)
def test_unsupported_or_invalid_patterns_are_config_errors(pattern: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_re2(pattern, WHERE)
    assert problem in err.value.problem
    assert err.value.field == "x"


def _rewrite(pattern: str, substitution: str) -> Rewrite:
    proto = regex_pb2.RegexMatchAndSubstitute(substitution=substitution)
    proto.pattern.regex = pattern
    return Rewrite.compile(proto, WHERE)


@pytest.mark.parametrize(
    ("pattern", "substitution", "text", "result"),
    [
        ("x*", "-", "abxd", "-a-b-d-"),
        ("o*", "[\\0]", "/foo/boo", "[]/[]f[oo]/[]b[oo]"),
        (
            "^/service/([^/]+)(/.*)$",
            "\\2/instance/\\1",
            "/service/foo/v1/api",
            "/v1/api/instance/foo",
        ),
        ("one", "two", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"),
        ("(a)|(b)", "[\\2]", "ab", "[][b]"),
        ("a", "\\\\", "a", "\\"),
        ("nomatch", "x", "/path", "/path"),
        ("^", "/p", "/a", "/p/a"),
        ("$", "!", "/a", "/a!"),
    ],
)
def test_rewrite_replaces_like_re2_global_replace(
    pattern: str, substitution: str, text: str, result: str
) -> None:
    assert _rewrite(pattern, substitution).apply(text) == result


@pytest.mark.parametrize(
    ("pattern", "substitution", "problem"),
    [
        ("a", "\\1", "refers to group 1"),
        ("(a)", "\\n", "invalid rewrite"),
        ("a", "x\\", "invalid rewrite"),
    ],
)
def test_bad_substitutions_are_refused(pattern: str, substitution: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        _rewrite(pattern, substitution)
    assert problem in err.value.problem
    assert err.value.field == "x.substitution"


def test_patterns_compile_ascii() -> None:
    assert compile_re2("\\d", WHERE).flags & re.ASCII
