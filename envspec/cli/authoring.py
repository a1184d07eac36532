"""config, list and init: see and start a project. The logic lives in envspec.authoring."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from envspec.cli import main
from envspec.cli.common import collect_params, handle_errors, param_options, root_option
from envspec.errors import EXIT_CHANGES, SpecError


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="ENV | diff A B")
@root_option
@param_options
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@handle_errors
def config(args: tuple[str, ...], root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...],
           fmt: str) -> None:
    """Print ENV's effective spec: merged (extends, --set), parameters and ${...} resolved.

    Secret values never appear: a spec only names the environment variable each comes from.
    `envspec config diff A B` shows how two environments' effective specs differ (parameters at
    their defaults or examples) and exits 1 when they do, like `envspec diff`.
    """
    from envspec.authoring import config_diff, config_text, effective_config
    from envspec.spec.project import find_project

    project = find_project(root)
    if args[0] == "diff":
        if len(args) != 3:
            raise SpecError("usage: envspec config diff A B")
        if pr or params or sets:
            raise SpecError("config diff compares environments as declared; --pr/--param/--set take `envspec config ENV`")
        text = config_diff(project, args[1], args[2])
        sys.stdout.write(text)
        if text:
            sys.exit(EXIT_CHANGES)
        click.echo(f"{args[1]} and {args[2]} have the same effective spec", err=True)
        return
    if len(args) != 1:
        raise SpecError("usage: envspec config ENV (or envspec config diff A B)")
    data = effective_config(project, args[0], collect_params(pr, params), sets)
    sys.stdout.write(config_text(data, fmt))


@main.command(name="list")
@root_option
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def list_(root: Path | None, fmt: str) -> None:
    """List environments: their parameters, cluster binding and whether they render without parameters."""
    from envspec.authoring import list_environments, list_text
    from envspec.spec.project import find_project

    infos = list_environments(find_project(root))
    if fmt == "json":
        click.echo(json.dumps([i.as_json() for i in infos], indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(list_text(infos))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--env", "environment", default="dev", show_default=True, help="Name of the first environment.")
@click.option("--context", default="kind-kind", show_default=True, help="The kube context the environment is bound to.")
@handle_errors
def init(folder: Path, environment: str, context: str) -> None:
    """Scaffold a new project in FOLDER; refuses to overwrite any existing file.

    Writes environments/_defaults.yaml, one environment with the schema header, schemas/,
    a .gitignore and a CI workflow, or, if any of them exists, nothing."""
    from envspec.authoring import init_project

    written = init_project(folder, environment=environment, context=context)
    for rel in written:
        click.echo(f"wrote {folder / rel}", err=True)
    click.echo(f"next: cd {folder} && envspec validate && envspec render {environment}", err=True)
