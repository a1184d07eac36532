"""`envspec diff`: what an apply would change, as a reviewer wants to read it.

A raw diff of live objects drowns in status, managedFields and server
defaults. Like `kubectl diff --server-side`, envspec asks the API server what
the object would become (a dry-run apply), then shows only the fields envspec
manages: those it sets now plus those it set before (so removals show). Secret
values are never shown, only whether each key changed.

The result is a `ChangeSet` (created / changed / pruned ids and the unified
diff text) that round-trips through JSON, so CI can hand it to
`envspec comment` in a later step. `diff_against` compares with committed
rendered output instead, without a cluster.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from envspec.errors import EnvspecError, SpecError
from envspec.kube.inventory import ApplySetRef
from envspec.kube.observe import observe
from envspec.plan import DeployPlan
from envspec.kube.remote import Fetch, default_cache_dir, download, remote_objects
from envspec.kube.secrets import MASK, Redactor, build_secrets, unset_variables
from envspec.kube.fieldset import FieldPath, Tree, encode, extract, user_fields
from envspec.kube.ssa import (
    ApplyConflictError,
    ImmutableFieldError,
    applied_fields,
    apply_object,
    list_hints,
    needs_apply,
    owned_fields,
)
from envspec.apidefs import type_of
from envspec.objects import identity, name_of, namespace_of, object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

MASK_CHANGED = "<masked: changed>"
MASK_UNCHANGED = "<masked: unchanged>"
MASK_BEFORE = MASK  # the old side of a changed value, so the diff line is visible


@dataclass
class ChangeSet:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    diff: str = ""
    conflicts: list[str] = field(default_factory=list)  # ids whose apply would fail on another manager's fields
    notes: list[str] = field(default_factory=list)  # what the diff could not compare, e.g. Secret data

    @property
    def has_changes(self) -> bool:
        return bool(self.created or self.changed or self.pruned)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ChangeSet":
        data = json.loads(text)
        return cls(
            created=list(data.get("created", [])),
            changed=list(data.get("changed", [])),
            pruned=list(data.get("pruned", [])),
            diff=str(data.get("diff", "")),
            conflicts=list(data.get("conflicts", [])),
            notes=list(data.get("notes", [])),
        )

    def summary(self) -> str:
        text = f"{len(self.created)} to create, {len(self.changed)} to change, {len(self.pruned)} to prune"
        if self.conflicts:
            text += f", {len(self.conflicts)} in conflict"
        return text


# --- rendering one object's difference ----------------------------------------------------


def _dump(obj: Any) -> list[str]:
    from envspec.render.output import dump_sorted

    if obj is None:
        return []
    return dump_sorted(obj).splitlines(keepends=True)


def mask_secrets(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[Any, Any]:
    """Replace Secret values on both sides by whether they changed; never the values themselves."""
    kind = (after or before or {}).get("kind")
    if kind != "Secret":
        return before, after
    before = json.loads(json.dumps(before)) if before is not None else None
    after = json.loads(json.dumps(after)) if after is not None else None
    for section in ("data", "stringData"):
        old = (before or {}).get(section) or {}
        new = (after or {}).get(section) or {}
        for key in set(old) | set(new):
            same = key in old and key in new and old[key] == new[key]
            if key in old:
                before[section][key] = MASK_UNCHANGED if same else MASK_BEFORE  # type: ignore[index]
            if key in new:
                after[section][key] = MASK_UNCHANGED if same else MASK_CHANGED  # type: ignore[index]
    return before, after


def unified(oid: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    before, after = mask_secrets(before, after)
    lines = difflib.unified_diff(
        _dump(before),
        _dump(after),
        fromfile="/dev/null" if before is None else f"live/{oid}",
        tofile="/dev/null" if after is None else f"envspec/{oid}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _view(obj: dict[str, Any], paths: set[FieldPath], hints: Tree) -> dict[str, Any]:
    """The part of `obj` that `paths` (fields envspec owns now or will own) name, plus its identity."""
    t = type_of(obj["apiVersion"], obj["kind"])
    body = extract(user_fields(obj), encode(paths), t, hints)
    meta = {k: obj.get("metadata", {})[k] for k in ("name", "namespace") if k in obj.get("metadata", {})}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], **body,
            "metadata": {**meta, **(body.get("metadata") or {})}}


# --- against the live cluster -------------------------------------------------------------


def _secret_notes(plan: DeployPlan, environ: Mapping[str, str]) -> list[str]:
    notes = []
    for source in plan.secrets:
        unset = unset_variables(source, environ)
        if unset:
            notes.append(
                f"Secret {source.namespace}/{source.name}: data not compared ({', '.join(unset)} not set); "
                "compared by keys only"
            )
    return notes


class _SecretsUnreadable:
    """A view of `kube` for a credential without Secret access (the preview plan's ServiceAccount).

    A 403 on reading a Secret counts as "cannot see it" instead of failing the
    diff: the plan then compares everything else and says, in its notes, what
    it skipped. Nothing else changes: every other call goes to `kube` as is.
    """

    def __init__(self, kube: "Kube") -> None:
        self._kube = kube
        self.refused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self._read(kind, lambda: self._kube.get(api_version, kind, name, namespace), None)

    def list(self, api_version: str, kind: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self._read(kind, lambda: self._kube.list(api_version, kind, **kwargs), [])

    def _read(self, kind: str, call: Callable[[], Any], refused: Any) -> Any:
        from envspec.kube.client import KubeApiError

        try:
            return call()
        except KubeApiError as exc:
            if kind != "Secret" or exc.status != 403:
                raise
            self.refused = True
            return refused


SECRETS_UNREADABLE_NOTE = (
    "this credential may not read Secrets: Secrets and the ApplySet inventory were not compared "
    "(objects whose kind left the spec entirely are not listed as pruned)"
)


def diff_live(
    kube: "Kube",
    plan: DeployPlan,
    *,
    environ: Mapping[str, str],
    fetch: Fetch = download,
    cache_dir: Path | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> ChangeSet:
    """What an apply of `plan` would change; never writes, never needs secret variables.

    `report` gets progress notes, scrubbed of secret values; the returned diff is scrubbed too.
    """
    redactor = Redactor()
    report = redactor.wrap(report)
    try:
        return _diff_live(kube, plan, environ, fetch, cache_dir if cache_dir is not None else default_cache_dir(),
                          redactor, report)
    except EnvspecError as exc:
        raise redactor.scrub_error(exc) from None


def _diff_live(
    kube: "Kube",
    plan: DeployPlan,
    environ: Mapping[str, str],
    fetch: Fetch,
    cache_dir: Path | None,
    redactor: Redactor,
    report: Callable[[str], None],
) -> ChangeSet:
    kube = _SecretsUnreadable(kube)  # type: ignore[assignment]
    secrets, _ = build_secrets(plan, environ, redactor, missing_ok=True)
    remote = remote_objects(plan.remote_manifests, plan.labels, fetch=fetch, cache_dir=cache_dir)
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    seen = observe(kube, plan, ref, secrets, remote, environ=environ, redactor=redactor)
    desired, live_index = seen.desired, seen.live
    changes = ChangeSet(notes=_secret_notes(plan, environ))
    if kube.refused:  # type: ignore[attr-defined]
        changes.notes.append(SECRETS_UNREADABLE_NOTE)
    for note in changes.notes:
        report(f"note: {note}")
    texts: list[str] = []
    for obj in desired:
        oid = object_id(obj)
        if kube.refused and obj.get("kind") == "Secret":  # type: ignore[attr-defined]
            continue  # unreadable: neither "created" nor "unchanged" would be true
        live = live_index.get(identity(obj))
        if live is None and kube.is_served(obj["apiVersion"], obj["kind"]):
            live = kube.get(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj))
        if live is None:
            changes.created.append(oid)
            texts.append(unified(oid, None, obj))
            continue
        if not needs_apply(obj, live):
            continue
        # Fields envspec owns now or will own: removals show as well as additions (lists by key).
        hints = list_hints(live)
        paths = owned_fields(live) | applied_fields(obj, live)
        before = _view(live, paths, hints)
        try:
            after = _view(apply_object(kube, obj, dry_run=True), paths, hints)
        except ApplyConflictError as exc:
            changes.changed.append(oid)
            changes.conflicts.append(oid)
            message = exc.problems[0].message if exc.problems else str(exc)
            texts.append(f"# conflict: {message}\n")
            texts.append(unified(oid, before, _view(obj, paths, hints)))
            continue
        except ImmutableFieldError:
            changes.changed.append(oid)
            texts.append(f"# {oid}: immutable fields changed; apply will delete and recreate it\n")
            texts.append(unified(oid, before, _view(obj, paths, hints)))
            continue
        if before != after:
            changes.changed.append(oid)
            texts.append(unified(oid, before, after))
    for live in seen.prune.delete:
        oid = object_id(live)
        changes.pruned.append(oid)
        texts.append(f"--- live/{oid}\n+++ /dev/null\n# pruned: {oid} left the spec\n")
    changes.diff = redactor.scrub("".join(texts))
    return changes


# --- against committed rendered output ----------------------------------------------------


def load_rendered(directory: Path) -> list[dict[str, Any]]:
    """The objects of a directory written by `envspec render --out` (or any YAML/JSON manifests);
    its kustomization.yaml is an index, not an object to compare."""
    from ruamel.yaml.error import YAMLError

    from envspec.render.output import load_all

    if not directory.is_dir():
        raise SpecError(f"--against {directory}: not a directory")
    objects: list[dict[str, Any]] = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml", ".json")):
        try:
            docs = load_all(path.read_text(encoding="utf-8"))
        except YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind"):
                continue
            if str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io/"):
                continue
            if doc["kind"].endswith("List") and "items" in doc:
                objects.extend(i for i in doc["items"] if isinstance(i, dict))
            else:
                objects.append(doc)
    return objects


def diff_against(plan: DeployPlan, directory: Path, objects: Iterable[dict[str, Any]] | None = None) -> ChangeSet:
    """Compare the render with files in `directory` (no cluster, no secret values needed)."""
    committed = {identity(o): o for o in load_rendered(directory)}
    desired = list(plan.objects if objects is None else objects)
    changes = ChangeSet()
    texts: list[str] = []
    for obj in desired:
        oid = object_id(obj)
        old = committed.pop(identity(obj), None)
        if old is None:
            changes.created.append(oid)
            texts.append(unified(oid, None, obj))
        elif old != obj:
            changes.changed.append(oid)
            texts.append(unified(oid, old, obj))
    for old in committed.values():
        oid = object_id(old)
        changes.pruned.append(oid)
        texts.append(unified(oid, old, None))
    changes.diff = "".join(texts)
    return changes
