"""Command-line behaviour that is not rendering itself: startup imports, version, schema, outputs, roots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec import __version__
from envspec.cli import main

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from envspec.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("kubernetes", "digitalocean", "kubernetes_validate", "requests") if m in sys.modules)
print("DEPLOYER=" + ",".join(sorted(m for m in sys.modules if m == "envspec.kube" or m.startswith("envspec.kube."))))
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["render", "preview-pr", "--pr", "107"], ["render", "production", "--out", "{tmp}/out"], ["apply", "--help"],
     ["dns", "--help"], ["gc", "--help"], ["outputs", "preview-pr", "--pr", "7"]],
    ids=["help", "render", "render-out", "apply-help", "dns-help", "gc-help", "outputs"],
)
def test_fast_commands_never_import_cluster_clients(args: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="
    if "--help" not in args or args == ["--help"]:  # compiling and --help never load the deployer either
        assert result.stdout.strip().splitlines()[-2] == "DEPLOYER="


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"envspec, version {__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "envspec", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and __version__ in result.stdout


def test_schema_is_current_and_check_detects_staleness(repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["schema", "--check"]).exit_code == 0
    (tmp_path / "environments").mkdir()
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "environment.schema.json").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    stale = runner.invoke(main, ["schema", "--check"])
    assert stale.exit_code == 1 and "schemas/environment.schema.json is stale" in stale.stderr
    assert runner.invoke(main, ["schema"]).exit_code == 0
    schema = json.loads((tmp_path / "schemas" / "environment.schema.json").read_text())
    assert schema["title"] == "envspec environment"
    assert schema["additionalProperties"] is False
    assert {"cluster", "namespace", "apps", "params", "digitalocean"} <= set(schema["properties"])
    assert runner.invoke(main, ["schema", "--check"]).exit_code == 0


def test_environments_point_editors_at_the_schema() -> None:
    for path in (REPO / "environments").glob("[!_]*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/environment.schema.json\n"), path


def test_outputs(repo_root: Path) -> None:
    result = CliRunner().invoke(main, ["outputs", "preview-pr", "--pr", "107", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["webUrl"] == "https://107.pr.aphiria.com"
    assert outputs["apiUrl"] == "https://107.pr-api.aphiria.com"
    assert outputs["databaseName"] == "aphiria_pr_107"
    assert outputs["namespace"] == "preview-pr-107"
    text = CliRunner().invoke(main, ["outputs", "preview-base"])
    assert "postgresqlHost=db.default.svc.cluster.local" in text.stdout.splitlines()


def test_root_is_found_upward_and_by_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "envspec" / "templates")
    assert CliRunner().invoke(main, ["render", "production"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    missing = CliRunner().invoke(main, ["render", "production"])
    assert missing.exit_code == 2 and "no environments/ folder" in missing.stderr
    assert CliRunner().invoke(main, ["render", "production", "--root", str(REPO)]).exit_code == 0


def test_failed_render_leaves_existing_output_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    spec = tmp_path / "environments" / "env.yaml"
    spec.write_text("cluster: {context: x}\nnamespace: {name: demo}\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["render", "env", "--out", "out"]).exit_code == 0
    before = {p.name: p.read_text() for p in (tmp_path / "out").iterdir()}
    spec.write_text("cluster: {context: x}\nnamespace: {name: Demo_Bad}\n")
    result = runner.invoke(main, ["render", "env", "--out", "out"])
    assert result.exit_code == 2
    assert {p.name: p.read_text() for p in (tmp_path / "out").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environments", "out"]


def test_render_all_defaults_to_rendered_and_rejects_params(repo_root: Path) -> None:
    check = CliRunner().invoke(main, ["render", "--all", "--check"])
    assert check.exit_code == 0 and f"{repo_root / 'rendered'} is up to date" in check.stderr
    assert CliRunner().invoke(main, ["render", "preview-pr", "--pr", "1", "--check"]).exit_code == 2
    assert CliRunner().invoke(main, ["render", "--all", "--out", "x", "--pr", "1"]).exit_code == 2
    assert CliRunner().invoke(main, ["render", "preview-pr", "--all", "--out", "x"]).exit_code == 2


def test_diff_against_committed_output(repo_root: Path, tmp_path: Path) -> None:
    """`diff --against` reads a `render --out` directory (its kustomization.yaml is not an object)."""
    runner = CliRunner()
    clean = runner.invoke(main, ["diff", "production", "--against", "rendered/production"])
    assert clean.exit_code == 0, clean.output
    assert "0 to create, 0 to change, 0 to prune" in clean.stderr
    changed = runner.invoke(main, ["diff", "production", "--against", "rendered/production", "--set", "apps.web.replicas=3"])
    assert changed.exit_code == 1
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 3" in changed.stdout
