"""Filling a verify query's `{{ labels.x }}` with alert data as PromQL data, never as PromQL code.

Each placeholder is escaped for where it stands in the query (PromQL's string rules, which are
Go's): inside "..." a backslash, a double quote and line breaks are escaped; inside '...' the same
for the single quote; a `...` raw string has no escapes, so a value holding a backtick is refused.
Outside any string only a number or a plain name may be put (a threshold, a metric name); any other
value is refused. A value that cannot be made safe raises TemplateError: the alert then does not
fit its runbook, and nothing runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
# Control characters Go's string syntax has no short escape for are refused rather than encoded.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class UnsafeValue(ValueError):
    """A value that cannot be placed at this spot of a PromQL query safely."""


def escape_string(value: str, quote: str) -> str:
    """`value` as the body of a PromQL string literal delimited by `quote` (", ' or `)."""
    if quote == "`":
        if "`" in value:
            raise UnsafeValue("a backtick cannot appear inside a `raw` PromQL string")
        return value
    if _CONTROL.search(value):
        raise UnsafeValue("control characters are not accepted in a PromQL string")
    out = "".join(_SHORT_ESCAPES.get(ch, ch) for ch in value)
    return out.replace(quote, "\\" + quote)


def bare_value(value: str) -> str:
    """A value placed outside any string: a number or a plain name, nothing else."""
    if _NUMBER.match(value) or _NAME.match(value):
        return value
    raise UnsafeValue("outside a string only a number or a name (letters, digits, _ and :) is accepted")


def _quote_at(text: str, end: int, start: int = 0, quote: str | None = None) -> str | None:
    """The string delimiter open at `end` in PromQL `text` (None outside strings), scanning from
    `start` in state `quote`. Template placeholders carry no quotes, so scanning the template works."""
    i = start
    while i < end:
        ch = text[i]
        if quote is None:
            if ch in "\"'`":
                quote = ch
            elif ch == "#":  # a comment to the end of the line
                nl = text.find("\n", i)
                i = end if nl < 0 or nl >= end else nl
        elif ch == "\\" and quote != "`":
            i += 1  # an escaped character never closes the string
        elif ch == quote:
            quote = None
        i += 1
    return quote


def render_promql(text: str, pattern: re.Pattern[str], lookup: Callable[[re.Match[str]], str]) -> str:
    """Replace each `pattern` match of the query `text` with `lookup(match)`, escaped for its spot."""
    out: list[str] = []
    pos = 0
    quote: str | None = None
    for m in pattern.finditer(text):
        quote = _quote_at(text, m.start(), pos, quote)
        value = lookup(m)
        try:
            safe = bare_value(value) if quote is None else escape_string(value, quote)
        except UnsafeValue as exc:
            raise UnsafeValue(f"{m.group(0)} = {value[:80]!r}: {exc}") from None
        out.append(text[pos:m.start()])
        out.append(safe)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
