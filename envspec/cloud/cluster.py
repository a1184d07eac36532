"""Make sure the declared DigitalOcean Kubernetes cluster exists; never delete or rebuild it.

A missing cluster is created and waited for. An existing one is compared with
the spec and every difference is reported, but only the node pool's node count
and autoscale settings are changed: DigitalOcean cannot change a cluster's
region or VPC, a version change is an upgrade with its own procedure, and a
node pool's droplet size is fixed for its life (the way to change it is a new
pool, which drains workloads — a decision for a person, not for a sync).

While autoscaling is on, the node count belongs to the autoscaler: a count that
merely differs from the spec is left alone; a count outside the new min..max is
clamped into it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from envspec.errors import OperationError
from envspec.spec.cloud import Cluster

if TYPE_CHECKING:
    from envspec.cloud.provider import ClusterProvider

FAILED_STATES = frozenset({"error", "invalid", "deleted", "deleting"})


@dataclass(frozen=True)
class Difference:
    field: str
    declared: str
    actual: str
    changed: bool  # True: envspec changes it; False: reported and left alone
    note: str = ""

    def describe(self) -> str:
        if self.changed:
            text = f"  ~ update   {self.field}: {self.actual} -> {self.declared}"
        else:
            text = f"  ! differs  {self.field}: cluster has {self.actual}, spec says {self.declared}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    action: Literal["create", "update", "unchanged"]
    cluster_id: str | None = None
    state: str | None = None
    differences: tuple[Difference, ...] = ()
    create_body: dict[str, Any] | None = None
    pool_id: str | None = None
    pool_update: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        if self.action == "create":
            assert self.create_body is not None
            pool = self.create_body["node_pools"][0]
            scale = (
                f", autoscale {pool['min_nodes']}..{pool['max_nodes']}" if pool.get("auto_scale") else ""
            )
            vpc = f", vpc {self.create_body['vpc_uuid']}" if self.create_body.get("vpc_uuid") else ""
            return [
                f"cluster {self.name}: create",
                f"  + region {self.create_body['region']}, version {self.create_body['version']}{vpc}",
                f"  + node pool {pool['name']}: {pool['count']} x {pool['size']}{scale}",
            ]
        head = f"cluster {self.name} ({self.cluster_id}, {self.state}): {self.action}"
        return [head, *(d.describe() for d in self.differences)]

    @property
    def reported_only(self) -> list[Difference]:
        return [d for d in self.differences if not d.changed]


def _create_body(spec: Cluster) -> dict[str, Any]:
    pool: dict[str, Any] = {"name": spec.nodePool.name, "size": spec.nodePool.size, "count": spec.nodePool.count}
    if spec.nodePool.autoscale is not None:
        pool.update(auto_scale=True, min_nodes=spec.nodePool.autoscale.min, max_nodes=spec.nodePool.autoscale.max)
    body: dict[str, Any] = {"name": spec.name, "region": spec.region, "version": spec.version, "node_pools": [pool]}
    if spec.vpc is not None:
        body["vpc_uuid"] = spec.vpc
    if spec.tags:
        body["tags"] = list(spec.tags)
    return body


def plan_cluster(spec: Cluster, actual: dict[str, Any] | None) -> ClusterPlan:
    """Compare the spec with DigitalOcean's view of the cluster (None: it does not exist). No I/O."""
    if actual is None:
        return ClusterPlan(name=spec.name, action="create", create_body=_create_body(spec))

    diffs: list[Difference] = []

    def report(name: str, declared: Any, current: Any, note: str) -> None:
        if declared != current:
            diffs.append(Difference(name, str(declared), str(current), changed=False, note=note))

    report("region", spec.region, actual.get("region"), "a cluster cannot move region; left alone")
    report("version", spec.version, actual.get("version"), "upgrades are not done by envspec; left alone")
    if spec.vpc is not None:
        report("vpc", spec.vpc, actual.get("vpc_uuid"), "a cluster cannot move VPC; left alone")

    pools = actual.get("node_pools") or []
    pool = next((p for p in pools if p.get("name") == spec.nodePool.name), None)
    state = (actual.get("status") or {}).get("state")
    if pool is None:
        names = ", ".join(str(p.get("name")) for p in pools) or "none"
        diffs.append(Difference(
            f"node pool {spec.nodePool.name}", "present", f"absent (pools: {names})", changed=False,
            note="envspec does not add or remove node pools; left alone",
        ))
        return ClusterPlan(spec.name, "unchanged", actual.get("id"), state, tuple(diffs))

    prefix = f"node pool {spec.nodePool.name}"
    report(f"{prefix} size", spec.nodePool.size, pool.get("size"),
           "a pool's droplet size cannot change in place; add a new pool and remove the old one; left alone")

    wanted = spec.nodePool
    current_count = int(pool.get("count") or 0)
    current_auto = bool(pool.get("auto_scale"))
    update: dict[str, Any] = {"name": pool["name"]}
    changed = False
    if wanted.autoscale is None:
        if current_auto:
            diffs.append(Difference(f"{prefix} autoscale", "off", f"{pool.get('min_nodes')}..{pool.get('max_nodes')}",
                                    changed=True))
            changed = True
        if current_count != wanted.count:
            diffs.append(Difference(f"{prefix} count", str(wanted.count), str(current_count), changed=True))
            changed = True
        update.update(count=wanted.count, auto_scale=False)
    else:
        lo, hi = wanted.autoscale.min, wanted.autoscale.max
        current_range = f"{pool.get('min_nodes')}..{pool.get('max_nodes')}" if current_auto else "off"
        if not current_auto or pool.get("min_nodes") != lo or pool.get("max_nodes") != hi:
            diffs.append(Difference(f"{prefix} autoscale", f"{lo}..{hi}", current_range, changed=True))
            changed = True
        count = min(max(current_count, lo), hi)
        if count != current_count:
            diffs.append(Difference(f"{prefix} count", str(count), str(current_count), changed=True,
                                    note="clamped into the autoscale range"))
            changed = True
        update.update(count=count, auto_scale=True, min_nodes=lo, max_nodes=hi)

    return ClusterPlan(
        name=spec.name,
        action="update" if changed else "unchanged",
        cluster_id=actual.get("id"),
        state=state,
        differences=tuple(diffs),
        pool_id=pool.get("id") if changed else None,
        pool_update=update if changed else None,
    )


def wait_until_running(
    client: ClusterProvider,
    cluster_id: str,
    *,
    timeout: float,
    poll_interval: float,
    echo: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the cluster until status.state is "running"; stop early on a failed state."""
    deadline = clock() + timeout
    last = None
    while True:
        cluster = client.get_cluster(cluster_id)
        status = cluster.get("status") or {}
        state = status.get("state")
        if state == "running":
            return cluster
        if state in FAILED_STATES:
            raise OperationError(f"cluster {cluster.get('name')} is {state}: {status.get('message') or 'no message'}")
        if state != last:
            echo(f"cluster {cluster.get('name')}: {state}…")
            last = state
        if clock() >= deadline:
            raise OperationError(f"timed out after {timeout:g}s waiting for cluster {cluster.get('name')} to run "
                                 f"(state {state})")
        sleep(poll_interval)


def ensure_cluster(
    spec: Cluster,
    *,
    client: ClusterProvider | None = None,  # default: DigitalOcean, from the environment's token
    dry_run: bool = False,
    timeout: float = 1800.0,
    poll_interval: float = 10.0,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> ClusterPlan:
    """Print the plan, then (unless dry_run) create the cluster or update its node pool."""
    if client is None:
        from envspec.cloud.digitalocean import DigitalOceanClient

        client = DigitalOceanClient.from_env()
    actual = client.find_cluster(spec.name)
    plan = plan_cluster(spec, actual)
    for line in plan.lines():
        echo(line)
    if dry_run:
        echo("dry run: nothing changed")
        return plan
    if plan.action == "create":
        assert plan.create_body is not None
        created = client.create_cluster(plan.create_body)
        echo(f"cluster {spec.name}: created ({created['id']}); waiting until it runs")
        wait_until_running(client, created["id"], timeout=timeout, poll_interval=poll_interval, echo=echo, sleep=sleep)
        echo(f"cluster {spec.name}: running")
        return plan
    if plan.pool_update is not None:
        assert plan.cluster_id is not None and plan.pool_id is not None
        client.update_node_pool(plan.cluster_id, plan.pool_id, plan.pool_update)
        echo(f"cluster {spec.name}: node pool {spec.nodePool.name} update accepted")
    if plan.state not in (None, "running"):
        wait_until_running(client, str(plan.cluster_id), timeout=timeout, poll_interval=poll_interval, echo=echo,
                           sleep=sleep)
    return plan
