"""Caches that can never serve stale output (issue 14): parsed spec files, decoded Kubernetes schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from envspec import kubeschemas
from envspec.pipeline import compile_environment
from envspec.spec import loader


def test_a_parsed_spec_file_is_kept_by_its_text_and_every_caller_gets_its_own_copy(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("a:\n  b: [1, 2]\n")
    first = loader.load_document(path, "env.yaml")
    first.data["a"]["b"].append(3)  # later stages merge into the data they are given
    first.positions.set(("x",), loader.Location("env.yaml", 9, 9))
    second = loader.load_document(path, "env.yaml")
    assert second.data == {"a": {"b": [1, 2]}}
    assert ("x",) not in second.positions.by_path
    assert second.positions.lookup(("a", "b", 1)) == loader.Location("env.yaml", 2, 10)

    path.write_text("a:\n  b: [7]\n")  # same path, new text: parsed anew
    assert loader.load_document(path, "env.yaml").data == {"a": {"b": [7]}}


def test_a_file_that_fails_to_parse_is_not_kept(tmp_path: Path) -> None:
    from envspec.errors import SpecError

    path = tmp_path / "env.yaml"
    path.write_text("a: [\n")
    for _ in range(2):
        with pytest.raises(SpecError, match="YAML syntax error"):
            loader.load_document(path, "env.yaml")


def _outcome(validate: Any, obj: dict[str, Any], version: str) -> tuple[str, str]:
    try:
        return "ok", validate(obj, version, strict=True)
    except Exception as exc:  # noqa: BLE001 -- the exception type and text are what must match
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("version", ["1.34", "1.30.2", "v1.29", "9.99"])
def test_schemas_decoded_once_give_kubernetes_validates_verdicts(version: str) -> None:
    objects = compile_environment("preview-pr", params=["pr=107"]).objects
    for obj in objects:
        for variant in (obj, {**obj, "spec": {"bogus": 1}}, {**obj, "apiVersion": "nope.io/v9"},
                        {**obj, "metadata": {"name": 5}}):
            assert _outcome(kubeschemas.validate, variant, version) == _outcome(kubernetes_validate.validate, variant, version)
