"""The corpus of bad inputs under tests/bad/: every malformed spec, parameter or template.

Each case file holds the project files to create, the command to run, and the
exact lines the user must see (message with file:line:col). Every case must
exit 2, print no traceback, and write nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from envspec.cli import main

CASES = sorted((Path(__file__).parent / "bad").glob("*.yaml"))


def load_case(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case_file", CASES, ids=[p.stem for p in CASES])
def test_bad_input(case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = load_case(case_file)
    (tmp_path / "environments").mkdir()
    for rel, content in case["files"].items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, [*case["args"], "--out", "out"])

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == case["expect"]
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out.envspec-") for p in tmp_path.iterdir())


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text("cluster: {context: x}\nnamespace: {name: n}\nbogus: 1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--debug", "render", "bad"])
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "SpecError"


def test_all_errors_of_a_run_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text(
        "cluster: {context: x}\nnamespace: {name: n}\napps:\n  web:\n    image: nginx:1\n    replicas: 0\n"
        "    strategy: Sideways\n    containers: {web: {port: 99999}}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "bad"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "environments/bad.yaml:6:15: apps.web.replicas: must be >= 1 (got 0)",
        "environments/bad.yaml:7:15: apps.web.strategy: must be one of 'RollingUpdate' or 'Recreate' (got 'Sideways')",
        "environments/bad.yaml:8:30: apps.web.containers.web.port: must be <= 65535 (got 99999)",
    ]
