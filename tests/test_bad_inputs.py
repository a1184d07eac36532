"""The corpus of bad inputs under tests/bad/: every malformed spec, parameter or template.

Each case file holds the project files to create, the command to run, and the
exact lines the user must see (message with file:line:col). Every case must
exit 2, print no traceback, and write nothing.

Optional keys: `out: false` runs the command without `--out out` (for commands
other than render); `env` sets (or, with null, unsets) environment variables;
`encoding` writes the files in another encoding (to test undecodable input).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from envspec.cli import main
from envspec.errors import EXIT_INTERNAL

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
        target.write_bytes(content.encode(case.get("encoding", "utf-8")))
    monkeypatch.chdir(tmp_path)
    for name, value in (case.get("env") or {}).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    args = [*case["args"], "--out", "out"] if case.get("out", True) else list(case["args"])
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == case["expect"]
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out.envspec-") for p in tmp_path.iterdir())


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text("cluster: {context: x}\nnamespace: {name: n}\nbogus: 1\n")
    monkeypatch.chdir(tmp_path)
    plain = CliRunner().invoke(main, ["render", "bad"])
    debug = CliRunner().invoke(main, ["--debug", "render", "bad"])
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr and "SpecError" in debug.stderr
    assert "environments/bad.yaml:3:8: bogus: unknown key 'bogus'" in debug.stderr.splitlines()


def test_an_unexpected_error_is_an_internal_error_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import envspec.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(envspec.pipeline, "compile_environment", broken)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "ok.yaml").write_text("cluster: {context: x}\nnamespace: {name: n}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "ok"])
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == "envspec: internal error: KeyError: 'surprise'"
    assert "report" in result.stderr and "--debug" in result.stderr
    debug = CliRunner().invoke(main, ["--debug", "render", "ok"])
    assert debug.exit_code == EXIT_INTERNAL and "Traceback" in debug.stderr


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard against a hang, not a benchmark: unbounded, this takes minutes and gigabytes."""
    import time

    lines = ["cluster: {context: x}", "namespace: {name: n}", "x-lol:", '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bomb.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["render", "bomb"])
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert "alias bomb" in result.stderr and result.stderr.startswith("environments/bomb.yaml:")


def test_small_aliases_and_merge_keys_keep_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "ok.yaml").write_text(
        "cluster: {context: x}\nnamespace: {name: n}\napps:\n"
        "  a:\n    image: &img nginx:1.27\n    containers:\n      a:\n"
        "        resources: &res {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 50m, memory: 32Mi}}\n"
        "  b:\n    image: *img\n    containers:\n      b:\n"
        "        resources: {<<: *res, limits: {cpu: 60m, memory: 32Mi}}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "ok"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("image: nginx:1.27") == 2
    assert "cpu: 60m" in result.stdout


def test_unknown_field_in_a_real_crd_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cert-manager's Certificate schema is structural: a misspelt field is an error, not silently pruned."""
    from tests.conftest import SHARED_CRDS

    if not SHARED_CRDS.is_dir():
        pytest.skip(f"upstream CRDs not available at {SHARED_CRDS}")
    (tmp_path / "environments").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text("cluster: {context: x}\nnamespace: {name: n}\ntemplates: [cert.yaml.j2]\n")
    (tmp_path / "templates" / "cert.yaml.j2").write_text(
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c, namespace: n}\n"
        "spec:\n  secretName: c-tls\n  dnsNamez: [a.example.com]\n  issuerRef: {name: i, kind: ClusterIssuer}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "bad", "--crds", str(SHARED_CRDS)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "environments/bad.yaml:3:13: Certificate n/c: .spec.dnsNamez: unknown field (the API server would drop it silently); "
        "did you mean 'dnsNames'? (CRD cert-manager.io/v1) [schema]"
    ]
    unchecked = CliRunner().invoke(main, ["validate", "bad"])
    assert unchecked.exit_code == 0
    assert "1 custom resource had no schema" in unchecked.stderr


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


def test_a_runaway_template_loop_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import envspec.render.templates as templates

    monkeypatch.setattr(templates, "TEMPLATE_SECONDS", 0.5)
    (tmp_path / "environments").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text("cluster: {context: x}\nnamespace: {name: n}\ntemplates: [loop.yaml.j2]\n")
    (tmp_path / "templates" / "loop.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "bad", "--out", "out"])
    assert result.exit_code == 2
    assert result.stderr.startswith("templates/loop.yaml.j2:4:")
    assert "rendering took over 0.5 s" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_slow_parameter_pattern_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "bad.yaml").write_text(
        "cluster: {context: x}\nnamespace: {name: n}\nparams:\n  owner: {type: string, pattern: '(a+)+', default: ab}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["render", "bad", "--param", "owner=" + "a" * 40 + "!"])
    assert result.exit_code == 2
    assert result.stderr.startswith("environments/bad.yaml:4:3: params.owner: --param owner: `pattern` (a+)+ took over 1 s")
