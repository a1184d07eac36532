"""envspec.kube.helm with the real helm binary: chart sources, values files, install, no-op detection.

The argv-level tests in test_kube_apply.py check what envspec asks for; these
check that the real helm (v3.17, installed by `.ci/install-helm`) understands
it: the `--repo` source, the JSON values file, `helm list`/`get values` output
as `is_current` reads it, and `upgrade --install` against the fake API server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envspec.errors import OperationError
from envspec.kube.helm import HelmTarget, chart_source, find_helm, install_charts, is_current
from envspec.kube.helm import _run as run_helm  # the runner install_charts uses by default
from envspec.plan import HelmChart
from tests.helm_tool import Helm, HelmFakeKube, chart_repo, decode_secret, helm_kube, real_helm, write_chart  # noqa: F401

VALUES = {"greeting": "hi from envspec", "replicas": 3}


def _chart(repo: str, **overrides: object) -> HelmChart:
    fields: dict = dict(release="hello", namespace="web", repository=repo, chart="hello", version="0.2.0", values=VALUES)
    fields.update(overrides)
    return HelmChart(**fields)  # type: ignore[arg-type]


@pytest.fixture
def helm_env(real_helm: Helm, monkeypatch: pytest.MonkeyPatch) -> Helm:
    """The real helm on PATH and its homes in the test's folder, as `install_charts` runs it (inherited env)."""
    monkeypatch.setenv("PATH", f"{Path(real_helm.binary).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for key in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME", "HELM_NO_PLUGINS"):
        monkeypatch.setenv(key, real_helm.env[key])
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return real_helm


def test_the_real_helm_is_installed_and_is_helm_3(real_helm: Helm) -> None:
    version = real_helm.run("version", "--short").stdout.strip()
    assert version.startswith("v3."), version


def test_show_chart_through_envspecs_chart_source(real_helm: Helm, chart_repo: str) -> None:
    """`chart_source` (name + --repo) is a source the real helm resolves, at the pinned version."""
    out = real_helm.run("show", "chart", *chart_source(_chart(chart_repo)), "--version", "0.2.0").stdout
    assert "name: hello" in out and "version: 0.2.0" in out


def test_template_of_a_local_chart_reads_envspecs_json_values_file(real_helm: Helm, tmp_path: Path) -> None:
    """install_charts writes values as JSON ("JSON is YAML"): the real helm must read it as a values file."""
    chart = write_chart(tmp_path / "local")
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps(VALUES))
    out = real_helm.run("template", "demo", str(chart), "--namespace", "web", "-f", str(values)).stdout
    assert "name: demo-config" in out and "namespace: web" in out
    assert 'greeting: "hi from envspec"' in out and 'replicas: "3"' in out


def test_protobuf_secret_decoder_reads_what_helm_writes(helm_env: Helm, chart_repo: str, helm_kube: HelmFakeKube,
                                                        tmp_path: Path) -> None:
    """The test double's decoder (tests/helm_tool.py) keeps helm's release record intact: name, labels, data."""
    kubeconfig = helm_kube.write_kubeconfig(tmp_path / "kubeconfig")
    install_charts([_chart(chart_repo)], HelmTarget(kubeconfig=str(kubeconfig), context="fake", timeout_seconds=60))
    protobuf_posts = [r for r in helm_kube.requests if r.method == "POST" and r.path.endswith("/secrets")]
    assert protobuf_posts, "helm wrote no release Secret"
    release = helm_kube.get("v1", "Secret", "sh.helm.release.v1.hello.v1", "web")
    assert release is not None and release["type"] == "helm.sh/release.v1"
    assert release["metadata"]["labels"]["owner"] == "helm" and release["data"]["release"]
    with pytest.raises(ValueError):
        decode_secret(b'{"kind": "Secret"}')


def test_install_against_the_fake_api_then_a_rerun_is_a_no_op_and_a_change_upgrades(
    helm_env: Helm, chart_repo: str, helm_kube: HelmFakeKube, tmp_path: Path
) -> None:
    kubeconfig = helm_kube.write_kubeconfig(tmp_path / "kubeconfig")
    target = HelmTarget(kubeconfig=str(kubeconfig), context="fake", timeout_seconds=60)
    lines: list[str] = []

    assert install_charts([_chart(chart_repo)], target, report=lines.append) == ["web/hello"]
    config = helm_kube.get("v1", "ConfigMap", "hello-config", "web")
    assert config is not None and config["data"] == {"greeting": "hi from envspec", "replicas": "3"}
    assert helm_kube.get("v1", "Namespace", "web") is not None  # --create-namespace

    # helm list / get values, as the real binary prints them, make the same chart and values "current".
    assert is_current(find_helm(), _chart(chart_repo), target, runner=run_helm)
    assert install_charts([_chart(chart_repo)], target, report=lines.append) == []
    assert lines[-1] == "helm    web/hello hello@0.2.0 (unchanged)"

    changed = _chart(chart_repo, values={**VALUES, "greeting": "changed"})
    assert not is_current(find_helm(), changed, target, runner=run_helm)
    assert install_charts([changed], target, report=lines.append) == ["web/hello"]
    assert helm_kube.get("v1", "ConfigMap", "hello-config", "web")["data"]["greeting"] == "changed"
    history = json.loads(helm_env.run("history", "hello", "--namespace", "web", "--output", "json",
                                      "--kubeconfig", str(kubeconfig)).stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]


def test_a_version_the_repository_lacks_fails_with_helms_own_message(
    helm_env: Helm, chart_repo: str, helm_kube: HelmFakeKube, tmp_path: Path
) -> None:
    kubeconfig = helm_kube.write_kubeconfig(tmp_path / "kubeconfig")
    target = HelmTarget(kubeconfig=str(kubeconfig), context="fake", timeout_seconds=30)
    with pytest.raises(OperationError, match=r"helm upgrade --install hello \(hello 9\.9\.9\) failed: .*9\.9\.9"):
        install_charts([_chart(chart_repo, version="9.9.9")], target)
    assert helm_kube.get("v1", "ConfigMap", "hello-config", "web") is None



def test_apply_installs_the_chart_with_the_real_helm_between_stage_1_and_the_rest(
    helm_env: Helm, chart_repo: str, helm_kube: HelmFakeKube, tmp_path: Path
) -> None:
    from envspec.kube.apply import ApplyOptions, apply_plan
    from envspec.kube.client import Kube, load_target
    from tests.test_kube_helpers import ENV, NS, fast_wait, no_sleep_retry, plan

    kubeconfig = helm_kube.write_kubeconfig(tmp_path / "kubeconfig")
    _, api_client = load_target(kubeconfig, None)
    kube = Kube(api_client, retry=no_sleep_retry(), request_timeout=5.0)
    lines: list[str] = []
    try:
        apply_plan(kube, plan(helm=[_chart(chart_repo)]),
                   ApplyOptions(environ=ENV, wait=fast_wait(), check_helm=True, report=lines.append,
                                helm=HelmTarget(kubeconfig=str(kubeconfig), context="fake", timeout_seconds=60)))
    finally:
        kube.close()
    helm_at = lines.index("helm    web/hello hello@0.2.0")
    assert lines.index(f"created Namespace/{NS}") < helm_at < lines.index(f"created ConfigMap/{NS}/js-config")
    assert helm_kube.get("v1", "ConfigMap", "hello-config", "web")["data"]["greeting"] == "hi from envspec"
