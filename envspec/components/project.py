"""Project components: a kind of thing a project defines in its own folder, without Python.

    components/<name>/component.yaml   description, docs, typed `params:` (the same language as an
                                       environment's `params:`), `examples:`, and the templates to render
    components/<name>/*.yaml.j2        the templates (Jinja, rendered like envspec's own)

An environment instantiates it under `components:`:

    components:
      api-metrics:
        use: servicemonitor
        with: {app: api, port: http}

Each instance's `with:` values are checked against the component's parameters
(unknown, missing and ill-typed values are errors at the instance, naming the
declaration in the component's file); its templates then render with
`params` (the typed values), `name` (the instance), `env` and `spec`, and the
objects join every other object on the way to patches, labels, rules and validation.
"""

# No `from __future__ import annotations` here: pydantic would compile and evaluate each field's
# annotation string when it creates the class, on every start (the models are imported by every command).

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

from pydantic import Field, StringConstraints, ValidationError

from envspec.errors import Location, Problem, Problems, SpecError
from envspec.memo import Bounded
from envspec.render.templates import RenderUnit
from envspec.spec.base import SpecModel, empty_list
from envspec.spec.loader import Positions, load_document
from envspec.spec.models import Environment
from envspec.spec.params import Param

COMPONENTS_DIR = "components"
MANIFEST = "component.yaml"
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SpecPath = tuple[str | int, ...]


class ComponentManifest(SpecModel):
    """What `components/<name>/component.yaml` holds."""

    description: str = ""
    docs: str = Field(default="", description="Longer documentation (Markdown).")
    params: dict[Ident, Param] = Field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named example `with:` values; each must be valid for `params:`."
    )
    templates: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=empty_list, description="Templates in this folder, in render order (default: every *.j2 file, sorted)."
    )


@dataclass
class Component:
    name: str
    folder: Path
    display: str  # the manifest's path as messages print it
    manifest: ComponentManifest
    positions: Positions
    templates: list[str] = field(default_factory=list)  # template names on the Jinja search path

    def locate(self, *path: str | int) -> Location | None:
        return self.positions.lookup(path)


def _display(path: Path) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("../../..") else str(path)


# Loaded components by everything load_component reads (folder, working directory for the paths
# messages print, manifest text, the folder's entries): `render --all` of many environments that
# use the same components loads, validates and checks each once per process, and an edited manifest
# or an added template is loaded anew. Components are shared, never changed after loading.
_LOADED: Bounded[tuple[str, str, str, tuple[tuple[str, bool], ...]], tuple[Component | None, tuple[Problem, ...]]] = Bounded(256)


def _inputs(folder: Path) -> tuple[str, str, str, tuple[tuple[str, bool], ...]] | None:
    """The cache key of a component folder; None when it cannot be read (load_component reports why)."""
    import os

    try:
        with open(folder / MANIFEST, encoding="utf-8") as manifest:
            text = manifest.read()
        listing = tuple(sorted(  # every file and folder under it: `templates:` may name sub/x.j2
            (os.path.relpath(os.path.join(top, name), folder), name in files)
            for top, dirs, files in os.walk(folder) for name in dirs + files
        ))
        return str(folder), os.getcwd(), text, listing
    except (OSError, UnicodeDecodeError):
        return None


def load_component(folder: Path, problems: Problems) -> Component | None:
    """A component folder, loaded and checked (its problems added to `problems`); None when unusable."""
    key = _inputs(folder)
    if key is None:
        return _load_component(folder, problems)
    if key not in _LOADED:
        found = Problems()
        _LOADED.remember(key, (_load_component(folder, found), tuple(found.items)))
    component, items = _LOADED[key]
    problems.items.extend(items)
    return component


def _load_component(folder: Path, problems: Problems) -> Component | None:
    from envspec.spec.resolve import dotted, validation_problems

    manifest_path = folder / MANIFEST
    display = _display(manifest_path)
    try:
        doc = load_document(manifest_path, display)
    except SpecError as exc:
        problems.items.extend(exc.problems)
        return None
    try:
        manifest = ComponentManifest.model_validate(doc.data)
    except ValidationError as exc:
        problems.items.extend(validation_problems(exc, ComponentManifest, doc.data, doc.positions))
        return None
    component = Component(folder.name, folder, display, manifest, doc.positions)
    names = manifest.templates or sorted(p.name for p in folder.glob("*.j2") if not p.name.startswith("_"))
    for index, template in enumerate(names):
        if not (folder / template).is_file():
            problems.error(f"template {template!r} not found in {_display(folder)}/", component.locate("templates", index), f"templates[{index}]")
            continue
        component.templates.append(f"{folder.name}/{template}")
    if not names:
        problems.error(f"component {folder.name!r} has no templates (*.j2 files beside {MANIFEST})", Location(display))
    for example, values in manifest.examples.items():
        for suffix, message in check_values(component, values):
            path = ("examples", example, *suffix[1:])
            problems.error(message, component.locate(*path), dotted(path))
    return component


def load_components(root: Path, problems: Problems) -> dict[str, Component]:
    """Every component in the project's components/ folder (none when there is no such folder)."""
    folder = root / COMPONENTS_DIR
    out: dict[str, Component] = {}
    if not folder.is_dir():
        return out
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).is_file()):
        component = load_component(sub, problems)
        if component is not None:
            out[component.name] = component
    return out


def check_values(component: Component, values: dict[str, Any]) -> list[tuple[SpecPath, str]]:
    """Problems with one instance's values, as (path under the instance, message)."""
    return checked_values(component, values)[1]


def checked_values(component: Component, values: dict[str, Any]) -> tuple[dict[str, Any] | None, list[tuple[SpecPath, str]]]:
    """One instance's values typed by the component's parameters, defaults filled in, and the problems
    with them (as (path under the instance, message)); the values are None when there are problems.
    One pass: each value is checked and typed by the same `coerce`."""
    out: list[tuple[SpecPath, str]] = []
    typed: dict[str, Any] = {}
    declared = component.manifest.params
    for key, raw in values.items():
        if key not in declared:
            hint = difflib.get_close_matches(str(key), list(declared), n=1)
            known = f"; did you mean {hint[0]!r}?" if hint else f" (declared: {', '.join(declared) or 'none'})"
            out.append((("with", key), f"component {component.name} has no parameter {key!r}{known}"))
            continue
        typed[key], reason = declared[key].coerce(raw)
        if reason:
            out.append((("with", key), f"{reason} (declared at {component.locate('params', key)})"))
    for key, param in declared.items():
        if key not in values and param.default is None:
            where = component.locate("params", key)
            out.append(((), f"missing required parameter {key!r} of component {component.name} (declared at {where})"))
    if out:
        return None, out
    for key, param in declared.items():
        if key not in typed:
            typed[key] = param.coerce(param.default)[0]
    return typed, out


def instance_units(
    spec: Environment,
    env: dict[str, Any],
    root: Path,
    problems: Problems,
    locate: Callable[[SpecPath], Location | None],
) -> list[RenderUnit]:
    """One render unit per template of each instance under `components:`, in spec order."""
    from envspec.spec.resolve import dotted

    if not spec.components:
        return []
    components = load_components(root, problems)
    units: list[RenderUnit] = []
    spec_view: dict[str, Any] | None = None
    for name, use in spec.components.items():
        base: SpecPath = ("components", name)
        component = components.get(use.use)
        if component is None and (root / COMPONENTS_DIR / use.use / MANIFEST).is_file():
            continue  # the component itself is broken; its problems are already reported
        if component is None:
            hint = difflib.get_close_matches(use.use, list(components), n=1)
            known = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(components) or 'none'} in {COMPONENTS_DIR}/)"
            problems.error(f"unknown component {use.use!r}{known}", locate(base + ("use",)), dotted(base + ("use",)))
            continue
        typed, found = checked_values(component, dict(use.with_))
        for suffix, message in found:
            problems.error(message, locate(base + suffix), dotted(base + suffix))
        if typed is None:
            continue
        if spec_view is None:
            spec_view = spec.model_dump(mode="json", by_alias=True)
        instance_env = {**env, "namespace": use.namespace} if use.namespace else env
        context = {"env": instance_env, "params": typed, "name": name, "item": None, "spec": spec_view}
        units.extend(RenderUnit(template, context, base) for template in component.templates)
    return units


# ---------------------------------------------------------------- JSON Schema for editors


def _param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any]
    if param.type == "integer":
        schema = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    elif param.type == "enum":
        schema = {"enum": list(param.values or [])}
    else:
        schema = {"type": "string"}
        if param.pattern:
            schema["pattern"] = f"^(?:{param.pattern})$"
    if param.description:
        schema["description"] = param.description
    if param.default is not None:
        schema["default"] = param.default
    return schema


def component_schema(component: Component) -> dict[str, Any]:
    params = component.manifest.params
    with_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: _param_schema(p) for key, p in params.items()},
    }
    required = [key for key, p in params.items() if p.default is None]
    if required:
        with_schema["required"] = required
    if component.manifest.examples:
        with_schema["examples"] = list(component.manifest.examples.values())
    return {
        "type": "object",
        "description": component.manifest.description or f"Project component {component.name}",
        "additionalProperties": False,
        "properties": {"use": {"const": component.name}, "with": with_schema, "namespace": {"type": "string"}},
        "required": ["use"] + (["with"] if required else []),
    }


_REF_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def schema_defs(components: dict[str, Component]) -> dict[str, dict[str, Any]]:
    return {f"component.{_REF_SAFE.sub('_', name)}": component_schema(c) for name, c in sorted(components.items())}
