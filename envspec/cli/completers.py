"""Shell completion of environment and parameter names (click's shell_complete hooks).

They read the project from the current directory (or --root when already typed) and
never fail: a completion that cannot find a project offers nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem


def _project(ctx: click.Context) -> Any:
    from envspec.errors import EnvspecError
    from envspec.spec.project import find_project

    root = ctx.params.get("root")
    try:
        return find_project(Path(root) if root else None)
    except (EnvspecError, OSError):
        return None


def complete_environment(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    project = _project(ctx)
    if project is None:
        return []
    return [CompletionItem(name) for name in project.environment_names() if name.startswith(incomplete)]


def complete_param(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`--param <TAB>`: the parameters the environment already on the line declares, as NAME=."""
    from envspec.errors import EnvspecError
    from envspec.spec.merge import load_composed

    project = _project(ctx)
    env = next((ctx.params.get(k) for k in ("environment", "env") if ctx.params.get(k)), None)
    if env is None:  # while an option still waits for its value, click leaves the arguments unparsed
        env = next((a for a in ctx.args if not a.startswith("-")), None)
    if project is None or not isinstance(env, str):
        return []
    try:
        data, _, _ = load_composed(project, project.environment_path(env))
    except (EnvspecError, OSError):
        return []
    declared = data.get("params") if isinstance(data.get("params"), dict) else {}
    out = []
    for name, decl in declared.items():
        item = f"{name}="
        if item.startswith(incomplete) or (incomplete.startswith(item) and "=" in incomplete):
            help_text = decl.get("description") if isinstance(decl, dict) else None
            out.append(CompletionItem(item if not incomplete.startswith(item) else incomplete, help=help_text))
    return out
