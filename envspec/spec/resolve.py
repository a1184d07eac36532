"""Stages 1-3 together: environment name to a validated `Environment` model.

load (with positions) -> extends -> --set -> parameters -> ${...} -> Pydantic.
Every problem found on the way is collected; the first stage that found any
stops the run with all of them, each located in the file that caused it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

from envspec.errors import Location, Problem, Problems, SpecError, one_line
from envspec.memo import Bounded
from envspec.spec.crossref import cross_reference_problems
from envspec.spec.interpolate import Interpolator, RefError, mapping_scope, substitute
from envspec.spec.loader import PathKey, Positions, copy_data
from envspec.spec.merge import FileKey, SpecFiles, compose
from envspec.spec.models import Environment
from envspec.spec.params import Param, resolve_params, split_assignment
from envspec.spec.project import Project


@dataclass
class ResolvedSpec:
    name: str
    spec: Environment
    positions: Positions
    source: Path
    params: dict[str, Any]
    used: dict[str, "ResolvedSpec"] = field(default_factory=dict)  # alias -> environment it uses
    # Every file it was resolved from, the used environments' included: what a kept result is checked against.
    files: tuple[FileKey, ...] = field(default=(), repr=False, compare=False)

    @property
    def instance(self) -> str:
        return self.spec.instance or self.name

    def locate(self, *path: str | int) -> Location | None:
        return self.positions.lookup(path)

    def locate_path(self, path: tuple[str | int, ...]) -> Location | None:
        return self.positions.lookup(path)


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------- --set


def _parse_set_value(text: str) -> Any:
    """A --set value read as YAML by the same loader as spec files (string keys, no tags, bounded aliases);
    text that is not a YAML value stays text."""
    from envspec.spec.loader import parse_yaml_text

    try:
        value, _ = parse_yaml_text(text, "--set")
    except SpecError:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value


def apply_sets(data: dict[str, Any], positions: Positions, sets: Sequence[str], problems: Problems) -> None:
    """Apply each --set; every value it writes (and every mapping it creates) is located at the --set."""
    for raw in sets:
        pair = split_assignment(raw)
        location = Location(f"--set {raw}")
        if pair is None:
            problems.error("expected PATH=VALUE", location)
            continue
        path_text, value_text = pair
        path_text = one_line(path_text)  # messages stay one line, whatever the path holds
        parts: list[str | int] = [int(p) if p.isascii() and p.isdigit() else p for p in path_text.split(".")]
        if any(p == "" for p in parts):
            problems.error(f"{path_text!r} is not a dotted path like apps.web.replicas", location)
            continue
        node: Any = data
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, dict) and isinstance(part, str):
                if part not in node or node[part] is None:
                    hint = _did_you_mean(part, node)
                    if hint:
                        problems.error(f"{dotted(parts[: i + 1])} does not exist; did you mean {dotted([*parts[:i], hint])!r}?", location, path_text)
                        ok = False
                        break
                    node[part] = {}
                    positions.set(tuple(parts[: i + 1]), location)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            elif isinstance(node, list):
                problems.error(f"cannot set it: {_list_problem(parts[:i], part, node)}", location, path_text)
                ok = False
                break
            else:
                problems.error(f"cannot set it: {dotted(parts[:i])} is not a mapping", location, path_text)
                ok = False
                break
        if not ok:
            continue
        last = parts[-1]
        if isinstance(node, dict) and isinstance(last, str):
            node[last] = _parse_set_value(value_text)
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = _parse_set_value(value_text)
        elif isinstance(node, list):
            problems.error(f"cannot set it: {_list_problem(parts[:-1], last, node)}", location, path_text)
            continue
        else:
            problems.error(f"cannot set it: {dotted(parts[:-1]) or 'the spec'} is not a mapping", location, path_text)
            continue
        positions.drop_under(tuple(parts))
        positions.set(tuple(parts), location)


def _list_problem(parent: list[str | int], part: str | int, node: list[Any]) -> str:
    if isinstance(part, int):
        return f"{dotted(parent)} has {len(node)} item(s), so there is no index {part} (--set replaces items, it cannot add them)"
    return f"{dotted(parent)} is a list; name an item by its index, e.g. {dotted([*parent, 0])}"


def _did_you_mean(key: str, mapping: dict[str, Any]) -> str | None:
    """A close existing key when --set would create a new one: `apps.wbe` is far likelier a typo than a new app."""
    hint = difflib.get_close_matches(key, [k for k in mapping if isinstance(k, str)], n=1, cutoff=0.6)
    return hint[0] if hint else None


# ---------------------------------------------------------------- Pydantic errors -> located problems


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Drop union/function tags that Pydantic puts in locations; keep the keys that exist in the data."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not any(c in part for c in "[]-,") and part not in ("str", "int", "bool", "float", "none", "dict", "list"):
            path.append(part)  # a missing field: report at its parent's position, named fully
            node = None
    return tuple(path)


def _model_at(model: type[BaseModel], path: PathKey) -> type[BaseModel] | None:
    """The model class describing the mapping at `path`, for did-you-mean suggestions."""
    import typing

    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return None
        current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    import types
    import typing

    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
                return models[0] if len(models) == 1 else annotation
            annotation = args[0]
        else:
            return annotation


def _field_names(model: type[BaseModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
    return names


_SHORT = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_short": "must have at least {min_length} item(s)",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "literal_error": "must be one of {expected}",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}


def _pattern_names() -> dict[str, str]:
    from envspec.spec import models

    return {
        models.LABEL_KEY: "must be a valid label key (an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
        models.LABEL_VALUE: "must be a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
        models.DNS1123_LABEL: "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
        models.DNS1123_SUBDOMAIN: "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
        models.QUANTITY_PATTERN: "must be a Kubernetes quantity such as 250m, 1.5, 512Mi or 2Gi",
    }


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML: `true`, `null`, `3`, `'text'`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return str(value)


def _short_message(kind: str, ctx: dict[str, Any], default: str) -> str:
    """Pydantic's messages, shortened to what a spec author needs: `must be >= 1`."""
    if kind == "string_pattern_mismatch" and str(ctx.get("pattern")) in _pattern_names():
        return _pattern_names()[str(ctx["pattern"])]
    template = _SHORT.get(kind)
    if template is None:
        return default
    try:
        return template.format(**{k: str(v) for k, v in ctx.items()})
    except KeyError:
        return default


def validation_problems(
    exc: ValidationError, model: type[BaseModel], data: Any, positions: Positions, prefix: PathKey = ()
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[PathKey, str]] = set()
    for error in exc.errors(include_url=False):
        path = prefix + _clean_loc(data, tuple(error["loc"]))
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            key = str(path[-1]) if path else "?"
            owner = _model_at(model, path[len(prefix) : -1])
            hint = difflib.get_close_matches(key, _field_names(owner), n=1, cutoff=0.6) if owner else []
            message = f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = _short_message(error["type"], error.get("ctx") or {}, message)
            value = error.get("input")
            if isinstance(value, (str, int, float, bool)) or (value is None and error["type"].endswith("_type")):
                message = f"{message} (got {_shown(value)})"
        # Model-level messages may name a nested path themselves ("jobs.x.after: ...").
        if ": " in message and path == prefix:
            head, rest = message.split(": ", 1)
            if all(part for part in head.split(".")) and " " not in head:
                parts = tuple(int(p) if p.isascii() and p.isdigit() else p for p in head.split("."))
                path, message = prefix + parts, rest
        key = (path, message)
        if key in seen:
            continue
        seen.add(key)
        problems.append(Problem(message, positions.lookup(path), dotted(path)))
    return _merge_alternatives(problems)


_TYPE_MESSAGE = re.compile(r"^must be (an integer|a string|true or false|a number|a mapping|a list) \(got (.*)\)$")


def _merge_alternatives(problems: list[Problem]) -> list[Problem]:
    """`int | str` fields fail once per alternative; say it once: `must be an integer or a string (got true)`."""
    out: list[Problem] = []
    index: dict[tuple[str, str], int] = {}
    for problem in problems:
        match = _TYPE_MESSAGE.match(problem.message)
        if match is None:
            out.append(problem)
            continue
        key = (problem.path, match.group(2))
        if key in index:
            first = out[index[key]]
            kinds = first.message[len("must be ") : first.message.rindex(" (got ")]
            out[index[key]] = dataclasses.replace(first, message=f"must be {kinds} or {match.group(1)} (got {match.group(2)})")
            continue
        index[key] = len(out)
        out.append(problem)
    return out


# ---------------------------------------------------------------- the stage


class Resolver:
    """Resolves environments of one project, caching the ones other environments `use`."""

    def __init__(self, project: Project):
        self.project = project
        self._outputs_stack: list[str] = []
        self._files = SpecFiles(project)  # each spec file read once per run
        self._checked: set[tuple[str, str]] = set()  # kept `uses` results found current during this run

    def declared_params(self, name: str) -> dict[str, Any]:
        """The `params:` an environment declares through its extends chain, from the files this run
        read (shared with resolve: read it, never change it)."""
        params = compose(self.project, self.project.environment_path(name), self._files).data.get("params")
        return params if isinstance(params, dict) else {}

    def resolve(
        self,
        name: str,
        params: Sequence[str] = (),
        sets: Sequence[str] = (),
        *,
        use_examples: bool = False,
    ) -> ResolvedSpec:
        if not self._outputs_stack:
            self._outputs_stack.append(name)  # the root, so a `uses` chain back to it is seen as a cycle
            try:
                return self.resolve(name, params, sets, use_examples=use_examples)
            finally:
                self._outputs_stack.pop()
        path = self.project.environment_path(name)
        composed = compose(self.project, path, self._files)
        data, positions = copy_data(composed.data), composed.positions.copy()  # ours to change
        refs = composed.ref_paths() if not sets else None  # --set may write references anywhere: walk it all
        problems = Problems()

        apply_sets(data, positions, sets, problems)
        declared = self._declared_params(data, positions, problems)
        problems.raise_if_errors()

        values = resolve_params(declared, list(params), positions, problems, use_examples=use_examples)
        values = self._interpolate_param_values(values, declared, positions, problems)
        used = self._used(data, positions, problems)
        problems.raise_if_errors()

        scopes = {"params": mapping_scope("params", values)}
        for alias, other in used.items():
            scopes[alias] = mapping_scope(alias, other.spec.outputs)
        Interpolator(data, positions, problems, scopes, refs).run()
        problems.raise_if_errors()

        try:
            spec = Environment.model_validate(data)
        except ValidationError as exc:
            raise SpecError(validation_problems(exc, Environment, data, positions)) from None
        crossref = cross_reference_problems(spec, positions)
        if crossref:
            raise SpecError(crossref)
        files = tuple(dict.fromkeys([*composed.files, *(f for other in used.values() for f in other.files)]))
        return ResolvedSpec(name, spec, positions, path, values, used, files)

    def _declared_params(self, data: dict[str, Any], positions: Positions, problems: Problems) -> dict[str, Param]:
        raw = data.get("params") or {}
        if not isinstance(raw, dict):
            problems.error("must be a mapping of parameter declarations", positions.lookup(("params",)), "params")
            return {}
        declared: dict[str, Param] = {}
        for pname, decl in raw.items():
            try:
                declared[pname] = Param.model_validate(decl)
            except ValidationError as exc:
                problems.items.extend(validation_problems(exc, Param, decl, positions, ("params", pname)))
        return declared

    def _interpolate_param_values(
        self, values: dict[str, Any], declared: dict[str, Param], positions: Positions, problems: Problems
    ) -> dict[str, Any]:
        """Defaults may reference other parameters (`pr-${params.pr}`); resolve and re-check them."""
        out = dict(values)
        for pname, value in values.items():
            if not (isinstance(value, str) and "${" in value):
                continue
            location = positions.lookup(("params", pname, "default"))
            missing = [n for n in declared if n not in values]
            if any(f"params.{n}" in value for n in missing):
                continue  # the missing parameter is already reported
            try:
                others = {k: v for k, v in values.items() if k != pname and not (isinstance(v, str) and "${" in v)}
                resolved = substitute(value, lambda ref: mapping_scope("params", others)(ref.split(".")[1:]) if ref.startswith("params.") else _raise(ref))
            except RefError as exc:
                problems.error(str(exc), location, f"params.{pname}.default")
                continue
            typed, reason = declared[pname].coerce(resolved)
            if reason:
                problems.error(f"default: {reason}", location, f"params.{pname}.default")
                continue
            out[pname] = typed
        return out

    def _used(self, data: dict[str, Any], positions: Positions, problems: Problems) -> dict[str, ResolvedSpec]:
        uses = data.get("uses") or {}
        if not isinstance(uses, dict):
            return {}
        out: dict[str, ResolvedSpec] = {}
        for alias, other in uses.items():
            location = positions.lookup(("uses", alias))
            if not isinstance(other, str):
                problems.error("must name an environment", location, f"uses.{alias}")
                continue
            if other in self._outputs_stack:
                cycle = " -> ".join([*self._outputs_stack[self._outputs_stack.index(other):], other])
                problems.error(f"uses cycle: {cycle} (an environment cannot read its own outputs through `uses`)", location, f"uses.{alias}")
                continue
            self._outputs_stack.append(other)
            try:
                out[alias] = self._resolve_used(other)
            except SpecError as exc:
                problems.error(f"environment {other!r} (used as {alias!r}) has errors:", location, f"uses.{alias}")
                problems.items.extend(exc.problems)
            finally:
                self._outputs_stack.pop()
        return out

    def _resolve_used(self, name: str) -> ResolvedSpec:
        """An environment another one `uses`, resolved once per process for all the environments using it.

        Such an environment is resolved without parameters or --set, so its result depends only on its
        files (and those of the environments it uses in turn): a kept result is served only while every
        one of them still reads the same, under the same display path, and none of the environments it
        uses is being resolved further up (that would be a cycle, reported by resolving anew). Errors
        are never kept. The result is shared: its users read it (outputs, rules), never change it."""
        key = (str(self.project.root), name)
        kept = _USED.get(key)
        if kept is not None and not _used_names(kept) & set(self._outputs_stack):
            if key in self._checked or self._still_valid(kept):
                self._checked.add(key)
                return kept
        resolved = self.resolve(name)
        self._checked.add(key)
        _USED.remember(key, resolved)
        return resolved

    def _still_valid(self, kept: ResolvedSpec) -> bool:
        """Every file `kept` was resolved from still reads the same, under the same display path."""
        for file in kept.files:
            try:
                _, current = self._files.document(Path(file[0]))
            except SpecError:
                return False
            if current != file:
                return False
        return True


# Environments resolved for `uses`, by (project root, name); see Resolver._resolve_used. One process only.
_USED: Bounded[tuple[str, str], ResolvedSpec] = Bounded(64)


def _used_names(resolved: ResolvedSpec) -> set[str]:
    """The environments `resolved` uses, directly or through others."""
    names: set[str] = set()
    stack = list(resolved.used.values())
    while stack:
        current = stack.pop()
        if current.name not in names:
            names.add(current.name)
            stack.extend(current.used.values())
    return names


def _raise(ref: str) -> Any:
    raise RefError(f"a parameter default can only reference other parameters (got ${{{ref}}})")
