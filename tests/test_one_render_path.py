"""One render path: every object apply and destroy send went through the compiler's normalisation.

The fake server records each write's body; each one must carry the instance's labels (the drop Job
its own: it is not a member, and the CI policies admit it by `envspec.dev/drops-instance`) and be
what `normalize_object` would make of it -- nothing built at apply or destroy time bypasses it.
"""

from __future__ import annotations

from typing import Any

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube
from envspec.kube.destroy import DestroyOptions, destroy_instance
from envspec.kube.inventory import parent_object, read_inventory, ApplySetRef
from envspec.kube.secrets import build_secrets
from envspec.render.context import ENVIRONMENT_LABEL, MANAGED_BY
from envspec.render.normalize import is_normalized, normalize_object
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    compile_preview_pr,
    fake_kube,
    fast_wait,
    kube,
    kubeconfig,
    seed_shared_infrastructure,
)

PR_ENV = {"GHCR_TOKEN": "ghcr-token-for-tests"}
DROPS = "envspec.dev/drops-instance"


def written(fake: FakeKube) -> list[dict[str, Any]]:
    """The objects the client sent (create, replace, apply); not DeleteOptions, not the Lease (a lock, see lease.py)."""
    bodies = [r.body for r in fake.requests if r.method in ("POST", "PUT", "PATCH") and isinstance(r.body, dict)]
    return [b for b in bodies if b.get("kind") not in (None, "DeleteOptions", "Lease")]


def expected_labels(obj: dict[str, Any], plan: Any) -> dict[str, str]:
    if DROPS in (obj["metadata"].get("labels") or {}):
        return {MANAGED_BY: "envspec", ENVIRONMENT_LABEL: plan.environment, DROPS: plan.instance}
    return dict(plan.labels)


def test_every_object_apply_and_destroy_send_passed_normalize(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    seed_shared_infrastructure(fake_kube)
    plan = compile_preview_pr().plan
    fake_kube.reset_requests()
    apply_plan(kube, plan, ApplyOptions(environ=PR_ENV, wait=fast_wait(), check_helm=False))
    destroy_instance(kube, plan, DestroyOptions(grace_seconds=0.05, wait=fast_wait(), environ=PR_ENV))

    sent = written(fake_kube)
    kinds = {b["kind"] for b in sent}
    assert {"Namespace", "Secret", "Deployment", "Job"} <= kinds
    assert any(DROPS in (b["metadata"].get("labels") or {}) for b in sent)  # the drop Job was among them
    assert any(b["metadata"]["name"] == f"applyset-{plan.instance}" for b in sent)  # and the parent
    for body in sent:
        labels = expected_labels(body, plan)
        oid = f"{body['kind']}/{body['metadata'].get('namespace', '')}/{body['metadata']['name']}"
        assert labels.items() <= (body["metadata"].get("labels") or {}).items(), oid
        assert is_normalized(body, labels), oid


def test_apply_time_objects_come_out_of_normalize_in_canonical_order(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    from envspec.components.database.lifecycle import drop_database_job

    plan = compile_preview_pr().plan
    assert plan.database_drop is not None
    secrets, _ = build_secrets(plan, PR_ENV)
    parent = parent_object(read_inventory(kube, ApplySetRef.for_instance(plan.instance, plan.applyset_namespace)),
                           plan.labels)
    job = drop_database_job(plan.database_drop, plan)
    for obj in [*secrets, parent, job]:
        canonical = normalize_object(obj, expected_labels(obj, plan))
        assert list(canonical) == list(obj) and list(canonical["metadata"]) == list(obj["metadata"])
        assert canonical == obj
    assert list(job["metadata"]["labels"]) == sorted(job["metadata"]["labels"])
    # Nothing that exists only at apply or destroy time is rendered: the plan's objects are the render's.
    rendered_kinds = {(o["kind"], o["metadata"]["name"]) for o in plan.objects}
    assert ("Job", job["metadata"]["name"]) not in rendered_kinds
    assert not any(("Secret", s["metadata"]["name"]) in rendered_kinds for s in secrets)
