"""The preview plan's credential may not read Secrets (docs/pr-flow.md): `envspec diff` still works with it.

The fake API server refuses every Secret read with 403, as RBAC without
`get`/`list` on secrets does; the diff compares everything else, skips the
Secrets instead of calling them new, and says so in its notes.
"""

from __future__ import annotations

import pytest

from envspec.kube.apply import ApplyOptions, apply_plan
from envspec.kube.client import Kube, KubeApiError
from envspec.kube.diff import SECRETS_UNREADABLE_NOTE, diff_live
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import CANARY, ENV, NS, fake_kube, fast_wait, kube, kubeconfig, objects, plan  # noqa: F401

SECRET_PATHS = r"^/api/v1/(namespaces/[^/]+/)?secrets"


def forbid_secrets(fake: FakeKube) -> None:
    fake.add_fault(method="GET", path_regex=SECRET_PATHS, status=403, times=10_000,
                   body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                         "message": 'secrets is forbidden: User "system:serviceaccount:envspec-ci:envspec-plan" cannot get resource "secrets"'})


def test_diff_without_secret_access_compares_the_rest(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    apply_plan(kube, plan(), ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=False))
    forbid_secrets(fake_kube)
    fake_kube.reset_requests()
    objs = objects()
    objs[3]["spec"]["replicas"] = 3  # Deployment web

    changes = diff_live(kube, plan(objs), environ={})

    assert changes.changed == [f"Deployment/{NS}/web"]
    assert not any("Secret/" in oid for oid in changes.created + changes.changed + changes.pruned)
    assert SECRETS_UNREADABLE_NOTE in changes.notes
    assert CANARY not in changes.diff
    secret_reads = [r for r in fake_kube.requests if "/secrets" in r.path]
    assert secret_reads and all(r.method == "GET" for r in secret_reads)  # tried, refused, never written
    assert [r for r in fake_kube.requests if r.method not in ("GET", "PATCH")] == []
    assert all(r.query.get("dryRun") == ["All"] for r in fake_kube.requests if r.method == "PATCH")


def test_other_refusals_still_fail_the_diff(fake_kube: FakeKube, kube: Kube) -> None:  # noqa: F811
    fake_kube.add_fault(method="GET", path_regex=r"/configmaps", status=403, times=10_000)
    with pytest.raises(KubeApiError):
        diff_live(kube, plan(), environ=ENV)
