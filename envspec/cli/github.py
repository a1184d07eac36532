"""`envspec github-deployment` and `envspec delete-images`: GitHub's side of a deploy and of a cleanup.

Both compile the environment only to learn names the spec declares (the
instance, its outputs, its image references); neither touches a cluster.
"""

from __future__ import annotations

from pathlib import Path

import click

from envspec.cli import main
from envspec.cli.common import collect_params, handle_errors, param_options, root_option
from envspec.errors import OperationError, SpecError


def _compile(env: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from envspec.pipeline import compile_environment

    return compile_environment(env, root=root, params=collect_params(pr, params), sets=sets)


def _client():  # type: ignore[no-untyped-def]
    from envspec.github.api import GitHubClient

    client = GitHubClient.from_env()
    if not client.token:
        raise SpecError("needs GITHUB_TOKEN (in a workflow: env GITHUB_TOKEN: ${{ github.token }})")
    return client


@main.command("github-deployment")
@click.argument("env")
@root_option
@param_options
@click.option("--state", type=click.Choice(["in_progress", "success", "failure", "inactive"]), required=True,
              help="in_progress creates the deployment; success/failure finish it; inactive retires every one of the instance.")
@click.option("--sha", help="The commit being deployed (40 hex digits); needed for in_progress, success and failure.")
@click.option("--id", "deployment_id", type=click.IntRange(min=1), help="The deployment to finish (default: the newest of this instance at --sha).")
@click.option("--url-output", metavar="NAME", help="Declared output whose value is the environment URL (with --state success).")
@click.option("--environment-url", metavar="URL", help="The environment URL itself (with --state success).")
@click.option("--log-url", metavar="URL", help="Link to the run's log (shown on failure).")
@click.option("--production-environment", is_flag=True, help="Tell GitHub this environment is a production one.")
@click.option("--repo", help="owner/name (default: $GITHUB_REPOSITORY).")
@handle_errors
def github_deployment(
    env: str,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
    state: str,
    sha: str | None,
    deployment_id: int | None,
    url_output: str | None,
    environment_url: str | None,
    log_url: str | None,
    production_environment: bool,
    repo: str | None,
) -> None:
    """Record a deploy of ENV as a GitHub Deployment named after the instance (e.g. web-pr-107).

    in_progress prints the new deployment's id on stdout. Its payload lists the
    images deployed, which `envspec delete-images --protect-deployments` reads.
    """
    from envspec.github import deployments
    from envspec.github.api import resolve_repo
    from envspec.github.comment import collect_images

    compiled = _compile(env, root, pr, params, sets)
    plan = compiled.plan
    name = plan.instance
    if (state == "in_progress" and not sha) or (state in ("success", "failure") and not sha and deployment_id is None):
        raise SpecError(f"--state {state} needs --sha (the commit being deployed)")
    url = environment_url
    if url_output is not None:
        if url_output not in plan.outputs:
            known = ", ".join(sorted(plan.outputs)) or "none"
            raise SpecError(f"--url-output {url_output}: {env} declares no such output (it declares: {known})")
        url = str(plan.outputs[url_output])
    if url is not None and not url.startswith(("https://", "http://")):
        raise SpecError(f"the environment URL must be an http(s) URL, got {url!r}")
    repository = resolve_repo(repo)
    client = _client()
    if state == "in_progress":
        assert sha is not None
        created = deployments.start(
            client, repository, environment=name, sha=deployments.check_sha(sha),
            images=[use.image for use in collect_images(plan.objects)],
            description=f"envspec apply {env}" + (f" --pr {pr}" if pr else ""),
            transient=pr is not None, production=production_environment, log_url=log_url,
            pr=int(pr) if pr is not None and pr.isdigit() else None,
        )
        click.echo(str(created.id))
        click.echo(f"deployment {created.id} of {name} at {sha}: in_progress", err=True)
    elif state == "inactive":
        changed = deployments.deactivate(client, repository, environment=name, log_url=log_url)
        click.echo(f"{len(changed)} deployment(s) of {name} marked inactive", err=True)
    else:
        done = deployments.finish(
            client, repository, environment=name, sha=deployments.check_sha(sha) if sha else "",
            state=state,  # type: ignore[arg-type]
            deployment_id=deployment_id, environment_url=url, log_url=log_url,
        )
        click.echo(f"deployment {done.id} of {name}: {state}" + (f" at {url}" if state == "success" and url else ""), err=True)


@main.command("delete-images")
@click.argument("env")
@root_option
@param_options
@click.option("--registry", required=True, metavar="HOST",
              help="The host of GitHub's container registry the images are on (what ENV's image references start with).")
@click.option("--package", "packages", multiple=True, metavar="OWNER/NAME",
              help="Package to clean (default: the images on --registry that ENV references).")
@click.option("--tag-prefix", help="Tag prefix before the PR number (default: what ENV's image tags use, e.g. pr-).")
@click.option("--protect-env", "protect_envs", multiple=True, metavar="ENV",
              help="Never delete an image this environment references (compiled from the spec).")
@click.option("--protect-deployments", "protect_deployments", multiple=True, metavar="ENVIRONMENT",
              help="Never delete an image a GitHub deployment of this environment recorded (what it actually ran).")
@click.option("--protect-image", "protect_images", multiple=True, metavar="REF", help="Never delete this image.")
@click.option("--protect-none", is_flag=True, help="Nothing needs protecting (otherwise at least one --protect-* is required).")
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
@click.option("--repo", help="owner/name for --protect-deployments (default: $GITHUB_REPOSITORY).")
@handle_errors
def delete_images(
    env: str,
    root: Path | None,
    pr: str | None,
    params: tuple[str, ...],
    sets: tuple[str, ...],
    registry: str,
    packages: tuple[str, ...],
    tag_prefix: str | None,
    protect_envs: tuple[str, ...],
    protect_deployments: tuple[str, ...],
    protect_images: tuple[str, ...],
    protect_none: bool,
    dry_run: bool,
    repo: str | None,
) -> None:
    """Delete a closed PR's images: versions tagged exactly <prefix><N> or <prefix><N>-<sha>, and nothing else.

    Reads every page of each package's versions first; keeps any version that
    also carries another tag, or that a protected environment references.
    """
    from envspec.github import packages as pkg
    from envspec.github.api import GitHubError, resolve_repo
    from envspec.github.comment import collect_images

    if pr is None or not pr.isdigit() or int(pr) < 1:
        raise SpecError("delete-images needs --pr N: it deletes one pull request's images")
    number = int(pr)
    if not (protect_envs or protect_deployments or protect_images or protect_none):
        raise SpecError("name what must be kept: --protect-env ENV, --protect-deployments ENVIRONMENT, "
                        "--protect-image REF (or --protect-none)")
    compiled = _compile(env, root, pr, params, sets)
    found, derived = pkg.packages_and_prefix([u.image for u in collect_images(compiled.plan.objects)], number, registry)
    chosen: list[pkg.Package] = []
    for raw in packages:
        owner, _, name = raw.partition("/")
        if not owner or not name:
            raise SpecError(f"--package must look like OWNER/NAME, got {raw!r}")
        chosen.append(pkg.Package(owner.lower(), name.lower(), registry))
    chosen = chosen or found
    if not chosen:
        raise SpecError(f"{env} references no image on {registry}; name the packages with --package OWNER/NAME")
    prefix = tag_prefix if tag_prefix is not None else derived
    if not prefix:
        raise SpecError(f"cannot tell the PR tag prefix from {env}'s image tags; pass --tag-prefix (e.g. pr-)")

    protected = pkg.Protected(registry=registry)
    for ref in protect_images:
        protected.add_image(ref)
    for other in protect_envs:
        for use in collect_images(_compile(other, root, None, (), ()).plan.objects):
            protected.add_image(use.image)
    client = _client()
    if protect_deployments:
        from envspec.github.deployments import deployed_images

        repository = resolve_repo(repo)
        for environment in protect_deployments:
            for ref in deployed_images(client, repository, environment=environment):
                protected.add_image(ref)

    failed: list[str] = []
    deleted = 0
    scopes: dict[str, str] = {}
    for package in chosen:
        scope = scopes.get(package.owner) or scopes.setdefault(package.owner, pkg.owner_scope(client, package.owner))
        try:
            versions = pkg.list_versions(client, package, scope)
        except GitHubError as exc:
            if exc.status != 404:
                raise
            click.echo(f"{package}: no such package (never pushed?); nothing to delete")
            continue
        verdicts = pkg.decide(package, versions, prefix=prefix, pr=number, protected=protected)
        click.echo(f"{package}: {len(versions)} version(s), {sum(v.delete for v in verdicts)} of PR #{number} to delete")
        for verdict in verdicts:
            line = f"  {verdict.version.digest} ({verdict.reason})"
            if not verdict.delete:
                click.echo(line)
                continue
            if dry_run:
                click.echo(f"  would delete{line[1:]}")
                continue
            try:
                pkg.delete_version(client, package, scope, verdict.version)
            except OperationError as exc:
                failed.append(f"{package}@{verdict.version.digest}")
                click.echo(f"  FAILED{line[1:]}: {exc}", err=True)
                continue
            deleted += 1
            click.echo(f"  deleted{line[1:]}")
    if failed:
        raise OperationError(f"could not delete {len(failed)} image version(s): {', '.join(failed)}")
    if not dry_run:
        click.echo(f"deleted {deleted} version(s)")
