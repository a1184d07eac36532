"""Installing the Helm charts an environment declares, right after stage 1 (CRDs and namespaces).

cert-manager and the gateway controller ship as charts; re-implementing their
install would be a fork to maintain, so envspec shells out to the helm CLI
(`helm upgrade --install --wait`), pinned to the declared version, with the
declared values in a temporary file, against the same kubeconfig and context
that apply uses. Charts from an OCI registry (`repository: oci://...`) are
named by reference, since `--repo` only takes HTTP chart repositories.

`helm upgrade --install` writes a new release revision every time, even
with nothing to change, so a chart whose deployed release already has the
declared chart version and values is skipped: a no-op apply stays a no-op.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from envspec.errors import OperationError, SpecError
from envspec.plan import HelmChart

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


def is_oci(chart: HelmChart) -> bool:
    return chart.repository.startswith("oci://")


def chart_source(chart: HelmChart) -> list[str]:
    """How helm is told where the chart is: an OCI reference, or a name plus --repo."""
    if is_oci(chart):
        return [f"{chart.repository.rstrip('/')}/{chart.chart}"]
    return [chart.chart, "--repo", chart.repository]


def _target_flags(target: HelmTarget) -> list[str]:
    flags: list[str] = []
    # helm's --kubeconfig takes one file; a list (KUBECONFIG=a:b) is already in helm's environment,
    # which helm merges the way apply did, and --kube-context picks the same context.
    if target.kubeconfig and os.pathsep not in target.kubeconfig:
        flags += ["--kubeconfig", target.kubeconfig]
    if target.context:
        flags += ["--kube-context", target.context]
    return flags


def helm_argv(helm: str, chart: HelmChart, values_file: str, target: HelmTarget) -> list[str]:
    return [
        helm,
        "upgrade",
        "--install",
        chart.release,
        *chart_source(chart),
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
        *_target_flags(target),
    ]


def _json_out(runner: Runner, argv: list[str]) -> Any:
    """helm's JSON answer, or None when the command failed or printed something else."""
    result = runner(argv)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout or "null")
    except ValueError:
        return None


def is_current(helm: str, chart: HelmChart, target: HelmTarget, runner: Runner) -> bool:
    """True when the release is deployed with exactly this chart version and these values.

    `helm list` gives the deployed chart as `<name>-<version>` and its status;
    `helm get values` the user-supplied values. Anything unexpected means "not
    current", so the install runs (the safe side).
    """
    listed = _json_out(
        runner,
        [helm, "list", "--namespace", chart.namespace, "--filter", f"^{chart.release}$", "--output", "json",
         *_target_flags(target)],
    )
    if not isinstance(listed, list):
        return False
    release = next((r for r in listed if isinstance(r, dict) and r.get("name") == chart.release), None)
    if release is None or release.get("status") != "deployed":
        return False
    if release.get("chart") != f"{chart.chart}-{chart.version}":
        return False
    values = _json_out(
        runner,
        [helm, "get", "values", chart.release, "--namespace", chart.namespace, "--output", "json",
         *_target_flags(target)],
    )
    if values is None and chart.values:
        return False
    # Round-trip through JSON so both sides have the same types (helm answers in JSON).
    return (values or {}) == json.loads(json.dumps(chart.values))


def install_charts(
    charts: Sequence[HelmChart],
    target: HelmTarget,
    *,
    helm: str | None = None,
    runner: Runner = _run,
    report: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """`helm upgrade --install` each chart that is not already current, in order; the releases written.

    OperationError with helm's stderr on failure.
    """
    if not charts:
        return []
    helm = helm or find_helm()
    written: list[str] = []
    for chart in charts:
        what = f"{chart.namespace}/{chart.release} {chart.chart}@{chart.version}"
        if is_current(helm, chart, target, runner):
            report(f"helm    {what} (unchanged)")
            continue
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
        written.append(f"{chart.namespace}/{chart.release}")
        report(f"helm    {what}")
    return written
