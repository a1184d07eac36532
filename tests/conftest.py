"""Shared fixtures: the repository's project, readable YAML snapshots, and the shared CRDs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

REPO = Path(__file__).resolve().parent.parent
SHARED_CRDS = REPO.parent / "shared" / "crds"

# The real tools .ci/install-tools puts in .tools/bin (kubectl only when the machine has none): last on
# PATH, so a kubectl the machine already has keeps precedence.
_TOOLS = str(REPO / ".tools" / "bin")
if _TOOLS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _TOOLS


class YamlSnapshot(SingleFileSnapshotExtension):
    """One readable .yaml file per snapshot, so a pull request shows manifest changes as a plain diff."""

    _write_mode = WriteMode.TEXT
    file_extension = "yaml"


@pytest.fixture
def yaml_snapshot(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(YamlSnapshot)


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, as a user would (messages print paths relative to it)."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def crd_dirs() -> list[Path]:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"upstream CRDs not available at {SHARED_CRDS} (they live only in ../shared, absent in a fresh clone)")
    return sorted(p for p in SHARED_CRDS.iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A real PostgreSQL server: the one `.ci/run` started (ENVSPEC_TEST_POSTGRES), else a throwaway one."""
    from tests.postgres import server

    with server() as running:
        yield running
