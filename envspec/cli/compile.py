"""validate, render, schema and outputs: the commands that never touch a cluster.

Only click is imported at module level; the compiler is imported inside each
command, and nothing here imports `kubernetes` or `digitalocean`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from envspec.cli import main
from envspec.cli.completers import complete_environment
from envspec.cli.common import collect_params, handle_errors, param_options, print_problems, root_option
from envspec.errors import EXIT_CHANGES, EXIT_INTERNAL, EXIT_USER_ERROR, SpecError

SCHEMA_PATH = Path("schemas") / "environment.schema.json"
RENDERED_DIR = "rendered"  # where `render --all` writes (and `--check` compares) by default
COMPONENTS_DIR = "components"  # a project's reusable components; render --out never writes there


F = TypeVar("F", bound=Callable[..., Any])


def jobs_option(func: F) -> F:
    """--jobs / -j for the commands that compile many environments (envspec.parallel)."""
    return click.option(
        "--jobs", "-j", "jobs", default=None, metavar="N",
        help="Worker processes for many environments (render --all, validate): N, 1 for none, or auto "
             "(one per CPU, none below 13 environments to render, 5 to validate). Default: ENVSPEC_JOBS, else auto.",
    )(func)


def _unified(old: dict[str, str], new: dict[str, str], old_label: str, new_label: str) -> str:
    import difflib

    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        out.extend(
            difflib.unified_diff(
                (a or "").splitlines(keepends=True),
                (b or "").splitlines(keepends=True),
                fromfile=f"{old_label}/{name}" if a is not None else "/dev/null",
                tofile=f"{new_label}/{name}" if b is not None else "/dev/null",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


@main.command()
@click.argument("environments", nargs=-1, shell_complete=complete_environment)
@root_option
@param_options
@click.option("--kube-version", default=None, help="Kubernetes version whose schemas objects are checked against.")
@click.option("--crds", "crd_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of CustomResourceDefinitions to check custom resources against (repeatable).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (each printed once, then a summary; exit 2).")
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one document on stdout with each problem's file, line, column, path, rule and severity.")
@jobs_option
@handle_errors
def validate(environments: tuple[str, ...], root: Path | None, pr: str | None, params: tuple[str, ...],
             sets: tuple[str, ...], kube_version: str | None, crd_dirs: tuple[Path, ...], strict: bool, fmt: str,
             jobs: str | None) -> None:
    """Check environments: spec, parameters, templates, semantic rules and Kubernetes schemas.

    With no ENVIRONMENTS, checks them all. Integer parameters are also checked at their bounds,
    so names stay valid for every value the parameter allows.
    """
    from envspec.parallel import requested_jobs
    from envspec.validate import validate_report

    report = validate_report(
        environments, root=root, params=collect_params(pr, params), sets=sets, kube_version=kube_version, crd_dirs=crd_dirs,
        jobs=requested_jobs(jobs),
    )
    found = [*report.problems, *report.warnings]
    failed = report.failed(strict)
    if fmt == "json":
        from envspec.report import github_annotation, in_github_actions, problems_document

        sys.stdout.write(problems_document(
            found, ok=not failed, strict=strict, environments=report.checked, summary=report.counts(strict),
            errors=len(report.problems), warnings=len(report.warnings), unchecked=sorted(set(report.unchecked)),
        ))
        if in_github_actions():
            for problem in found:
                click.echo(github_annotation(problem), err=True)
    else:
        print_problems(found)  # each once, with the environments it was found in
        if report.warnings:
            click.echo(f"validate: {report.counts(strict)}", err=True)
        if not failed:
            click.echo(report.summary(), err=True)
    if failed:
        sys.exit(EXIT_INTERNAL if report.lost else EXIT_USER_ERROR)


def _env_params(prefix: str | None, argocd: bool) -> list[str]:
    """NAME=VALUE strings from --param-from-env / --argocd, before the flags so an explicit --param wins."""
    if prefix is None and not argocd:
        return []
    import os

    from envspec.cli.paramenv import ARGOCD_ENV_PREFIX, params_from_argocd_json, params_from_env

    raw = params_from_env(prefix, os.environ) if prefix is not None else []
    if argocd:
        raw += params_from_env(ARGOCD_ENV_PREFIX, os.environ) + params_from_argocd_json(os.environ)
    return raw


@main.command()
@click.argument("environment", required=False, shell_complete=complete_environment)
@root_option
@param_options
@click.option("--all", "all_", is_flag=True, help="Render every environment that needs no parameters (to --out, default rendered/).")
@click.option("--out", "--output-dir", "out", type=click.Path(path_type=Path), default=None,
              help="Write one file per object into this folder (atomically; only a folder envspec wrote is replaced).")
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Output format (-o as in kubectl).")
@click.option("--check", is_flag=True, help="Don't write; exit 1 with a diff if --out is stale.")
@click.option("--param-from-env", "param_prefix", default=None, metavar="PREFIX",
              help="Read parameters from variables PREFIX<NAME> (WEB_IMAGE means webImage); flags win.")
@click.option("--argocd", is_flag=True,
              help="As an Argo CD plugin: --param-from-env ARGOCD_ENV_ plus the JSON in ARGOCD_APP_PARAMETERS.")
@jobs_option
@handle_errors
def render(environment: str | None, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...],
           all_: bool, out: Path | None, fmt: str, check: bool, param_prefix: str | None, argocd: bool,
           jobs: str | None) -> None:
    """Render ENVIRONMENT to Kubernetes manifests (stdout, or --out DIR).

    --out DIR is envspec's own folder: a `.envspec-output` file in it lists what envspec wrote,
    and a rerun replaces only those files (anything else in the folder is kept). envspec refuses
    a non-empty folder it did not write, the project root and its source folders. Rendering one
    environment into a folder written by `render --all` writes DIR/ENVIRONMENT only.
    """
    from envspec.pipeline import compile_all, compile_environment
    from envspec.render.output import (
        combined_output,
        dump_json,
        dump_yaml,
        environment_output,
        output_folder,
        owned_tree,
        plan_output,
        render_files,
        write_tree_atomically,
    )
    from envspec.spec.project import find_project

    if all_ == bool(environment):
        raise SpecError("give an ENVIRONMENT or --all (not both)")
    if jobs is not None and not all_:
        raise SpecError("--jobs: only render --all compiles several environments (give --all, or drop --jobs)")
    env_params = _env_params(param_prefix, argocd)
    project = find_project(root)
    if all_ and out is None:
        out = project.root / RENDERED_DIR
    if check and out is None:
        raise SpecError("--check needs --out DIR (the committed output to compare with)")

    if all_:
        if pr or params or sets or param_prefix or argocd:
            raise SpecError("--all renders environments without parameters; --pr/--param/--set need one ENVIRONMENT")
        from envspec.parallel import requested_jobs

        # Each environment's warnings and files are made where it compiles (a worker process, see
        # envspec.parallel); only they come back, in the serial order.
        compiled, skipped = compile_all(project, finish=lambda result: (result.warnings, render_files(result.objects, fmt)),
                                        jobs=requested_jobs(jobs))
        per_environment: dict[str, dict[str, str]] = {}
        for name, (warnings, env_files) in compiled.items():
            print_problems(warnings)
            per_environment[name] = env_files
        for name in skipped:
            click.echo(f"skipped {name}: it needs parameters", err=True)
        files = combined_output(per_environment)
    else:
        assert environment is not None
        result = compile_environment(environment, project=project, params=[*env_params, *collect_params(pr, params)],
                                     sets=sets)
        print_problems(result.warnings)
        if out is None:
            sys.stdout.write(dump_yaml(result.objects) if fmt == "yaml" else dump_json(result.objects))
            return
        files = environment_output(environment, render_files(result.objects, fmt))

    assert out is not None
    target = output_folder(
        out, environment=None if all_ else environment, project_root=project.root,
        # The project's own sources: environments, templates and reusable components.
        source_dirs=(project.environments_dir, project.templates_dir, project.root / COMPONENTS_DIR),
    )
    shown = out if target == out.resolve() else out / target.name
    if check:
        diff = _unified(owned_tree(target, files), files, str(shown), "rendered")
        if diff:
            sys.stdout.write(diff)
            click.echo(f"{shown} is stale: run the same command without --check", err=True)
            sys.exit(EXIT_CHANGES)
        click.echo(f"{shown} is up to date", err=True)
        return
    try:
        plan = plan_output(out, target, files)
        written = write_tree_atomically(target, files, plan)
    except OSError as exc:  # the old output is untouched (see write_tree_atomically)
        raise SpecError(f"--out {out}: cannot write {target}: {exc.filename or target}: {exc.strerror or exc}; "
                        "nothing was changed") from None
    kept = f"; kept {len(plan.kept)} file(s) envspec did not write" if plan.kept else ""
    if written:
        click.echo(f"wrote {len(files)} files to {shown}{kept}", err=True)
    else:
        click.echo(f"{shown} is up to date: its {len(files)} files are unchanged, nothing was written{kept}", err=True)


@main.command()
@root_option
@click.option("--check", is_flag=True, help="Exit 1 with a diff if schemas/environment.schema.json is stale.")
@handle_errors
def schema(root: Path | None, check: bool) -> None:
    """Write the JSON Schema of environment files (for editors) to schemas/environment.schema.json."""
    from envspec.schema import environment_schema_text
    from envspec.spec.project import find_project

    project = find_project(root)
    target = project.root / SCHEMA_PATH
    text = environment_schema_text(project.root)
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            sys.stdout.write(_unified({str(SCHEMA_PATH): current}, {str(SCHEMA_PATH): text}, "a", "b"))
            click.echo(f"{SCHEMA_PATH} is stale: run `envspec schema`", err=True)
            sys.exit(EXIT_CHANGES)
        click.echo(f"{SCHEMA_PATH} is up to date", err=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    click.echo(f"wrote {SCHEMA_PATH}", err=True)


@main.command()
@click.argument("environment", shell_complete=complete_environment)
@root_option
@param_options
@click.option("--format", "-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def outputs(environment: str, root: Path | None, pr: str | None, params: tuple[str, ...], sets: tuple[str, ...], fmt: str) -> None:
    """Print ENVIRONMENT's declared outputs (URLs, database name, namespace...)."""
    from envspec.pipeline import compile_environment

    result = compile_environment(environment, root=root, params=collect_params(pr, params), sets=sets)
    values = dict(result.spec.outputs)
    if fmt == "json":
        click.echo(json.dumps(values, indent=2, sort_keys=True))
        return
    for key in sorted(values):
        value = values[key]
        click.echo(f"{key}={value if isinstance(value, str) else json.dumps(value, sort_keys=True)}")

