"""Ordering (issue 9): an app whose spec says `after: [jobs]` rolls out only once those Jobs succeeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envspec.errors import OperationError
from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, load_target
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    ENV,
    NS,
    compile_preview_pr,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    no_sleep_retry,
    objects,
    plan,
)

API = f"Deployment/{NS}/api"
GATES = {API: [f"Job/{NS}/db-migrate"]}


def options(**overrides: Any) -> ApplyOptions:
    return ApplyOptions(**{"environ": ENV, "wait": fast_wait(), "check_helm": False, **overrides})


def write_order(fake: FakeKube) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in fake.requests if r.method == "PATCH" and "/leases" not in r.path]


def test_a_gated_deployment_goes_after_its_jobs_and_the_others_before(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(after=GATES), options())
    order = [r.path for r in fake_kube.requests if r.method == "PATCH"]
    migrate = order.index(f"/apis/batch/v1/namespaces/{NS}/jobs/db-migrate")
    api = order.index(f"/apis/apps/v1/namespaces/{NS}/deployments/api")
    web = order.index(f"/apis/apps/v1/namespaces/{NS}/deployments/web")
    assert web < migrate < api
    assert order.index(f"/api/v1/namespaces/{NS}/services/api") < migrate  # its Service need not wait
    # the migrate Job had completed when the API was written
    completed_at = next(i for i, r in enumerate(fake_kube.requests)
                        if r.method == "GET" and r.path.endswith("/jobs/db-migrate"))
    api_at = next(i for i, r in enumerate(fake_kube.requests)
                  if r.method == "PATCH" and r.path.endswith("/deployments/api"))
    assert completed_at < api_at


def test_without_gates_jobs_still_come_after_the_workloads(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), options())
    order = write_order(fake_kube)
    assert order.index("api") < order.index("db-create") < order.index("db-migrate")


def test_a_failed_migration_never_rolls_the_api_out(tmp_path: Path) -> None:
    with FakeKube(auto_ready=False) as fake:
        _, api_client = load_target(fake.write_kubeconfig(tmp_path / "kc"), None)
        kube = Kube(api_client, retry=no_sleep_retry())
        objs = [o for o in objects() if o["kind"] in ("Namespace", "Job") or o["metadata"]["name"] == "api"]
        objs = [o for o in objs if o["kind"] != "Service"]

        def sleep(_: float) -> None:  # the "controllers": db-create succeeds, db-migrate fails
            for name, status in (("db-create", {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
                                 ("db-migrate", {"failed": 2, "conditions": [
                                     {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]})):
                live = fake.get("batch/v1", "Job", name, NS)
                if live is not None and not live.get("status"):
                    fake.set_status("batch/v1", "Job", name, NS, status)

        settings = fast_wait()
        settings.sleep = sleep
        with pytest.raises(OperationError, match="db-migrate failed"):
            apply_plan(kube, plan(objs, after=GATES), options(wait=settings))
        kube.close()
        assert fake.get("batch/v1", "Job", "db-migrate", NS) is not None
        assert fake.get("apps/v1", "Deployment", "api", NS) is None  # never rolled out on a failed migration


def test_preview_pr_plan_holds_the_api_until_migrate() -> None:
    compiled = compile_preview_pr()
    assert compiled.plan.after[API.replace(NS, "preview-pr-107")] == ["Job/preview-pr-107/migrate"]
    assert "Deployment/preview-pr-107/web" not in compiled.plan.after


def test_an_after_naming_an_unknown_job_is_a_located_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from envspec.cli import main

    result = CliRunner().invoke(main, ["validate", "local", "--set", "apps.web.after=[nope]"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "apps.web.after: unknown job 'nope'" in result.stderr

