"""Just enough PromQL to find vector selectors and compare expressions, without a parser.

promtool is the grammar's judge (`sre alerts lint` runs it on every rule); this module only
needs the selectors (metric name + label matchers) for the "can never match" and `--live`
checks, and a canonical form that ignores how Prometheus re-prints an expression
(`sum(x) by (a)` comes back from /api/v1/rules as `sum by (a) (x)`, `1.5e9` as `1.5e+09`,
`90m` as `1h30m`). One regex pass per expression keeps lint cheap on thousands of rules.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

_TOKEN = re.compile(
    r"""
    (?:\s+|\#[^\n]*+)*+     # whitespace and comments before a token belong to it (possessive)
    (?:
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=,(){}\[\]:@])
    )
    """,
    re.VERBOSE,
)

KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2",
})
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_NUMBER_WORDS = frozenset({"inf", "nan"})
AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile",
})
_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
                   "y": 31_536_000_000}
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")


class PromQLSyntaxError(ValueError):
    """The scanner met something no PromQL expression contains (promtool gives the full reason)."""


class Token(NamedTuple):
    kind: str  # string | duration | number | ident | op
    text: str
    pos: int


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass
class Selector:
    """One vector selector: `name{matchers}` (name may be None for `{__name__=~"..."}`)."""

    name: str | None
    matchers: list[Matcher] = field(default_factory=list)
    in_absent: bool = False  # inside absent()/absent_over_time(): expected to match nothing at times

    def metric(self) -> str | None:
        """The metric name, from the name or an equality matcher on __name__."""
        if self.name:
            return self.name
        for m in self.matchers:
            if m.label == "__name__" and m.op == "=":
                return m.value
        return None

    def promql(self) -> str:
        inner = ",".join(str(m) for m in self.matchers)
        return f"{self.name or ''}{{{inner}}}" if inner or not self.name else self.name


_TRAILER = re.compile(r"(?:\s+|\#[^\n]*+)*+")


def tokenize(expr: str) -> list[Token]:
    out: list[Token] = []
    end = 0
    new = tuple.__new__
    for m in _TOKEN.finditer(expr):
        if m.start() != end:
            break
        end = m.end()
        kind = m.lastgroup or ""
        start = m.start(kind)
        out.append(new(Token, (kind, expr[start:end], start)))
    if end != len(expr):
        trailer = _TRAILER.match(expr, end)
        pos = trailer.end() if trailer else end
        if pos != len(expr):
            raise PromQLSyntaxError(f"unexpected character {expr[pos]!r} at position {pos}")
    return out


def unquote(text: str) -> str:
    """A PromQL string literal's value (Go-style escapes)."""
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    if "\\" not in body:
        return body
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return body


# A looser lexer for finding selectors: one C-level findall, tokens as plain strings whose first
# character tells their kind. promtool judges the syntax; this only needs the structure.
_LEX = re.compile(
    r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|\#[^\n]*|[a-zA-Z_][a-zA-Z0-9_:]*|[0-9.][\w.]*"""
    r"""|=~|!~|==|!=|<=|>=|\S"""
)
_QUOTES = frozenset("\"'`")
_IDENT_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})


def _skip_parens(tokens: list[str], i: int) -> int:
    """Index just past the parenthesised group starting at tokens[i] == '('."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise PromQLSyntaxError("unclosed left parenthesis")


def _parse_matchers(tokens: list[str], i: int) -> tuple[list[Matcher], int]:
    """Parse `{a="x", b=~"y"}` starting at tokens[i] == '{'; return matchers and the index after '}'."""
    matchers: list[Matcher] = []
    i += 1
    n = len(tokens)
    while i < n:
        t = tokens[i]
        if t == "}":
            return matchers, i + 1
        if t == ",":
            i += 1
            continue
        if i + 2 >= n or tokens[i + 1] not in _MATCH_OPS or tokens[i + 2][0] not in _QUOTES:
            raise PromQLSyntaxError(f"bad label matcher near {t!r}")
        matchers.append(Matcher(t, tokens[i + 1], unquote(tokens[i + 2])))
        i += 3
    raise PromQLSyntaxError("unclosed label matcher braces")


def _absent(calls: list[str | None]) -> bool:
    return any(c in ("absent", "absent_over_time") for c in calls)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`, in order."""
    tokens = [t for t in _LEX.findall(expr) if t[0] != "#"]
    out: list[Selector] = []
    calls: list[str | None] = []  # the function each open parenthesis belongs to
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        first = t[0]
        if first == "(":
            prev = tokens[i - 1] if i else ""
            calls.append(prev if prev and prev[0] in _IDENT_FIRST else None)
            i += 1
            continue
        if first == ")":
            if calls:
                calls.pop()
            i += 1
            continue
        if first == "[":  # a range or subquery: durations only
            while i < n and tokens[i] != "]":
                i += 1
            continue
        if first in _IDENT_FIRST:
            nxt = tokens[i + 1] if i + 1 < n else ""
            if t in _LABEL_LIST_KEYWORDS and nxt == "(":
                i = _skip_parens(tokens, i + 1)
                continue
            if t in KEYWORDS or t.lower() in _NUMBER_WORDS:
                i += 1
                continue
            if nxt == "(" or (t in AGGREGATIONS and nxt in ("by", "without")):
                i += 1  # a function call or an aggregation
                continue
            sel = Selector(t, in_absent=_absent(calls))
            i += 1
            if nxt == "{":
                sel.matchers, i = _parse_matchers(tokens, i)
            out.append(sel)
            continue
        if first == "{":
            matchers, i = _parse_matchers(tokens, i)
            out.append(Selector(None, matchers, in_absent=_absent(calls)))
            continue
        i += 1
    return out


def duration_ms(text: str) -> int:
    return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def canonical_tokens(expr: str) -> list[str]:
    """A sorted token list that is the same for `expr` and Prometheus's re-printing of it.

    Whitespace, comments, quoting style, number and duration spelling and the position of
    `by (...)` do not change it; a change to a name, a matcher, a threshold or an operator does.
    """
    toks = tokenize(expr)
    out: list[str] = []
    for i, t in enumerate(toks):
        if t.kind == "string":
            out.append("s:" + unquote(t.text))
        elif t.kind == "duration":
            out.append(f"d:{duration_ms(t.text)}")
        elif t.kind == "number":
            out.append(f"n:{float(int(t.text, 16)) if t.text.lower().startswith('0x') else float(t.text)!r}")
        elif t.kind == "ident" and t.text.lower() in _NUMBER_WORDS:
            out.append(f"n:{float(t.text)!r}")
        elif t.text == "{" and i + 1 < len(toks) and toks[i + 1].text == "}":
            continue  # `x{}` is printed as `x`
        elif t.text == "}" and i > 0 and toks[i - 1].text == "{":
            continue
        else:
            out.append(t.text)
    return sorted(Counter(out).elements())
