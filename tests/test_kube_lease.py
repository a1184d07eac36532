"""The per-instance Lease (envspec.kube.lease): apply, destroy and gc one at a time, against the fake server."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.errors import OperationError
from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, load_target
from envspec.kube.destroy import DestroyOptions, destroy_instance
from envspec.kube.lease import LEASE_NAMESPACE, InstanceLease, LeaseBusy, LeaseLost, LeaseSettings, lease_name
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    CANARY,
    ENV,
    INSTANCE,
    NS,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    no_sleep_retry,
    objects,
    plan,
    preview_pr_args,
    seed_shared_infrastructure,
)

WRITES = ("POST", "PUT", "PATCH", "DELETE")
LEASE = lease_name(INSTANCE)


def quick(timeout: float = 0.3, **extra: Any) -> LeaseSettings:
    return LeaseSettings(timeout=timeout, interval=0.02, **extra)


def options(**overrides: Any) -> ApplyOptions:
    return ApplyOptions(**{"environ": ENV, "wait": fast_wait(), "check_helm": False, "lease": quick(), **overrides})


def destroy_options(**overrides: Any) -> DestroyOptions:
    return DestroyOptions(**{"wait": fast_wait(), "grace_seconds": 0.0, "environ": ENV, "lease": quick(),
                             **overrides})


def micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_lease(fake: FakeKube, holder: str, *, renewed: datetime, duration: int = 60) -> None:
    fake.put({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
              "metadata": {"name": LEASE, "namespace": LEASE_NAMESPACE},
              "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": micro(renewed),
                       "acquireTime": micro(renewed), "leaseTransitions": 2}})


def lease_spec(fake: FakeKube) -> dict[str, Any] | None:
    obj = fake.get("coordination.k8s.io/v1", "Lease", LEASE, LEASE_NAMESPACE)
    return None if obj is None else obj.get("spec", {})


def writes(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in WRITES]


def second_kube(fake: FakeKube, tmp_path: Path) -> Kube:
    _, api = load_target(fake.write_kubeconfig(tmp_path / "second-kubeconfig"), None)
    return Kube(api, retry=no_sleep_retry())


# --- holding and releasing -----------------------------------------------------------------


def test_apply_holds_the_lease_while_it_writes_and_releases_it(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    during: list[dict[str, Any] | None] = []

    def report(line: str) -> None:
        if line.startswith("stage 3"):
            during.append(lease_spec(fake_kube))

    apply_plan(kube, plan(), options(report=report))

    held = during[0]
    assert held is not None and held["holderIdentity"].startswith("envspec apply by ")
    assert held["leaseDurationSeconds"] == 60 and held["renewTime"].endswith("Z") and "acquireTime" in held
    after = lease_spec(fake_kube)
    assert after is not None and not after.get("holderIdentity")  # released: kept, holder cleared


def test_a_noop_reapply_sends_no_write_at_all_not_even_to_the_lease(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    fake_kube.reset_requests()
    result = apply_plan(kube, plan(), options())
    assert not result.changed and writes(fake_kube) == []


def test_a_second_apply_waits_then_fails_naming_the_holder(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    holder = "envspec destroy by ci@runner-7 pid 4242 [abcd1234]"
    seed_lease(fake_kube, holder, renewed=datetime.now(timezone.utc))
    fake_kube.reset_requests()
    start = time.monotonic()

    with pytest.raises(LeaseBusy) as caught:
        apply_plan(kube, plan(), options(lease=quick(timeout=0.4)))  # a no-op apply too: a held lease means wait

    assert 0.35 <= time.monotonic() - start < 5
    assert holder in str(caught.value) and "--lock-timeout" in str(caught.value)
    assert caught.value.exit_code == 3
    assert writes(fake_kube) == []
    assert lease_spec(fake_kube)["holderIdentity"] == holder


def test_a_stale_lease_is_taken_over_and_reported(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    dead = "envspec apply by ci@gone pid 1 [deadbeef]"
    seed_lease(fake_kube, dead, renewed=datetime.now(timezone.utc) - timedelta(minutes=5))
    lines: list[str] = []

    result = apply_plan(kube, plan(), options(report=lines.append))

    assert result.created
    assert any(line.startswith(f"took over the stale lease of {INSTANCE} held by {dead}") for line in lines)
    assert lease_spec(fake_kube)["leaseTransitions"] == 3


def test_the_holder_renews_while_it_runs(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    # Slow the stage-3 writes: a run longer than the lease duration stays the holder because it renews.
    fake_kube.add_fault(method="PATCH", path_regex="/deployments/", status=200, delay=0.8, times=2)
    apply_plan(kube, plan(), options(lease=quick(duration=1)))
    renewals = [r for r in fake_kube.requests if r.method == "PUT" and r.path.endswith(f"/leases/{LEASE}")
                and (r.body or {}).get("spec", {}).get("holderIdentity")]
    assert len(renewals) >= 2


def test_a_lost_lease_stops_the_run_before_more_writes(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    lease = InstanceLease(kube, INSTANCE, action="apply", settings=quick(renew=False))
    assert lease.acquire() is False  # no Lease existed: whatever was read before must be read again
    seed_lease(fake_kube, "someone else", renewed=datetime.now(timezone.utc))  # taken over behind our back
    with pytest.raises(LeaseLost, match="lost the lease of preview-pr-107 to someone else"):
        lease.renew()
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()
    assert lease_spec(fake_kube)["holderIdentity"] == "someone else"  # never clears another's lease


def test_destroy_waits_for_the_lease_and_deletes_it_when_done(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    seed_lease(fake_kube, "envspec apply by dev@laptop pid 9 [00000000]", renewed=datetime.now(timezone.utc))
    with pytest.raises(LeaseBusy, match="locked by envspec apply by dev@laptop"):
        destroy_instance(kube, plan(database_drop=None), destroy_options())
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None

    seed_lease(fake_kube, "", renewed=datetime.now(timezone.utc))  # released
    destroy_instance(kube, plan(database_drop=None), destroy_options())
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is None
    assert lease_spec(fake_kube) is None  # the instance is gone, and so is its Lease


# --- apply racing destroy ----------------------------------------------------------------------


def test_apply_racing_destroy_runs_after_it_from_a_fresh_read(fake_kube: FakeKube, kube: Kube, tmp_path: Path) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    other = second_kube(fake_kube, tmp_path)
    # Destroy is slow deleting the first Deployment: apply starts while destroy holds the lease.
    fake_kube.add_fault(method="DELETE", path_regex="/deployments/", status=200, delay=1.0, times=1)
    outcome: dict[str, Any] = {}

    def run_destroy() -> None:
        try:
            outcome["destroy"] = destroy_instance(other, plan(database_drop=None), destroy_options())
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcome["destroy"] = exc

    thread = threading.Thread(target=run_destroy)
    thread.start()
    deadline = time.monotonic() + 5
    while "destroy" not in str((lease_spec(fake_kube) or {}).get("holderIdentity")) and time.monotonic() < deadline:
        time.sleep(0.01)

    # Racing with a short timeout: refused, naming destroy, and nothing written.
    before = len(writes(fake_kube))
    with pytest.raises(LeaseBusy, match="locked by envspec destroy"):
        apply_plan(kube, plan(), options(lease=quick(timeout=0.2)))
    assert not [w for w in writes(fake_kube)[before:] if w.startswith(("PATCH", "POST"))]  # destroy only DELETEs

    # Racing with a longer timeout: waits for destroy, then applies from what is there after it.
    result = apply_plan(kube, plan(), options(lease=quick(timeout=10)))
    thread.join(10)
    other.close()

    assert not isinstance(outcome["destroy"], Exception), outcome["destroy"]
    assert f"Deployment/{NS}/web" in result.created and not result.unchanged  # not a stale "nothing to do"
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None
    paths = [f"{r.method} {r.path}" for r in fake_kube.requests]
    ns_delete = paths.index(f"DELETE /api/v1/namespaces/{NS}")
    recreate = paths.index("POST /api/v1/namespaces", ns_delete)
    lease_gone = paths.index(f"DELETE /apis/coordination.k8s.io/v1/namespaces/default/leases/{LEASE}")
    assert ns_delete < lease_gone < recreate  # destroy finished (and let go) before apply wrote anything


# --- the command line --------------------------------------------------------------------------


@pytest.mark.usefixtures("repo_root")
def test_cli_apply_exits_3_naming_the_holder(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    holder = "envspec destroy by runner@gh pid 77 (GitHub run 991) [feedf00d]"
    seed_lease(fake_kube, holder, renewed=datetime.now(timezone.utc))
    env = {"POSTGRES_USER": "aphiria", "POSTGRES_PASSWORD": CANARY, "GHCR_TOKEN": "t"}
    for command in ("apply", "destroy"):
        result = CliRunner().invoke(main, [command, "preview-pr", *preview_pr_args(107), "--kubeconfig", str(kubeconfig),
                                           "--timeout", "5", "--lock-timeout", "0.2"], env=env, catch_exceptions=False)
        assert result.exit_code == 3, result.output
        assert holder in result.stderr and "Traceback" not in result.output


def test_gc_reports_an_instance_another_run_holds(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    from envspec.github.gc import PreviewInstance
    from envspec.github.gc_cluster import destroyer

    apply_plan(kube, plan(), options())
    seed_lease(fake_kube, "envspec apply by ci@x pid 5 [12345678]", renewed=datetime.now(timezone.utc))
    destroy = destroyer(kube, lambda pr: plan(database_drop=None), timeout=5, interval=0.01, lock_timeout=0.2)
    with pytest.raises(OperationError, match="locked by envspec apply by ci@x"):
        destroy(PreviewInstance(instance=INSTANCE, environment="preview-pr"))
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None


def test_a_noop_apply_whose_read_overlapped_a_destroy_does_not_report_a_stale_unchanged(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path  # noqa: F811
) -> None:
    apply_plan(kube, plan(), options())
    other = second_kube(fake_kube, tmp_path)
    raced: list[Any] = []

    def report(line: str) -> None:  # a whole destroy runs while the no-op apply is checking the stages
        if line.startswith("stage 4") and not raced:
            raced.append(destroy_instance(other, plan(database_drop=None), destroy_options()))

    result = apply_plan(kube, plan(), options(report=report))
    other.close()

    assert raced and raced[0].deleted  # the destroy did remove everything meanwhile
    assert f"Deployment/{NS}/web" in result.created  # so apply noticed, and applied again under the lease
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None


def test_gc_decides_again_under_the_lease_and_keeps_a_preview_applied_meanwhile(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    from envspec.github.gc import PreviewInstance, decide, run_gc
    from envspec.github.gc_cluster import destroyer
    from envspec.spec.preview import PreviewSpec, instance_pattern

    pattern = instance_pattern("preview-pr-${params.pr}", "pr")
    assert pattern is not None
    previews = {"preview-pr": PreviewSpec("preview-pr", "pr", None, pattern)}

    apply_plan(kube, plan(), options())
    stale = PreviewInstance(instance=INSTANCE, environment="preview-pr",
                            last_applied=datetime.now(timezone.utc) - timedelta(days=30))
    verdicts = decide([stale], previews=previews, is_closed=None, older_than=timedelta(days=7))
    assert verdicts[0].expired  # what gc saw before it got the lease

    def recheck(item: PreviewInstance) -> str | None:
        verdict = decide([item], previews=previews, is_closed=None, older_than=timedelta(days=7))[0]
        return None if verdict.expired else "applied again while gc waited"

    lines: list[str] = []
    destroy = destroyer(kube, lambda pr: plan(database_drop=None), timeout=5, interval=0.01, recheck=recheck)
    outcome = run_gc(verdicts, dry_run=False, destroy=destroy, echo=lines.append)

    assert outcome.kept == [INSTANCE] and outcome.destroyed == [] and outcome.ok
    assert f"  {INSTANCE}: kept (applied again while gc waited)" in lines
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is not None
    assert lease_spec(fake_kube) is not None and not lease_spec(fake_kube).get("holderIdentity")


def test_an_apply_whose_lease_is_taken_over_stops_before_its_next_stage(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    def report(line: str) -> None:
        if line.startswith("stage 2"):  # another run takes the lease over (we were too slow to renew)
            seed_lease(fake_kube, "envspec destroy by ops@bastion pid 3 [cafebabe]", renewed=datetime.now(timezone.utc))
            time.sleep(0.6)  # our renewal (every 1/3 s here) finds out

    with pytest.raises(LeaseLost, match="lost the lease of preview-pr-107 to envspec destroy by ops@bastion"):
        apply_plan(kube, plan(), options(lease=quick(duration=1), report=report))
    assert fake_kube.get("apps/v1", "Deployment", "web", NS) is None  # stage 3 never started
    assert lease_spec(fake_kube)["holderIdentity"].startswith("envspec destroy by ops@bastion")  # not released by us
