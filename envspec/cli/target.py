"""Compile an environment and connect to *its* cluster: shared by every command that touches one.

The target (context and API server) is printed before anything else, and the
environment's cluster binding is enforced here, in one place, so no command can
reach a cluster the spec does not name. `kubernetes` is imported inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from envspec.cli.common import collect_params, print_problems
from envspec.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes.client import ApiClient

    from envspec.kube.client import KubeTarget
    from envspec.pipeline import Compiled


def info(message: str) -> None:
    click.echo(message, err=True)


def compile_for_cli(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...]) -> "Compiled":
    from envspec.pipeline import compile_environment

    compiled = compile_environment(env, root=root, params=collect_params(pr, params), sets=sets)
    print_problems(compiled.warnings)
    return compiled


def connect_target(
    compiled: "Compiled", kubeconfig: Path | None, context: str | None, *, from_do: bool = False
) -> tuple["KubeTarget", "ApiClient"]:
    """Resolve the kubeconfig (or fetch a fresh one from DigitalOcean), print the target, enforce the binding."""
    from envspec.kube.client import check_binding, load_target

    if from_do:
        do_cluster = compiled.plan.cluster.digitalocean_cluster
        if do_cluster is None:
            raise SpecError(f"--kubeconfig-from-do needs digitalocean.cluster in environment {compiled.name}")
        if kubeconfig is not None:
            raise SpecError("--kubeconfig and --kubeconfig-from-do exclude each other")
        from envspec.cloud.kubeconfig import fetch_kubeconfig

        kubeconfig, fetched_context = fetch_kubeconfig(do_cluster, None)
        context = context or fetched_context
    target, api_client = load_target(kubeconfig, context)
    info(target.describe())
    try:
        check_binding(compiled.plan.cluster, target, environment=compiled.name, explicit_context=context)
    except Exception:
        api_client.close()
        raise
    return target, api_client


def kube_options(func: Any) -> Any:
    """--kubeconfig, --context and --kubeconfig-from-do."""
    func = click.option(
        "--kubeconfig-from-do", is_flag=True,
        help="Fetch a fresh kubeconfig for the environment's DigitalOcean cluster (needs DIGITALOCEAN_TOKEN).",
    )(func)
    func = click.option("--context", default=None, help="Kube context (default: the current one; must match the spec).")(func)
    func = click.option(
        "--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
    )(func)
    return func
