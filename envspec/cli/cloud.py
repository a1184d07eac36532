"""`envspec dns`, `envspec cluster` and `envspec kubeconfig`: the DigitalOcean side of an environment.

`digitalocean` and `kubernetes` are imported inside the commands, never here:
this module is imported by `envspec --help`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from envspec.cli import main
from envspec.cli.common import collect_params, handle_errors, param_options, root_option
from envspec.errors import SpecError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from envspec.spec.cloud import DigitalOcean


def _info(message: str) -> None:
    click.echo(message, err=True)


def _compile(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...]) -> Any:
    from envspec.pipeline import compile_environment

    return compile_environment(env, root=root, params=collect_params(pr, params), sets=sets)


def _digitalocean(compiled: Any, part: str) -> DigitalOcean:
    block = compiled.spec.digitalocean
    if block is None or getattr(block, part) is None:
        raise SpecError(
            f"environment {compiled.name} declares no digitalocean.{part}; add it to {compiled.source}"
        )
    return block


def _cluster_api(
    compiled: Any, block: DigitalOcean, kubeconfig: Path | None, context: str | None, from_do: bool
) -> ApiClient:
    """A client for the environment's own cluster, refusing any other (see envspec.kube.client)."""
    from envspec.kube.client import check_binding, load_target

    if from_do:
        if block.cluster is None:
            raise SpecError(f"--kubeconfig-from-do needs digitalocean.cluster in environment {compiled.name}")
        from envspec.cloud.kubeconfig import fetch_kubeconfig

        kubeconfig, fetched_context = fetch_kubeconfig(block.cluster.name, None)
        context = context or fetched_context
    target, api_client = load_target(kubeconfig, context)
    _info(target.describe())
    check_binding(compiled.plan.cluster, target, environment=compiled.name, explicit_context=context)
    return api_client


@main.command("dns")
@click.argument("env")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--prune", is_flag=True, help="Delete records this environment owns that the spec no longer declares.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for the target Service's load balancer address.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds between checks of the target Service.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kubeconfig for reading the target Service (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, help="Kube context (default: the current one; must match the spec).")
@click.option("--kubeconfig-from-do", is_flag=True, help="Fetch a fresh kubeconfig for the environment's cluster.")
@root_option
@param_options
@handle_errors
def dns_command(
    env: str,
    dry_run: bool,
    prune: bool,
    timeout: float,
    poll_interval: float,
    kubeconfig: Path | None,
    context: str | None,
    kubeconfig_from_do: bool,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
) -> None:
    """Point the environment's DNS records at its gateway (DigitalOcean DNS)."""
    from envspec.cloud.dns import sync_dns

    compiled = _compile(env, root, pr, params, sets)
    block = _digitalocean(compiled, "dns")
    assert block.dns is not None
    api_client = None
    if block.dns.target.service is not None:
        api_client = _cluster_api(compiled, block, kubeconfig, context, kubeconfig_from_do)
    sync_dns(
        block.dns,
        owner=compiled.instance,
        api_client=api_client,
        dry_run=dry_run,
        prune=prune,
        timeout=timeout,
        poll_interval=poll_interval,
        echo=click.echo,
    )


@main.command("cluster")
@click.argument("env")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--timeout", type=click.FloatRange(min=0), default=1800.0, show_default=True,
              help="Seconds to wait for a new cluster to be running.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds between status checks while waiting.")
@root_option
@param_options
@handle_errors
def cluster_command(
    env: str,
    dry_run: bool,
    timeout: float,
    poll_interval: float,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
) -> None:
    """Make sure the environment's DigitalOcean Kubernetes cluster exists (never deletes it)."""
    from envspec.cloud.cluster import ensure_cluster

    compiled = _compile(env, root, pr, params, sets)
    block = _digitalocean(compiled, "cluster")
    assert block.cluster is not None
    ensure_cluster(block.cluster, dry_run=dry_run, timeout=timeout, poll_interval=poll_interval, echo=click.echo)


@main.command("kubeconfig")
@click.argument("env")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: ~/.kube/envspec/<cluster>.yaml). Written with mode 0600.")
@root_option
@param_options
@handle_errors
def kubeconfig_command(
    env: str,
    out: Path | None,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
) -> None:
    """Fetch a fresh kubeconfig for the environment's cluster; prints the context name."""
    from envspec.cloud.kubeconfig import fetch_kubeconfig

    compiled = _compile(env, root, pr, params, sets)
    block = _digitalocean(compiled, "cluster")
    assert block.cluster is not None
    path, context = fetch_kubeconfig(block.cluster.name, out)
    _info(f"wrote {path} (mode 0600)")
    click.echo(context)
