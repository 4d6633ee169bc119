"""YAML in and out, fast enough for thousands of rules.

PyYAML's constructor and representer run in Python and cost more than promtool itself on a big
tree. Loading keeps libyaml's composer and turns its node graph into plain values directly
(strings need no work; the few other scalars go through PyYAML's own constructors, so the
result is exactly `yaml.safe_load`'s). Dumping writes the block style of rule files (mappings,
sequences, `|` literals for multi-line PromQL) itself and quotes every string that a YAML
reader could take for something else; tests check that each output loads back to its input.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
# First characters for which a plain scalar may resolve to something other than a string
# (bool, int, float, null, timestamp, merge, value: PyYAML's implicit resolvers).
_RISKY_FIRST = frozenset("yYnNtTfFoO-+0123456789.<~=")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's composer, with PyYAML's tag resolution skipped where its answer is `str` anyway."""

    def resolve(self, kind: Any, value: Any, implicit: Any, _scalar: Any = ScalarNode, _str: str = _STR,
                _risky: frozenset[str] = _RISKY_FIRST) -> Any:
        if kind is _scalar and (not implicit[0] or (value and value[0] not in _risky)):
            return _str
        return super().resolve(kind, value, implicit)

    # No path resolvers are registered for safe loading: skip the two calls per node.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_LOADER: Any = _Loader
_MERGE = "tag:yaml.org,2002:merge"


class _Constructor(yaml.constructor.SafeConstructor):
    pass


_SC = _Constructor()


def _value(node: Any) -> Any:
    cls = node.__class__
    if cls is ScalarNode:
        if node.tag == _STR:
            return node.value
        return _SC.construct_object(node, deep=True)
    if cls is MappingNode:
        out = {}
        for k, v in node.value:
            if k.tag == _MERGE:
                raise _NeedsFullLoader
            out[_value(k)] = _value(v)
        return out
    if cls is SequenceNode:
        return [_value(n) for n in node.value]
    raise _NeedsFullLoader


class _NeedsFullLoader(Exception):
    pass


def load(text: str) -> Any:
    """`yaml.safe_load(text)`, faster; raises yaml.YAMLError like it."""
    node = yaml.compose(text, Loader=_LOADER)
    if node is None:
        return None
    try:
        return _value(node)
    except _NeedsFullLoader:  # merge keys and the like: rare in rule files, let PyYAML do it all
        return yaml.load(text, Loader=_LOADER)


def load_many(texts: list[str]) -> list[Any] | None:
    """Many small documents in one pass (one stream, one loader); None if any of them is bad."""
    if not texts or any("\n---" in t or "\n..." in t or t.startswith(("---", "...")) for t in texts):
        return None
    stream = "".join(f"--- \n{t}\n" for t in texts)
    try:
        nodes = list(yaml.compose_all(stream, Loader=_LOADER))
        if len(nodes) != len(texts):
            return None
        return [_value(n) if n is not None else None for n in nodes]
    except (yaml.YAMLError, _NeedsFullLoader):
        return None


# ---------------------------------------------------------------- dumping

_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_RESOLVER = yaml.resolver.Resolver()


def _plain_ok(s: str) -> bool:
    if not s or s != s.strip() or s[0] in _INDICATORS or "\n" in s or "\t" in s:
        return False
    if ": " in s or " #" in s or s.endswith(":") or not s.isprintable():
        return False
    if s[0] in _RISKY_FIRST:
        return bool(_RESOLVER.resolve(ScalarNode, s, (True, False)) == _STR)
    return True


_TRAILING_SPACE = re.compile(r"[ \t]$", re.M)


def _literal_ok(s: str) -> bool:
    return ("\n" in s and not s.startswith((" ", "\n")) and not _TRAILING_SPACE.search(s)
            and not s.endswith("\n\n") and all(line.isprintable() for line in s.split("\n")))


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return ".nan" if v != v else (".inf" if v > 0 else "-.inf")
    if isinstance(v, float):
        text = repr(v)
        mantissa, e, exp = text.partition("e")
        # YAML 1.1 reads a float only with a dot in it: 1e-05 would come back a string
        return text if "." in mantissa or not e else f"{mantissa}.0e{exp}"
    if isinstance(v, int):
        return str(int(v))
    s = str(v)
    if _plain_ok(s):
        return s
    if s.isprintable():  # a JSON string is a YAML double-quoted scalar
        return json.dumps(s, ensure_ascii=False)
    return _quote(s)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote(s: str) -> str:
    """A YAML double-quoted scalar with YAML's own escapes (\\U for characters beyond the BMP)."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _emit(obj: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(obj, dict):
        for k, v in obj.items():
            _emit_entry(f"{pad}{_scalar(k)}:", v, indent, out)
    else:
        for item in obj:
            if isinstance(item, dict) and item:
                first = True
                for k, v in item.items():
                    prefix = f"{pad}- " if first else f"{pad}  "
                    _emit_entry(f"{prefix}{_scalar(k)}:", v, indent + 2, out)
                    first = False
            elif isinstance(item, list) and item:
                out.append(f"{pad}-")
                _emit(item, indent + 2, out)
            else:
                out.append(f"{pad}- {_inline(item)}")


def _emit_entry(head: str, v: Any, indent: int, out: list[str]) -> None:
    if isinstance(v, dict | list) and v:
        out.append(head)
        _emit(v, indent + 2, out)
    elif isinstance(v, str) and _literal_ok(v):
        out.append(head + (" |" if v.endswith("\n") else " |-"))
        body = v[:-1] if v.endswith("\n") else v
        pad = " " * (indent + 2)
        out.extend(pad + line if line else "" for line in body.split("\n"))
    else:
        out.append(f"{head} {_inline(v)}")


def _inline(v: Any) -> str:
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _scalar(v)


def dump(data: Any) -> str:
    """Block-style YAML of dicts, lists and scalars (keys in their order)."""
    if not isinstance(data, dict | list) or not data:
        return _inline(data) + "\n"
    out: list[str] = []
    _emit(data, 0, out)
    return "\n".join(out) + "\n"
