"""Stage 5: Jinja templates to parsed objects.

Templates run in an immutable sandbox with StrictUndefined, and every
expression's value is written through `to_yaml_flow` (see yamlsafe.py), so
templates only choose the shape. A project's own `templates/` folder comes
first on the search path, so it can add templates or override ours.

Each template's output is parsed at once; a failure names the template file and
the line in it that produced the broken text.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from envspec.errors import Location, Problems
from envspec.render.yamlsafe import UnsafeValue, to_yaml_flow

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class RenderUnit:
    """One template rendered with one context; `origin` is the spec path the objects come from."""

    template: str
    context: dict[str, Any]
    origin: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class RenderedObject:
    obj: dict[str, Any]
    template: str
    origin: tuple[str | int, ...]
    location: Location | None = None  # where the object is written, when not in the spec (a raw object file)


def _finalize(value: Any) -> Markup:
    """Every `{{ ... }}` is encoded as a YAML flow node; only template-made fragments (macro output) pass as is.

    Autoescape is on so that macro output is `Markup`; our finalize marks each
    encoded value as Markup too, so Jinja's HTML escaping never applies.
    """
    if isinstance(value, Markup):
        return value
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing value
    return Markup(to_yaml_flow(value))


@lru_cache(maxsize=8)
def make_environment(project_templates: str | None) -> ImmutableSandboxedEnvironment:
    search = [project_templates] if project_templates and os.path.isdir(project_templates) else []
    if project_templates and os.path.isdir(components := os.path.join(os.path.dirname(project_templates), "components")):
        search.append(components)  # project components' templates, named <component>/<file>
    search.append(str(PACKAGE_TEMPLATES))
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached per user (keyed by source checksum): a cold render skips Jinja's compiler.

    Output never depends on the cache; ENVSPEC_NO_CACHE=1 turns it off.
    """
    if os.environ.get("ENVSPEC_NO_CACHE"):
        return None
    from envspec import __version__

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "envspec", f"jinja-{__version__}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(folder)


def _display(path: str | None, name: str) -> str:
    if not path:
        return name
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("../../..") else path
    except ValueError:
        return path


def _template_line_from_traceback(tb: Any, filename: str | None) -> int:
    """Jinja rewrites tracebacks so frames point at template lines; find the deepest one in our template."""
    line = 0
    for frame in traceback.extract_tb(tb):
        if filename and frame.filename == filename and frame.lineno:
            line = frame.lineno
    return line


def _template_line_for_output(source: str, rendered: str, out_line: int) -> int:
    """Best effort: the template line whose literal text starts the rendered line that failed."""
    lines = rendered.splitlines()
    if not 0 < out_line <= len(lines):
        return 0
    target = lines[out_line - 1].strip()
    first_prefix = 0  # the first template line whose literal text begins the failed line
    for number, template_line in enumerate(source.splitlines(), start=1):
        literal = template_line.split("{{", 1)[0].split("{%", 1)[0].strip()
        if not literal or not target.startswith(literal):
            continue
        if literal == target:
            return number  # an exact match beats any prefix
        first_prefix = first_prefix or number
    return first_prefix


def render_units(
    units: list[RenderUnit],
    project_templates: Path | None,
    problems: Problems,
    locate: Callable[[tuple[str | int, ...]], Location | None] = lambda origin: None,
) -> list[RenderedObject]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    env = make_environment(str(project_templates) if project_templates else None)
    parser = YAML(typ="safe", pure=False)
    out: list[RenderedObject] = []
    for unit in units:
        try:
            template = env.get_template(unit.template)
        except jinja2.TemplateNotFound:
            where = _display(str(project_templates), "") if project_templates else "-"
            problems.error(f"template {unit.template!r} not found (looked in {where}/ and envspec's templates)", locate(unit.origin))
            continue
        except jinja2.TemplateSyntaxError as exc:
            location = Location(_display(exc.filename, unit.template), exc.lineno or 0)
            problems.error(f"template syntax error: {exc.message}", location)
            continue
        display = _display(template.filename, unit.template)
        try:
            text = template.render(unit.context)
        except (jinja2.UndefinedError, jinja2.TemplateError, UnsafeValue, TypeError, ValueError) as exc:
            line = _template_line_from_traceback(exc.__traceback__, template.filename)
            message = str(exc) if not isinstance(exc, jinja2.UndefinedError) else f"undefined value: {exc}"
            problems.error(f"template error: {message}", Location(display, line))
            continue
        try:
            documents = [d for d in parser.load_all(text) if d is not None]
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            out_line = mark.line + 1 if mark else 0
            source = Path(template.filename).read_text(encoding="utf-8") if template.filename else ""
            line = _template_line_for_output(source, text, out_line)
            problems.error(
                f"template produced invalid YAML (output line {out_line}): {(exc.problem or exc.context or '').strip()}",
                Location(display, line),
            )
            continue
        except YAMLError as exc:
            problems.error(f"template produced invalid YAML: {exc}", Location(display))
            continue
        for document in documents:
            reason = _object_problem(document)
            if reason:
                problems.error(f"template produced {reason}", Location(display))
                continue
            out.append(RenderedObject(document, unit.template, unit.origin))
    return out


def _object_problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"a {type(document).__name__} where a Kubernetes object (mapping) was expected"
    missing = [k for k in ("apiVersion", "kind") if not isinstance(document.get(k), str) or not document.get(k)]
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata.get("name"):
        missing.append("metadata.name")
    if missing:
        return f"an object without {', '.join(missing)}"
    return None


object_problem = _object_problem  # raw objects (render/raw.py) are checked the same way
