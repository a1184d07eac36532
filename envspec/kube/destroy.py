"""`envspec destroy`: remove every trace of an environment instance, provably.

The seed project deleted the namespace and left the per-PR database on the
shared PostgreSQL behind, PR after PR. Destroy here is a fixed sequence, each
step safe to repeat:

0. take the instance's Lease (`envspec.kube.lease`), so no apply writes while
   destroy runs; it is deleted once the instance is gone;
1. delete the ApplySet members (never a protected namespace, never an object
   another tool manages, never anything `envspec.system` rules out);
2. drop the database with a Job on the shared PostgreSQL: `DROP DATABASE IF
   EXISTS ... WITH (FORCE)` on a re-validated name, then a check against
   `pg_database` that fails the Job if the database is still there, then
   `DROP ROLE IF EXISTS` for the instance's login role; the admin credentials
   reach the Job only through `secretKeyRef`, and the Job masks them in all it
   prints (`envspec.components.database.lifecycle`, where the script lives). The Job runs whenever the plan
   names a database, even when no object is left: a namespace deleted by hand
   must not strand the database (the seed project's failure). Its last log
   line says `dropped` or `absent`;
3. delete the instance's namespaces -- only those the ApplySet parent records
   as created by this instance (`envspec.dev/created-namespaces`) and whose
   live labels say envspec manages them for it -- and wait for them to go,
   force-finalizing one stuck in Terminating after a grace period. A namespace
   it adopted (`apply --adopt`) or found is left in place, with envspec's
   labels removed;
4. verify that nothing labelled with the instance remains in the known kinds;
5. delete the ApplySet parent last, so an interrupted destroy can be re-run.

Exit 0 and "nothing to destroy" only when no object was found and the drop Job
reported the database (and role) already absent. Every progress line and error
passes through the `Redactor`, so a log tail cannot carry a secret value out.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from envspec.errors import EnvspecError, OperationError, Problem
from envspec.kube.stages import stage_of
from envspec.kube.inventory import (
    CREATED_BY_ANNOTATION,
    ENVIRONMENT_LABEL,
    ID_LABEL,
    INSTANCE_LABEL,
    LAST_APPLIED_ANNOTATION,
    MANAGED_BY_LABEL,
    PART_OF_LABEL,
    TOOLING_ANNOTATION,
    ApplySetRef,
    Inventory,
    list_members,
    read_inventory,
)
from envspec.objects import group_kind, name_of, namespace_of, object_id
from envspec.kinds import verified_after_destroy
from envspec.components.database.lifecycle import ABSENT, DROPPED, drop_database_job
from envspec.plan import DatabaseDrop, DeployPlan
from envspec.kube.secrets import Redactor, learn_live_secrets, redactor_for
from envspec.kube.lease import InstanceLease, LeaseSettings
from envspec.kube.ssa import apply_object
from envspec.system import NEVER_TOUCHED_NAMESPACES, system_reason
from envspec.kube.wait import WaitSettings, wait_ready

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

# The drop Job's last log line: what it found (anything else, e.g. an unreadable log, counts as "gone").
GONE = "gone"

# Kinds searched for leftovers after a destroy, besides whatever the inventory recorded.
VERIFY_KINDS: tuple[tuple[str, str], ...] = verified_after_destroy()  # from the table of kinds (envspec.kinds)


@dataclass
class InstanceInfo:
    instance: str
    environment: str | None
    labels: dict[str, str]
    created: str | None  # creationTimestamp of the ApplySet parent (RFC 3339)
    parent: str  # "namespace/name" of the parent Secret
    last_applied: str | None = None  # envspec.dev/last-applied of the parent (RFC 3339 UTC), if recorded


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
                last_applied=(meta.get("annotations") or {}).get(LAST_APPLIED_ANNOTATION),
            )
        )
    return sorted(found, key=lambda i: i.instance)


@dataclass
class DestroyOptions:
    dry_run: bool = False
    grace_seconds: float = 30.0  # how long a namespace may sit in Terminating before it is force-finalized
    wait: WaitSettings = field(default_factory=WaitSettings)
    report: Callable[[str], None] = lambda line: None
    # Where the plan's secret variables are read from -- only to scrub their values from output.
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    # Asked once the lease is held, with the parent as read then (gc: is the instance still past its end,
    # or was it applied again while gc waited?). A returned note keeps the instance: nothing is deleted.
    recheck: Callable[[Inventory], str | None] | None = None


@dataclass
class DestroyResult:
    nothing: bool = False
    deleted: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    finalized: list[str] = field(default_factory=list)
    database_dropped: str | None = None  # set when the drop Job removed it (or could not say it was absent)
    database_outcome: str | None = None  # "dropped", "absent", or "gone" (verified gone, Job output unreadable)
    skipped: list[str] = field(default_factory=list)
    kept: str | None = None  # why `recheck` kept the instance (nothing was deleted)


def _is_ours(obj: dict[str, Any], set_id: str, instance: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return (
        labels.get(MANAGED_BY_LABEL) == "envspec"
        and labels.get(INSTANCE_LABEL, instance) == instance
        and labels.get(PART_OF_LABEL, set_id) == set_id
    )


def _drop_database(kube: "Kube", plan: DeployPlan, options: DestroyOptions, deadline: float) -> str:
    """Run the drop Job to completion; returns DROPPED, ABSENT or GONE (the Job's output was unreadable)."""
    assert plan.database_drop is not None
    drop = plan.database_drop
    job = drop_database_job(drop, plan)
    ns, name = namespace_of(job), name_of(job)
    if kube.get("v1", "Namespace", ns) is None:
        raise OperationError(
            f"cannot drop database {drop.database}: namespace {ns} for the drop Job does not exist "
            "(is the shared PostgreSQL installed?); the database was NOT verified dropped"
        )
    if kube.get("batch/v1", "Job", name, ns) is not None:  # a leftover from an earlier run: start clean
        kube.delete("batch/v1", "Job", name, ns, propagation="Foreground")
        while kube.get("batch/v1", "Job", name, ns) is not None:
            if options.wait.clock() >= deadline:
                raise OperationError(f"Job/{ns}/{name}: an earlier drop Job is still being deleted")
            options.wait.sleep(options.wait.interval)
    apply_object(kube, job)
    options.report(f"running Job/{ns}/{name} to drop database {drop.database}")
    try:
        wait_ready(kube, [job], settings=options.wait, deadline=deadline)
    except OperationError as exc:
        note = Problem(f"database {drop.database} was NOT verified dropped; re-run destroy once the cause is fixed")
        raise OperationError([*exc.problems, note]) from None
    outcome = _job_outcome(kube, ns, name)
    kube.delete("batch/v1", "Job", name, ns, propagation="Background")
    return outcome


def _job_outcome(kube: "Kube", namespace: str, job_name: str) -> str:
    """What the succeeded drop Job printed last; GONE when no pod log says (the Job's success still proves it)."""
    pods = kube.list("v1", "Pod", namespace=namespace, label_selector=f"job-name={job_name}")
    pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"] or pods
    if not pods:
        return GONE
    pods.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    lines = [line.strip() for line in kube.pod_log(namespace, name_of(pods[-1]), tail_lines=5).splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return last if last in (DROPPED, ABSENT) else GONE


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


def _annotation(obj: dict[str, Any], key: str) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(key)


def _is_our_namespace(live: dict[str, Any], instance: str) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == "envspec" and labels.get(INSTANCE_LABEL) == instance


def destroy_instance(
    kube: "Kube", plan: DeployPlan, options: DestroyOptions | None = None, *, timeout: float | None = None
) -> DestroyResult:
    """Destroy one environment instance (also what `envspec gc` calls per stale instance).

    `timeout` is a shorthand for `options.wait.timeout`. Progress lines and
    error messages are scrubbed of every secret value destroy knows.
    """
    options = options or DestroyOptions()
    if timeout is not None:
        options.wait.timeout = timeout
    redactor = redactor_for(plan, options.environ)
    report = options.report
    scrubbed = dataclasses.replace(options, report=lambda line: report(redactor.scrub(line)))
    try:
        if options.dry_run:  # reads only: no lease needed
            return _destroy(kube, plan, scrubbed, redactor)
        lease = InstanceLease(kube, plan.instance, action="destroy", settings=options.lease, report=scrubbed.report)
        with lease.held():
            result = _destroy(kube, plan, scrubbed, redactor, checkpoint=lease.check)
            if result.kept is None:
                lease.delete_on_release()  # the instance is gone: leave no Lease behind either
            return result
    except EnvspecError as exc:
        exc.problems = [dataclasses.replace(p, message=redactor.scrub(p.message)) for p in exc.problems]
        exc.args = ("\n".join(str(p) for p in exc.problems),)
        raise


def _destroy(
    kube: "Kube",
    plan: DeployPlan,
    options: DestroyOptions,
    redactor: Redactor,
    *,
    checkpoint: Callable[[], None] = lambda: None,
) -> DestroyResult:
    """The steps of the module docstring; `checkpoint` raises when the lease was lost (before each step)."""
    result = DestroyResult()
    deadline = options.wait.clock() + options.wait.timeout
    ref = ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)
    protected = set(plan.protected_namespaces)
    recorded = read_inventory(kube, ref)
    if options.recheck is not None and recorded.exists and not options.dry_run:
        kept = options.recheck(recorded)
        if kept:
            result.kept = kept
            options.report(f"kept {plan.instance}: {kept}")
            return result
    created = set(recorded.created_namespaces)
    inventory = recorded.widen(plan.objects)
    members = list_members(kube, inventory)
    all_members = [m for items in members.values() for m in items]
    namespaces = [ns for ns in plan.owned_namespaces if ns not in protected]
    namespaces += [name_of(m) for m in all_members if m["kind"] == "Namespace" and name_of(m) not in namespaces]
    namespaces = [ns for ns in namespaces if ns not in protected and ns not in NEVER_TOUCHED_NAMESPACES]
    live_ns = {ns: live for ns in namespaces if (live := kube.get("v1", "Namespace", ns)) is not None}
    if not recorded.exists:  # the bare namespace of an apply interrupted before its parent was written
        created |= {ns for ns, live in live_ns.items() if _annotation(live, CREATED_BY_ANNOTATION) == ref.id}
    existing_ns = [
        ns for ns in namespaces if ns in live_ns and _is_our_namespace(live_ns[ns], plan.instance) and ns in created
    ]
    release_ns: list[str] = []
    for ns in namespaces:
        if ns in live_ns and ns not in existing_ns:
            result.skipped.append(f"Namespace/{ns}")
            if _is_our_namespace(live_ns[ns], plan.instance):
                release_ns.append(ns)
                why = "this instance did not create it (adopted or pre-existing); keeping it, removing envspec's labels"
            else:
                why = f"its labels do not say envspec manages it for {plan.instance}"
            options.report(f"skipped Namespace/{ns}: {why}")

    to_delete = [m for m in all_members if m["kind"] != "Namespace"]
    found_nothing = False
    if not inventory.exists and not all_members and not live_ns:
        # No parent: look for strays by the instance label before declaring there is nothing.
        strays = labelled_objects(kube, plan, inventory.kinds, ref)
        to_delete = [o for o in strays if o["kind"] != "Namespace"]
        found_nothing = not to_delete
    learn_live_secrets(redactor, to_delete)
    if found_nothing and plan.database_drop is None:
        return _nothing(result, plan, options)

    for obj in to_delete:
        if not _is_ours(obj, ref.id, plan.instance) or system_reason(obj):
            result.skipped.append(object_id(obj))
    to_delete = [m for m in to_delete if object_id(m) not in result.skipped]

    if options.dry_run:
        for obj in sorted(to_delete, key=stage_of, reverse=True):
            options.report(f"would delete {object_id(obj)}")
        if plan.database_drop:
            drop = plan.database_drop
            role = f" and role {drop.role}" if drop.role else ""
            options.report(f"would drop database {drop.database}{role} on {drop.host} (if present)")
        for ns in existing_ns:
            options.report(f"would delete Namespace/{ns}")
        for ns in release_ns:
            options.report(f"would keep Namespace/{ns} and remove envspec's labels from it")
        if inventory.exists:
            options.report(f"would delete the ApplySet parent Secret/{ref.namespace}/{ref.name}")
        return result

    checkpoint()
    for obj in sorted(to_delete, key=stage_of, reverse=True):
        # By uid: an object recreated under this name since it was listed is not the one we own.
        if kube.delete(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj), uid=(obj.get("metadata") or {}).get("uid")):
            result.deleted.append(object_id(obj))
            options.report(f"deleted {object_id(obj)}")
    # The database goes before the namespace: while the parent (possibly inside that namespace)
    # still exists, a re-run after a failed drop knows there is something left to do.
    if plan.database_drop is not None:
        _record_drop(result, plan.database_drop, _drop_database(kube, plan, options, deadline), options)
        if found_nothing and result.database_outcome == ABSENT:
            return _nothing(result, plan, options)
    checkpoint()
    for ns in existing_ns:
        if kube.delete("v1", "Namespace", ns):
            result.namespaces.append(ns)
            options.report(f"deleted Namespace/{ns}")
    _wait_namespaces_gone(kube, existing_ns, options, deadline, result)
    for ns in release_ns:
        # An empty apply from envspec's field manager removes exactly the fields envspec set.
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, force=True)
        options.report(f"released Namespace/{ns}: kept, envspec's labels removed")

    remaining = leftovers(kube, plan, inventory.kinds, ref)
    if remaining:
        raise OperationError(
            f"destroy of {plan.instance} left objects behind: {', '.join(remaining)}; "
            "the ApplySet parent is kept so a re-run can finish"
        )
    checkpoint()
    if inventory.exists and kube.delete("v1", "Secret", ref.name, ref.namespace):
        options.report(f"deleted ApplySet parent Secret/{ref.namespace}/{ref.name}")
    return result


def _record_drop(result: DestroyResult, drop: DatabaseDrop, outcome: str, options: DestroyOptions) -> None:
    result.database_outcome = outcome
    if outcome == ABSENT:
        role = f" and role {drop.role} were" if drop.role else " was"
        options.report(f"database {drop.database}{role} already absent (checked in pg_database)")
        return
    result.database_dropped = drop.database
    options.report(f"dropped database {drop.database} (verified absent from pg_database)")
    if drop.role:
        options.report(f"dropped role {drop.role} (verified absent from pg_roles)")


def _nothing(result: DestroyResult, plan: DeployPlan, options: DestroyOptions) -> DestroyResult:
    result.nothing = True
    options.report(f"nothing to destroy: no trace of {plan.instance} on this cluster")
    return result
