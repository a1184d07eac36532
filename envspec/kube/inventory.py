"""The ApplySet (KEP-3659) inventory of one environment instance.

Prune is only safe if we know exactly what we created. Like kubectl's
`--applyset`, each instance has a parent object (a Secret
`applyset-<instance>`) whose `applyset.kubernetes.io/id` label is computed
the way kubectl computes it, and whose annotations record the group-kinds and
namespaces its members live in. Members carry `applyset.kubernetes.io/part-of:
<id>`, so `kubectl get -l applyset.kubernetes.io/part-of=<id>` finds them too.

Following the KEP, the parent is widened to the *superset* of old and new
group-kinds before anything is applied, and narrowed to the new set only after
prune succeeded, so an interrupted apply never loses track of a member.
envspec also records, per Job, the hash of the spec that completed, so a Job
removed by its TTL controller counts as done rather than as drift. Each write
of the parent stamps `envspec.dev/last-applied`, which `envspec gc` measures a
preview's idle time from (the creation time only says when it was first made).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from envspec import __version__
from envspec.errors import Problem, SpecError
from envspec.objects import group_kind, identity, namespace_of, object_id

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
TOOLING_ANNOTATION = "applyset.kubernetes.io/tooling"
GROUP_KINDS_ANNOTATION = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES_ANNOTATION = "applyset.kubernetes.io/additional-namespaces"
JOBS_ANNOTATION = "envspec.dev/completed-jobs"
KINDS_VERSIONS_ANNOTATION = "envspec.dev/kind-versions"
MEMBER_NAMESPACES_ANNOTATION = "envspec.dev/member-namespaces"
LAST_APPLIED_ANNOTATION = "envspec.dev/last-applied"
# The namespaces this instance created (it POSTed them): the only namespaces destroy and prune may delete.
CREATED_NAMESPACES_ANNOTATION = "envspec.dev/created-namespaces"
# On a namespace envspec creates before its parent can exist: which ApplySet created it (see apply).
CREATED_BY_ANNOTATION = "envspec.dev/created-by"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "envspec.dev/instance"
ENVIRONMENT_LABEL = "envspec.dev/environment"
TOOLING = f"envspec/{__version__}"

# Kinds that are never pruned without --dangerous-prune: losing them loses data or breaks other tenants.
PROTECTED_PRUNE_KINDS = frozenset({"Namespace", "PersistentVolumeClaim", "CustomResourceDefinition"})

# A no-op apply sends no write, unless the last-applied stamp is older than this: gc's TTL stays accurate
# to the hour while an unchanged re-apply still costs nothing.
LAST_APPLIED_REFRESH = timedelta(hours=1)


def applyset_id(name: str, namespace: str, kind: str = "Secret", group: str = "") -> str:
    """kubectl's ApplySet id: applyset-<base64url(sha256(name.namespace.kind.group)), unpadded>-v1."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def parent_name(instance: str) -> str:
    return f"applyset-{instance}"


@dataclass(frozen=True)
class ApplySetRef:
    name: str
    namespace: str

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    @classmethod
    def for_instance(cls, instance: str, namespace: str | None) -> "ApplySetRef":
        return cls(parent_name(instance), namespace or "default")


@dataclass
class Inventory:
    """What the parent records: member group-kinds (as api_version+kind), namespaces, finished Jobs."""

    ref: ApplySetRef
    kinds: dict[str, str] = field(default_factory=dict)  # "Kind.group" -> apiVersion used to list it
    namespaces: set[str] = field(default_factory=set)
    completed_jobs: dict[str, str] = field(default_factory=dict)  # "ns/name" -> spec hash
    exists: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    creation_timestamp: str | None = None
    last_applied: str | None = None  # RFC 3339 UTC, stamped by write_inventory
    created_namespaces: set[str] = field(default_factory=set)  # namespaces this instance created

    def widen(self, objects: Iterable[dict[str, Any]]) -> "Inventory":
        merged = Inventory(
            self.ref,
            dict(self.kinds),
            set(self.namespaces),
            dict(self.completed_jobs),
            self.exists,
            dict(self.labels),
            self.creation_timestamp,
            self.last_applied,
            set(self.created_namespaces),
        )
        for obj in objects:
            merged.kinds.setdefault(group_kind(obj), obj["apiVersion"])
            ns = namespace_of(obj)
            if ns:
                merged.namespaces.add(ns)
        return merged


def read_inventory(kube: "Kube", ref: ApplySetRef) -> Inventory:
    """Read the parent; refuse when it belongs to another tool."""
    parent = kube.get("v1", "Secret", ref.name, ref.namespace)
    if parent is None:
        return Inventory(ref)
    meta = parent.get("metadata", {})
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    tooling = annotations.get(TOOLING_ANNOTATION, "")
    if labels.get(ID_LABEL) != ref.id or not tooling.startswith("envspec/"):
        raise SpecError(
            f"Secret/{ref.namespace}/{ref.name} exists but is not an envspec ApplySet parent "
            f"(tooling {tooling or 'unset'!r}); refusing to take it over"
        )
    versions: dict[str, str] = json.loads(annotations.get(KINDS_VERSIONS_ANNOTATION) or "{}")
    kinds: dict[str, str] = {}
    for gk in filter(None, (annotations.get(GROUP_KINDS_ANNOTATION) or "").split(",")):
        kinds[gk] = versions.get(gk) or _guess_api_version(gk)
    # The KEP's additional-namespaces omits the parent's own namespace; envspec records the exact set too.
    exact = annotations.get(MEMBER_NAMESPACES_ANNOTATION)
    if exact is not None:
        namespaces = set(filter(None, exact.split(",")))
    else:
        namespaces = {ref.namespace} | set(filter(None, (annotations.get(NAMESPACES_ANNOTATION) or "").split(",")))
    return Inventory(
        ref,
        kinds,
        namespaces,
        json.loads(annotations.get(JOBS_ANNOTATION) or "{}"),
        True,
        dict(labels),
        meta.get("creationTimestamp"),
        annotations.get(LAST_APPLIED_ANNOTATION),
        set(filter(None, (annotations.get(CREATED_NAMESPACES_ANNOTATION) or "").split(","))),
    )


def _guess_api_version(gk: str) -> str:
    kind, _, group = gk.partition(".")
    return f"{group}/v1" if group else "v1"


def parent_object(inventory: Inventory, labels: dict[str, str]) -> dict[str, Any]:
    ref = inventory.ref
    extra_namespaces = sorted(inventory.namespaces - {ref.namespace})
    annotations = {
        TOOLING_ANNOTATION: TOOLING,
        GROUP_KINDS_ANNOTATION: ",".join(sorted(inventory.kinds)),
        KINDS_VERSIONS_ANNOTATION: json.dumps(dict(sorted(inventory.kinds.items())), separators=(",", ":")),
        JOBS_ANNOTATION: json.dumps(dict(sorted(inventory.completed_jobs.items())), separators=(",", ":")),
        MEMBER_NAMESPACES_ANNOTATION: ",".join(sorted(inventory.namespaces)),
    }
    if inventory.last_applied:
        annotations[LAST_APPLIED_ANNOTATION] = inventory.last_applied
    if inventory.created_namespaces:
        annotations[CREATED_NAMESPACES_ANNOTATION] = ",".join(sorted(inventory.created_namespaces))
    if extra_namespaces:
        annotations[NAMESPACES_ANNOTATION] = ",".join(extra_namespaces)
    # Through the compiler's normalisation (labels, key order), like every object the cluster receives.
    from envspec.render.normalize import normalize_object

    parent = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": ref.name, "namespace": ref.namespace, "annotations": annotations},
    }
    return normalize_object(parent, {**labels, ID_LABEL: ref.id})


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second (what Kubernetes timestamps look like)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _stamp_is_fresh(stamp: str | None, now: datetime) -> bool:
    moment = parse_time(stamp)
    return moment is not None and timedelta(0) <= now - moment < LAST_APPLIED_REFRESH


def inventory_current(current: Inventory, inventory: Inventory, labels: dict[str, str], now: datetime) -> bool:
    """True when the live parent already records `inventory` (and its stamp is fresh): no write needed."""
    return (
        current.exists
        and current.kinds == inventory.kinds
        and current.namespaces == inventory.namespaces
        and current.completed_jobs == inventory.completed_jobs
        and current.created_namespaces == inventory.created_namespaces
        and all(current.labels.get(k) == v for k, v in labels.items())
        and _stamp_is_fresh(current.last_applied, now)
    )


def write_inventory(
    kube: "Kube",
    inventory: Inventory,
    labels: dict[str, str],
    *,
    current: Inventory,
    now: datetime | None = None,
) -> bool:
    """Apply the parent when what it records changed or its last-applied stamp is stale; True when written.

    A write stamps `inventory.last_applied` with `now`, so a caller that adopts
    `inventory` as its new `current` does not write again for the stamp alone.
    """
    now = now or datetime.now(timezone.utc)
    if inventory_current(current, inventory, labels, now):
        return False
    inventory.last_applied = format_time(now)
    kube.apply(parent_object(inventory, labels), force=True)
    return True


def with_member_label(obj: dict[str, Any], set_id: str) -> dict[str, Any]:
    """A copy of `obj` that carries the part-of label."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), PART_OF_LABEL: set_id}
    out["metadata"] = meta
    return out


def list_members(kube: "Kube", inventory: Inventory, *, extra_kinds: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Live members per group-kind, one LIST per kind.

    A kind whose members all sit in one namespace is listed there; otherwise
    cluster-wide with the part-of selector, so the count stays one per kind.
    """
    kinds = dict(inventory.kinds)
    for gk, api_version in (extra_kinds or {}).items():
        kinds.setdefault(gk, api_version)
    selector = f"{PART_OF_LABEL}={inventory.ref.id}"
    out: dict[str, list[dict[str, Any]]] = {}
    for gk, api_version in sorted(kinds.items()):
        kind = gk.split(".", 1)[0]
        if not kube.is_served(api_version, kind):
            out[gk] = []
            continue
        namespaced = kube.is_namespaced(api_version, kind)
        namespace = None
        if namespaced and len(inventory.namespaces) == 1:
            namespace = next(iter(inventory.namespaces))
        items = kube.list(api_version, kind, namespace=namespace, label_selector=selector)
        out[gk] = items  # the part-of id is unique to this parent, so every hit is a member
    return out


@dataclass(frozen=True)
class PrunePlan:
    delete: list[dict[str, Any]]
    skipped: list[str]  # ids left alone because another tool or ApplySet owns them


def plan_prune(
    members: dict[str, list[dict[str, Any]]],
    desired: Iterable[dict[str, Any]],
    *,
    set_id: str,
    instance: str,
    protected_namespaces: Iterable[str] = (),
    dangerous: bool = False,
    created_namespaces: Iterable[str] | None = None,
) -> PrunePlan:
    """Members that left the spec, after the guards; raises SpecError when a guard refuses.

    Never the cluster's own namespaces or objects in them, and, when `created_namespaces` (from
    the parent) is given, never a namespace this instance did not create.
    """
    from envspec.system import system_reason

    wanted = {identity(o) for o in desired}
    protected_ns = set(protected_namespaces)
    created = None if created_namespaces is None else set(created_namespaces)
    total = sum(len(v) for v in members.values())
    delete: list[dict[str, Any]] = []
    skipped: list[str] = []
    for items in members.values():
        for live in items:
            if identity(live) in wanted:
                continue
            labels = live.get("metadata", {}).get("labels") or {}
            foreign = (
                labels.get(PART_OF_LABEL) != set_id
                or labels.get(MANAGED_BY_LABEL) != "envspec"
                or labels.get(INSTANCE_LABEL, instance) != instance
            )
            namespace_kept = live["kind"] == "Namespace" and (
                live["metadata"]["name"] in protected_ns or (created is not None and live["metadata"]["name"] not in created)
            )
            if foreign or namespace_kept or system_reason(live):
                skipped.append(object_id(live))
                continue
            delete.append(live)
    if not dangerous:
        refused = [object_id(o) for o in delete if o["kind"] in PROTECTED_PRUNE_KINDS]
        problems: list[str] = []
        if refused:
            problems.append(
                "refusing to prune " + ", ".join(sorted(refused)) + " (Namespaces, PersistentVolumeClaims and CRDs "
                "hold data or serve others); pass --dangerous-prune if this is intended"
            )
        if total and len(delete) * 2 > total:
            problems.append(
                f"refusing to prune {len(delete)} of {total} inventory objects (more than half); "
                "check the render, or pass --dangerous-prune if this is intended"
            )
        if problems:
            raise SpecError([Problem(p) for p in problems])
    return PrunePlan(delete=delete, skipped=skipped)


@dataclass
class Ownership:
    """What apply found for the desired objects that are not live members of its ApplySet."""

    unowned: list[str] = field(default_factory=list)  # exist, belong to no ApplySet: adopted only with --adopt
    other_set: list[str] = field(default_factory=list)  # exist and belong to another ApplySet: never taken
    absent_namespaces: set[str] = field(default_factory=set)  # desired Namespaces that do not exist yet
    found: list[dict[str, Any]] = field(default_factory=list)  # the live objects behind unowned/other_set


def check_ownership(
    kube: "Kube",
    desired: list[dict[str, Any]],
    live: dict[tuple[str, str, str, str], dict[str, Any]],
    set_id: str,
) -> Ownership:
    """GET each desired object the member listing did not return (kpt's strict inventory policy).

    Objects in a namespace that does not exist are known absent without a request, so a first
    apply costs one GET per new namespace and cluster-scoped object, and a re-apply (everything
    already a member) costs nothing.
    """
    out = Ownership()
    ordered = sorted(desired, key=lambda o: o["kind"] != "Namespace")  # namespaces first
    for obj in ordered:
        if identity(obj) in live:
            continue
        api_version, kind = obj["apiVersion"], obj["kind"]
        ns = namespace_of(obj)
        if ns and ns in out.absent_namespaces:
            continue
        if not kube.is_served(api_version, kind):
            continue  # its CRD comes with this apply: nothing of the kind can exist yet
        if not kube.is_namespaced(api_version, kind):
            ns = None
        found = kube.get(api_version, kind, obj["metadata"]["name"], ns)
        if found is None:
            if kind == "Namespace" and api_version == "v1":
                out.absent_namespaces.add(obj["metadata"]["name"])
            continue
        found.setdefault("apiVersion", api_version)
        found.setdefault("kind", kind)
        meta = found.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(PART_OF_LABEL)
        created_by = (meta.get("annotations") or {}).get(CREATED_BY_ANNOTATION) if kind == "Namespace" else None
        if owner == set_id or (owner is None and created_by == set_id):
            # labelled ours outside the listed namespaces, or the bare namespace of our own interrupted first apply
            live[identity(found)] = found
            continue
        (out.other_set if owner else out.unowned).append(object_id(obj))
        out.found.append(found)
    return out
