"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from envspec.cli.completers import complete_param
from envspec.errors import EXIT_INTERNAL, EnvspecError, Problem

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
    """The located text, plus the environments a problem was found in when the file does not say it:
    a shared file (`_defaults.yaml`, a template) or several environments."""
    envs = problem.environments
    loc = problem.location
    own_file = len(envs) == 1 and loc is not None and Path(loc.path).name in (f"{envs[0]}.yaml", f"{envs[0]}.yml")
    shared = loc is not None and not loc.path.startswith("--")
    return f"{problem} (in {', '.join(envs)})" if envs and shared and not own_file else str(problem)


def _wants_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("fmt") == "json")


REPORT_HINT = (
    "This is a bug in envspec, not in your input. Please report it with the command you ran and the output of "
    "the same command with --debug (envspec --debug ...), after removing any secrets from it."
)


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.find_root().obj or {}).get("debug"))


def report_exception(exc: BaseException) -> int:
    """Print an exception the way the CLI promises and return the exit code.

    Known errors print as located problems and keep their exit code, with or without --debug
    (--debug adds the traceback, it does not change the outcome). Anything else is a bug:
    "internal error", how to report it, and EXIT_INTERNAL; the traceback only with --debug.
    """
    import traceback

    debug = _debug()
    if isinstance(exc, EnvspecError):
        if debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print_problems(exc.problems)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    click.echo(f"envspec: internal error: {type(exc).__name__}{': ' + detail if detail else ''}", err=True)
    click.echo(REPORT_HINT, err=True)
    return EXIT_INTERNAL


def handle_errors(func: F) -> F:
    """Turn EnvspecError into printed problems and an exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (EnvspecError, KeyboardInterrupt) as exc:
            sys.exit(report_exception(exc))

    return wrapper  # type: ignore[return-value]


def check_local_preconditions(*, token: bool = False, kubeconfig: Path | None = None, needs_kubeconfig: bool = False) -> None:
    """Everything a command needs from this machine, checked before its first request and reported all at once.

    A missing token found only after a kubeconfig was read (or the other way round) costs the user a
    round trip per missing piece; this lists them together.
    """
    import os

    from envspec.errors import Location, SpecError

    problems: list[Problem] = []
    if token and not os.environ.get("DIGITALOCEAN_TOKEN", "").strip():
        problems.append(Problem("is not set; export a DigitalOcean API token (read and write access to DNS)", Location("DIGITALOCEAN_TOKEN")))
    if needs_kubeconfig:
        from envspec.kube.client import default_kubeconfig

        path = str(kubeconfig) if kubeconfig else default_kubeconfig()
        if path is None or not Path(path).is_file():
            where = "--kubeconfig" if kubeconfig else ("KUBECONFIG" if os.environ.get("KUBECONFIG") else "~/.kube/config")
            problems.append(
                Problem(f"kubeconfig {path} does not exist; pass --kubeconfig PATH, set KUBECONFIG or use --kubeconfig-from-do", Location(where))
            )
    if problems:
        raise SpecError(problems)


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
