"""docs/reference.md is generated from the models and fails this test when stale (like `schema --check`)."""

from __future__ import annotations

from pathlib import Path

from envspec.reference import REFERENCE_PATH, main, reference_text
from envspec.schema import environment_schema

REPO = Path(__file__).resolve().parent.parent


def test_reference_is_current(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO)
    current = (REPO / REFERENCE_PATH).read_text(encoding="utf-8")
    assert current == reference_text(), "docs/reference.md is stale: run `python -m envspec.reference`"
    assert main(["--check"]) == 0


def test_check_detects_staleness(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "reference.md").write_text("old\n")
    assert main(["--check"]) == 1
    assert main([]) == 0 and main(["--check"]) == 0


def test_every_key_of_every_model_is_listed_with_type_and_default() -> None:
    schema = environment_schema()
    text = reference_text()
    for body in [schema, *schema["$defs"].values()]:
        for key in body.get("properties", {}):
            rows = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
            assert rows, key
            assert all(len(row.split(" | ")) >= 5 for row in rows)
    assert "| `pinImage` | boolean | `true` |" in text
    assert "| `replicas` | integer (>= 1) | `1` |" in text
    assert "`replicas: 1`" in text


def test_readme_links_the_reference() -> None:
    assert "(docs/reference.md)" in (REPO / "README.md").read_text()
