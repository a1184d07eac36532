"""`envspec dns`, `envspec cluster` and `envspec kubeconfig` end to end: real CLI, real clients, fake servers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from envspec.cli import main
from envspec.errors import EXIT_OPERATION, SpecError
from tests.fakes.do_server import TOKEN, FakeDigitalOcean, fake_do  # noqa: F401  (fixture)
from tests.fakes.kube_server import FakeKube, fake_kube  # noqa: F401  (fixture)

CONTEXT = "do-nyc3-aphiria-com-preview-cluster"
GATEWAY_NS, GATEWAY_SVC = "nginx-gateway", "nginx-gateway-nginx-gateway-fabric"

PREVIEW_BASE = f"""\
cluster: {{context: {CONTEXT}}}
namespace: {{name: default, create: false}}
digitalocean:
  cluster:
    name: aphiria-com-preview-cluster
    region: nyc3
    version: "1.34.1-do.0"
    nodePool: {{name: default, size: s-2vcpu-4gb, count: 2, autoscale: {{min: 1, max: 3}}}}
  dns:
    domain: aphiria.com
    ttl: 300
    target: TARGET
    records: [{{name: "*.pr", type: A}}, {{name: "*.pr-api", type: A}}]
"""


def project(tmp_path: Path, target: str = "{ip: 203.0.113.10}") -> Path:
    root = tmp_path / "project"
    (root / "environments").mkdir(parents=True)
    (root / "environments" / "preview-base.yaml").write_text(PREVIEW_BASE.replace("TARGET", target))
    (root / "environments" / "plain.yaml").write_text(
        "cluster: {context: kind-envspec}\nnamespace: {name: plain}\n"
    )
    return root


def run(root: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--root", str(root)], catch_exceptions=False)
    assert TOKEN not in result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def zone(fake_do: FakeDigitalOcean) -> FakeDigitalOcean:
    fake_do.add_domain("aphiria.com")
    fake_do.add_record("aphiria.com", "A", "www", "198.51.100.1")
    return fake_do


def test_dns_dry_run_then_sync_then_nothing_to_do(zone: FakeDigitalOcean, tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run(root, "dns", "preview-base", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "DNS plan for aphiria.com (owner preview-base, target 203.0.113.10):" in result.stdout
    assert "  + create    *.pr A 203.0.113.10 ttl 300" in result.stdout
    assert result.stdout.rstrip().endswith("dry run: nothing written")
    assert zone.writes() == []

    assert run(root, "dns", "preview-base").exit_code == 0
    assert {r["name"] for r in zone.records("aphiria.com")} == {
        "www", "*.pr", "*.pr-api", "_envspec-a._wildcard.pr", "_envspec-a._wildcard.pr-api"}

    zone.log.clear()
    result = run(root, "dns", "preview-base")
    assert result.exit_code == 0 and "2 unchanged" in result.stdout
    assert zone.writes() == []


def test_dns_conflict_exits_3_with_the_reason(zone: FakeDigitalOcean, tmp_path: Path) -> None:
    zone.add_record("aphiria.com", "A", "*.pr", "198.51.100.9")
    result = run(project(tmp_path), "dns", "preview-base")
    assert result.exit_code == EXIT_OPERATION
    assert "*.pr.aphiria.com A exists but envspec did not create it; not touching it" in result.stderr
    assert zone.writes() == []


def test_an_environment_without_digitalocean_is_a_user_error(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    root = project(tmp_path)
    for command in ("dns", "cluster", "kubeconfig"):
        result = run(root, command, "plain")
        assert result.exit_code == 2
        assert f"environment plain declares no digitalocean." in result.stderr
    assert fake_do.log == []


def test_missing_token_exits_2(fake_do: FakeDigitalOcean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    result = run(project(tmp_path), "cluster", "preview-base")
    assert result.exit_code == 2 and "DIGITALOCEAN_TOKEN is not set" in result.stderr


def test_api_failure_exits_3_with_status_and_message(fake_do: FakeDigitalOcean, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_revoked")
    result = run(project(tmp_path), "cluster", "preview-base", "--dry-run")
    assert result.exit_code == EXIT_OPERATION
    assert "HTTP 401: Unable to authenticate you" in result.stderr and "dop_v1_revoked" not in result.output


def test_cluster_dry_run_then_create(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run(root, "cluster", "preview-base", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "cluster aphiria-com-preview-cluster: create"
    assert fake_do.writes() == []
    result = run(root, "cluster", "preview-base", "--poll-interval", "0")
    assert result.exit_code == 0, result.output
    assert "cluster aphiria-com-preview-cluster: running" in result.stdout
    assert fake_do.cluster("aphiria-com-preview-cluster")["status"]["state"] == "running"


def test_kubeconfig_prints_the_context_and_writes_0600(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    cluster = fake_do.add_cluster("aphiria-com-preview-cluster")
    out = tmp_path / "kc.yaml"
    result = run(project(tmp_path), "kubeconfig", "preview-base", "--out", str(out))
    assert result.exit_code == 0
    [fetch] = fake_do.requests_to("GET", f"/v2/kubernetes/clusters/{cluster['id']}/kubeconfig")
    assert fetch.query.get("expiry_seconds") == ["3600"]  # a one-hour credential, also for --out
    assert result.stdout == f"{CONTEXT}\n"
    assert f"wrote {out} (mode 0600)" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "doks-cluster-credential" not in result.output


def _gateway(fake_kube: FakeKube) -> None:
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NS}})
    fake_kube.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": GATEWAY_SVC, "namespace": GATEWAY_NS},
                   "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
    fake_kube.set_status("v1", "Service", GATEWAY_SVC, GATEWAY_NS, {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}})


SERVICE_TARGET = f"{{service: {{namespace: {GATEWAY_NS}, name: {GATEWAY_SVC}}}}}"


def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at a folder of this test's, so what the command leaves there can be listed."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_dns_reads_the_service_address_through_a_short_lived_kubeconfig_from_digitalocean(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tmp = _private_tmp(tmp_path, monkeypatch)
    cluster = zone.add_cluster("aphiria-com-preview-cluster")
    zone.kubeconfig_server = fake_kube.url
    _gateway(fake_kube)
    result = run(project(tmp_path, SERVICE_TARGET), "dns", "preview-base", "--kubeconfig-from-do")
    assert result.exit_code == 0, result.output
    assert f"target: context {CONTEXT} at {fake_kube.url}" in result.stderr
    assert ("*.pr", "203.0.113.7") in {(r["name"], r["data"]) for r in zone.records("aphiria.com")}
    [fetch] = zone.requests_to("GET", f"/v2/kubernetes/clusters/{cluster['id']}/kubeconfig")
    assert fetch.query.get("expiry_seconds") == ["3600"]  # not DigitalOcean's 7-day default
    assert list(tmp.iterdir()) == []  # the private folder went with the command
    assert not (tmp_path / "home" / ".kube").exists()  # and no kubeconfig was written under HOME


GATEWAY_TARGET = "{gateway: {namespace: nginx-gateway, name: nginx-gateway}}"


def test_dns_points_at_the_gateway_status_address(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = _private_tmp(tmp_path, monkeypatch)
    zone.add_cluster("aphiria-com-preview-cluster")
    zone.kubeconfig_server = fake_kube.url
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nginx-gateway"}})
    fake_kube.put({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": "nginx-gateway", "namespace": "nginx-gateway"},
                   "spec": {"gatewayClassName": "nginx", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})
    fake_kube.set_status("gateway.networking.k8s.io/v1", "Gateway", "nginx-gateway", "nginx-gateway",
                         {"addresses": [{"type": "IPAddress", "value": "203.0.113.44"}]})
    result = run(project(tmp_path, GATEWAY_TARGET), "dns", "preview-base", "--kubeconfig-from-do")
    assert result.exit_code == 0, result.output
    assert "DNS plan for aphiria.com (owner preview-base, target 203.0.113.44):" in result.stdout
    assert ("*.pr-api", "203.0.113.44") in {(r["name"], r["data"]) for r in zone.records("aphiria.com")}
    assert list(tmp.iterdir()) == []


def test_the_fetched_kubeconfig_is_private_and_lives_exactly_as_long_as_the_command(
    fake_do: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connect_target registers the cleanup on the running click context, so its callers need nothing."""
    import click

    from envspec.cli.target import connect_target
    from envspec.pipeline import compile_environment

    tmp = _private_tmp(tmp_path, monkeypatch)
    fake_do.add_cluster("aphiria-com-preview-cluster")
    fake_do.kubeconfig_server = fake_kube.url
    compiled = compile_environment("preview-base", root=project(tmp_path))
    with click.Context(click.Command("apply")):
        target, api_client = connect_target(compiled, None, None, from_do=True)
        path = Path(target.kubeconfig or "")
        assert path.parent.parent == tmp
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert target.context == CONTEXT
        api_client.close()
    assert not path.exists() and list(tmp.iterdir()) == []

    # A refused binding still leaves nothing behind.
    with pytest.raises(SpecError, match="is not in kubeconfig"):
        with click.Context(click.Command("apply")):
            connect_target(compiled, None, "do-nyc3-elsewhere", from_do=True)
    assert list(tmp.iterdir()) == []


def test_dns_refuses_a_kubeconfig_for_another_cluster(
    zone: FakeDigitalOcean, fake_kube: FakeKube, tmp_path: Path
) -> None:
    _gateway(fake_kube)
    kubeconfig = fake_kube.write_kubeconfig(tmp_path / "kc", context="kind-somewhere-else")
    result = run(project(tmp_path, SERVICE_TARGET), "dns", "preview-base", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 2
    assert f"bound to kube context '{CONTEXT}'" in result.stderr
    assert zone.log == []


def test_help_imports_neither_kubernetes_nor_digitalocean() -> None:
    code = (
        "import sys\n"
        "from envspec.cli import main\n"
        "try:\n    main(['dns', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'digitalocean', 'requests'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "--kubeconfig-from-do" in out.stdout
    assert "HEAVY []" in out.stdout, out.stdout[-500:]


def test_sync_declared_dns_is_what_apply_calls(zone: FakeDigitalOcean, tmp_path: Path) -> None:
    from envspec.cloud.dns import sync_declared_dns
    from envspec.pipeline import compile_environment

    root = project(tmp_path)
    assert sync_declared_dns(compile_environment("plain", root=root), None) is None
    lines: list[str] = []
    plan = sync_declared_dns(compile_environment("preview-base", root=root), None, echo=lines.append)
    assert plan is not None and [c.action for c in plan.changes] == ["create", "create"]
    assert plan.owner == "preview-base" and lines[0].startswith("DNS plan for aphiria.com")
