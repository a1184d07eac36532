"""Apply at scale (issue 14): concurrent writes within a stage, readiness by LIST, pinned request counts.

Concurrency must not change what apply does: the same end state and the same
progress lines as one write at a time, every failure of a stage reported, the
lease still in charge. Readiness reads one LIST per kind per round and still
sees each object's own failure. The request counts of a small plan are pinned
here, so a change that adds requests shows up as a failing test.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from envspec.errors import OperationError
from envspec.kube.apply import APPLY_WORKERS, ApplyOptions, ApplyResult, apply_plan
from envspec.kube.client import Kube, load_target
from envspec.kube.inventory import PART_OF_LABEL
from envspec.kube.lease import LeaseLost, LeaseSettings
from envspec.kube.wait import read_live, wait_ready
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    CANARY,
    ENV,
    NS,
    deployment,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    no_sleep_retry,
    objects,
    plan,
    service,
)
from tests.test_kube_lease import seed_lease

WRITES = ("POST", "PUT", "PATCH", "DELETE")
SET_LABEL = {PART_OF_LABEL: "applyset-test"}


def options(**overrides: Any) -> ApplyOptions:
    return ApplyOptions(**{"environ": ENV, "wait": fast_wait(), "check_helm": False,
                           "lease": LeaseSettings(timeout=0.3, interval=0.02), **overrides})


def many_objects(apps: int = 12) -> list[dict[str, Any]]:
    """The small plan plus `apps` more Deployments, Services and ConfigMaps (enough to fill the workers)."""
    out = objects()
    for i in range(apps):
        name = f"app-{i:02d}"
        out += [deployment(name), service(name),
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"{name}-config", "namespace": NS, "labels": dict(out[0]["metadata"]["labels"])},
                 "data": {"index": str(i)}}]
    return out


def connect(fake: FakeKube, tmp_path: Path, name: str = "kc") -> Kube:
    _, api = load_target(fake.write_kubeconfig(tmp_path / name), None)
    return Kube(api, retry=no_sleep_retry(), request_timeout=5.0)


@pytest.fixture
def two_clusters(tmp_path: Path) -> Iterator[tuple[tuple[FakeKube, Kube], tuple[FakeKube, Kube]]]:
    with FakeKube() as one, FakeKube() as two:
        a, b = connect(one, tmp_path, "kc-1"), connect(two, tmp_path, "kc-2")
        try:
            yield (one, a), (two, b)
        finally:
            a.close()
            b.close()


VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "generation")


def end_state(fake: FakeKube) -> dict[tuple[str, ...], Any]:
    """Every stored object without what differs between two servers anyway (uids, versions, times,
    the Lease, the Jobs' pods); Secret values compare by length, pod checksums not at all (keyed per cluster)."""
    out: dict[tuple[str, ...], Any] = {}
    with fake._lock:
        stored = copy.deepcopy(fake._objects)
    for key, obj in stored.items():
        if obj.get("kind") in ("Lease", "Event", "Pod"):  # the fake names a Job's pod by its uid
            continue
        meta = obj.get("metadata") or {}
        for field in VOLATILE_META:
            meta.pop(field, None)
        for entry in meta.get("managedFields") or []:
            entry.pop("time", None)
        for owner in meta.get("ownerReferences") or []:
            owner.pop("uid", None)
        annotations = meta.get("annotations") or {}
        annotations.pop("envspec.dev/last-applied", None)  # the parent's wall-clock stamp
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        (template.get("annotations") or {}).pop("envspec.dev/secret-checksum", None)  # keyed per cluster
        if obj.get("kind") == "Secret":
            obj["data"] = {k: len(v) for k, v in (obj.get("data") or {}).items()}
        out[key] = obj
    return out


def lines_of(lines: list[str]) -> list[str]:
    return [re.sub(r"\(\d+\.\d+s\)", "(-s)", line) for line in lines]


def tallies(result: ApplyResult) -> dict[str, list[str]]:
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
            "replaced": result.replaced, "pruned": result.pruned}


# --- the same apply, one write at a time or eight --------------------------------------------


def test_parallel_apply_ends_where_sequential_does_with_the_same_lines(two_clusters: Any) -> None:
    (fake_seq, kube_seq), (fake_par, kube_par) = two_clusters
    objs = many_objects()
    seq_lines: list[str] = []
    par_lines: list[str] = []
    seq = apply_plan(kube_seq, plan(objs), options(workers=1, report=seq_lines.append))
    par = apply_plan(kube_par, plan(objs), options(workers=APPLY_WORKERS, report=par_lines.append))

    assert end_state(fake_seq) == end_state(fake_par)
    assert tallies(seq) == tallies(par)
    assert lines_of(seq_lines) == lines_of(par_lines)  # the same lines in the same (plan) order
    assert [r.id for r in seq.readiness] == [r.id for r in par.readiness]
    assert len(par.created) == len(objs) + 1  # every object and the built Secret

    # A change to a few objects: the same updates, reported alike; then nothing at all.
    changed = copy.deepcopy(objs)
    for obj in changed:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] in ("app-03-config", "app-07-config"):
            obj["data"]["index"] += "-changed"
    seq_lines.clear()
    par_lines.clear()
    seq = apply_plan(kube_seq, plan(changed), options(workers=1, report=seq_lines.append))
    par = apply_plan(kube_par, plan(changed), options(report=par_lines.append))
    assert par.updated == [f"ConfigMap/{NS}/app-03-config", f"ConfigMap/{NS}/app-07-config"] == seq.updated
    assert lines_of(seq_lines) == lines_of(par_lines)
    assert end_state(fake_seq) == end_state(fake_par)

    fake_par.reset_requests()
    again = apply_plan(kube_par, plan(changed), options())
    assert not again.changed
    assert [r for r in fake_par.requests if r.method in WRITES] == []  # the no-op re-apply still writes nothing


class CountingKube(FakeKube):
    """A fake that records how many object writes were in flight at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_flight = 0
        self.peak = 0
        self._count_lock = threading.Lock()

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> Any:
        counted = method == "PATCH" and "/leases/" not in raw_path
        if counted:
            with self._count_lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
        try:
            return super().handle(method, raw_path, headers, raw_body)
        finally:
            if counted:
                with self._count_lock:
                    self.in_flight -= 1


def test_writes_within_a_stage_overlap_but_never_more_than_the_bound(tmp_path: Path) -> None:
    with CountingKube(latency=0.02) as fake:
        kube = connect(fake, tmp_path)
        apply_plan(kube, plan(many_objects()), options(workers=4))
        kube.close()
    assert 1 < fake.peak <= 4


def test_one_worker_writes_one_object_at_a_time(tmp_path: Path) -> None:
    with CountingKube(latency=0.005) as fake:
        kube = connect(fake, tmp_path)
        apply_plan(kube, plan(many_objects(4)), options(workers=1))
        kube.close()
    assert fake.peak == 1


def test_stages_stay_in_order_under_concurrency(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(many_objects()), options())
    kinds = [r.path.split("/")[-2] for r in fake_kube.requests if r.method == "PATCH" and "/leases/" not in r.path
             and "applyset-" not in r.path]
    stage = {"namespaces": 1, "preview-pr-107": 1, "resourcequotas": 2, "configmaps": 2, "secrets": 2,
             "deployments": 3, "services": 3, "jobs": 3, "httproutes": 4}
    order = [stage[k] for k in kinds]
    assert order == sorted(order)  # no write of a later stage before the last of an earlier one
    jobs = [r.path.rsplit("/", 1)[-1] for r in fake_kube.requests if r.method == "PATCH" and "/jobs/" in r.path]
    assert jobs == ["db-create", "db-migrate"]


# --- failures ---------------------------------------------------------------------------------


def test_failing_writes_fail_the_stage_with_every_error(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    fake_kube.add_fault(method="PATCH", path_regex=r"/deployments/app-02$", status=422,
                        body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
                              "reason": "Invalid", "message": "spec.replicas: Invalid value: -1"})
    fake_kube.add_fault(method="PATCH", path_regex=r"/services/app-09$", status=403,
                        body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                              "reason": "Forbidden", "message": "services is forbidden: no access"})
    lines: list[str] = []
    with pytest.raises(OperationError) as info:
        apply_plan(kube, plan(many_objects()), options(report=lines.append))
    text = str(info.value)
    assert f"Deployment/{NS}/app-02: apply failed: spec.replicas: Invalid value: -1" in text
    assert f"Service/{NS}/app-09: apply failed: services is forbidden: no access" in text
    assert text.index("app-02") < text.index("app-09")  # in plan order
    assert info.value.exit_code == 3
    # Every other write of the stage was attempted (and reported); nothing after the stage ran.
    assert fake_kube.get("apps/v1", "Deployment", "app-11", NS) is not None
    assert f"created Deployment/{NS}/app-11" in lines
    assert f"created Deployment/{NS}/app-02" not in lines
    assert fake_kube.get("batch/v1", "Job", "db-create", NS) is None  # the stage's Jobs never started
    assert fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", NS) is None  # nor stage 4
    assert CANARY not in text


def test_a_lease_lost_mid_stage_stops_the_remaining_writes(tmp_path: Path) -> None:
    with FakeKube(latency=0.03) as fake:
        kube = connect(fake, tmp_path)

        def report(line: str) -> None:
            if line.startswith("stage 3"):  # another run takes the lease over while the stage writes
                seed_lease(fake, "envspec destroy by ops@bastion pid 3 [cafebabe]", renewed=datetime.now(timezone.utc))

        objs = many_objects(30)
        with pytest.raises(LeaseLost, match="lost the lease of preview-pr-107 to envspec destroy by ops@bastion"):
            apply_plan(kube, plan(objs), options(workers=2, report=report,
                                                 lease=LeaseSettings(timeout=0.3, interval=0.02, duration=1)))
        kube.close()
        written = {r.path.rsplit("/", 1)[-1] for r in fake.requests if r.method == "PATCH" and "/services/" in r.path}
    assert len(written) < 32  # the workers stopped writing once the renewal found the lease gone
    assert fake.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", NS) is None


# --- readiness by LIST ------------------------------------------------------------------------


def labelled(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), **SET_LABEL}
    return obj


def test_readiness_is_read_with_one_list_per_kind_per_round(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kube = connect(fake, tmp_path)
        names = [f"app-{i}" for i in range(6)]
        for name in names:
            fake.put(labelled(deployment(name)))
        rounds: list[int] = []

        def sleep(_: float) -> None:  # one Deployment becomes ready per round
            rounds.append(1)
            name = names[len(rounds) - 1]
            fake.set_status("apps/v1", "Deployment", name, NS, {
                "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})

        settings = fast_wait()
        settings.sleep = sleep
        kube.is_namespaced("apps/v1", "Deployment")  # discovery, before the requests are counted
        fake.reset_requests()
        ready = wait_ready(kube, [labelled(deployment(n)) for n in names], settings=settings)
        kube.close()
    assert [r.id for r in ready] == [f"Deployment/{NS}/{n}" for n in names]
    reads = [r for r in fake.requests if "/deployments" in r.path]
    assert len(reads) == len(rounds) + 1  # one LIST per round, not a GET per object
    listing = f"/apis/apps/v1/namespaces/{NS}/deployments"
    # While two or more are pending, one LIST by the ApplySet label; the last one alone, a GET.
    assert [r.path for r in reads] == [listing] * 6 + [f"{listing}/app-5"]
    assert all(r.query.get("labelSelector") == [f"{PART_OF_LABEL}=applyset-test"] for r in reads[:6])


def test_objects_in_several_namespaces_are_listed_cluster_wide(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    here, there = labelled(deployment("a")), labelled(deployment("b"))
    there["metadata"]["namespace"] = "other"
    stranger = deployment("c")  # no member label: not listed, so "not found" by the LIST, fetched by GET
    for obj in (here, there, stranger):
        fake_kube.put(obj)
    kube.is_namespaced("apps/v1", "Deployment")  # discovery, before the requests are counted
    fake_kube.reset_requests()
    found = read_live(kube, [here, there])
    assert set(found) == {f"Deployment/{NS}/a", "Deployment/other/b"} and all(found.values())
    assert [(r.path, r.query.get("labelSelector")) for r in fake_kube.requests] == [
        ("/apis/apps/v1/deployments", [f"{PART_OF_LABEL}=applyset-test"])]
    fake_kube.reset_requests()
    found = read_live(kube, [here, stranger])  # not one ApplySet: each read on its own
    assert all(found.values()) and [r.path for r in fake_kube.requests] == [
        f"/apis/apps/v1/namespaces/{NS}/deployments/a", f"/apis/apps/v1/namespaces/{NS}/deployments/c"]
    gone = labelled(deployment("gone"))
    assert read_live(kube, [here, gone])[f"Deployment/{NS}/gone"] is None


def _replicaset_with_pod(fake: FakeKube, deployment_name: str, reason: str, message: str = "") -> None:
    live = fake.get("apps/v1", "Deployment", deployment_name, NS)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    fake.put(live)
    rs = f"{deployment_name}-5f7"
    fake.put({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": rs, "namespace": NS, "annotations": {"deployment.kubernetes.io/revision": "1"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name,
                             "uid": live["metadata"]["uid"], "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": deployment_name}},
                 "template": live["spec"]["template"]}})
    fake.add_pod(NS, f"{rs}-1", labels={"app": deployment_name}, owner_kind="ReplicaSet", owner_name=rs,
                 container_statuses=[{"name": deployment_name, "ready": False,
                                      "state": {"waiting": {"reason": reason, "message": message}}}])


@pytest.mark.parametrize("reason, expected", [
    ("ImagePullBackOff", r"pod app-3-5f7-1 container app-3: ImagePullBackOff: Back-off pulling image"),
    ("CrashLoopBackOff", r"pod app-3-5f7-1 container app-3: CrashLoopBackOff(.|\n)*FATAL: no config"),
])
def test_listed_readiness_still_names_the_failing_object_and_why(tmp_path: Path, reason: str, expected: str) -> None:
    with FakeKube(auto_ready=False) as fake:
        kube = connect(fake, tmp_path)
        names = [f"app-{i}" for i in range(6)]
        for name in names:
            fake.put(labelled(deployment(name)))
        for name in names:
            if name != "app-3":
                fake.set_status("apps/v1", "Deployment", name, NS, {
                    "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})

        def sleep(_: float) -> None:
            if fake.get("v1", "Pod", "app-3-5f7-1", NS) is None:
                _replicaset_with_pod(fake, "app-3", reason, 'Back-off pulling image "ghcr.io/x"')
                fake.set_pod_log(NS, "app-3-5f7-1", "starting\nFATAL: no config\n")

        settings = fast_wait(timeout=600)
        settings.sleep = sleep
        reported: list[str] = []
        with pytest.raises(OperationError, match=expected) as info:
            wait_ready(kube, [labelled(deployment(n)) for n in names], settings=settings,
                       report=lambda r: reported.append(str(r)))
        kube.close()
    assert str(info.value).startswith(f"Deployment/{NS}/app-3 failed")
    assert sum(line.startswith("ready") for line in reported) == 5  # the others were seen ready


def test_listed_readiness_reports_a_failed_job_with_its_log(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        kube = connect(fake, tmp_path)
        jobs = [labelled(o) for o in objects() if o["kind"] == "Job"]
        for job in jobs:
            fake.put(job)
        fake.set_status("batch/v1", "Job", "db-create", NS, {"succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]})
        fake.set_status("batch/v1", "Job", "db-migrate", NS, {"failed": 2, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]})
        fake.add_pod(NS, "db-migrate-x1", labels={"job-name": "db-migrate"}, owner_kind="Job",
                     owner_name="db-migrate", phase="Failed")
        fake.set_pod_log(NS, "db-migrate-x1", "migrating\nERROR: relation exists\n")
        kube.is_namespaced("batch/v1", "Job")
        fake.reset_requests()
        with pytest.raises(OperationError) as info:
            wait_ready(kube, jobs, settings=fast_wait())
        kube.close()
    text = str(info.value)
    assert text.startswith(f"Job/{NS}/db-migrate failed: Job failed (BackoffLimitExceeded)")
    assert "ERROR: relation exists" in text
    assert not [r for r in fake.requests if re.search(r"/jobs/db-", r.path)]  # read by one LIST


# --- request counts, pinned -------------------------------------------------------------------


def is_discovery(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return parts in (["version"], ["api"], ["apis"]) or (parts[0] == "api" and len(parts) == 2) \
        or (parts[0] == "apis" and len(parts) == 3)


def request_summary(fake: FakeKube) -> Counter[str]:
    """Requests by method and what they address (names dropped), e.g. `GET list deployments`."""
    out: Counter[str] = Counter()
    for r in fake.requests:
        parts = [p for p in r.path.split("/") if p]
        if is_discovery(r.path):
            out["GET discovery"] += 1
            continue
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        what = rest[0] if rest else "?"
        if r.method == "GET":
            out[f"GET {'one' if len(rest) > 1 else 'list'} {what}"] += 1
        else:
            out[f"{r.method} {what}"] += 1
    return out


def test_request_counts_of_a_small_plan_are_pinned(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """The small plan (namespace, quota, config, a Secret, two apps with Services, two Jobs, a
    route). Raising any of these numbers must be a decision: update them with the reason."""
    apply_plan(kube, plan(), options())
    first = request_summary(fake_kube)
    assert sum(first.values()) == 49, first
    # Once per Kube, and only the groups the plan uses: /version, /apis, /api/v1 and the groups of
    # Lease, Deployment, Job and HTTPRoute.
    assert first["GET discovery"] == 7
    writes = sum(n for k, n in first.items() if not k.startswith("GET"))
    assert writes == 16, first  # 11 objects + the namespace's POST + parent twice + the lease's take and release
    # Readiness: the two Deployments by one LIST; the two Jobs and the route each alone of their kind.
    assert first["GET list deployments"] == 3  # 2 snapshots (before and under the lease) + 1 readiness round
    assert first["GET one deployments"] == 0
    assert first["GET one jobs"] == 2 and first["GET one httproutes"] == 1

    fake_kube.reset_requests()
    apply_plan(kube, plan(), options())
    again = request_summary(fake_kube)
    assert sum(again.values()) == 11, again  # lease, parent, one LIST per member kind, lease again
    assert again["GET discovery"] == 0  # discovery is cached
    assert not [k for k in again if not k.startswith("GET")]  # zero writes


def test_discovery_is_read_once_per_run_even_with_concurrent_writers(tmp_path: Path) -> None:
    with FakeKube(latency=0.01) as fake:
        kube = connect(fake, tmp_path)
        apply_plan(kube, plan(many_objects()), options())
        kube.close()
        discovery = [r.path for r in fake.requests if is_discovery(r.path)]
    assert len(discovery) == len(set(discovery))  # no group read twice, however many threads asked


# --- discovery: read once, re-read only when kinds can have appeared --------------------------

TWO_CRDS = "".join(f"""---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.example.com}}
spec:
  group: example.com
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {kind.lower()}}}
  versions: [{{name: v1, served: true, storage: true}}]
""" for kind, plural in (("Widget", "widgets"), ("Gadget", "gadgets")))


def custom(kind: str, name: str = "x") -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": kind,
            "metadata": {"name": name, "namespace": NS, "labels": dict(objects()[0]["metadata"]["labels"])}}


def test_kinds_not_served_yet_cost_one_discovery_reread_each_not_one_per_look(
    fake_kube: FakeKube, kube: Kube  # noqa: F811
) -> None:
    import hashlib

    from envspec.plan import RemoteManifest

    url = "https://example.com/crds.yaml"
    fetch = lambda _url, timeout: TWO_CRDS.encode()  # noqa: E731
    p = plan([*objects(), custom("Widget"), custom("Gadget")],
             remote_manifests=[RemoteManifest(url, hashlib.sha256(TWO_CRDS.encode()).hexdigest())])
    result = apply_plan(kube, p, options(fetch=fetch, cache_dir=None))
    assert {f"Widget/{NS}/x", f"Gadget/{NS}/x"} <= set(result.created)
    # The first read; one re-read for each kind missing when first looked up (the second snapshot
    # knows they are missing); one after the CRDs were established. It was three per kind per look.
    assert sum(r.path == "/apis" for r in fake_kube.requests) == 4


def test_kinds_a_chart_brings_are_found_for_stage_4(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import os
    import subprocess

    from envspec.plan import HelmChart

    helm = tmp_path / "bin" / "helm"
    helm.parent.mkdir()
    helm.write_text("#!/bin/sh\nexit 0\n")
    helm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helm.parent}{os.pathsep}{os.environ['PATH']}")

    def runner(argv: Any) -> "subprocess.CompletedProcess[str]":
        if argv[1] == "upgrade":  # the chart installs its CRD, as cert-manager's does
            fake_kube.register_crd_kind("example.com", "v1", "Widget", "widgets")
        return subprocess.CompletedProcess(list(argv), 0, "[]" if argv[1] == "list" else "null", "")

    chart = HelmChart(release="widgets", namespace="widgets", repository="https://example.com/charts",
                      chart="widgets", version="1.0.0")
    result = apply_plan(kube, plan([*objects(), custom("Widget")], helm=[chart]),
                        options(check_helm=True, helm_runner=runner))
    assert f"Widget/{NS}/x" in result.created  # missing when the snapshot looked, served after the chart
