"""The JSON Schema of environment files, generated from the Pydantic models.

Editors use it through `# yaml-language-server: $schema=../schemas/environment.schema.json`.
The file written is the *authoring* schema (envspec.authoring_schema): the model's
schema of a resolved environment, relaxed to what a file may say as written.
"""

from __future__ import annotations

import json
from pathlib import Path

from envspec.spec.models import Environment


def environment_schema(root: Path | None = None) -> dict:
    """The schema of environment files; with a project `root`, `components:` instances are typed by its components."""
    schema = Environment.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://envspec.dev/schemas/environment.schema.json"
    schema["title"] = "envspec environment"
    if root is not None:
        from envspec.components.project import load_components, schema_defs
        from envspec.errors import Problems

        problems = Problems()
        defs = schema_defs(load_components(root, problems))
        problems.raise_if_errors()
        if defs:
            schema["$defs"].update(defs)
            schema["properties"]["components"]["additionalProperties"] = {
                "oneOf": [{"$ref": f"#/$defs/{name}"} for name in defs]
            }
    return schema


def environment_schema_text(root: Path | None = None) -> str:
    from envspec.authoring_schema import authoring_schema

    return json.dumps(authoring_schema(environment_schema(root)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
