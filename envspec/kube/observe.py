"""What apply and diff read before they decide anything: one preparation step, no writes.

Both commands need the same picture of the cluster: the desired objects (fetched
manifests, plan objects and built Secrets, each an ApplySet member), the
inventory the parent records, the live members (one LIST per kind), the built
Secrets completed read-only (live values, placeholders for keys still to be
generated) with the pods' keyed checksums stamped, and what a prune would
delete. Computing it twice let the two drift apart, so it is computed here.

What differs stays with the caller: apply checks ownership (and refuses, before
any write) through `admit`, which runs after the listing and before the Secrets
are completed, so an adopted Secret's live value is what apply keeps; diff
masks values in what it prints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from envspec.kube.inventory import ApplySetRef, Inventory, PrunePlan, list_members, plan_prune, read_inventory
from envspec.plan import DeployPlan
from envspec.kube.secrets import LiveLookup, Redactor, prepare_secrets
from envspec.kube.stages import desired_objects
from envspec.objects import group_kind, identity

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.client import Kube

Identity = tuple[str, str, str, str]

# Called once the members are listed: (desired, inventory as read, live index) -> the namespaces this
# instance created, which alone prune may delete (None: no such filter). It may refuse (raise) and may
# add to the live index (objects it adopts); it runs before the Secrets are completed.
Admit = Callable[[list[dict[str, Any]], Inventory, dict[Identity, dict[str, Any]]], "Iterable[str] | None"]


@dataclass
class Observed:
    """Everything read before the first write; it decides what apply writes and what diff shows."""

    desired: list[dict[str, Any]]  # ApplySet members in stage order, built Secrets completed read-only
    current: Inventory  # the parent as read (not widened)
    members: dict[str, list[dict[str, Any]]]  # live members per group-kind
    live: dict[Identity, dict[str, Any]]  # live members (and whatever `admit` added) by identity
    prune: PrunePlan  # members that left the spec, after the prune guards


def live_secret(kube: "Kube", live: Mapping[Identity, dict[str, Any]]) -> LiveLookup:
    """A Secret from the live index, else one GET (a Secret of the plan that is not a member yet)."""

    def lookup(namespace: str, name: str) -> dict[str, Any] | None:
        found = live.get(("", "Secret", namespace, name))
        return found if found is not None else kube.get("v1", "Secret", name, namespace)

    return lookup


def observe(
    kube: "Kube",
    plan: DeployPlan,
    ref: ApplySetRef,
    secrets: list[dict[str, Any]],
    remote: list[dict[str, Any]],
    *,
    environ: Mapping[str, str],
    redactor: Redactor,
    admit: Admit | None = None,
    dangerous_prune: bool = True,
    protected_namespaces: Iterable[str] = (),
) -> Observed:
    """Read the inventory, the members and the live Secrets the plan completes. Never writes.

    `secrets` are the built Secrets (copied, so a caller may observe again with the same list);
    `remote` the fetched manifests. Prune guards that refuse raise SpecError, as apply wants;
    diff passes `dangerous_prune=True` to list every object that left the spec.
    """
    desired = desired_objects(plan, [copy.deepcopy(o) for o in secrets], ref.id, remote)
    current = read_inventory(kube, ref)
    members = list_members(kube, current.widen(desired), extra_kinds={group_kind(o): o["apiVersion"] for o in desired})
    live = {identity(o): o for items in members.values() for o in items}
    created = admit(desired, current, live) if admit is not None else None
    prepare_secrets(plan, environ, desired, live_secret(kube, live), redactor)
    prune = plan_prune(
        members,
        desired,
        set_id=ref.id,
        instance=plan.instance,
        protected_namespaces=protected_namespaces,
        dangerous=dangerous_prune,
        created_namespaces=created,
    )
    return Observed(desired, current, members, live, prune)
