"""Small, dependency-free helpers on plain Kubernetes object dicts.

Rendering, apply, diff, prune, destroy and the PR comment all need to name an object the same way
(`Kind/namespace/name`, the id the PR comment shows) and to know which pod
specs an object holds. Comparing desired with live state is server-side
apply's business and lives in `envspec.kube.fieldset`.
Keeping these here avoids each module growing its own slightly different copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterator

# A full image digest: `sha256:` and 64 lowercase hex characters. Tags move and truncated digests
# don't resolve, so this is the only form the pinned-image checks accept.
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
_PINNED_IMAGE = re.compile(rf"@{DIGEST_PATTERN}$")



def api_group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def group_kind(obj_or_api_version: dict[str, Any] | str, kind: str | None = None) -> str:
    """`Kind.group` as ApplySet annotations spell it (`Kind` for the core group)."""
    if isinstance(obj_or_api_version, dict):
        api_version, kind = obj_or_api_version["apiVersion"], obj_or_api_version["kind"]
    else:
        api_version = obj_or_api_version
    group = api_group(api_version)
    return f"{kind}.{group}" if group else str(kind)


def name_of(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def namespace_of(obj: dict[str, Any]) -> str | None:
    ns = obj.get("metadata", {}).get("namespace")
    return str(ns) if ns else None


def object_id(obj: dict[str, Any]) -> str:
    """`Kind/namespace/name`, or `Kind/name` for cluster-scoped objects."""
    ns = namespace_of(obj)
    return f"{obj['kind']}/{ns}/{name_of(obj)}" if ns else f"{obj['kind']}/{name_of(obj)}"


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """A key that tells objects apart across API versions of the same group."""
    return (api_group(obj["apiVersion"]), obj["kind"], namespace_of(obj) or "", name_of(obj))


def spec_hash(obj: dict[str, Any]) -> str:
    """A stable hash of an object's spec, used to recognise a Job that already ran."""
    payload = json.dumps(obj.get("spec", {}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def pod_template_of_object(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template (metadata + spec) inside a workload, wherever its kind keeps it (envspec.kinds:
    `pod_template`); None for a Pod itself, which has no template, and for kinds without pods."""
    from envspec.kinds import pod_template_of

    where = pod_template_of(str(obj.get("kind", "")))
    spec = obj.get("spec") or {}
    if where == "jobTemplate":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif where != "template":
        return None
    template = spec.get("template")
    return template if isinstance(template, dict) and isinstance(template.get("spec"), dict) else None


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside an object, wherever its kind keeps it (a Pod's own spec, or its template's)."""
    from envspec.kinds import pod_template_of

    if pod_template_of(str(obj.get("kind", ""))) == "pod":
        return obj.get("spec") or {}
    template = pod_template_of_object(obj)
    return template["spec"] if template is not None else None


def containers_of(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind of list, container) for every container and init container in the object."""
    pod_spec = pod_spec_of(obj)
    if not pod_spec:
        return
    for field_name in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod_spec.get(field_name) or []:
            yield field_name, container


def is_pinned(image: str) -> bool:
    """True when `image` names a full sha256 digest (`name@sha256:<64 hex>`)."""
    return bool(_PINNED_IMAGE.search(image))
