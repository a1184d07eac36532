"""The authoring schema accepts every file as written and still rejects misspelt keys (checked by check-jsonschema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.authoring_schema import authoring_schema
from envspec.cli import main

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "environment.schema.json"


def _check_jsonschema(*files: Path, schema: Path = SCHEMA) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert exe, "check-jsonschema (a test dependency) is not installed"
    return subprocess.run([exe, "--schemafile", str(schema), *map(str, files)], capture_output=True, text=True, timeout=120)


def authored_files() -> list[Path]:
    """The repository's environments and every example's that uses the repository's schema
    (an example with components of its own has its own schema: tested below against it)."""
    files = sorted((REPO / "environments").glob("*.yaml"))
    for example in sorted((REPO / "examples").iterdir()):
        if not (example / "schemas" / "environment.schema.json").is_file():
            files += sorted((example / "environments").glob("*.yaml"))
    return files


def test_every_authored_file_passes_check_jsonschema() -> None:
    files = authored_files()
    assert any(f.name == "_defaults.yaml" for f in files) and any("examples" in f.parts for f in files)
    result = _check_jsonschema(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_example_with_its_own_schema_passes_it_and_the_schema_is_current() -> None:
    """A project with components of its own has its own schema (`envspec schema --root`)."""
    owned = [e for e in sorted((REPO / "examples").iterdir()) if (e / "schemas" / "environment.schema.json").is_file()]
    assert owned  # examples/platform
    for example in owned:
        schema = example / "schemas" / "environment.schema.json"
        result = _check_jsonschema(*sorted((example / "environments").glob("*.yaml")), schema=schema)
        assert result.returncode == 0, (example, result.stdout)
        check = CliRunner().invoke(main, ["schema", "--root", str(example), "--check"])
        assert check.exit_code == 0, (example, check.stdout)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("apps:\n  web:\n    replicaz: 2\n", "'replicaz' was unexpected"),
        ("namespace:\n  nmae: x\n", "'nmae' was unexpected"),
        ("clutser: {context: x}\n", "'clutser' was unexpected"),
        ("apps:\n  web:\n    replicas: two\n", "apps"),
        ("apps:\n  web:\n    strategy: Sometimes\n", "apps"),
    ],
    ids=["misspelt-app-key", "misspelt-namespace-key", "misspelt-top-key", "string-not-reference", "bad-enum"],
)
def test_misspelt_keys_and_wrong_values_stay_errors(tmp_path: Path, text: str, needle: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = _check_jsonschema(bad)
    assert result.returncode == 1, result.stdout
    assert needle in result.stdout


def test_partials_references_and_deletions_are_accepted(tmp_path: Path) -> None:
    ok = tmp_path / "partial.yaml"
    ok.write_text(
        "apps:\n  web:\n    replicas: ${params.replicas}\n    pinImage: ${params.pin}\n"
        "    containers:\n      web:\n        port: '${params.port}'\n    service: null\n"
        "secrets:\n  postgres-admin: null\n"
        "instance: preview-pr-${params.pr}\n"
        "digitalocean:\n  cluster: ${base.doCluster}\n"
        "database: null\n"
    )
    result = _check_jsonschema(ok)
    assert result.returncode == 0, result.stdout


def test_the_transformation_keeps_unknown_keys_forbidden_and_drops_required() -> None:
    model = {
        "type": "object", "additionalProperties": False, "required": ["n"],
        "properties": {"n": {"type": "integer", "minimum": 1, "description": "count"}},
        "$defs": {"X": {"type": "object", "required": ["a"], "properties": {"a": {"type": "boolean"}}}},
    }
    out = authoring_schema(model)
    assert "required" not in out and "required" not in out["$defs"]["X"]
    assert out["additionalProperties"] is False
    n = out["properties"]["n"]
    assert n["description"] == "count"
    assert {"type": "integer", "minimum": 1} in n["anyOf"] and {"$ref": "#/$defs/Reference"} in n["anyOf"]
    assert any(o.get("type") == "null" for o in n["anyOf"])
    assert model["required"] == ["n"]  # the input is not changed


def test_schema_root_writes_a_projects_own_schema(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    result = CliRunner().invoke(main, ["schema", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    written = tmp_path / "schemas" / "environment.schema.json"
    assert json.loads(written.read_text())["$defs"]["Reference"]["pattern"]
    assert CliRunner().invoke(main, ["schema", "--root", str(tmp_path), "--check"]).exit_code == 0


def test_one_of_becomes_any_of_since_a_partial_may_fit_several() -> None:
    model = {"type": "object", "properties": {"c": {"oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]}},
             "$defs": {"A": {"type": "object", "additionalProperties": False, "properties": {"x": {"type": "string"}}},
                       "B": {"type": "object", "additionalProperties": False, "properties": {"x": {"type": "string"}}}}}
    c = authoring_schema(model)["properties"]["c"]["anyOf"][0]
    assert "oneOf" not in c and c["anyOf"] == [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]
