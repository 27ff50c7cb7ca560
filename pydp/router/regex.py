"""RE2 patterns on Python's `re`.

Theory of operation: Envoy's `safe_regex` is RE2. Python's `re` agrees on the
common subset, so a pattern is scanned once, token by token, and either
copied, rewritten into the Python spelling of the same thing, or refused:

- refused because RE2 refuses them too (Envoy NACKs): backreferences,
  lookaround, atomic groups, possessive quantifiers, conditionals, comments,
  `\\Z`, repeat counts over 1000;
- refused because Python cannot express them: `(?U)` (ungreedy), `\\C`,
  `\\p{..}` classes, negated POSIX classes;
- rewritten: `(?<name>` -> `(?P<name>`, `\\z` -> `\\Z`, `\\Q..\\E` -> escaped
  text, `\\x{...}` -> `\\U........`, POSIX classes `[[:alpha:]]` -> ranges,
  `{,n}` (a literal in RE2) -> `\\{,n}`, flag groups `(?i)` in the middle of a
  group -> `(?i:...)` scoped to the rest of that group.

Patterns compile with `re.ASCII` so `\\d`, `\\w`, `\\s`, `\\b` are ASCII as in
RE2. Known residual differences: case folding under `(?i)` is ASCII-only here,
and `\\s` also matches `\\v`; header values and paths cannot carry either.

`Rewrite` implements `RE2::GlobalReplace`: non-overlapping matches left to
right, an empty match right after the previous match is skipped, and the
substitution understands only `\\0`..`\\9` and `\\\\`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields

_MAX_REPEAT = 1000
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_REPEAT = re.compile(r"\{(\d*)(,(\d*))?\}")
_FLAGS = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])")
_REFUSED_GROUPS = (
    ("(?=", "lookahead"),
    ("(?!", "lookahead"),
    ("(?<=", "lookbehind"),
    ("(?<!", "lookbehind"),
    ("(?>", "atomic group"),
    ("(?#", "comment group"),
    ("(?(", "conditional"),
    ("(?P=", "backreference"),
    ("(?P>", "recursion"),
)


class _Translator:
    def __init__(self, pattern: str, where: Where) -> None:
        self.p = pattern
        self.where = where
        self.out: list[str] = []
        self.i = 0
        # Per open group, the bare flag groups seen in it so far: each became a
        # scoped `(?x:` that must close with the group and reopen after a `|`.
        self.groups: list[list[str]] = [[]]

    def fail(self, what: str) -> Exception:
        return self.where.error(f"regex {self.p!r}: {what} is not supported")

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.escape(in_class=False)
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.open_group()
            elif c == ")":
                flags = self.groups.pop() if len(self.groups) > 1 else []
                self.out.append(")" * (len(flags) + 1))
                self.i += 1
            elif c == "|":
                flags = self.groups[-1]
                self.out.append(")" * len(flags) + "|" + "".join(f"(?{f}:" for f in flags))
                self.i += 1
            elif c in "*+?":
                self.out.append(c)
                self.i += 1
                if self.i < len(p) and p[self.i] == "+":
                    raise self.fail("possessive quantifier")
            elif c == "{":
                self.repeat()
            else:
                self.out.append(c)
                self.i += 1
        self.out.append(")" * len(self.groups[0]))
        return "".join(self.out)

    def escape(self, *, in_class: bool) -> None:
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise self.where.error(f"regex {p!r}: trailing backslash")
        d = p[i + 1]
        if d in "123456789":
            raise self.fail("backreference")
        if d == "Z":
            raise self.fail("\\Z")
        if d in "pPC":
            raise self.fail(f"\\{d}")
        if d == "z" and not in_class:
            self.out.append("\\Z")
        elif d == "Q":
            end = p.find("\\E", i + 2)
            end = len(p) if end < 0 else end
            self.out.append(re.escape(p[i + 2 : end]))
            self.i = min(end + 2, len(p))
            return
        elif d == "x" and i + 2 < len(p) and p[i + 2] == "{":
            end = p.find("}", i + 3)
            digits = p[i + 3 : end] if end > 0 else ""
            if not digits or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise self.where.error(f"regex {p!r}: bad \\x{{...}} escape")
            value = int(digits, 16)
            if value > 0x10FFFF:
                raise self.where.error(f"regex {p!r}: bad \\x{{...}} escape")
            self.out.append(f"\\U{value:08x}")
            self.i = end + 1
            return
        else:
            self.out.append(p[i : i + 2])
        self.i = i + 2

    def char_class(self) -> None:
        p = self.p
        self.out.append("[")
        self.i += 1
        if self.i < len(p) and p[self.i] == "^":
            self.out.append("^")
            self.i += 1
        first = True
        while self.i < len(p):
            c = p[self.i]
            if c == "]" and not first:
                self.out.append("]")
                self.i += 1
                return
            first = False
            if c == "\\":
                self.escape(in_class=True)
            elif p.startswith("[:", self.i):
                end = p.find(":]", self.i + 2)
                name = p[self.i + 2 : end] if end > 0 else ""
                if name.startswith("^"):
                    raise self.fail("negated POSIX class")
                if name not in _POSIX:
                    raise self.where.error(f"regex {p!r}: invalid character class range")
                self.out.append(_POSIX[name])
                self.i = end + 2
            elif c in "[&~|":
                self.out.append("\\" + c)
                self.i += 1
            else:
                self.out.append(c)
                self.i += 1
        raise self.where.error(f"regex {p!r}: missing closing ]")

    def open_group(self) -> None:
        p, i = self.p, self.i
        if not p.startswith("(?", i):
            self.out.append("(")
            self.groups.append([])
            self.i += 1
            return
        for prefix, what in _REFUSED_GROUPS:
            if p.startswith(prefix, i):
                raise self.fail(what)
        if p.startswith("(?P<", i) or p.startswith("(?<", i):
            start = i + (4 if p[i + 2] == "P" else 3)
            self.out.append("(?P<")
            self.groups.append([])
            self.i = start
            return
        m = _FLAGS.match(p, i)
        if m is None:
            raise self.where.error(f"regex {p!r}: invalid or unsupported group syntax")
        on, off, end = m.group(1), m.group(2) or "", m.group(3)
        if "U" in on + off:
            raise self.fail("the U (ungreedy) flag")
        spec = on + (f"-{off}" if off else "")
        if end == ":":
            self.out.append(f"(?{spec}:")
            self.groups.append([])
        elif not spec:
            raise self.where.error(f"regex {p!r}: missing argument to flag group")
        else:
            # RE2 applies a bare flag group to the rest of the enclosing group.
            self.out.append(f"(?{spec}:")
            self.groups[-1].append(spec)
        self.i = m.end()

    def repeat(self) -> None:
        p = self.p
        m = _REPEAT.match(p, self.i)
        if m is None or (not m.group(1)):
            # Not a repetition in RE2: a literal brace.
            self.out.append("\\{")
            self.i += 1
            return
        low = int(m.group(1))
        high = m.group(3)
        if low > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
            raise self.where.error(f"regex {p!r}: invalid repetition size: {m.group(0)}")
        if high and int(high) < low:
            raise self.where.error(f"regex {p!r}: bad repetition operator: {m.group(0)}")
        self.out.append(m.group(0))
        self.i = m.end()
        if self.i < len(p) and p[self.i] == "+":
            raise self.fail("possessive quantifier")


def compile_re2(pattern: str, where: Where) -> re.Pattern[str]:
    """Compile an RE2 pattern, or raise `ConfigError` naming `where`."""
    if not pattern:
        raise where.error("regex must not be empty")
    translated = _Translator(pattern, where).run()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(translated, re.ASCII)
    except (re.error, OverflowError, RecursionError) as exc:
        raise where.error(f"regex {pattern!r}: {exc}") from None


def compile_regex_matcher(proto: Any, where: Where) -> re.Pattern[str]:
    """Compile an `envoy.type.matcher.v3.RegexMatcher`."""
    check_fields(proto, where, ("regex", "google_re2"))
    return compile_re2(proto.regex, where.at("regex"))


def _parse_substitution(text: str, groups: int, where: Where) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            literal.append(c)
            i += 1
            continue
        d = text[i + 1] if i + 1 < len(text) else ""
        if d == "\\":
            literal.append("\\")
        elif d.isdigit() and d.isascii():
            n = int(d)
            if n > groups:
                raise where.error(
                    f"substitution {text!r} refers to group {n}; pattern has {groups}"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(n)
        else:
            raise where.error(f"substitution {text!r}: invalid rewrite pattern")
        i += 2
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A compiled `RegexMatchAndSubstitute`: `apply` replaces every match as RE2 does."""

    pattern: re.Pattern[str]
    parts: tuple[str | int, ...]

    @classmethod
    def compile(cls, proto: Any, where: Where) -> Rewrite:
        check_fields(proto, where, ("pattern", "substitution"))
        pattern = compile_regex_matcher(proto.pattern, where.at("pattern"))
        substitution: str = proto.substitution
        if any(c in substitution for c in "\0\r\n"):
            raise where.at("substitution").error("value must not contain NUL, CR or LF")
        parts = _parse_substitution(substitution, pattern.groups, where.at("substitution"))
        return cls(pattern, parts)

    def _expand(self, m: re.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in self.parts)

    def apply(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        last_end = -1
        count = 0
        end = len(text)
        while pos <= end:
            m = self.pattern.search(text, pos)
            if m is None:
                break
            start, stop = m.span()
            if pos < start:
                out.append(text[pos:start])
            if start == stop and start == last_end:
                if pos < end:
                    out.append(text[pos])
                pos += 1
                continue
            out.append(self._expand(m))
            pos = last_end = stop
            count += 1
        if count == 0:
            return text
        if pos < end:
            out.append(text[pos:])
        return "".join(out)
