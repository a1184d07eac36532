"""Kubernetes' OpenAPI schemas (as kubernetes-validate ships them), decoded once per kind and version.

`kubernetes_validate.validate` decodes the kind's JSON schema and the whole
`_definitions.json` (megabytes) on every call, and lists its schema folders
twice: most of `envspec validate`'s time. `validate` here gives the same
verdicts and raises the same exceptions (it uses kubernetes-validate's own
files and helpers), but keeps each decoded schema, and the validator built on
it, for the rest of the process. The files are part of the installed package,
so a kept schema can never be stale.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=None)
def _versions() -> tuple[str, ...]:
    from kubernetes_validate.utils import all_versions

    return tuple(all_versions())


@functools.lru_cache(maxsize=None)
def schema_version(desired_version: str) -> str:
    """The newest shipped schema version not newer than `desired_version` (VersionNotSupportedError if none)."""
    from kubernetes_validate.utils import VersionNotSupportedError, major_minor

    desired = desired_version[1:] if desired_version.startswith("v") else desired_version
    versions = _versions()
    if major_minor(desired) > versions[-1]:
        raise VersionNotSupportedError(version=major_minor(desired))
    return [v for v in versions if major_minor(v) <= major_minor(desired)][-1]


@functools.lru_cache(maxsize=None)
def _definitions(schema_dir: str, desired_version: str) -> Any:
    from kubernetes_validate.utils import schema_contents
    from referencing import Resource

    return Resource.from_contents(schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", desired_version))


@functools.lru_cache(maxsize=1024)
def _validator(schema_dir: str, kind: str, api_version: str, desired_version: str) -> Any:
    import jsonschema
    from kubernetes_validate.utils import SchemaNotFoundError, schema_contents
    from referencing import Registry, Resource

    try:
        schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api_version}.json", desired_version)
    except FileNotFoundError:
        raise SchemaNotFoundError(version=_mm(desired_version), kind=kind, api_version=api_version) from None
    registry = _definitions(schema_dir, desired_version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _mm(version: str) -> str:
    from kubernetes_validate.utils import major_minor

    return major_minor(version[1:] if version.startswith("v") else version)


def validate(obj: dict[str, Any], desired_version: str, strict: bool = True) -> str:
    """As `kubernetes_validate.validate(obj, desired_version, strict)`: the schema version used, or its exceptions."""
    import re

    import jsonschema
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, major_minor

    version = schema_version(desired_version)
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files
    api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])
    schema_dir = f"v{version}-local" + ("-strict" if strict else "")
    try:
        validator = _validator(schema_dir, obj["kind"], api_version, desired_version)
    except SchemaNotFoundError:
        raise SchemaNotFoundError(version=_mm(desired_version), kind=obj["kind"], api_version=obj["apiVersion"]) from None
    try:
        validator.validate(obj)
    except jsonschema.ValidationError as exc:
        raise ValidationError(exc, version=major_minor(version)) from None
    return major_minor(version)
