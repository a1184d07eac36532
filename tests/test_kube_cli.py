"""`envspec apply / diff / destroy` end to end through click, against the fake server.

The compile step is replaced by a hand-built plan through the CLI's own seam
(`envspec.cli.cluster._compile`) until environments/preview-pr.yaml exists;
everything after it (kubeconfig, binding, the real kubernetes client, HTTP)
is real.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from envspec.cli import main
from envspec.kube.plan import ClusterBinding, DeployPlan
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import CANARY, INSTANCE, NS, fake_kube, kubeconfig, objects, plan, seed_database_namespace  # noqa: F401


@dataclass
class _Compiled:
    plan: DeployPlan
    name: str = "preview-pr"
    instance: str = INSTANCE
    spec: Any = None
    warnings: list = field(default_factory=list)


@pytest.fixture
def use_plan(monkeypatch: pytest.MonkeyPatch) -> Any:
    current: dict[str, DeployPlan] = {"plan": plan()}
    monkeypatch.setattr("envspec.cli.cluster._compile", lambda *a, **k: _Compiled(current["plan"]))

    def set_plan(p: DeployPlan) -> None:
        current["plan"] = p

    return set_plan


def run(args: list[str], kubeconfig: Path, env: dict[str, str] | None = None) -> Result:  # noqa: F811
    return CliRunner().invoke(
        main,
        [args[0], "preview-pr", "--pr", "107", "--kubeconfig", str(kubeconfig), "--timeout", "5", *args[1:]],
        env={"ENVSPEC_TEST_DB_PASSWORD": CANARY, **(env or {})},
        catch_exceptions=False,
    )


def test_apply_prints_target_first_then_summary(fake_kube: FakeKube, kubeconfig: Path, use_plan: Any) -> None:  # noqa: F811
    result = run(["apply"], kubeconfig)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"target: context fake at {fake_kube.url}"
    assert result.stdout.startswith(f"applied {INSTANCE}: {len(objects()) + 1} created")

    again = run(["apply"], kubeconfig)
    assert again.exit_code == 0 and "0 created, 0 updated, 0 replaced" in again.stdout


def test_context_mismatch_exits_2_after_printing_target(fake_kube: FakeKube, kubeconfig: Path, use_plan: Any) -> None:  # noqa: F811
    use_plan(plan(cluster=ClusterBinding(context="do-fra1-production")))
    for command in ("apply", "diff", "destroy"):
        result = run([command], kubeconfig)
        assert result.exit_code == 2, (command, result.stderr)
        lines = result.stderr.splitlines()
        assert lines[0].startswith("target: context fake at http://127.0.0.1")
        assert "pass --context do-fra1-production" in result.stderr
        assert "Traceback" not in result.stderr
    assert [r for r in fake_kube.requests] == []


def test_production_without_yes_is_refused(fake_kube: FakeKube, kubeconfig: Path, use_plan: Any) -> None:  # noqa: F811
    seed_database_namespace(fake_kube)
    use_plan(plan(requires_confirmation=True))
    result = run(["apply"], kubeconfig)
    assert result.exit_code == 2 and "pass --yes" in result.stderr
    assert [r for r in fake_kube.requests if r.method != "GET"] == []
    assert run(["apply", "--yes"], kubeconfig).exit_code == 0
    refused = run(["destroy"], kubeconfig)
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert run(["destroy", "--yes"], kubeconfig).exit_code == 0


def test_diff_exit_codes_and_json_out(fake_kube: FakeKube, kubeconfig: Path, use_plan: Any, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "changes.json"
    before = run(["diff", "--json-out", str(out)], kubeconfig)
    assert before.exit_code == 1 and f"+++ envspec/Deployment/{NS}/web" in before.stdout
    data = json.loads(out.read_text())
    assert f"Namespace/{NS}" in data["created"] and data["diff"] == before.stdout

    assert run(["apply"], kubeconfig).exit_code == 0
    after = run(["diff"], kubeconfig)
    assert after.exit_code == 0 and after.stdout == ""
    assert "0 to create, 0 to change, 0 to prune" in after.stderr


def test_diff_against_directory_needs_no_cluster(use_plan: Any, tmp_path: Path) -> None:
    (tmp_path / "out.yaml").write_text(yaml.safe_dump_all(objects()))
    missing = tmp_path / "no-kubeconfig"
    same = run(["diff", "--against", str(tmp_path)], missing)
    assert same.exit_code == 0, same.stderr
    changed = objects()[:-1]
    use_plan(plan(changed))
    assert run(["diff", "--against", str(tmp_path)], missing).exit_code == 1


def test_destroy_of_nothing_exits_0(fake_kube: FakeKube, kubeconfig: Path, use_plan: Any) -> None:  # noqa: F811
    result = run(["destroy"], kubeconfig)
    assert result.exit_code == 0 and f"nothing to destroy for {INSTANCE}" in result.stdout


def test_canary_secret_never_appears_in_output_or_logs(
    fake_kube: FakeKube, kubeconfig: Path, use_plan: Any, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    seed_database_namespace(fake_kube)
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    for args, env in [
        (["diff"], {}),
        (["apply"], {}),
        (["diff"], {"ENVSPEC_TEST_DB_PASSWORD": CANARY + "-rotated"}),
        (["apply"], {"ENVSPEC_TEST_DB_PASSWORD": CANARY + "-rotated"}),
        (["destroy", "--dry-run"], {}),
        (["destroy"], {}),
    ]:
        result = run(args, kubeconfig, env)
        assert result.exit_code in (0, 1), (args, result.stderr)
        outputs += [result.stdout, result.stderr]
    # An API error that echoes the value must be scrubbed too.
    fake_kube.add_fault(method="PATCH", path_regex="/secrets/db-credentials$", status=422,
                        body={"kind": "Status", "code": 422, "reason": "Invalid", "message": f"bad value {CANARY}"})
    failed = run(["apply"], kubeconfig)
    assert failed.exit_code == 1 and "bad value <masked>" in failed.stderr
    outputs += [failed.stdout, failed.stderr, caplog.text]

    text = "\n".join(outputs)
    assert "db-credentials" in text  # the scan looked at real output
    for needle in (CANARY, base64.b64encode(CANARY.encode()).decode(),
                   base64.b64encode((CANARY + "-rotated").encode()).decode()):
        assert needle not in text
    # while the cluster did receive it (the test would be vacuous otherwise)
    sent = [r.body for r in fake_kube.requests if r.method == "PATCH" and r.path.endswith("/secrets/db-credentials")]
    assert sent and base64.b64decode(sent[0]["data"]["password"]).decode().startswith(CANARY)
