"""apply, diff and destroy: the commands that touch a cluster.

Each prints the target (context and API server) before anything else, then
refuses if it is not the cluster the environment is bound to. Progress goes
to stderr; stdout carries only results (the diff, the summary), so CI can
capture them. `kubernetes` is imported inside the commands only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from envspec.cli import main
from envspec.cli.completers import complete_environment
from envspec.cli.common import handle_errors, param_options, root_option
from envspec.cli.target import compile_for_cli as _compile
from envspec.cli.target import connect_target, kube_options
from envspec.cli.target import info as _info
from envspec.errors import EXIT_CHANGES
from envspec.kube.lease import DEFAULT_LOCK_TIMEOUT

if TYPE_CHECKING:  # pragma: no cover
    from envspec.kube.apply import RoutesReadyHook
    from envspec.kube.client import Kube, KubeTarget
    from envspec.pipeline import Compiled


def _connect(compiled: "Compiled", kubeconfig: Path | None, context: str | None, from_do: bool) -> tuple["KubeTarget", "Kube"]:
    from envspec.kube.client import Kube

    target, api_client = connect_target(compiled, kubeconfig, context, from_do=from_do)
    return target, Kube(api_client)


def _confirm() -> Callable[[str], bool] | None:
    """An interactive yes/no prompt, or None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    return lambda question: click.confirm(question, default=False, err=True)


def _dns_hook(compiled: "Compiled", kube: "Kube") -> "RoutesReadyHook | None":
    """Sync DigitalOcean DNS once routes are ready, when the environment declares records.

    After the gateway is programmed, not before: records then point at an address that
    serves. The wait for the LoadBalancer address gets what is left of --timeout, and its
    lines go through apply's report (scrubbed of secret values).
    """
    block = compiled.spec.digitalocean
    if block is None or block.dns is None:
        return None

    def sync(*, remaining: float, report: Callable[[str], None]) -> None:
        from envspec.cloud.dns import sync_declared_dns

        sync_declared_dns(compiled, kube.api_client, timeout=remaining, echo=report)

    return sync


def lock_option(func: Any) -> Any:
    return click.option(
        "--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
        help="Seconds to wait while another run holds the instance's lease; then exit 3 naming the holder.",
    )(func)


TIMEOUT_HELP = {
    "apply": "Seconds the whole apply may wait: for Helm releases, Jobs, rollouts and routes to be ready "
             "(not for the lease: --lock-timeout).",
    "diff": "Accepted for symmetry with apply; diff reads the cluster and waits for nothing.",
    "destroy": "Seconds the whole destroy may wait for deleted objects, namespaces and the database drop Job "
               "(not for the lease: --lock-timeout).",
}


def cluster_options(func: Any) -> Any:
    func = click.option(
        "--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
        help=TIMEOUT_HELP.get(func.__name__, "Seconds the whole command may wait on the cluster."),
    )(func)
    return kube_options(func)


@main.command()
@click.argument("env", shell_complete=complete_environment)
@root_option
@param_options
@cluster_options
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (production asks otherwise).")
@click.option("--force-conflicts", is_flag=True, help="Take ownership of fields another field manager owns.")
@click.option("--dangerous-prune", is_flag=True,
              help="Allow pruning Namespaces, PVCs and CRDs, and more than half of the inventory.")
@click.option("--skip-dns", is_flag=True, help="Don't sync DigitalOcean DNS after routes are ready.")
@click.option("--adopt", is_flag=True,
              help="Take over existing objects and namespaces that belong to no ApplySet (refused otherwise).")
@click.option("--dry-run", "dry_run", is_flag=True,
              help="Server-side dry run (kubectl's --dry-run=server): print what would change, as `envspec diff` "
              "does, and change nothing; exit 0 no changes, 1 changes.")
@lock_option
@handle_errors
def apply(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...],
          kubeconfig: Path | None, context: str | None, kubeconfig_from_do: bool, timeout: float, yes: bool,
          force_conflicts: bool, dangerous_prune: bool, skip_dns: bool, adopt: bool, dry_run: bool,
          lock_timeout: float) -> None:
    """Create or update ENV on its cluster (server-side apply), wait for it, prune what left the spec."""
    from envspec.kube.apply import ApplyOptions, apply_plan
    from envspec.kube.helm import HelmTarget
    from envspec.kube.lease import LeaseSettings
    from envspec.kube.wait import WaitSettings

    compiled = _compile(env, root, pr, params, sets)
    target, kube = _connect(compiled, kubeconfig, context, kubeconfig_from_do)
    if dry_run:
        from envspec.kube.diff import diff_live

        with kube:
            changes = diff_live(kube, compiled.plan, environ=dict(os.environ), report=_info)
        click.echo(changes.diff, nl=False)
        _info(f"dry run (server-side), nothing applied: {compiled.plan.instance}: {changes.summary()}")
        if changes.has_changes:
            sys.exit(EXIT_CHANGES)
        return
    with kube:
        options = ApplyOptions(
            force_conflicts=force_conflicts,
            dangerous_prune=dangerous_prune,
            adopt=adopt,
            lease=LeaseSettings(timeout=lock_timeout),
            yes=yes,
            confirm=_confirm(),
            target_description=f"context {target.context} at {target.server}",
            environ=dict(os.environ),
            wait=WaitSettings(timeout=timeout),
            helm=HelmTarget(kubeconfig=target.kubeconfig, context=target.context, timeout_seconds=int(timeout) or 300),
            after_routes_ready=None if skip_dns else _dns_hook(compiled, kube),
            report=_info,
        )
        result = apply_plan(kube, compiled.plan, options)
    click.echo(
        f"applied {compiled.plan.instance}: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.replaced)} replaced, {len(result.unchanged)} unchanged, {len(result.pruned)} pruned"
    )


@main.command()
@click.argument("env", shell_complete=complete_environment)
@root_option
@param_options
@cluster_options
@click.option("--against", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Compare with committed rendered output in DIR instead of the cluster.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the change set as JSON (for `envspec comment`).")
@click.option("--detailed-exitcode", is_flag=True,
              help="Accepted as helm-diff users type it; envspec diff always exits 1 on changes.")
@handle_errors
def diff(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...],
         kubeconfig: Path | None, context: str | None, kubeconfig_from_do: bool, timeout: float,
         against: Path | None, json_out: Path | None, detailed_exitcode: bool) -> None:
    """Show what `apply` would change. Exit 0: no changes; 1: changes; 2: bad input; 3: cluster error.

    Needs no secret variables: a Secret whose variables are unset is compared by keys only (with a note).
    --against DIR compares with a folder `render ENV --out DIR` wrote; a folder `render --all`
    wrote holds every environment and is refused: name the environment's own, DIR/ENV.
    """
    compiled = _compile(env, root, pr, params, sets)
    if against is not None:
        from envspec.kube.diff import diff_against
        from envspec.render.output import rendered_folder_for

        changes = diff_against(compiled.plan, rendered_folder_for(against, env))
    else:
        from envspec.kube.diff import diff_live

        _, kube = _connect(compiled, kubeconfig, context, kubeconfig_from_do)
        with kube:
            changes = diff_live(kube, compiled.plan, environ=dict(os.environ), report=_info)
    if json_out is not None:
        json_out.write_text(changes.to_json())
    click.echo(changes.diff, nl=False)
    _info(f"{compiled.plan.instance}: {changes.summary()}")
    if changes.has_changes:
        sys.exit(EXIT_CHANGES)


@main.command()
@click.argument("env", shell_complete=complete_environment)
@root_option
@param_options
@cluster_options
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (production asks otherwise).")
@click.option("--grace-period", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds a namespace may stay Terminating before it is force-finalized.")
@lock_option
@handle_errors
def destroy(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...],
            kubeconfig: Path | None, context: str | None, kubeconfig_from_do: bool, timeout: float,
            dry_run: bool, yes: bool, grace_period: float, lock_timeout: float) -> None:
    """Delete ENV's objects and the namespaces it created, drop its database, and verify nothing is left."""
    from envspec.kube.destroy import DestroyOptions, destroy_instance
    from envspec.kube.lease import LeaseSettings
    from envspec.kube.preflight import confirm_if_needed
    from envspec.kube.wait import WaitSettings

    compiled = _compile(env, root, pr, params, sets)
    target, kube = _connect(compiled, kubeconfig, context, kubeconfig_from_do)
    with kube:
        if not dry_run:
            confirm_if_needed(compiled.plan, yes=yes, confirm=_confirm(),
                              target=f"context {target.context} at {target.server}", action="Destroy")
        options = DestroyOptions(dry_run=dry_run, grace_seconds=grace_period,
                                 wait=WaitSettings(timeout=timeout), report=_info,
                                 lease=LeaseSettings(timeout=lock_timeout))
        result = destroy_instance(kube, compiled.plan, options)
    if result.nothing:
        pass  # destroy_instance has said "nothing to destroy: no trace of ..." once already
    elif dry_run:
        click.echo(f"dry run: nothing deleted for {compiled.plan.instance}")
    else:
        dropped = f", dropped database {result.database_dropped}" if result.database_dropped else ""
        click.echo(
            f"destroyed {compiled.plan.instance}: {len(result.deleted)} objects, "
            f"{len(result.namespaces)} namespaces{dropped}"
        )
