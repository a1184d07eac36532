"""The authoring schema: what an environment file may say *as written*, for editors and check-jsonschema.

The models describe the resolved environment (after `extends`, `--set`,
parameters and `${...}`), so their JSON Schema rejects what people write: a
partial such as `_defaults.yaml` misses required keys, `replicas:
${params.replicas}` is a string where an integer goes, and `key: null` (which
deletes an inherited key) is no value at all. This module derives the schema of
authored files from the model's schema, as a pure transformation, so it follows
whatever the models (and a project's components) declare:

- no key is required (any file may be a partial that another completes);
- wherever a typed value may go, a string holding a `${...}` reference is accepted too;
- wherever a key may be deleted (a mapping's value), `null` is accepted;
- unknown keys stay errors (`additionalProperties: false` is kept), so a misspelt key is still reported;
- `oneOf` becomes `anyOf`: without required keys a partial may fit several alternatives.

Constraints the schema cannot express before resolution (an HTTPS listener's
tlsSecret, a route's one target) are left to `envspec validate`.
"""

from __future__ import annotations

import copy
from typing import Any

REFERENCE_DEF = "Reference"
REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{[^{}]*\}",
    "description": "A ${...} reference (a parameter, another value of the spec, or an output of a used "
    "environment), resolved before the value is checked.",
}
_REF = {"$ref": f"#/$defs/{REFERENCE_DEF}"}
_NULL = {"type": "null", "description": "Removes the inherited key."}
# Keywords that describe a value rather than constrain it: kept on the outside, where editors show them.
_ANNOTATIONS = ("title", "description", "default", "examples", "deprecated")


def _alternatives(schema: Any, *, deletable: bool) -> Any:
    """`schema`, or a reference string, or (where a key can be deleted) null."""
    if not isinstance(schema, dict):
        return schema  # `true`/`false`: anything or nothing, nothing to add
    inner = _transform(schema)
    outer = {k: inner.pop(k) for k in _ANNOTATIONS if k in inner}
    options = [inner, _REF] + ([_NULL] if deletable else [])
    return {**outer, "anyOf": options}


def _transform(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out.pop("required", None)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _alternatives(v, deletable=True) for k, v in out["properties"].items()}
    if isinstance(out.get("patternProperties"), dict):
        out["patternProperties"] = {k: _alternatives(v, deletable=True) for k, v in out["patternProperties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _alternatives(out["additionalProperties"], deletable=True)
    if isinstance(out.get("items"), dict):
        out["items"] = _alternatives(out["items"], deletable=False)
    if isinstance(out.get("prefixItems"), list):
        out["prefixItems"] = [_alternatives(s, deletable=False) for s in out["prefixItems"]]
    if isinstance(out.get("oneOf"), list):
        # Without required keys several alternatives may match a partial; any one is enough.
        out["anyOf"] = out.pop("oneOf") + (out.pop("anyOf") if isinstance(out.get("anyOf"), list) else [])
    for keyword in ("anyOf", "allOf"):
        if isinstance(out.get(keyword), list):
            out[keyword] = [_transform(s) if isinstance(s, dict) else s for s in out[keyword]]
    return out


def authoring_schema(model_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of environment files as written, from the (resolved) model's JSON Schema."""
    source = copy.deepcopy(model_schema)
    defs = source.pop("$defs", {})
    out = _transform(source)
    out["$defs"] = {name: _transform(d) for name, d in defs.items()}
    out["$defs"][REFERENCE_DEF] = dict(REFERENCE_SCHEMA)
    return out
