"""The JSON Schema of environment files, generated from the Pydantic models.

Editors use it through `# yaml-language-server: $schema=../schemas/environment.schema.json`.
The file written is the *authoring* schema (envspec.authoring_schema): the model's
schema of a resolved environment, relaxed to what a file may say as written.
"""

from __future__ import annotations

import json

from envspec.spec.models import Environment


def environment_schema() -> dict:
    schema = Environment.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://envspec.dev/schemas/environment.schema.json"
    schema["title"] = "envspec environment"
    return schema


def environment_schema_text() -> str:
    from envspec.authoring_schema import authoring_schema

    return json.dumps(authoring_schema(environment_schema()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
