"""The JSON Schema of environment files, generated from the Pydantic models.

Editors use it through `# yaml-language-server: $schema=../schemas/environment.schema.json`.
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
    return json.dumps(environment_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
