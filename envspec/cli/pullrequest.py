"""`envspec comment`, `envspec gc` and `envspec pr-check`: the pull-request side of previews.

These are what the GitHub workflows call around apply and destroy. The
kubernetes client is imported inside `gc` only, so `envspec --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import click

from envspec.cli import main
from envspec.cli.completers import complete_environment
from envspec.cli.common import collect_params, handle_errors, param_options, root_option
from envspec.cli.target import compile_for_cli, connect_target, kube_options
from envspec.errors import SpecError
from envspec.github import COMMENT_KINDS


@main.command()
@click.argument("env", shell_complete=complete_environment)
@root_option
@param_options
@click.option("--kind", type=click.Choice(COMMENT_KINDS), default="plan", show_default=True, help="Which stage the comment reports.")
@click.option(
    "--changes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Change set JSON written by `envspec diff --json-out FILE`.",
)
@click.option(
    "--error-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Short error text to show (with --kind failed).",
)
@click.option("--run-url", help="Link to the workflow run (for the truncated diff's artifact).")
@click.option("--commit", help="Commit SHA the comment is about.")
@click.option("--build-seconds", type=click.FloatRange(min=0), help="How long the image build took (shown as Timing).")
@click.option("--deploy-seconds", type=click.FloatRange(min=0), help="How long the deploy took (shown as Timing).")
@click.option(
    "--post",
    is_flag=True,
    help="Also create or update the PR's envspec comment (found by its marker); needs GITHUB_TOKEN and --pr.",
)
@click.option("--repo", help="owner/name for --post (default: $GITHUB_REPOSITORY).")
@handle_errors
def comment(
    env: str,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
    kind: str,
    changes: Path | None,
    error_file: Path | None,
    run_url: str | None,
    commit: str | None,
    build_seconds: float | None,
    deploy_seconds: float | None,
    post: bool,
    repo: str | None,
) -> None:
    """Print the Markdown of the PR comment for ENV (first line: a hidden marker workflows search for)."""
    from envspec.github.comment import changes_from_json, comment_input, render_comment
    from envspec.kube.secrets import redactor_for
    from envspec.pipeline import compile_environment

    compiled = compile_environment(env, root=root, params=collect_params(pr, params), sets=sets)
    change_set = None
    if changes is not None:
        try:
            change_set = changes_from_json(changes.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SpecError(f"--changes {changes}: not a change set from `envspec diff --json-out`: {exc}") from None
    error = error_file.read_text(encoding="utf-8", errors="replace") if error_file is not None else None
    durations = {stage: s for stage, s in (("build", build_seconds), ("deploy", deploy_seconds)) if s is not None}
    data = comment_input(compiled.plan, kind, changes=change_set, error=error, run_url=run_url, commit=commit,  # type: ignore[arg-type]
                         durations=durations)
    body = render_comment(data, redact=redactor_for(compiled.plan, os.environ).values)
    click.echo(body, nl=False)
    if post:
        _post(body, compiled.plan.instance, pr, repo)


def _post(body: str, instance: str, pr: str | None, repo: str | None) -> None:
    from envspec.github.api import GitHubClient, resolve_repo
    from envspec.github.comment import marker
    from envspec.github.post import upsert_comment

    if pr is None or not pr.isdigit():
        raise SpecError("--post needs --pr N: the comment belongs to a pull request")
    client = GitHubClient.from_env()
    if not client.token:
        raise SpecError("--post needs GITHUB_TOKEN (in a workflow: env GITHUB_TOKEN: ${{ github.token }})")
    action, comment_id = upsert_comment(client, resolve_repo(repo), int(pr), body, marker(instance))
    click.echo(f"{action} comment {comment_id} on PR #{pr}", err=True)


@main.command("pr-check")
@click.option("--pr", type=click.IntRange(min=1), required=True, help="Pull request number.")
@click.option("--head-sha", required=True, help="The commit this run is about to deploy.")
@click.option("--repo", help="owner/name (default: $GITHUB_REPOSITORY).")
@handle_errors
def pr_check(pr: int, head_sha: str, repo: str | None) -> None:
    """Exit 0 only if PR is open and its head is still HEAD_SHA (run right before apply)."""
    from envspec.github.api import GitHubClient, resolve_repo
    from envspec.github.guard import check_pull_request

    pull = check_pull_request(GitHubClient.from_env(), resolve_repo(repo), pr, head_sha)
    click.echo(f"PR #{pr} is open at {pull.head_sha}; ok to deploy")


@main.command()
@root_option
@click.option(
    "--closed-prs",
    type=click.File("r"),
    default=None,
    help="File with closed PR numbers, one per line (`-` for stdin). Default: ask GitHub (GITHUB_TOKEN).",
)
@click.option("--repo", help="owner/name for the GitHub lookup (default: $GITHUB_REPOSITORY).")
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Also destroy previews not applied for longer than this (90m, 36h, 7d, 2w); "
    "measured from the last apply, or the creation time for previews applied before envspec recorded it.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be destroyed.")
@kube_options
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True, help="Seconds each preview's destroy may wait for its objects, namespaces and database drop to finish.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="Seconds to wait for an instance another run holds (its lease); then report it failed.")
@handle_errors
def gc(
    root: Path | None,
    closed_prs: IO[str] | None,
    repo: str | None,
    older_than: str | None,
    dry_run: bool,
    kubeconfig: Path | None,
    context: str | None,
    kubeconfig_from_do: bool,
    timeout: float,
    lock_timeout: float,
) -> None:
    """Destroy previews whose PR is closed or not applied for longer than a TTL.

    Previews are the environments that declare `preview:` (default TTL: their `ttl`). The cluster
    of each is the one its spec is bound to, reached like `envspec destroy` reaches it (the target
    is printed to stderr first).
    """
    from envspec.github.gc import GcOutcome, PreviewInstance, decide, parse_duration, run_gc
    from envspec.github.gc_cluster import PROBE_PR, closed_lookup, compiled_plan, destroyer, find_previews
    from envspec.kube.client import Kube
    from envspec.spec.preview import preview_environments
    from envspec.spec.project import find_project

    ttl = parse_duration(older_than) if older_than else None
    previews = preview_environments(find_project(root))
    if not previews:
        raise SpecError("no environment declares `preview:`; gc only ever destroys preview instances")
    is_closed = closed_lookup(closed_prs, repo)
    if is_closed is None and ttl is None and not all(p.ttl for p in previews.values()):
        raise SpecError(
            "gc has nothing to decide by: pass --closed-prs FILE|-, set GITHUB_TOKEN "
            "(with --repo or GITHUB_REPOSITORY), or give --older-than (or a `preview.ttl`)"
        )
    outcome = GcOutcome([], [], [])
    for name, preview in sorted(previews.items()):
        # One compile, for the binding only: a preview's cluster does not depend on the PR number.
        probe = compile_for_cli(name, root, None, (f"{preview.pr_param}={PROBE_PR}",), ())
        _, api_client = connect_target(probe, kubeconfig, context, from_do=kubeconfig_from_do)
        with Kube(api_client) as kube:
            verdicts = decide(find_previews(kube, preview), previews={name: preview}, is_closed=is_closed, older_than=ttl)

            def recheck(item: PreviewInstance, preview=preview, name=name) -> str | None:  # type: ignore[no-untyped-def]
                """Decided again under the lease: an apply may have refreshed the preview while gc waited."""
                again = decide([item], previews={name: preview}, is_closed=is_closed, older_than=ttl)
                if not again:
                    return "not an instance of a preview"
                verdict = again[0]
                return None if verdict.expired else (verdict.note or verdict.error or "no longer past its end")

            result = run_gc(
                verdicts,
                dry_run=dry_run,
                destroy=destroyer(kube, compiled_plan(root, preview), timeout=timeout, lock_timeout=lock_timeout,
                                  recheck=recheck, report=lambda line: click.echo(f"    {line}")),
                echo=click.echo,
            )
        outcome = GcOutcome(outcome.destroyed + result.destroyed, outcome.failed + result.failed, outcome.kept + result.kept)
    if not outcome.ok:
        raise _failed(outcome.failed)


def _failed(names: list[str]) -> Exception:
    from envspec.errors import OperationError

    return OperationError(f"gc failed for {len(names)} instance(s): {', '.join(names)}")
