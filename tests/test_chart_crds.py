"""A custom resource whose CRD a Helm chart installs (kube-prometheus-stack's monitoring.coreos.com kinds) is applied after the chart."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from envspec.kube.apply import apply_plan
from envspec.kube.client import Kube
from envspec.plan import HelmChart
from tests.fakes.kube_server import FakeKube
from tests.test_kube_apply import options
from tests.test_kube_helpers import NS, fake_kube, fast_wait, kube, kubeconfig, labels, objects, plan  # noqa: F401

CHART = HelmChart(release="kube-prometheus-stack", namespace="monitoring",
                  repository="https://prometheus-community.github.io/helm-charts", chart="kube-prometheus-stack",
                  version="70.10.0", values={"crds": {"enabled": True}})


def chart_installing_crd(fake: FakeKube, calls: list[list[str]]) -> Any:
    """A helm runner whose `upgrade --install` creates the PodMonitor CRD, as the real chart does."""

    def run(argv: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        if argv[1] == "upgrade":
            fake.put({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "podmonitors.monitoring.coreos.com"},
                "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                         "names": {"kind": "PodMonitor", "plural": "podmonitors", "singular": "podmonitor"},
                         "versions": [{"name": "v1", "served": True, "storage": True}]},
                "status": {"conditions": [{"type": "Established", "status": "True"}]},
            })
        out = "[]" if argv[1] == "list" else ("null" if argv[1] == "get" else "")
        return subprocess.CompletedProcess(list(argv), 0, out, "")

    return run


def test_a_custom_resource_whose_crd_comes_from_a_chart_is_applied_after_the_chart(
    fake_kube: FakeKube, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helm = tmp_path / "helm"  # found on PATH; the runner below answers in its place
    helm.write_text("#!/bin/sh\nexit 1\n")
    helm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
               "metadata": {"name": "api-metrics", "namespace": NS, "labels": labels()},
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "api"}}, "podMetricsEndpoints": [{"port": "http"}]}}
    calls: list[list[str]] = []
    assert fake_kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "podmonitors.monitoring.coreos.com") is None
    result = apply_plan(kube, plan([*objects(), monitor], helm=[CHART]),
                        options(helm_runner=chart_installing_crd(fake_kube, calls)))
    assert any(c[1] == "upgrade" for c in calls)
    assert f"PodMonitor/{NS}/api-metrics" in result.created
    assert fake_kube.get("monitoring.coreos.com/v1", "PodMonitor", "api-metrics", NS) is not None
