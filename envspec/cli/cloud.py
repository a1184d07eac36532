"""`envspec dns`, `envspec cluster` and `envspec kubeconfig`: the DigitalOcean side of an environment.

`digitalocean` and `kubernetes` are imported inside the commands, never here:
this module is imported by `envspec --help`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from envspec.cli import main
from envspec.cli.completers import complete_environment
from envspec.cli.common import check_local_preconditions, handle_errors, param_options, root_option
from envspec.cli.target import compile_for_cli as _compile
from envspec.cli.target import connect_target, kube_options
from envspec.cli.target import info as _info
from envspec.errors import SpecError

if TYPE_CHECKING:
    from envspec.spec.cloud import DigitalOcean


def _digitalocean(compiled: Any, part: str) -> DigitalOcean:
    block = compiled.spec.digitalocean
    if block is None or getattr(block, part) is None:
        raise SpecError(
            f"environment {compiled.name} declares no digitalocean.{part}; add it to {compiled.source}"
        )
    return block


@main.command("dns")
@click.argument("env", shell_complete=complete_environment)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--prune", is_flag=True, help="Delete records this environment owns that the spec no longer declares.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for the target Gateway's or Service's load balancer address.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds between checks of the target Gateway or Service.")
@kube_options
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
    check_local_preconditions(
        token=True, kubeconfig=kubeconfig, needs_kubeconfig=block.dns.target.in_cluster and not kubeconfig_from_do
    )
    kube = None
    if block.dns.target.in_cluster:
        from envspec.kube.client import Kube

        _, api_client = connect_target(compiled, kubeconfig, context, from_do=kubeconfig_from_do)
        kube = Kube(api_client)
    try:
        sync_dns(
            block.dns,
            owner=compiled.instance,
            api_client=kube,
            dry_run=dry_run,
            prune=prune,
            timeout=timeout,
            poll_interval=poll_interval,
            echo=click.echo,
        )
    finally:
        if kube is not None:
            kube.close()


@main.command("cluster")
@click.argument("env", shell_complete=complete_environment)
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
@click.argument("env", shell_complete=complete_environment)
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
