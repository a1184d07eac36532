"""Encode a value as a YAML flow node that cannot change the document around it.

Templates never splice raw text into YAML: every `{{ ... }}` passes through
`to_yaml_flow` (Jinja's `finalize`), which emits a double-quoted string, a
number, a boolean, null, or a flow mapping/sequence of those. A value holding a
newline, `: `, `#`, `{{` or `yes` therefore stays one string of the type we
meant, wherever in a line the template put it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Characters a YAML double-quoted scalar must not hold raw (outside YAML 1.2's c-printable set), plus
# line-break look-alikes (U+2028/2029, NEL) that YAML 1.1 readers such as kubectl's treat as breaks.
_MUST_ESCAPE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# Text in which neither JSON (quote, backslash, C0 controls) nor _MUST_ESCAPE changes a character: most values
# (names, images, hosts) are, and their double-quoted scalar is the text between quotes.
_NOTHING_TO_ESCAPE = re.compile('[^"\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]*')
# json.dumps(text, ensure_ascii=False) is this encoder's encode(text); one encoder, not one per call.
_JSON = json.JSONEncoder(ensure_ascii=False)


def _unicode_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def quote_string(text: str) -> str:
    """A YAML double-quoted scalar for `text` (JSON escapes plus YAML's \\u escapes for the rest)."""
    if type(text) is str and _NOTHING_TO_ESCAPE.fullmatch(text):  # a subclass may format itself otherwise
        return f'"{text}"'
    return _MUST_ESCAPE.sub(_unicode_escape, _JSON.encode(text))


class UnsafeValue(TypeError):
    """A value that has no YAML form (an object, NaN, ...)."""


def to_yaml_flow(value: Any) -> str:
    """The flow node for `value`. Exact str, dict and list (what contexts hold) are tested first; subclasses and
    every other type take the general path below, whose answer for those three is the same."""
    kind = type(value)
    if kind is str:
        return quote_string(value)
    if kind is dict:
        return "{" + ", ".join([f"{quote_string(str(k))}: {to_yaml_flow(v)}" for k, v in value.items()]) + "}"
    if kind is list:
        return "[" + ", ".join([to_yaml_flow(v) for v in value]) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeValue(f"cannot write {value!r} to YAML")
        return repr(value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, dict):
        items = ", ".join(f"{quote_string(str(k))}: {to_yaml_flow(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_yaml_flow(v) for v in value) + "]"
    raise UnsafeValue(f"cannot write a {type(value).__name__} to YAML")


def read_back(value: Any) -> Any:
    """What `to_yaml_flow(value)` reads back as, without writing and parsing it (render/shapes.py), for the
    exact types contexts hold: str, int, bool, None and lists, tuples and dicts of them (keys as str() makes
    them). Anything else (a float, a subclass) raises TypeError: only parsing the text may say.
    Property-tested against the parse in tests/test_shapes.py."""
    kind = type(value)
    if kind is str:
        if _SURROGATE.search(value):
            raise TypeError("a lone surrogate")  # libyaml refuses its escape; ruamel's reading decides
        return value
    if kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        out = {_read_key(k): read_back(v) for k, v in value.items()}
        if len(out) != len(value):  # {1: .., "1": ..} writes one key twice: a duplicate the parse refuses
            raise TypeError("two keys that write as one")
        return out
    if kind is list or kind is tuple:
        return [read_back(v) for v in value]
    raise TypeError(kind.__name__)


def _read_key(key: Any) -> str:
    if type(key) in (str, int, bool) or key is None:
        return read_back(str(key))  # quote_string(str(key)): a quoted string, whatever it spells
    raise TypeError(type(key).__name__)


_SURROGATE = re.compile("[\ud800-\udfff]")
