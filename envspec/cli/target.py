"""Compile an environment and connect to *its* cluster: shared by every command that touches one.

The target (context, API server, the kubeconfig file the context came from) is
printed before anything else, and the environment's cluster binding is enforced
here, in one place, so no command can reach a cluster the spec does not name:
the kubeconfig checks first, then (for `cluster.digitalocean: true`) the
DigitalOcean API's word on the cluster's endpoint, and only then a request to
the cluster. `kubernetes` is imported inside.

`--kubeconfig-from-do` fetches a credential that expires after an hour (not
DigitalOcean's default of 7 days) into a private temporary directory that is
removed when the command ends, so no long-lived token is left on a CI runner.
The file has to live that long, not just until the client is built: Helm runs
later in the same command with `--kubeconfig` pointing at it.
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


# How long a kubeconfig fetched for one command stays valid (DigitalOcean's own default is 7 days).
FROM_DO_EXPIRY_SECONDS = 3600


def _on_command_exit(cleanup: Any) -> None:
    """Run `cleanup` when the click command finishes (success, error or exit); at interpreter exit otherwise."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(cleanup)
    else:
        import atexit

        atexit.register(cleanup)


def _fetch_temporary_kubeconfig(do_cluster: str, expiry_seconds: int) -> tuple[Path, str]:
    """A fresh short-lived kubeconfig in a 0700 temporary directory that goes away with the command."""
    from envspec.cloud.kubeconfig import fetch_kubeconfig

    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="envspec-kubeconfig-"))  # mode 0700
    _on_command_exit(lambda: shutil.rmtree(folder, ignore_errors=True))
    return fetch_kubeconfig(do_cluster, folder / "kubeconfig", expiry_seconds=expiry_seconds)


def connect_target(
    compiled: "Compiled",
    kubeconfig: Path | None,
    context: str | None,
    *,
    from_do: bool = False,
    expiry_seconds: int = FROM_DO_EXPIRY_SECONDS,
) -> tuple["KubeTarget", "ApiClient"]:
    """Resolve the kubeconfig (or fetch a fresh one from DigitalOcean), print the target, enforce the binding.

    With `from_do`, the fetched kubeconfig expires after `expiry_seconds` and
    is deleted when the running click command closes (see module doc).
    """
    from envspec.kube.binding import enforce_binding
    from envspec.kube.client import load_target

    if from_do:
        do_cluster = compiled.plan.cluster.digitalocean_cluster
        if do_cluster is None:
            raise SpecError(f"--kubeconfig-from-do needs digitalocean.cluster in environment {compiled.name}")
        if kubeconfig is not None:
            raise SpecError("--kubeconfig and --kubeconfig-from-do exclude each other")
        kubeconfig, fetched_context = _fetch_temporary_kubeconfig(do_cluster, expiry_seconds)
        context = context or fetched_context
    target, api_client = load_target(kubeconfig, context)
    info(target.describe())
    try:
        for line in enforce_binding(compiled.plan.cluster, target, environment=compiled.name, explicit_context=context):
            info(line)
    except BaseException:
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
