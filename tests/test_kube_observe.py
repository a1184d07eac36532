"""The one read-only preparation step apply and diff share (`envspec.kube.observe`)."""

from __future__ import annotations

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube
from envspec.kube.diff import diff_live
from envspec.kube.inventory import ApplySetRef
from envspec.kube.observe import observe
from envspec.kube.secrets import build_secrets
from envspec.objects import identity, object_id
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import CANARY, ENV, NS, fake_kube, fast_wait, kube, kubeconfig, objects, plan  # noqa: F401


def _observe(kube: Kube, p, **kwargs):  # type: ignore[no-untyped-def]  # noqa: F811
    secrets, redactor = build_secrets(p, ENV)
    ref = ApplySetRef.for_instance(p.instance, p.applyset_namespace)
    return observe(kube, p, ref, secrets, [], environ=ENV, redactor=redactor, **kwargs), secrets


def test_observe_reads_only_and_sees_what_apply_wrote(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
    fake_kube.reset_requests()
    shorter = [o for o in objects() if not (o["kind"] == "Service" and o["metadata"]["name"] == "api")]

    seen, secrets = _observe(kube, plan(shorter))

    assert [r.method for r in fake_kube.requests if r.method != "GET"] == []
    assert seen.current.exists and all(identity(o) in seen.live for o in seen.desired)
    assert [object_id(o) for o in seen.prune.delete] == [f"Service/{NS}/api"]
    secret = next(o for o in seen.desired if o["kind"] == "Secret" and o["metadata"]["name"] == "db-credentials")
    assert secret["data"] == seen.live[identity(secret)]["data"]  # completed from the live Secret, read-only
    assert all(s is not secret for s in secrets)  # the caller's list is copied, not completed in place


def test_admit_runs_before_prune_and_its_namespaces_bound_prune(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
    calls: list[int] = []

    def admit(desired, current, live):  # type: ignore[no-untyped-def]
        calls.append(len(live))
        return set()  # "this instance created no namespace": prune may delete none

    no_namespace = [o for o in objects() if o["kind"] != "Namespace"]
    seen, _ = _observe(kube, plan(no_namespace), admit=admit, dangerous_prune=True)
    assert calls and calls[0] == len(seen.live)
    assert not seen.prune.delete and f"Namespace/{NS}" in seen.prune.skipped


def test_apply_and_diff_agree_through_observe(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
    fake_kube.reset_requests()
    changes = diff_live(kube, plan(), environ=ENV)
    diff_requests = len(fake_kube.requests)
    fake_kube.reset_requests()
    seen, _ = _observe(kube, plan())
    assert not changes.has_changes and not seen.prune.delete
    assert len(fake_kube.requests) == diff_requests  # diff adds no request of its own to a no-op
    assert CANARY not in changes.diff
