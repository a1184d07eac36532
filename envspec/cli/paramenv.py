"""Parameters from the environment, the way a GitOps controller hands them to a plugin.

Argo CD runs a config management plugin's generate command with no shell
logic of ours in between, so the command itself must read what Argo CD
passes: each `spec.source.plugin.env` entry as `ARGOCD_ENV_<NAME>`, and
`spec.source.plugin.parameters` as JSON in `ARGOCD_APP_PARAMETERS`. Both are
turned into the same NAME=VALUE strings `--param` takes, so they are checked
(declared, typed, bounded) exactly like command-line parameters; a problem
names the variable the value came from (`ARGOCD_ENV_PR: params.pr: ...`).

Environment names are usually written in SCREAMING_SNAKE_CASE while spec
parameters are camelCase: a name that is all capitals, digits and
underscores is read as `webImage` for `WEB_IMAGE` (and `pr` for `PR`); any
other name is taken verbatim, so `ARGOCD_ENV_webImage` works as well.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from envspec.errors import Location, Problem, SpecError
from envspec.spec.params import SourcedParam

ARGOCD_ENV_PREFIX = "ARGOCD_ENV_"
ARGOCD_PARAMETERS = "ARGOCD_APP_PARAMETERS"

_SCREAMING = re.compile(r"[A-Z][A-Z0-9_]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def param_name(env_suffix: str) -> str:
    """`WEB_IMAGE` -> `webImage`, `PR` -> `pr`; anything not in capitals is kept as written."""
    if not _SCREAMING.fullmatch(env_suffix):
        return env_suffix
    words = [w for w in env_suffix.lower().split("_") if w]
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else env_suffix


def params_from_env(prefix: str, environ: Mapping[str, str]) -> list[str]:
    """NAME=VALUE for every variable starting with `prefix`, in name order (deterministic)."""
    if not prefix:
        raise SpecError("--param-from-env: the prefix must not be empty (it would read every variable)")
    raw: list[str] = []
    problems: list[Problem] = []
    for var in sorted(environ):
        if not var.startswith(prefix):
            continue
        suffix = var[len(prefix):]
        if not _NAME.fullmatch(suffix):
            problems.append(Problem(f"not a parameter name after the prefix {prefix!r}", Location(var)))
            continue
        raw.append(SourcedParam(f"{param_name(suffix)}={environ[var]}", Location(var)))
    if problems:
        raise SpecError(problems)
    return raw


def params_from_argocd_json(environ: Mapping[str, str]) -> list[str]:
    """NAME=VALUE for each string entry of ARGOCD_APP_PARAMETERS (absent or empty: none).

    Argo CD's format is a list of `{"name": ..., "string": ...}` (or `array`/`map`)
    entries; envspec parameters are scalars, so only `string` entries are accepted.
    """
    text = environ.get(ARGOCD_PARAMETERS, "").strip()
    if not text:
        return []
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(f"not valid JSON: {exc.msg}", Location(ARGOCD_PARAMETERS, exc.lineno, exc.colno))]) from None
    where = Location(ARGOCD_PARAMETERS)
    if not isinstance(data, list):
        raise SpecError([Problem("expected a JSON list of {\"name\": ..., \"string\": ...} entries", where)])
    raw: list[str] = []
    problems: list[Problem] = []
    for index, entry in enumerate(data):
        path = f"[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(Problem("expected an entry with a parameter \"name\"", where, path))
            continue
        if not isinstance(entry.get("string"), str):
            kinds = sorted(k for k in entry if k != "name") or ["no value"]
            problems.append(Problem(f"parameter {name!r}: only \"string\" values are supported (got {', '.join(kinds)})",
                                    where, path))
            continue
        raw.append(SourcedParam(f"{name}={entry['string']}", where))
    if problems:
        raise SpecError(problems)
    return raw
