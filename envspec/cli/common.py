"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from envspec.cli.completers import complete_param
from envspec.errors import EnvspecError, Problem

F = TypeVar("F", bound=Callable[..., Any])


def print_problems(problems: list[Problem]) -> None:
    """Problems as text on stderr; under GitHub Actions also as annotations (envspec.report), or as
    one JSON document when the command was asked for JSON (`--format json` / `-o json`)."""
    from envspec.report import github_annotation, in_github_actions, problems_document

    if problems and _wants_json():
        click.echo(problems_document(problems), err=True, nl=False)
    else:
        for problem in problems:
            click.echo(problem_text(problem), err=True)
    if in_github_actions():
        for problem in problems:
            click.echo(github_annotation(problem), err=True)


def problem_text(problem: Problem) -> str:
    """The located text, plus the environments a problem of a shared file was found in."""
    envs = problem.environments
    return f"{problem} (in {', '.join(envs)})" if envs else str(problem)


def _wants_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("fmt") == "json")


def handle_errors(func: F) -> F:
    """Turn EnvspecError into printed problems and an exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EnvspecError as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and (ctx.find_root().obj or {}).get("debug"):
                raise
            print_problems(exc.problems)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def root_option(func: F) -> F:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project root (default: nearest folder upward holding environments/).",
    )(func)


def param_options(func: F) -> F:
    """--pr, --param and --set: the inputs every command that compiles an environment takes."""
    func = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="PATH=VALUE",
        help="Override a spec value, e.g. --set apps.web.replicas=2 (type-checked).",
    )(func)
    func = click.option(
        "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Set a declared parameter.",
        shell_complete=complete_param,
    )(func)
    func = click.option("--pr", type=str, default=None, help="Shorthand for --param pr=N.")(func)
    return func


def collect_params(pr: str | None, params: tuple[str, ...]) -> list[str]:
    """Raw NAME=VALUE strings in command-line order; --pr comes first so an explicit --param wins."""
    raw = [f"pr={pr}"] if pr is not None else []
    raw.extend(params)
    return raw
