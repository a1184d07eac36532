"""`envspec explain`: where a rendered value came from. The logic lives in envspec.explain."""

from __future__ import annotations

import json
from pathlib import Path

import click

from envspec.cli import main
from envspec.cli.completers import complete_environment
from envspec.cli.common import handle_errors, param_options, root_option


@main.command()
@click.argument("environment", shell_complete=complete_environment)
@click.argument("target", metavar="KIND/NAME")
@click.argument("field", metavar="[FIELD.PATH]", required=False)
@root_option
@param_options
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def explain(environment: str, target: str, field: str | None, root: Path | None, pr: str | None,
            params: tuple[str, ...], sets: tuple[str, ...], fmt: str) -> None:
    """Say where each field of a rendered object came from.

    For every field of KIND/NAME (or only FIELD.PATH, e.g. spec.replicas or
    spec.template.spec.containers[0].image; list items may be named:
    spec.template.spec.containers.php.image): the spec key and the chain of files
    (and --set flags) that set or overrode it, the ${...} references it went
    through with their values and sources, and the template file:line that placed it.
    """
    from envspec.explain import explain as run, explanation_text

    result = run(environment, target, field, root=root, pr=pr, params=params, sets=sets)
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(explanation_text(result), nl=False)
