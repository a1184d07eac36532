"""One server-side apply, with errors a person can act on, and the no-op test.

The seed project turned server-side apply off after a conflict it could not
read. Here a 409 names each contested field and the manager that owns it, and
says that `--force-conflicts` takes ownership. `needs_apply` decides whether a
live object already matches what envspec wants, compared the way server-side
apply compares: the fields envspec's apply would own (list items by their map
keys, sets by value, atomic lists whole; `envspec.kube.fieldset`) are exactly
the fields its managedFields entry owns, so nothing is added or dropped (SSA
removes dropped fields, so they need a patch too), and every value matches,
resource quantities by value (`250m` is `0.25`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envspec.errors import OperationError
from envspec.kube.client import FIELD_MANAGER, KubeApiError, api_body, api_message
from envspec.kube.fieldset import FieldPath, Tree, decode, fieldset, merge_trees, path_text, same_values, user_fields
from envspec.apidefs import type_of
from envspec.objects import object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube


class ApplyConflictError(OperationError):
    """Another field manager owns fields envspec sets (HTTP 409); --force-conflicts takes them over."""


class ImmutableFieldError(OperationError):
    """The API refused a change to an immutable field (a Job's template, a Service's clusterIP...)."""


def conflict_message(obj: dict[str, Any], exc: BaseException) -> str:
    body = api_body(exc)
    causes = (body.get("details") or {}).get("causes") or []
    lines = []
    for cause in causes:
        field_path = cause.get("field", "?")
        lines.append(f"{field_path} ({cause.get('message', 'conflict')})")
    if lines:
        fields = "; ".join(lines)
        return (
            f"{object_id(obj)}: apply conflict: {fields}. Another field manager owns these fields; "
            "pass --force-conflicts to take ownership, or change the other tool"
        )
    return f"{object_id(obj)}: conflict: {api_message(exc)}"


def apply_object(kube: "Kube", obj: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply one object; OperationError (or ImmutableFieldError) with the API's reason."""
    try:
        return kube.apply(obj, force=force, dry_run=dry_run)
    except KubeApiError as exc:
        if exc.status == 409:
            raise ApplyConflictError(conflict_message(obj, exc)) from None
        message = api_message(exc)
        if exc.status == 422 and "immutable" in message:
            raise ImmutableFieldError(f"{object_id(obj)}: {message}") from None
        raise OperationError(f"{object_id(obj)}: apply failed: {message}") from None


def owned_fields(live: dict[str, Any], manager: str = FIELD_MANAGER) -> set[FieldPath]:
    """The paths `manager`'s server-side apply owns on `live`, as its managedFields entry records them."""
    out: set[FieldPath] = set()
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource"):
            out |= decode(entry.get("fieldsV1") or {})
    return out


def list_hints(live: dict[str, Any] | None) -> Tree:
    """Every manager's FieldsV1 tree in one: how the server keys lists the schema does not describe."""
    entries = ((live or {}).get("metadata", {}).get("managedFields") or [])
    return merge_trees(e.get("fieldsV1") or {} for e in entries)


def applied_fields(desired: dict[str, Any], live: dict[str, Any] | None = None) -> set[FieldPath]:
    """The paths an apply of `desired` will own (the set the server will record for envspec)."""
    t = type_of(desired["apiVersion"], desired["kind"])
    return fieldset(user_fields(desired), t, list_hints(live))


def dropped_fields(desired: dict[str, Any], live: dict[str, Any], manager: str = FIELD_MANAGER) -> list[str]:
    """Fields envspec's apply owns on `live` that `desired` no longer sets (the apply removes them)."""
    gone = owned_fields(live, manager) - applied_fields(desired, live)
    return sorted(path_text(path) for path in gone)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """False only when an apply would change nothing: envspec already owns exactly the fields it
    sets, and each holds the wanted value (lists matched by key, quantities by value)."""
    if live is None:
        return True
    if applied_fields(desired, live) != owned_fields(live):
        return True
    t = type_of(desired["apiVersion"], desired["kind"])
    return not same_values(user_fields(desired), user_fields(live), t, list_hints(live))
