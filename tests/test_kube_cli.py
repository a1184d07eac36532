"""`envspec apply / diff / destroy` end to end through click, against the fake API servers.

Nothing is stubbed between the command line and HTTP: the repository's own
environments are compiled by the real pipeline, the kubeconfig is read, the
cluster binding is enforced, and the official kubernetes and DigitalOcean
clients talk to tests/fakes over loopback. preview-pr is rebound to the fake
cluster with `--set cluster.context=fake --set cluster.digitalocean=false` and gets pinned images by `--param`,
exactly as the deploy workflow passes them.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from envspec.cli import main
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)
from tests.fakes.kube_server import FakeKube
from tests.test_kube_helpers import (  # noqa: F401  (fixtures)
    BIND_TO_FAKE,
    CANARY,
    GATEWAY_IP,
    GATEWAY_NS,
    compile_preview_pr,
    fake_helm,
    fake_kube,
    helm_installs,
    kubeconfig,
    manifest_cache,
    preview_pr_args,
    seed_gateway_service,
    seed_shared_infrastructure,
)

pytestmark = pytest.mark.usefixtures("repo_root")  # run from the repository root, as a user would

INSTANCE = "preview-pr-107"
NS = INSTANCE
GHCR_CANARY = "ghcr-canary-52d1b7e0-do-not-print"
ENV = {"POSTGRES_USER": "aphiria", "POSTGRES_PASSWORD": CANARY, "GHCR_TOKEN": GHCR_CANARY}
# Grafana's GitHub OAuth app and production's SMTP account (the monitoring bundle's Secret monitoring/grafana).
ENV.update({f"GRAFANA_{key}": f"grafana-{key.lower()}-value" for key in
            ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM")})
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Drops the HTTP->HTTPS redirect route of the API (pruned) and widens the quota (updated).
CHANGE = ["--set", "routes.api.httpsRedirectFrom=null", "--set", 'namespace.quota.cpu="3"']


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env={**ENV, **(env or {})}, catch_exceptions=False)


def pr_cmd(command: str, kubeconfig: Path, *extra: str, pr: int = 107, bind: bool = True,  # noqa: F811
           env: dict[str, str] | None = None) -> Result:
    """`envspec COMMAND preview-pr --pr N --param webImage=... --param apiImage=... [--set cluster.context=fake]`."""
    args = [command, "preview-pr", *preview_pr_args(pr, bind_to_fake=bind), "--kubeconfig", str(kubeconfig),
            "--timeout", "5", *extra]
    return run(args, env)


def writes(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in WRITES]


def summary(created: int = 0, updated: int = 0, unchanged: int = 0, pruned: int = 0, instance: str = INSTANCE) -> str:
    return (f"applied {instance}: {created} created, {updated} updated, 0 replaced, "
            f"{unchanged} unchanged, {pruned} pruned\n")


@pytest.fixture
def total() -> int:
    """Objects apply writes for preview-pr 107: the render plus the Secrets apply builds (the checksum key too)."""
    from envspec.kube.secrets import sources

    compiled = compile_preview_pr()
    return len(compiled.objects) + len(sources(compiled.plan))


# --- the commands' contract ----------------------------------------------------------------


def test_apply_prints_target_first_then_summary(fake_kube: FakeKube, kubeconfig: Path, total: int) -> None:  # noqa: F811
    result = pr_cmd("apply", kubeconfig)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"target: context fake at {fake_kube.url} (context from {kubeconfig})"
    assert result.stdout == summary(created=total)
    assert fake_kube.get("apps/v1", "Deployment", "web", NS)["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "ghcr.io/aphiria/aphiria.com-web@sha256:" + "b" * 64

    again = pr_cmd("apply", kubeconfig)
    assert again.exit_code == 0 and again.stdout == summary(unchanged=total)


def test_context_mismatch_exits_2_after_printing_target(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    for command in ("apply", "diff", "destroy"):
        result = pr_cmd(command, kubeconfig, bind=False)  # preview-pr as committed: bound to the DO cluster
        assert result.exit_code == 2, (command, result.stderr)
        lines = result.stderr.splitlines()
        assert lines[0] == f"target: context fake at {fake_kube.url} (context from {kubeconfig})"
        assert "environment preview-pr is bound to kube context 'do-nyc3-aphiria-com-preview-cluster'" in result.stderr
        assert "pass --context do-nyc3-aphiria-com-preview-cluster" in result.stderr
        assert "Traceback" not in result.stderr
    assert [r for r in fake_kube.requests] == []


def test_unpinned_app_image_is_refused_before_any_write(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    result = run(["apply", "preview-pr", "--pr", "107", *BIND_TO_FAKE,
                  "--kubeconfig", str(kubeconfig), "--timeout", "5"])
    assert result.exit_code == 2
    assert "uses image 'ghcr.io/aphiria/aphiria.com-web:pr-107', which is not pinned" in result.stderr
    assert writes(fake_kube) == []


def test_production_without_yes_is_refused(
    fake_kube: FakeKube, kubeconfig: Path, fake_helm: Path, manifest_cache: Path  # noqa: F811
) -> None:
    def prod(command: str, *extra: str) -> Result:
        return run([command, "production", *BIND_TO_FAKE, "--kubeconfig", str(kubeconfig),
                    "--timeout", "5", *extra], env={"DIGITALOCEAN_TOKEN": "do-token-for-cert-manager"})

    result = prod("apply", "--skip-dns")
    assert result.exit_code == 2 and "environment production needs confirmation: pass --yes" in result.stderr
    assert writes(fake_kube) == [] and fake_helm.read_text() == ""

    applied = prod("apply", "--skip-dns", "--yes")
    assert applied.exit_code == 0, applied.stderr
    charts = helm_installs(fake_helm)
    assert [(argv[2], argv[argv.index("--version") + 1]) for argv in charts] == [
        ("kube-prometheus-stack", "70.10.0"), ("cert-manager", "v1.21.1"), ("nginx-gateway", "2.6.7")]
    assert all(argv[argv.index("--kube-context") + 1] == "fake" for argv in charts)
    # The OCI chart is named by reference; only the HTTP chart repository goes through --repo.
    assert charts[2][3] == "oci://ghcr.io/nginx/charts/nginx-gateway-fabric" and "--repo" not in charts[2]
    assert charts[1][3:6] == ["cert-manager", "--repo", "https://charts.jetstack.io"]
    # The Gateway API CRDs from `manifests:` went in before the charts that need them.
    assert fake_kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                         "gatewayclasses.gateway.networking.k8s.io") is not None
    lines = applied.stderr.splitlines()
    assert lines.index("created CustomResourceDefinition/gatewayclasses.gateway.networking.k8s.io") < next(
        i for i, line in enumerate(lines) if line.startswith("helm    cert-manager/cert-manager"))

    again = prod("apply", "--skip-dns", "--yes")
    assert again.exit_code == 0, again.stderr
    assert len(helm_installs(fake_helm)) == 3  # releases already current: no new revision
    assert "helm    cert-manager/cert-manager cert-manager@v1.21.1 (unchanged)" in again.stderr
    assert fake_kube.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 2

    refused = prod("destroy")
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert fake_kube.get("apps/v1", "Deployment", "web", "default") is not None
    destroyed = prod("destroy", "--yes")
    assert destroyed.exit_code == 0, destroyed.stderr
    assert destroyed.stdout.startswith("destroyed production: ")
    assert fake_kube.get("apps/v1", "Deployment", "web", "default") is None
    assert fake_kube.get("v1", "Namespace", "default") is not None  # not owned: production deploys into it


def test_diff_exit_codes_and_json_out(fake_kube: FakeKube, kubeconfig: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "changes.json"
    before = pr_cmd("diff", kubeconfig, "--json-out", str(out))
    assert before.exit_code == 1 and f"+++ envspec/Deployment/{NS}/web" in before.stdout
    data = json.loads(out.read_text())
    assert f"Namespace/{NS}" in data["created"] and data["diff"] == before.stdout
    assert writes(fake_kube) == []

    assert pr_cmd("apply", kubeconfig).exit_code == 0
    after = pr_cmd("diff", kubeconfig)
    assert after.exit_code == 0 and after.stdout == ""
    assert "0 to create, 0 to change, 0 to prune" in after.stderr


def test_diff_in_the_plan_job_needs_no_secret_variables(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    unset = {"POSTGRES_USER": None, "POSTGRES_PASSWORD": None, "GHCR_TOKEN": None}
    result = CliRunner().invoke(main, ["diff", "preview-pr", *preview_pr_args(), "--kubeconfig", str(kubeconfig),
                                       "--timeout", "5"], env=unset, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # the Secrets exist with their keys (generated app-db password included)
    assert f"note: Secret {NS}/ghcr-pull: data not compared (GHCR_TOKEN not set); compared by keys only" \
        in result.stderr
    assert "postgres-admin" not in result.stderr  # a PR namespace holds no admin credentials


def test_api_refusal_exits_3_without_a_traceback(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    fake_kube.add_fault(method="GET", path_regex=f"/namespaces/{NS}/secrets/applyset-{INSTANCE}$", status=403,
                        body={"kind": "Status", "code": 403, "reason": "Forbidden", "message": "forbidden for ci"})
    result = pr_cmd("apply", kubeconfig)
    assert result.exit_code == 3
    assert f"get Secret/{NS}/applyset-{INSTANCE}: HTTP 403: forbidden for ci" in result.stderr
    assert "Traceback" not in result.stderr and writes(fake_kube) == []


def test_diff_against_directory_needs_no_cluster(tmp_path: Path) -> None:
    # The render as one YAML stream (`envspec render ... > rendered/preview-pr.yaml`).
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    made = run(["render", "preview-pr", *preview_pr_args()])
    assert made.exit_code == 0, made.stderr
    (rendered / "preview-pr.yaml").write_text(made.stdout)
    missing = tmp_path / "no-kubeconfig"
    same = pr_cmd("diff", missing, "--against", str(rendered))
    assert same.exit_code == 0, same.stderr
    assert same.stdout == ""
    changed = pr_cmd("diff", missing, "--against", str(rendered), *CHANGE)
    assert changed.exit_code == 1, changed.stderr
    assert f"--- live/HTTPRoute/{NS}/api-https-redirect" in changed.stdout
    assert f"+++ envspec/ResourceQuota/{NS}/quota" in changed.stdout


def test_destroy_of_nothing_still_drops_the_database_and_exits_0(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    # Namespace and ApplySet parent gone (say, deleted by hand): the database may still exist.
    result = pr_cmd("destroy", kubeconfig)
    assert result.exit_code == 0, result.stderr
    assert any(w.startswith("PATCH /apis/batch/v1/namespaces/default/jobs/envspec-drop-") for w in writes(fake_kube))


def test_canary_secret_never_appears_in_output_or_logs(
    fake_kube: FakeKube, kubeconfig: Path, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    caplog.set_level(logging.DEBUG)
    rotated = {"POSTGRES_PASSWORD": CANARY + "-rotated", "GHCR_TOKEN": GHCR_CANARY + "-rotated"}
    outputs: list[str] = []
    for command, extra, env in [
        ("diff", [], {}),
        ("apply", [], {}),
        ("diff", [], rotated),
        ("apply", [], rotated),
        ("destroy", ["--dry-run"], {}),
        ("destroy", [], {}),
    ]:
        result = pr_cmd(command, kubeconfig, *extra, env=env)
        assert result.exit_code in (0, 1), (command, result.stderr)
        outputs += [result.stdout, result.stderr]
    # An API error that echoes the value must be scrubbed too.
    fake_kube.add_fault(method="PATCH", path_regex=f"/namespaces/{NS}/secrets/ghcr-pull$", status=422,
                        body={"kind": "Status", "code": 422, "reason": "Invalid", "message": f"bad value {GHCR_CANARY}"})
    failed = pr_cmd("apply", kubeconfig)
    assert failed.exit_code == 3 and "bad value <masked>" in failed.stderr
    outputs += [failed.stdout, failed.stderr, caplog.text]

    text = "\n".join(outputs)
    assert f"Secret/{NS}/app-db" in text and f"Secret/{NS}/ghcr-pull" in text  # the scan saw real output

    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    for needle in (CANARY, b64(CANARY), b64(CANARY + "-rotated"), GHCR_CANARY, b64(GHCR_CANARY),
                   b64(f"aphiria-bot:{GHCR_CANARY}"), b64(f"aphiria-bot:{GHCR_CANARY}-rotated")):
        assert needle not in text
    # while the cluster did receive them (the test would be vacuous otherwise)
    pulls = [r.body for r in fake_kube.requests if r.method == "PATCH" and r.path.endswith("/secrets/ghcr-pull")]
    assert pulls and GHCR_CANARY in base64.b64decode(pulls[0]["data"][".dockerconfigjson"]).decode()


# --- a preview's whole life through the command line ---------------------------------------


def test_preview_pr_lifecycle_apply_noop_change_prune_destroy(
    fake_kube: FakeKube, kubeconfig: Path, total: int, tmp_path: Path  # noqa: F811
) -> None:
    seed_shared_infrastructure(fake_kube)
    first = pr_cmd("apply", kubeconfig)
    assert first.exit_code == 0 and first.stdout == summary(created=total), first.stderr
    other = pr_cmd("apply", kubeconfig, pr=108)  # a second preview shares the cluster
    assert other.exit_code == 0 and other.stdout == summary(created=total, instance="preview-pr-108")
    route = fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "api", NS)
    assert route["spec"]["hostnames"] == ["107.pr-api.aphiria.com"]
    assert route["spec"]["parentRefs"][0] == {"name": "nginx-gateway", "namespace": GATEWAY_NS,
                                              "sectionName": "https-pr-api"}

    fake_kube.reset_requests()
    noop = pr_cmd("apply", kubeconfig)
    assert noop.exit_code == 0 and noop.stdout == summary(unchanged=total)
    assert writes(fake_kube) == []  # a re-apply with nothing to change sends no write at all

    planned = tmp_path / "changes.json"
    diff = pr_cmd("diff", kubeconfig, *CHANGE, "--json-out", str(planned))
    assert diff.exit_code == 1
    changes = json.loads(planned.read_text())
    assert (changes["created"], changes["changed"], changes["pruned"]) == (
        [], [f"ResourceQuota/{NS}/quota"], [f"HTTPRoute/{NS}/api-https-redirect"])

    changed = pr_cmd("apply", kubeconfig, *CHANGE)
    assert changed.exit_code == 0, changed.stderr
    assert changed.stdout == summary(updated=1, unchanged=total - 2, pruned=1)
    assert f"pruned  HTTPRoute/{NS}/api-https-redirect" in changed.stderr
    assert fake_kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "api-https-redirect", NS) is None
    assert fake_kube.get("v1", "ResourceQuota", "quota", NS)["spec"]["hard"]["limits.cpu"] == "3"
    assert pr_cmd("diff", kubeconfig, *CHANGE).exit_code == 0

    fake_kube.reset_requests()
    destroyed = pr_cmd("destroy", kubeconfig, *CHANGE)
    assert destroyed.exit_code == 0, destroyed.stderr
    assert destroyed.stdout == (f"destroyed {INSTANCE}: {total - 2} objects, 1 namespaces, "
                                "dropped database aphiria_pr_107\n")
    drop = [r.body for r in fake_kube.requests
            if r.method == "PATCH" and "/namespaces/default/jobs/envspec-drop-aphiria-pr-107" in r.path]
    assert len(drop) == 1
    container = drop[0]["spec"]["template"]["spec"]["containers"][0]
    assert "DROP DATABASE IF EXISTS \"aphiria_pr_107\" WITH (FORCE)" in container["command"][-1]
    assert {"name": "PGHOST", "value": "db.default.svc.cluster.local"} in container["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e} == {"postgres-admin"}
    assert fake_kube.get("v1", "Namespace", NS) is None
    for kind in (("v1", "Secret"), ("v1", "ConfigMap"), ("batch/v1", "Job"), ("gateway.networking.k8s.io/v1", "HTTPRoute")):
        assert fake_kube.list(*kind, label_selector=f"envspec.dev/instance={INSTANCE}") == []
    # The drop Job cleans up after itself; only PR 108's database Job is left in the shared namespace.
    assert [j["metadata"]["name"] for j in fake_kube.list("batch/v1", "Job", "default")] == [
        "envspec-create-aphiria-pr-108-7285cd27"]
    assert fake_kube.list("v1", "Secret", "default", label_selector=f"envspec.dev/instance={INSTANCE}") == []

    # The other preview, the shared infrastructure and the protected namespaces are untouched.
    assert fake_kube.get("apps/v1", "Deployment", "web", "preview-pr-108") is not None
    assert fake_kube.get("v1", "Secret", "postgres-admin", "default") is not None
    assert fake_kube.get("v1", "Namespace", GATEWAY_NS) is not None
    assert pr_cmd("diff", kubeconfig, pr=108).exit_code == 0
    again = pr_cmd("destroy", kubeconfig)
    assert again.exit_code == 0, again.stderr


# --- DigitalOcean DNS after the routes -----------------------------------------------------


def _apply_preview_base(kubeconfig: Path, *extra: str) -> Result:  # noqa: F811
    return run(["apply", "preview-base", *BIND_TO_FAKE, "--kubeconfig", str(kubeconfig),
                "--timeout", "5", *extra])


def test_apply_syncs_dns_once_the_gateway_is_ready(
    fake_kube: FakeKube, kubeconfig: Path, fake_do: FakeDigitalOcean, fake_helm: Path, manifest_cache: Path  # noqa: F811
) -> None:
    fake_do.add_domain("aphiria.com")
    seed_gateway_service(fake_kube)
    result = _apply_preview_base(kubeconfig)
    assert result.exit_code == 0, result.stderr
    records = {(r["type"], r["name"], r["data"]) for r in fake_do.records("aphiria.com")}
    assert {("A", "*.pr", GATEWAY_IP), ("A", "*.pr-api", GATEWAY_IP), ("A", "pr-grafana", GATEWAY_IP)} <= records
    lines = result.stderr.splitlines()
    gateway_ready = lines.index(next(line for line in lines if line.startswith("ready   Gateway/nginx-gateway/")))
    dns_plan = lines.index(next(line for line in lines if line.startswith("DNS plan for aphiria.com")))
    assert gateway_ready < dns_plan  # DNS points at the gateway only once it is programmed
    assert fake_do.token not in result.output  # the DigitalOcean token is also a cert-manager Secret's value
    assert len(helm_installs(fake_helm)) == 3

    fake_do.log.clear()
    again = _apply_preview_base(kubeconfig)
    assert again.exit_code == 0 and "3 unchanged" in again.stderr  # *.pr, *.pr-api, pr-grafana
    assert fake_do.writes() == []
    assert len(helm_installs(fake_helm)) == 3  # nothing changed: no helm upgrade either


def test_skip_dns_leaves_digitalocean_alone(
    fake_kube: FakeKube, kubeconfig: Path, fake_do: FakeDigitalOcean, fake_helm: Path, manifest_cache: Path  # noqa: F811
) -> None:
    fake_do.add_domain("aphiria.com")
    seed_gateway_service(fake_kube)
    result = _apply_preview_base(kubeconfig, "--skip-dns")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("applied preview-base: ")
    assert "DNS plan" not in result.stderr
    assert fake_do.log == [] and fake_do.records("aphiria.com") == []


def test_preview_pr_declares_no_dns_so_apply_needs_no_digitalocean(
    fake_kube: FakeKube, kubeconfig: Path, fake_do: FakeDigitalOcean  # noqa: F811
) -> None:
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    assert fake_do.log == []


def test_apply_dry_run_is_a_server_side_diff_that_writes_nothing(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    first = pr_cmd("apply", kubeconfig, "--dry-run")
    assert first.exit_code == 1, first.stderr
    assert f"+++ envspec/Deployment/{NS}/web" in first.stdout
    assert "dry run (server-side), nothing applied" in first.stderr
    assert writes(fake_kube) == []
    assert pr_cmd("apply", kubeconfig).exit_code == 0
    again = pr_cmd("apply", kubeconfig, "--dry-run")
    assert again.exit_code == 0 and again.stdout == ""
    assert "0 to create, 0 to change, 0 to prune" in again.stderr


def test_diff_accepts_detailed_exitcode(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    result = pr_cmd("diff", kubeconfig, "--detailed-exitcode")
    assert result.exit_code == 1 and f"+++ envspec/Deployment/{NS}/web" in result.stdout


def test_diff_against_a_folder_of_every_environment_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    assert run(["render", "--all", "--out", str(out)]).exit_code == 0
    missing = tmp_path / "no-kubeconfig"
    refused = run(["diff", "production", "--against", str(out), "--kubeconfig", str(missing)])
    assert refused.exit_code == 2
    assert (f"--against {out}: {out} holds every environment `render --all` wrote (local, preview-base, production); "
            f"compare with --against {out / 'production'}") in refused.stderr
    told = run(["diff", "production", "--against", str(out / "production"), "--kubeconfig", str(missing)])
    assert told.exit_code == 0, told.stderr
    other = run(["diff", "local", "--against", str(out / "production"), "--kubeconfig", str(missing)])
    assert other.exit_code == 2 and f"{out / 'production'} holds production, not local" in other.stderr


def test_nothing_to_destroy_is_said_once(fake_kube: FakeKube, kubeconfig: Path) -> None:  # noqa: F811
    # No database to drop and nothing on the cluster: nothing at all to destroy.
    result = pr_cmd("destroy", kubeconfig, "--set", "database=null", "--set", "jobs.migrate.after=[]")
    assert result.exit_code == 0, result.stderr
    assert (result.stdout + result.stderr).count("nothing to destroy") == 1
