"""The one table of Kubernetes kinds agrees with what rendering and the deploy stages do."""

from __future__ import annotations

from envspec import kinds
from envspec.objects import pod_spec_of


def test_every_kind_is_described_once() -> None:
    names = [row.kind for row in kinds.TABLE]
    assert len(names) == len(set(names))
    assert all(1 <= row.stage <= kinds.LAST_STAGE for row in kinds.TABLE)


def test_unknown_kinds_get_the_custom_resource_defaults() -> None:
    row = kinds.info("ServiceMonitor")
    assert (row.cluster_scoped, row.order, row.stage, row.readiness, row.name_limit) == (False, kinds.OTHER, 4, None, "subdomain")


def test_output_order_ranks() -> None:
    order = [kinds.order_of(k) for k in ("CustomResourceDefinition", "Namespace", "ClusterIssuer", "ConfigMap",
                                         "Deployment", "Service", "HTTPRoute", "ServiceMonitor", "Job")]
    assert order == sorted(order) and len(set(order)) == len(order)


def test_pod_templates_are_found_through_the_table() -> None:
    pod = {"containers": [{"name": "a"}]}
    assert pod_spec_of({"kind": "StatefulSet", "spec": {"template": {"spec": pod}}}) is pod
    assert pod_spec_of({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}) is pod
    assert pod_spec_of({"kind": "Pod", "spec": pod}) is pod
    assert pod_spec_of({"kind": "ConfigMap", "data": {}}) is None


def test_the_compiler_does_not_need_the_deployer_for_kinds() -> None:
    import subprocess
    import sys

    code = "import sys, envspec.kinds, envspec.render.normalize; print(any(m.startswith('envspec.kube') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_every_readiness_rule_named_in_the_table_exists() -> None:
    from envspec.kube.wait import CHECKS, WAITED_KINDS

    named = {row.readiness for row in kinds.TABLE if row.readiness}
    assert named <= set(CHECKS)
    assert WAITED_KINDS == {row.kind for row in kinds.TABLE if row.readiness}


def test_apply_stages_and_destroy_verification_come_from_the_table() -> None:
    from envspec.kube.destroy import VERIFY_KINDS
    from envspec.kube.stages import STAGE_NAMES, stage_of

    assert stage_of({"kind": "Namespace"}) == 1 and stage_of({"kind": "ConfigMap"}) == 2
    assert stage_of({"kind": "CronJob"}) == 3 and stage_of({"kind": "ServiceMonitor"}) == 4
    assert STAGE_NAMES is kinds.STAGE_NAMES
    assert ("batch/v1", "CronJob") in VERIFY_KINDS and ("v1", "Namespace") in VERIFY_KINDS


def test_compiling_imports_nothing_of_the_deployer() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from envspec.pipeline import compile_environment; from pathlib import Path; "
        "c = compile_environment('hello', root=Path('examples/hello')); c.plan; "
        "print(sorted(m for m in sys.modules if m.startswith('envspec.kube')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent)).stdout.strip()
    assert out == "[]"
