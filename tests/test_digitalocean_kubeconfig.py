"""Fetching a fresh kubeconfig from DigitalOcean and writing it privately."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from envspec.cloud.digitalocean import DigitalOceanClient
from envspec.cloud.kubeconfig import fetch_kubeconfig, write_private
from envspec.errors import OperationError, SpecError
from tests.fakes.do_server import FakeDigitalOcean, fake_do  # noqa: F401  (fixture)

NAME = "aphiria-com-preview-cluster"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fetch_writes_the_kubeconfig_0600_and_returns_the_context(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    cluster = fake_do.add_cluster(NAME)
    fake_do.add_cluster("another-cluster")
    out = tmp_path / "kube" / "preview.yaml"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        path, context = fetch_kubeconfig(NAME, out)
    finally:
        os.umask(old_umask)
    assert path == out and context == f"do-nyc3-{NAME}"
    assert mode(out) == 0o600
    text = out.read_text()
    assert f"server: {cluster['endpoint']}" in text and f"current-context: do-nyc3-{NAME}" in text
    assert fake_do.requests_to("GET", f"/v2/kubernetes/clusters/{cluster['id']}/kubeconfig")
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_the_credentials_expire_after_an_hour_unless_asked_otherwise(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    cluster = fake_do.add_cluster(NAME)
    fetch_kubeconfig(NAME, tmp_path / "a")
    fetch_kubeconfig(NAME, tmp_path / "b", expiry_seconds=600)
    fetches = fake_do.requests_to("GET", f"/v2/kubernetes/clusters/{cluster['id']}/kubeconfig")
    assert [f.query.get("expiry_seconds") for f in fetches] == [["3600"], ["600"]]
    with pytest.raises(SpecError, match="at least 1 second"):
        fetch_kubeconfig(NAME, tmp_path / "c", expiry_seconds=0)
    assert not (tmp_path / "c").exists()


def test_refetch_replaces_a_wider_file_with_a_private_one(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    fake_do.add_cluster(NAME)
    out = tmp_path / "kubeconfig"
    out.write_text("stale")
    out.chmod(0o644)
    fetch_kubeconfig(NAME, out)
    assert mode(out) == 0o600 and "stale" not in out.read_text()


def test_default_location_is_under_home(fake_do: FakeDigitalOcean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_do.add_cluster(NAME)
    monkeypatch.setenv("HOME", str(tmp_path))
    path, _ = fetch_kubeconfig(NAME, None)
    assert path == tmp_path / ".kube" / "envspec" / f"{NAME}.yaml"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_a_missing_cluster_is_a_clear_error(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=f"DigitalOcean has no Kubernetes cluster named {NAME}"):
        fetch_kubeconfig(NAME, tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_a_body_that_is_not_a_kubeconfig_is_refused_and_not_written(fake_do: FakeDigitalOcean, tmp_path: Path) -> None:
    cluster = fake_do.add_cluster(NAME)
    fake_do.inject(200, path=f"/v2/kubernetes/clusters/{cluster['id']}/kubeconfig", body={"not": "a kubeconfig"})
    with pytest.raises(OperationError, match="is not a kubeconfig"):
        fetch_kubeconfig(NAME, tmp_path / "k", client=DigitalOceanClient.from_env())
    assert not (tmp_path / "k").exists()


def test_write_private_fails_clearly_and_leaves_nothing_behind(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(OperationError, match=f"cannot write kubeconfig {blocker}/kubeconfig"):
        write_private(blocker / "kubeconfig", "secret")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
