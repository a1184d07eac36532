"""Problems for machines: JSON for editors and CI, and GitHub Actions workflow commands.

The text form (`file:line:col: path: message`) is for people (envspec.errors);
these are the same problems with their parts apart. When GITHUB_ACTIONS=true
every problem is also printed as `::error file=F,line=L,col=C,title=RULE::message`
(`::warning` for warnings), which GitHub shows on the pull request's diff at
that line.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

from envspec.errors import Problem

SCHEMA_VERSION = 1


def problem_json(problem: Problem) -> dict[str, Any]:
    loc = problem.location
    return {
        "file": loc.path if loc is not None else None,
        "line": loc.line if loc is not None and loc.line > 0 else None,
        "column": loc.col if loc is not None and loc.col > 0 else None,
        "path": problem.path or None,
        "rule": problem.rule,
        "severity": problem.severity,
        "message": problem.message,
        "environments": list(getattr(problem, "environments", ()) or ()),
        "text": str(problem),
    }


def problems_document(problems: Iterable[Problem], **extra: Any) -> str:
    """One JSON document: {"version", "problems": [...], ...extra}."""
    body: dict[str, Any] = {"version": SCHEMA_VERSION, **extra, "problems": [problem_json(p) for p in problems]}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem: Problem) -> str:
    """`::error file=F,line=L,col=C,title=RULE::message`; only the properties that are known."""
    command = "warning" if problem.severity == "warning" else "error"
    props: list[str] = []
    loc = problem.location
    # A location that is not a file (`--set x=1`, `--against DIR`) is said in the message instead.
    is_file = loc is not None and loc.line > 0 and not loc.path.startswith("--")
    if is_file:
        assert loc is not None
        props.append(f"file={_escape_property(loc.path)}")
        props.append(f"line={loc.line}")
        if loc.col > 0:
            props.append(f"col={loc.col}")
    props.append(f"title={_escape_property(problem.rule or 'envspec')}")
    message = problem.message if problem.path == "" else f"{problem.path}: {problem.message}"
    if not is_file and loc is not None:
        message = f"{loc}: {message}"
    envs = getattr(problem, "environments", ()) or ()
    if envs:
        message += f" (in {', '.join(envs)})"
    return f"::{command} {','.join(props)}::{_escape_data(message)}"


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get("GITHUB_ACTIONS") == "true"
