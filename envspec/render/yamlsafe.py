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
from typing import Any

# Characters a YAML double-quoted scalar must not hold raw (YAML 1.2 c-printable, minus line-break
# look-alikes that YAML 1.1 readers such as kubectl's treat as breaks).
_ESCAPE_RANGES = (
    (0x00, 0x08),
    (0x0B, 0x0C),
    (0x0E, 0x1F),
    (0x7F, 0x9F),
    (0x2028, 0x2029),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFFE, 0xFFFF),
)


def _needs_escape(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _ESCAPE_RANGES)


def quote_string(text: str) -> str:
    """A YAML double-quoted scalar for `text` (JSON escapes plus YAML's \\u escapes for the rest)."""
    encoded = json.dumps(text, ensure_ascii=False)
    if not any(_needs_escape(ord(ch)) for ch in encoded):
        return encoded
    out = []
    for ch in encoded:
        code = ord(ch)
        out.append(f"\\u{code:04x}" if _needs_escape(code) else ch)
    return "".join(out)


class UnsafeValue(TypeError):
    """A value that has no YAML form (an object, NaN, ...)."""


def to_yaml_flow(value: Any) -> str:
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
