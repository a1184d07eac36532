"""In which order a plan's objects go to the cluster (and come off it again).

Order matters on a fresh cluster: a custom resource cannot be created before
its CRD is Established, a Deployment should not start before its ConfigMap
exists, and a route is pointless before its backends. So objects go in four
stages, each waited on before the next:

1. CRDs and Namespaces (and everything fetched from `manifests:`, e.g. the Gateway API CRDs);
2. config, Secrets, RBAC (and storage claims);
3. workloads and Services, then the plan's Jobs one by one in declared order;
   a workload whose app declares `after: [job, ...]` (the plan's `after`)
   rolls out only once those Jobs succeeded -- an API never starts before its
   migrations ran -- and when one is held back, the others are ready before
   the Jobs start, since a Job may need them (a database app);
4. routes and every other custom resource.

Destroy walks the same stages backwards. apply, diff and destroy all import
from here so the three never disagree about the order.
"""

from __future__ import annotations

from typing import Any, Iterable

from envspec.kinds import STAGE_NAMES, TABLE, stage_of_kind
from envspec.kube.inventory import with_member_label
from envspec.plan import DeployPlan
from envspec.objects import identity

# Stage membership, readiness and the rest of what envspec knows per kind: envspec.kinds (one table).
STAGE_1 = frozenset(row.kind for row in TABLE if row.stage == 1)
STAGE_2 = frozenset(row.kind for row in TABLE if row.stage == 2)
STAGE_3 = frozenset(row.kind for row in TABLE if row.stage == 3)
# Kinds that start pods: these are what an app's `after` holds back (its Service and PDB go first).
ROLLOUT_KINDS = frozenset(row.kind for row in TABLE if row.pod_template and row.kind != "Job")
STAGES = tuple(sorted(STAGE_NAMES))


def stage_of(obj: dict[str, Any]) -> int:
    return stage_of_kind(str(obj.get("kind", "")))


def desired_objects(
    plan: DeployPlan,
    secrets: list[dict[str, Any]],
    set_id: str,
    remote: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Fetched manifests, plan objects and built Secrets, each an ApplySet member, in stage order (stable).

    Fetched manifests come first: they are infrastructure (CRDs and whatever ships with them) that
    the rest may need, so they belong to stage 1 whatever their kind.
    """
    fetched = [with_member_label(o, set_id) for o in remote]
    rest = [with_member_label(o, set_id) for o in [*plan.objects, *secrets]]
    return fetched + sorted(rest, key=stage_of)  # sorted() is stable: plan order survives inside a stage


def by_stage(objects: list[dict[str, Any]], first: Iterable[dict[str, Any]] = ()) -> dict[int, list[dict[str, Any]]]:
    """`objects` grouped per stage; those whose identity is in `first` (fetched manifests) go to stage 1."""
    early = {identity(o) for o in first}
    out: dict[int, list[dict[str, Any]]] = {stage: [] for stage in STAGES}
    for obj in objects:
        out[1 if identity(obj) in early else stage_of(obj)].append(obj)
    return out
