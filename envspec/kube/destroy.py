"""`envspec destroy`: remove every trace of an environment instance, provably.

The seed project deleted the namespace and left the per-PR database on the
shared PostgreSQL behind, PR after PR. Destroy here is a fixed sequence, each
step safe to repeat:

1. delete the ApplySet members (never a protected namespace, never an object
   another tool manages);
2. drop the database with a Job on the shared PostgreSQL: `DROP DATABASE IF
   EXISTS ... WITH (FORCE)` on a re-validated name, then a check against
   `pg_database` that fails the Job if the database is still there; the admin
   credentials reach the Job only through `secretKeyRef`;
3. delete the instance's namespaces and wait for them to go, force-finalizing
   one stuck in Terminating after a grace period;
4. verify that nothing labelled with the instance remains in the known kinds;
5. delete the ApplySet parent last, so an interrupted destroy can be re-run.

Nothing there means exit 0 and "nothing to destroy".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from envspec.errors import OperationError, Problem, SpecError
from envspec.kube.apply import stage_of
from envspec.kube.inventory import (
    ENVIRONMENT_LABEL,
    ID_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    PART_OF_LABEL,
    TOOLING_ANNOTATION,
    ApplySetRef,
    list_members,
    read_inventory,
)
from envspec.objects import group_kind, name_of, namespace_of, object_id
from envspec.kube.plan import DatabaseDrop, DeployPlan
from envspec.kube.ssa import apply_object
from envspec.kube.wait import WaitSettings, wait_ready

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

DATABASE_NAME = re.compile(r"^[a-z0-9_]{1,63}$")

# Kinds searched for leftovers after a destroy, besides whatever the inventory recorded.
VERIFY_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("cert-manager.io/v1", "Certificate"),
)


@dataclass
class InstanceInfo:
    instance: str
    environment: str | None
    labels: dict[str, str]
    created: str | None  # creationTimestamp of the ApplySet parent (RFC 3339)
    parent: str  # "namespace/name" of the parent Secret


def list_instances(kube: "Kube", environment: str | None = None) -> list[InstanceInfo]:
    """Environment instances on the cluster, found by their ApplySet parents (for `envspec gc`)."""
    selector = f"{ID_LABEL},{MANAGED_BY_LABEL}=envspec"
    if environment:
        selector += f",{ENVIRONMENT_LABEL}={environment}"
    found = []
    for secret in kube.list("v1", "Secret", label_selector=selector):
        meta = secret.get("metadata", {})
        labels = meta.get("labels") or {}
        if not str((meta.get("annotations") or {}).get(TOOLING_ANNOTATION, "")).startswith("envspec/"):
            continue
        instance = labels.get(INSTANCE_LABEL)
        if not instance:
            continue
        found.append(
            InstanceInfo(
                instance=instance,
                environment=labels.get(ENVIRONMENT_LABEL),
                labels=dict(labels),
                created=meta.get("creationTimestamp"),
                parent=f"{meta.get('namespace')}/{meta.get('name')}",
            )
        )
    return sorted(found, key=lambda i: i.instance)


def drop_job_name(database: str) -> str:
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"envspec-drop-{database.replace('_', '-')}"[:50].rstrip("-") + f"-{digest}"


def drop_database_job(drop: DatabaseDrop, plan: DeployPlan) -> dict[str, Any]:
    """The Job that drops and verifies the per-instance database; SpecError on an unsafe name."""
    db = drop.database
    if not DATABASE_NAME.fullmatch(db):
        raise SpecError(f"refusing to drop database {db!r}: name must match ^[a-z0-9_]{{1,63}}$")
    # The name is validated above, so it can be quoted into SQL safely.
    script = "\n".join(
        [
            "set -eu",
            f"psql -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE);'",
            f"left=$(psql -tAc \"SELECT count(*) FROM pg_database WHERE datname = '{db}'\")",
            f'if [ "$left" != "0" ]; then echo "database {db} still exists" >&2; exit 1; fi',
            f'echo "database {db} dropped"',
        ]
    )
    labels = {
        MANAGED_BY_LABEL: "envspec",
        ENVIRONMENT_LABEL: plan.environment,
        "envspec.dev/drops-instance": plan.instance,
    }

    def secret_env(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": drop.user_secret, "key": key}}}

    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": drop_job_name(db), "namespace": drop.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "drop-database",
                            "image": drop.image,
                            "command": ["sh", "-c", script],
                            "env": [
                                {"name": "PGHOST", "value": drop.host},
                                {"name": "PGPORT", "value": str(drop.port)},
                                {"name": "PGDATABASE", "value": "postgres"},
                                secret_env("PGUSER", "username"),
                                secret_env("PGPASSWORD", "password"),
                            ],
                            "resources": resources,
                        }
                    ],
                },
            },
        },
    }


@dataclass
class DestroyOptions:
    dry_run: bool = False
    grace_seconds: float = 30.0  # how long a namespace may sit in Terminating before it is force-finalized
    wait: WaitSettings = field(default_factory=WaitSettings)
    report: Callable[[str], None] = lambda line: None


@dataclass
class DestroyResult:
    nothing: bool = False
    deleted: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    finalized: list[str] = field(default_factory=list)
    database_dropped: str | None = None
    skipped: list[str] = field(default_factory=list)


def _is_ours(obj: dict[str, Any], set_id: str, instance: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return (
        labels.get(MANAGED_BY_LABEL) == "envspec"
        and labels.get(INSTANCE_LABEL, instance) == instance
        and labels.get(PART_OF_LABEL, set_id) == set_id
    )


def _drop_database(kube: "Kube", plan: DeployPlan, options: DestroyOptions, deadline: float) -> str:
    assert plan.database_drop is not None
    job = drop_database_job(plan.database_drop, plan)
    ns, name = namespace_of(job), name_of(job)
    if kube.get("batch/v1", "Job", name, ns) is not None:  # a leftover from an earlier run: start clean
        kube.delete("batch/v1", "Job", name, ns, propagation="Foreground")
        while kube.get("batch/v1", "Job", name, ns) is not None:
            if options.wait.clock() >= deadline:
                raise OperationError(f"Job/{ns}/{name}: an earlier drop Job is still being deleted")
            options.wait.sleep(options.wait.interval)
    apply_object(kube, job)
    options.report(f"running Job/{ns}/{name} to drop database {plan.database_drop.database}")
    try:
        wait_ready(kube, [job], settings=options.wait, deadline=deadline)
    except OperationError as exc:
        note = Problem(
            f"database {plan.database_drop.database} was NOT verified dropped; re-run destroy once the cause is fixed"
        )
        raise OperationError([*exc.problems, note]) from None
    kube.delete("batch/v1", "Job", name, ns)
    return plan.database_drop.database


def _wait_namespaces_gone(
    kube: "Kube", names: list[str], options: DestroyOptions, deadline: float, result: DestroyResult
) -> None:
    start = options.wait.clock()
    pending = list(names)
    while pending:
        still = []
        for ns in pending:
            live = kube.get("v1", "Namespace", ns)
            if live is None:
                continue
            terminating = (live.get("status") or {}).get("phase") == "Terminating"
            if terminating and options.wait.clock() - start >= options.grace_seconds and ns not in result.finalized:
                options.report(f"namespace {ns} stuck in Terminating; force-finalizing")
                kube.finalize_namespace(ns)
                result.finalized.append(ns)
            still.append(ns)
        pending = still
        if not pending:
            return
        if options.wait.clock() >= deadline:
            raise OperationError(f"namespaces still present after the timeout: {', '.join(pending)}")
        options.wait.sleep(options.wait.interval)


def leftovers(kube: "Kube", plan: DeployPlan, extra_kinds: dict[str, str], parent: ApplySetRef) -> list[str]:
    """Ids of objects still labelled with the instance, in every known kind the cluster serves."""
    return [object_id(o) for o in labelled_objects(kube, plan, extra_kinds, parent)]


def labelled_objects(
    kube: "Kube", plan: DeployPlan, extra_kinds: dict[str, str], parent: ApplySetRef
) -> list[dict[str, Any]]:
    """Objects labelled with the instance (one cluster-wide LIST per known kind), minus the parent."""
    kinds = {group_kind(v, k): (v, k) for v, k in VERIFY_KINDS}
    for gk, api_version in extra_kinds.items():
        kinds.setdefault(gk, (api_version, gk.split(".", 1)[0]))
    found = []
    selector = f"{INSTANCE_LABEL}={plan.instance}"
    for api_version, kind in sorted(kinds.values()):
        if not kube.is_served(api_version, kind):
            continue
        for obj in kube.list(api_version, kind, label_selector=selector):
            if kind == "Secret" and name_of(obj) == parent.name and namespace_of(obj) == parent.namespace:
                continue
            found.append(obj)
    return found


def destroy_instance(
    kube: "Kube", plan: DeployPlan, options: DestroyOptions | None = None, *, timeout: float | None = None
) -> DestroyResult:
    """Destroy one environment instance (also what `envspec gc` calls per stale instance).

    `timeout` is a shorthand for `options.wait.timeout`.
    """
    options = options or DestroyOptions()
    if timeout is not None:
        options.wait.timeout = timeout
    result = DestroyResult()
    deadline = options.wait.clock() + options.wait.timeout
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    protected = set(plan.protected_namespaces)
    inventory = read_inventory(kube, ref).widen(plan.objects)
    members = list_members(kube, inventory)
    all_members = [m for items in members.values() for m in items]
    namespaces = [ns for ns in plan.owned_namespaces if ns not in protected]
    namespaces += [name_of(m) for m in all_members if m["kind"] == "Namespace" and name_of(m) not in namespaces]
    namespaces = [ns for ns in namespaces if ns not in protected]
    existing_ns = [ns for ns in namespaces if kube.get("v1", "Namespace", ns) is not None]

    to_delete = [m for m in all_members if m["kind"] != "Namespace"]
    if not inventory.exists and not all_members and not existing_ns:
        # No parent: look for strays by the instance label before declaring there is nothing.
        strays = labelled_objects(kube, plan, inventory.kinds, ref)
        to_delete = [o for o in strays if o["kind"] != "Namespace"]
        if not to_delete:
            result.nothing = True
            options.report(f"nothing to destroy: no trace of {plan.instance} on this cluster")
            return result

    for obj in to_delete:
        if not _is_ours(obj, ref.id, plan.instance):
            result.skipped.append(object_id(obj))
    to_delete = [m for m in to_delete if object_id(m) not in result.skipped]

    if options.dry_run:
        for obj in sorted(to_delete, key=stage_of, reverse=True):
            options.report(f"would delete {object_id(obj)}")
        if plan.database_drop:
            options.report(f"would drop database {plan.database_drop.database} on {plan.database_drop.host}")
        for ns in existing_ns:
            options.report(f"would delete Namespace/{ns}")
        options.report(f"would delete the ApplySet parent Secret/{ref.namespace}/{ref.name}")
        return result

    for obj in sorted(to_delete, key=stage_of, reverse=True):
        if kube.delete(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj)):
            result.deleted.append(object_id(obj))
            options.report(f"deleted {object_id(obj)}")
    # The database goes before the namespace: while the parent (possibly inside that namespace)
    # still exists, a re-run after a failed drop knows there is something left to do.
    if plan.database_drop is not None:
        result.database_dropped = _drop_database(kube, plan, options, deadline)
        options.report(f"dropped database {result.database_dropped} (verified absent from pg_database)")
    for ns in existing_ns:
        if kube.delete("v1", "Namespace", ns):
            result.namespaces.append(ns)
            options.report(f"deleted Namespace/{ns}")
    _wait_namespaces_gone(kube, existing_ns, options, deadline, result)

    remaining = leftovers(kube, plan, inventory.kinds, ref)
    if remaining:
        raise OperationError(
            f"destroy of {plan.instance} left objects behind: {', '.join(remaining)}; "
            "the ApplySet parent is kept so a re-run can finish"
        )
    if inventory.exists and kube.delete("v1", "Secret", ref.name, ref.namespace):
        options.report(f"deleted ApplySet parent Secret/{ref.namespace}/{ref.name}")
    return result
