"""Installing the Helm charts an environment declares, before its manifests.

cert-manager and the gateway controller ship as charts; re-implementing their
install would be a fork to maintain, so envspec shells out to the helm CLI
(`helm upgrade --install --wait`), pinned to the declared version, with the
declared values in a temporary file, against the same kubeconfig and context
that apply uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Sequence

from envspec.errors import OperationError, SpecError
from envspec.kube.plan import HelmChart

INSTALL_HINT = "install helm 3 (https://helm.sh/docs/intro/install/, e.g. `brew install helm` or the get-helm-3 script)"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def find_helm(binary: str = "helm") -> str:
    """The helm executable; SpecError with install instructions when it is missing."""
    found = shutil.which(binary)
    if not found:
        raise SpecError(f"this environment declares Helm charts but `{binary}` was not found on PATH; {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class HelmTarget:
    kubeconfig: str | None = None
    context: str | None = None
    timeout_seconds: int = 300


def helm_argv(helm: str, chart: HelmChart, values_file: str, target: HelmTarget) -> list[str]:
    argv = [
        helm,
        "upgrade",
        "--install",
        chart.release,
        chart.chart,
        "--repo",
        chart.repository,
        "--version",
        chart.version,
        "--namespace",
        chart.namespace,
        "--create-namespace",
        "--wait",
        "--timeout",
        f"{target.timeout_seconds}s",
        "-f",
        values_file,
    ]
    if target.kubeconfig:
        argv += ["--kubeconfig", target.kubeconfig]
    if target.context:
        argv += ["--kube-context", target.context]
    return argv


def install_charts(
    charts: Sequence[HelmChart],
    target: HelmTarget,
    *,
    helm: str | None = None,
    runner: Runner = _run,
    report: Callable[[str], None] = lambda line: None,
) -> None:
    """`helm upgrade --install` each chart in order; OperationError with helm's stderr on failure."""
    if not charts:
        return
    helm = helm or find_helm()
    import json

    for chart in charts:
        fd, path = tempfile.mkstemp(prefix=f"envspec-{chart.release}-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(chart.values, handle)  # JSON is YAML; helm reads it as a values file
            result = runner(helm_argv(helm, chart, path, target))
        finally:
            os.unlink(path)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout or "").strip().splitlines()[-5:]
            raise OperationError(
                f"helm upgrade --install {chart.release} ({chart.chart} {chart.version}) failed: " + " / ".join(tail)
            )
        report(f"helm    {chart.namespace}/{chart.release} {chart.chart}@{chart.version}")
