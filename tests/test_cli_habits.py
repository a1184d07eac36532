"""Habits of kubectl and helm users: -o, completion (with environment and parameter names), help texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_dash_o_is_the_output_format(repo_root: Path) -> None:
    as_json = CliRunner().invoke(main, ["render", "production", "-o", "json"])
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["kind"] == "List"
    long = CliRunner().invoke(main, ["render", "production", "--output", "json"])
    assert long.stdout == as_json.stdout
    outputs = CliRunner().invoke(main, ["outputs", "preview-pr", "--pr", "7", "-o", "json"])
    assert json.loads(outputs.stdout)["webUrl"] == "https://7.pr.aphiria.com"


def test_output_dir_is_helms_spelling_of_out(repo_root: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["render", "production", "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / ".envspec-output").is_file()


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"), ("zsh", "#compdef envspec"),
                                           ("fish", "complete --no-files --command envspec")])
def test_completion_scripts(shell: str, marker: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0, result.stderr
    assert marker in result.stdout and "_ENVSPEC_COMPLETE" in result.stdout
    assert CliRunner().invoke(main, ["completion", "tcsh"]).exit_code == 2


def _complete(words: str, shell: str = "bash") -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1),
           "_ENVSPEC_COMPLETE": f"{shell}_complete"}
    probe = "import sys; from envspec.cli import main; main(prog_name='envspec')"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line]


def test_completion_offers_environment_and_parameter_names() -> None:
    assert _complete("envspec render pre") == ["preview-base", "preview-pr"]
    assert _complete("envspec apply prod") == ["production"]
    assert _complete("envspec render preview-pr --param ") == ["pr=", "webImage=", "apiImage=", "appEnv="]
    assert _complete("envspec diff preview-pr -p we") == ["webImage="]
    assert "validate" in _complete("envspec val")


def test_timeout_help_says_what_it_bounds() -> None:
    for command, words in [("apply", "Helm releases, Jobs, rollouts"), ("destroy", "namespaces"), ("gc", "each preview")]:
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).stdout.split())
        assert words in text, (command, text)


@pytest.mark.parametrize("args", [["explain", "preview-pr", "--pr", "107", "Deployment/api", "spec.replicas"],
                                  ["config", "production"], ["list"], ["completion", "bash"], ["init", "--help"],
                                  ["validate", "--help"]])
def test_new_commands_never_import_cluster_clients(args: list[str]) -> None:
    from tests.test_cli import PROBE

    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="
