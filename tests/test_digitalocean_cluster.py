"""`ensure_cluster` against the fake DigitalOcean API: create and wait, compare, update only the node pool."""

from __future__ import annotations

from typing import Any

import pytest

from envspec.cloud.cluster import ensure_cluster
from envspec.cloud.digitalocean import DigitalOceanClient, RetryPolicy
from envspec.errors import OperationError
from envspec.spec.cloud import Cluster
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)

NAME = "aphiria-com-preview-cluster"
VPC = "0f5fa8f4-3b34-4d2b-9c0a-2b1d5d4c1a11"


def spec(**overrides: Any) -> Cluster:
    data: dict[str, Any] = {
        "name": NAME,
        "region": "nyc3",
        "version": "1.34.1-do.0",
        "nodePool": {"name": "default", "size": "s-2vcpu-4gb", "count": 2},
    }
    data.update(overrides)
    return Cluster.model_validate(data)


def ensure(cluster: Cluster, **kwargs: Any) -> tuple[Any, list[str], list[float]]:
    lines: list[str] = []
    sleeps: list[float] = []
    client = DigitalOceanClient.from_env(policy=RetryPolicy(), sleep=lambda s: None)
    plan = ensure_cluster(cluster, client=client, echo=lines.append, sleep=sleeps.append, poll_interval=0.5, **kwargs)
    return plan, lines, sleeps


def existing(fake: FakeDigitalOcean, **pool: Any) -> dict[str, Any]:
    return fake.add_cluster(NAME, vpc_uuid=VPC, pools=[{"name": "default", "size": "s-2vcpu-4gb", "count": 2, **pool}])


def test_a_missing_cluster_is_created_and_waited_for(fake_do: FakeDigitalOcean) -> None:
    fake_do.provision_reads = 3
    plan, lines, sleeps = ensure(spec(vpc=VPC, nodePool={"name": "default", "size": "s-2vcpu-4gb", "count": 2,
                                                          "autoscale": {"min": 1, "max": 3}}))
    assert plan.action == "create"
    assert lines[:3] == [
        f"cluster {NAME}: create",
        f"  + region nyc3, version 1.34.1-do.0, vpc {VPC}",
        "  + node pool default: 2 x s-2vcpu-4gb, autoscale 1..3",
    ]
    assert lines[-1] == f"cluster {NAME}: running"
    [post] = fake_do.requests_to("POST", "/v2/kubernetes/clusters")
    assert post.body == {
        "name": NAME, "region": "nyc3", "version": "1.34.1-do.0", "vpc_uuid": VPC,
        "node_pools": [{"name": "default", "size": "s-2vcpu-4gb", "count": 2, "auto_scale": True,
                        "min_nodes": 1, "max_nodes": 3}],
    }
    # provisioning for two reads, running on the third: two waits in between
    assert sleeps == [0.5, 0.5]
    assert fake_do.cluster(NAME)["status"]["state"] == "running"


def test_waiting_gives_up_after_the_timeout(fake_do: FakeDigitalOcean) -> None:
    fake_do.provision_reads = 1000
    with pytest.raises(OperationError, match=f"timed out after 0s waiting for cluster {NAME} to run"):
        ensure(spec(), timeout=0)


def test_a_matching_cluster_is_left_unchanged(fake_do: FakeDigitalOcean) -> None:
    existing(fake_do)
    plan, lines, _ = ensure(spec(vpc=VPC))
    assert plan.action == "unchanged" and plan.differences == ()
    assert lines[0].endswith(": unchanged")
    assert fake_do.writes() == []


def test_a_node_count_change_updates_only_the_node_pool(fake_do: FakeDigitalOcean) -> None:
    cluster = existing(fake_do)
    pool_id = cluster["node_pools"][0]["id"]
    plan, lines, _ = ensure(spec(nodePool={"name": "default", "size": "s-2vcpu-4gb", "count": 3}))
    assert plan.action == "update"
    assert "  ~ update   node pool default count: 2 -> 3" in lines
    [put] = fake_do.writes()
    assert (put.method, put.path) == ("PUT", f"/v2/kubernetes/clusters/{cluster['id']}/node_pools/{pool_id}")
    assert put.body == {"name": "default", "count": 3, "auto_scale": False}
    assert fake_do.cluster(NAME)["node_pools"][0]["count"] == 3


def test_turning_on_autoscale_updates_the_pool_and_leaves_the_count_to_the_autoscaler(fake_do: FakeDigitalOcean) -> None:
    existing(fake_do, count=4)
    plan, lines, _ = ensure(spec(nodePool={"name": "default", "size": "s-2vcpu-4gb", "count": 2,
                                           "autoscale": {"min": 1, "max": 5}}))
    assert plan.action == "update"
    [put] = fake_do.writes()
    assert put.body == {"name": "default", "count": 4, "auto_scale": True, "min_nodes": 1, "max_nodes": 5}
    assert not any("count" in line for line in lines[1:])


def test_a_count_outside_the_new_autoscale_range_is_clamped(fake_do: FakeDigitalOcean) -> None:
    existing(fake_do, count=6, auto_scale=True, min_nodes=1, max_nodes=6)
    plan, lines, _ = ensure(spec(nodePool={"name": "default", "size": "s-2vcpu-4gb", "count": 2,
                                           "autoscale": {"min": 1, "max": 3}}))
    assert "  ~ update   node pool default count: 6 -> 3 (clamped into the autoscale range)" in lines
    assert fake_do.writes()[0].body["count"] == 3


def test_other_differences_are_reported_and_left_alone(fake_do: FakeDigitalOcean) -> None:
    existing(fake_do)
    other_vpc = "11111111-2222-3333-4444-555555555555"
    plan, lines, _ = ensure(spec(region="sfo3", version="1.35.0-do.0", vpc=other_vpc,
                                 nodePool={"name": "default", "size": "s-4vcpu-8gb", "count": 2}))
    assert plan.action == "unchanged"
    assert {d.field for d in plan.reported_only} == {"region", "version", "vpc", "node pool default size"}
    assert any("region: cluster has nyc3, spec says sfo3 (a cluster cannot move region; left alone)" in l for l in lines)
    assert any("size: cluster has s-2vcpu-4gb, spec says s-4vcpu-8gb" in l and "add a new pool" in l for l in lines)
    assert fake_do.writes() == []


def test_a_missing_node_pool_is_reported_not_created(fake_do: FakeDigitalOcean) -> None:
    existing(fake_do)
    plan, lines, _ = ensure(spec(nodePool={"name": "workers", "size": "s-2vcpu-4gb", "count": 2}))
    assert plan.action == "unchanged"
    assert any("node pool workers: cluster has absent (pools: default)" in l for l in lines)
    assert fake_do.writes() == []


def test_dry_run_prints_the_plan_and_changes_nothing(fake_do: FakeDigitalOcean) -> None:
    plan, lines, _ = ensure(spec(), dry_run=True)
    assert plan.action == "create" and lines[-1] == "dry run: nothing changed"
    existing(fake_do)
    plan, lines, _ = ensure(spec(nodePool={"name": "default", "size": "s-2vcpu-4gb", "count": 5}), dry_run=True)
    assert plan.action == "update" and lines[-1] == "dry run: nothing changed"
    assert fake_do.writes() == []


def test_a_cluster_that_fails_to_provision_is_reported(fake_do: FakeDigitalOcean) -> None:
    fake_do.add_cluster(NAME, state="error")
    with pytest.raises(OperationError, match=f"cluster {NAME} is error"):
        ensure(spec())
    assert fake_do.writes() == []


def test_no_request_ever_deletes_a_cluster(fake_do: FakeDigitalOcean) -> None:
    ensure(spec())
    ensure(spec(region="sfo3", nodePool={"name": "other", "size": "s-1vcpu-2gb", "count": 1}))
    assert fake_do.requests_to("DELETE", ".*") == []
    assert len(fake_do.requests_to("POST", ".*")) == 1
