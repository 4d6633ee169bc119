"""PromQL by a real parser (`promql-parser`, a binding of the Rust parser): selectors, metric
provenance and the canonical form of an expression.

- `selectors()`: every vector selector (metric name + label matchers), for lint's "can never
  match" and `--live` checks, the SLO test generator and the dashboards' metric checks.
- `canonical()`: the parser's own printing of the expression, so `sum(x) by (a)` and Prometheus's
  re-printing `sum by (a) (x)`, `1.5e9` and `1.5e+09`, `90m` and `1h30m` compare equal, while
  `a - b` and `b - a` do not (an unordered bag of tokens could not tell them apart).
- `PromQLSyntaxError`: the parser's reason with the position it happened at (line and column),
  found by parsing growing prefixes of a broken expression (only broken ones pay for that).

The tree is walked by hand over the node types: `promql_parser.walk` calls back into Python for
every node and costs as much as the parse itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import promql_parser as pp

_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
_ABSENT = frozenset({"absent", "absent_over_time"})
# where a prefix of an expression may stop and still be the start of a valid one
_UNFINISHED = re.compile(r"unclosed|unexpected end|unterminated|expected duration", re.I)
_TOKEN_END = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|[\w.:]+|=~|!~|==|!=|<=|>=|\S)""")


class PromQLSyntaxError(ValueError):
    """Not PromQL: the parser's reason, and where (`position`: 0-based offset into the expression)."""

    def __init__(self, message: str, position: int | None = None, expr: str = "") -> None:
        self.reason = message
        self.position = position
        where = ""
        if position is not None:
            line = expr.count("\n", 0, position) + 1
            column = position - (expr.rfind("\n", 0, position) + 1) + 1
            where = f"line {line}, column {column}: " if "\n" in expr else f"column {column}: "
        super().__init__(f"{where}{message}")


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


def _position(expr: str) -> int | None:
    """Offset of the first token after which no valid expression can continue."""
    for m in _TOKEN_END.finditer(expr):
        prefix = expr[: m.end()]
        try:
            pp.parse(prefix)
            continue
        except ValueError as exc:
            if _UNFINISHED.search(str(exc)):
                continue
        if any(_completes(prefix + tail) for tail in (" 1", " x", ")", " x)", " (x)", " (a) (x)")):
            continue
        return m.start()
    return len(expr.rstrip()) if expr.strip() else 0


def _completes(text: str) -> bool:
    try:
        pp.parse(text)
    except ValueError as exc:
        return bool(_UNFINISHED.search(str(exc)))
    return True


def parse(expr: str) -> Any:
    """The parsed expression; PromQLSyntaxError with the position of the problem."""
    try:
        return pp.parse(expr)
    except ValueError as exc:
        raise PromQLSyntaxError(str(exc), _position(expr), expr) from None


# String literals and comments, in the order they appear (a `#` inside a string is no comment).
_LITERAL = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|\#[^\n]*""")


def _skeleton(expr: str) -> tuple[str, list[str]]:
    """`expr` with its i-th string literal replaced by "i" and comments dropped, and the literals.

    Rules are repetitive (the same shape for every service, every SLO, every threshold): their
    skeletons repeat, and a skeleton is parsed once per batch (`selectors_many`).
    """
    literals: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        text = m.group(0)
        if text[0] == "#":
            return ""
        literals.append(text)
        return f'"{len(literals) - 1}"'

    return _LITERAL.sub(placeholder, expr), literals


def _string_value(literal: str) -> str:
    if "\\" not in literal or literal[0] == "`":
        return literal[1:-1]
    node = pp.parse(literal)  # Go escapes, as the parser reads them
    assert isinstance(node, pp.StringLiteral)
    return str(node.val)


def _walk(root: Any, literals: list[str] | None) -> list[Selector]:
    def value(v: str) -> str:
        return _string_value(literals[int(v)]) if literals is not None else v

    out: list[Selector] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, absent = stack.pop()
        kind = type(node)
        if kind is pp.VectorSelector:
            matchers = [Matcher(m.name, _OPS.get(str(m.op), str(m.op)), value(m.value))
                        for m in node.matchers.matchers]
            out.append(Selector(node.name or None, matchers, absent))
        elif kind is pp.BinaryExpr:
            stack += [(node.rhs, absent), (node.lhs, absent)]
        elif kind is pp.Call:
            inner = absent or node.func.name in _ABSENT
            stack += [(arg, inner) for arg in reversed(node.args)]
        elif kind is pp.MatrixSelector:
            stack.append((node.vector_selector, absent))
        elif kind is pp.AggregateExpr:
            stack.append((node.expr, absent))
            if node.param is not None:
                stack.append((node.param, absent))
        elif kind in (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr):
            stack.append((node.expr, absent))
    return out


def selectors_many(exprs: list[str]) -> list[list[Selector] | PromQLSyntaxError]:
    """The selectors of each expression, or its syntax error; each distinct skeleton parsed once.

    A skeleton that parses while its expression would not (a malformed escape or regex inside a
    string) is left to promtool, which judges every rule anyway.
    """
    parsed: dict[str, Any] = {}
    out: list[list[Selector] | PromQLSyntaxError] = []
    for expr in exprs:
        skeleton, literals = _skeleton(expr)
        root = parsed.get(skeleton)
        if root is None:
            try:
                root = parsed[skeleton] = pp.parse(skeleton)
            except ValueError:
                try:
                    parse(expr)  # the error in the expression's own terms, with its position
                except PromQLSyntaxError as exc:
                    out.append(exc)
                    continue
                root = parsed[skeleton] = pp.parse(expr)
                out.append(_walk(root, None))
                continue
        out.append(_walk(root, literals))
    return out


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`, in order of appearance; PromQLSyntaxError if not PromQL."""
    (found,) = selectors_many([expr])
    if isinstance(found, PromQLSyntaxError):
        raise found
    return found


def canonical(expr: str) -> str:
    """The expression as the parser prints it: equal for `expr` and Prometheus's re-printing of it."""
    return str(parse(expr).prettify())


def duration_seconds(text: str) -> float:
    """A Prometheus duration ('1h30m', '90s', '500ms') in seconds, as Prometheus parses it."""
    return float(pp.parse_duration(text).total_seconds())
