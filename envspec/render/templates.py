"""Stage 5: Jinja templates to parsed objects.

Templates run in an immutable sandbox with StrictUndefined, and every
expression's value is written through `to_yaml_flow` (see yamlsafe.py), so
templates only choose the shape. A project's own `templates/` folder comes
first on the search path, so it can add templates or override ours. Ours ship
precompiled (precompile.py): a cold render runs Jinja's compiler only for a
project's own templates.

Each template's output is parsed at once; a failure names the template file and
the line in it that produced the broken text.
"""

from __future__ import annotations

import os
import re
import traceback
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from envspec.errors import Location, Problems
from envspec.render import shapes
from envspec.render.yamlsafe import UnsafeValue, quote_string, to_yaml_flow
from envspec.spec.loader import MAX_NESTING, too_deep
from envspec.timelimit import TimeLimitExceeded, time_limits

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
    if type(value) is str:  # the commonest value, and neither Markup (a subclass) nor Undefined
        text = quote_string(value)
    elif isinstance(value, Markup):
        return value
    else:
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises UndefinedError naming the missing value
        text = to_yaml_flow(value)
    if shapes.recorded is not None:  # a render that parses its output by shape (shapes.py)
        shapes.recorded.append((text, value))
    return Markup(text)


TEMPLATE_SECONDS = 20.0  # per template: generous for any real template, a bound for a runaway loop
MAX_SIZE = 1_000_000  # characters (or items) one `*` or `**` in a template may produce


_DICT_ATTRIBUTES = frozenset(dir(dict))


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on the two operators that turn a short template into gigabytes."""

    intercepted_binops = frozenset(["*", "**"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`item.name` on a plain dict whose type has no such attribute is the item (or undefined), as the sandbox
        decides; it gets there by raising and catching an AttributeError each time, and contexts are dicts, so
        this is most of a render's lookups. Anything else (a dict method, another type) goes the sandbox's way."""
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        from jinja2.exceptions import SecurityError

        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 1000 and isinstance(left, (int, float)) and abs(left) > 1:
            raise SecurityError(f"{left!r} ** {right!r} is too large to compute in a template")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_SIZE:
                    raise SecurityError(f"repeating a {type(seq).__name__} {count} times exceeds {MAX_SIZE} items")
        return super().call_binop(context, operator, left, right)


class TemplateLoader(jinja2.FileSystemLoader):
    """The search path as FileSystemLoader walks it (a project's templates/ and components/ first, so they override
    by name), except that a name found in envspec's own folder is built from the code that ships precompiled in the
    package (precompile.py): a cold render never runs Jinja's lexer, parser and code generator for our templates.

    The artefact is used only when it was generated from exactly this source text (its sha256) for exactly this
    environment's configuration; anything else (a project's template, an edited package template) is compiled from
    source as before, through the bytecode cache when one is on.
    """

    def __init__(self, searchpath: list[str], package: Path = PACKAGE_TEMPLATES):
        super().__init__(searchpath)
        self.package = os.path.normpath(package)

    def load(self, environment: jinja2.Environment, name: str, globals: Any = None) -> jinja2.Template:
        from envspec.render import precompile

        source, filename, uptodate = self.get_source(environment, name)
        code = None
        if filename == os.path.normpath(os.path.join(self.package, *name.split("/"))):
            code = precompile.precompiled_code(environment, name, source)
        if code is None:
            return super().load(environment, name, globals)
        # As Template.from_code does, with the template's own file as __file__: Jinja's tracebacks (and so our
        # error locations) and `explain` read the template file and line from there and from debug_info.
        namespace: dict[str, Any] = {"environment": environment, "__file__": filename}
        exec(code, namespace)  # noqa: S102 -- Jinja's generated code for our own template, as Jinja runs it
        template = environment.template_class.from_module_dict(environment, namespace, {} if globals is None else globals)
        template._uptodate = uptodate  # as from_code sets it: auto_reload notices an edit, as for any template
        return template


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> Any:
    """Jinja's `indent`, the same text; for macro output (Markup: `{{ container(c) | indent(8) }}`) worked out
    on the plain text and marked safe once. Jinja's own escapes each line of Markup again (~0.1 ms per call,
    a few times per app), which never changes Markup's text: its lines are safe already, and the indent
    is marked safe unescaped."""
    from jinja2.filters import do_indent

    if type(s) is Markup:
        return Markup(do_indent(str(s), width, first, blank))
    return do_indent(s, width, first, blank)


def new_environment(search: list[str], bytecode_cache: jinja2.BytecodeCache | None = None, package: Path = PACKAGE_TEMPLATES) -> BoundedSandbox:
    """envspec's one Jinja configuration: rendering and the precompiler (precompile.py) both build from it, so the
    precompiled code is what Jinja would compile for the environment that runs it."""
    env = BoundedSandbox(
        loader=TemplateLoader(search, package),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=bytecode_cache,
    )
    env.filters["indent"] = _indent
    return env


@lru_cache(maxsize=8)
def make_environment(project_templates: str | None) -> ImmutableSandboxedEnvironment:
    search = [project_templates] if project_templates and os.path.isdir(project_templates) else []
    if project_templates and os.path.isdir(components := os.path.join(os.path.dirname(project_templates), "components")):
        search.append(components)  # project components' templates, named <component>/<file>
    search.append(str(PACKAGE_TEMPLATES))
    return new_environment(search, _bytecode_cache())


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """A project's compiled templates cached per user (keyed by source checksum), so a warm render skips Jinja's
    compiler for them too (envspec's own ship precompiled).

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


def _template_frame(tb: Any, filenames: set[str]) -> tuple[str | None, int]:
    """Jinja rewrites tracebacks so frames point at template lines; the deepest frame in a template file."""
    found: tuple[str | None, int] = (None, 0)
    for frame in traceback.extract_tb(tb):
        if frame.lineno and (frame.filename in filenames or frame.filename.endswith(".j2")):
            found = (frame.filename, frame.lineno)
    return found


_TAG_RE = re.compile(r"\{\{.*?(\}\}|$)|\{%.*?(%\}|$)")


def _source_line(filename: str | None, line: int) -> str:
    if not filename or line <= 0:
        return ""
    try:
        lines = Path(filename).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1] if line <= len(lines) else ""


def _expression_column(text: str, message: str) -> int:
    """The column of the `{{ }}`/`{% %}` on a template line that most likely failed: the one naming what the
    message quotes (`'namepsace'`, `'nofilter'`), else the only or first one; 1 if the line has none."""
    tags = list(_TAG_RE.finditer(text))
    if not tags:
        stripped = len(text) - len(text.lstrip())
        return stripped + 1
    quoted = re.findall(r"'([^']+)'", message)
    for name in reversed(quoted):
        for tag in tags:
            if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", tag.group(0)):
                return tag.start() + 1
    return tags[0].start() + 1


def _template_line_for_output(source: str, rendered: str, out_line: int) -> int:
    """Best effort: the template line whose literal text starts the rendered line that failed.

    An exact match beats a prefix; among equals, the one nearest the output line (a template's
    lines and its output's mostly stay in step).
    """
    lines = rendered.splitlines()
    if not 0 < out_line <= len(lines):
        return 0
    target = lines[out_line - 1].strip()
    exact: list[int] = []
    prefix: list[int] = []
    for number, template_line in enumerate(source.splitlines(), start=1):
        literal = template_line.split("{{", 1)[0].split("{%", 1)[0].strip()
        if not literal or not target.startswith(literal):
            continue
        (exact if literal == target else prefix).append(number)
    candidates = exact or prefix
    return min(candidates, key=lambda n: (abs(n - out_line), n)) if candidates else 0


def _output_location(display: str, source: str, rendered: str, out_line: int, out_col: int) -> Location:
    """Map a position in a template's output back to the template: the line, and the column where the output's
    text is the template's literal text (else the expression that wrote it)."""
    line = _template_line_for_output(source, rendered, out_line)
    if line <= 0:
        return Location(display, max(out_line, 1), max(out_col, 1)) if out_line > 0 else Location(display, 1, 1)
    text = source.splitlines()[line - 1]
    literal_end = min([i for i in (text.find("{{"), text.find("{%")) if i >= 0] or [len(text)])
    out_text = rendered.splitlines()[out_line - 1] if 0 < out_line <= len(rendered.splitlines()) else ""
    shift = (len(out_text) - len(out_text.lstrip())) - (len(text) - len(text.lstrip()))
    col = out_col - shift
    if 0 < col <= literal_end:
        return Location(display, line, col)
    return Location(display, line, _expression_column(text, "") if literal_end < len(text) else max(col, 1))


def render_units(
    units: list[RenderUnit],
    project_templates: Path | None,
    problems: Problems,
    locate: Callable[[tuple[str | int, ...]], Location | None] = lambda origin: None,
) -> list[RenderedObject]:
    env = make_environment(str(project_templates) if project_templates else None)
    with time_limits(TEMPLATE_SECONDS) as budget:  # TEMPLATE_SECONDS for each template's render, not for them all
        return _render_each(units, env, budget, project_templates, problems, locate)


def _render_each(
    units: list[RenderUnit],
    env: jinja2.Environment,
    budget: AbstractContextManager[None],
    project_templates: Path | None,
    problems: Problems,
    locate: Callable[[tuple[str | int, ...]], Location | None],
) -> list[RenderedObject]:
    parser: Any = None  # ruamel, for its messages: only for output libyaml refuses (imported only then, ~10 ms)
    loaded: dict[str, jinja2.Template] = {}  # an environment renders some templates many times (one per app, ...)
    out: list[RenderedObject] = []
    for unit in units:
        try:
            template = loaded.get(unit.template) or env.get_template(unit.template)
        except jinja2.TemplateNotFound:
            where = _display(str(project_templates), "") if project_templates else "-"
            problems.error(f"template {unit.template!r} not found (looked in {where}/ and envspec's templates)", locate(unit.origin))
            continue
        except jinja2.TemplateSyntaxError as exc:
            problems.error(f"template syntax error: {exc.message}", _syntax_location(exc, unit.template))
            continue
        except UnicodeDecodeError as exc:
            problems.error(f"template is not UTF-8 text: {exc.reason}", _undecodable_location(exc, unit.template, project_templates))
            continue
        loaded[unit.template] = template
        try:
            with budget, shapes.recording() as values:
                text = template.render(unit.context)
        except TimeLimitExceeded as exc:
            problems.error(f"template error: rendering took over {TEMPLATE_SECONDS:g} s (a runaway loop?)",
                           _runtime_location(exc, template.filename, _display(template.filename, unit.template)))
            continue
        except jinja2.TemplateSyntaxError as exc:  # e.g. an {% include %} of a template that does not parse
            problems.error(f"template syntax error: {exc.message}", _syntax_location(exc, unit.template))
            continue
        except RecursionError:
            problems.error("template error: recursion too deep (a macro or include that calls itself?)",
                           Location(_display(template.filename, unit.template), 1, 1))
            continue
        except Exception as exc:  # noqa: BLE001 -- any failure inside a template is the template's, located there
            problems.error(f"template error: {_runtime_message(exc)}",
                           _runtime_location(exc, template.filename, _display(template.filename, unit.template)))
            continue
        fast = shapes.load(text, values)  # libyaml (once per shape); None (or a document that is no object) sends it to ruamel's messages
        if fast is not None and not any(_object_problem(d) for d in fast):
            out.extend(RenderedObject(document, unit.template, unit.origin) for document in fast)
            continue
        # Only output that libyaml refuses (or that is no object) gets here: ruamel's messages, mapped to the template.
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError
        from ruamel.yaml.reader import ReaderError

        display = _display(template.filename, unit.template)
        source = _LazySource(template.filename)
        deep = too_deep(text)  # before any composer: they recurse per level and crash on ~20000
        if deep is not None:
            problems.error(f"template produced YAML nested more than {MAX_NESTING} levels deep",
                           _output_location(display, source.text, text, *deep))
            continue
        if parser is None:
            parser = YAML(typ="safe", pure=False)
        try:
            if "&" in text:
                bomb = _alias_bomb(parser, text)
                if bomb is not None:
                    mark, size = bomb
                    problems.error(
                        f"template produced YAML whose aliases expand to more than {size} values; "
                        "refusing (a YAML alias bomb?)",
                        _output_location(display, source.text, text, mark.line + 1, mark.column + 1),
                    )
                    continue
            documents = [d for d in parser.load_all(text) if d is not None]
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            out_line = mark.line + 1 if mark else 0
            location = _output_location(display, source.text, text, out_line, mark.column + 1 if mark else 0)
            problems.error(
                f"template produced invalid YAML (output line {out_line}): {(exc.problem or exc.context or '').strip()}",
                location,
            )
            continue
        except ReaderError as exc:  # a character YAML does not allow, written by the template
            offset = exc.position if isinstance(exc.position, int) else 0
            out_line = text.count("\n", 0, offset) + 1
            char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
            location = _output_location(display, source.text, text, out_line, offset - (text.rfind("\n", 0, offset) + 1) + 1)
            problems.error(f"template produced invalid YAML (output line {out_line}): the character U+{char:04X} is not allowed", location)
            continue
        except YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.error(f"template produced invalid YAML: {first}", Location(display, 1, 1))
            continue
        for index, document in enumerate(documents):
            reason = _object_problem(document)
            if reason:
                starts = [n.start_mark for n in parser.compose_all(text) if n is not None]  # only now: parsing twice costs
                mark = starts[index] if index < len(starts) else None
                location = _output_location(display, source.text, text, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
                problems.error(f"template produced {reason}", location)
                continue
            out.append(RenderedObject(document, unit.template, unit.origin))
    return out


def _alias_bomb(parser: Any, text: str) -> tuple[Any, int] | None:
    """(start mark, bound) of the first document whose aliases would add more values than the spec
    loader allows (MAX_ALIAS_NODES), else None. Constructing shares aliased nodes, so the cost would
    come later (copies, dumps); the expanded size is counted on the composed graph instead, each node
    once (memoised): what aliases add is the expanded total minus the distinct nodes."""
    from envspec.spec.loader import MAX_ALIAS_NODES, expanded_size

    sizes: dict[int, int] = {}
    for document in parser.compose_all(text):
        if document is not None:  # a recursive anchor (-1) expands without end
            total = expanded_size(document, sizes, set())
            if total < 0 or total - len(sizes) > MAX_ALIAS_NODES:
                return document.start_mark, MAX_ALIAS_NODES
        sizes.clear()
    return None


class _LazySource:
    """A template's source text, read only when an error needs to be mapped back to it."""

    def __init__(self, filename: str | None):
        self.filename = filename
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            try:
                self._text = Path(self.filename).read_text(encoding="utf-8") if self.filename else ""
            except (OSError, UnicodeDecodeError):
                self._text = ""
        return self._text


def _undecodable_location(exc: UnicodeDecodeError, name: str, project_templates: Path | None) -> Location:
    from envspec.spec.loader import _byte_location

    folder = project_templates if project_templates and (project_templates / name).is_file() else PACKAGE_TEMPLATES
    return _byte_location(exc.object, exc.start, _display(str(folder / name), name))


def _syntax_location(exc: jinja2.TemplateSyntaxError, name: str) -> Location:
    display = _display(exc.filename, exc.name or name)
    line = exc.lineno or 1
    text = exc.source.splitlines()[line - 1] if exc.source and line <= len(exc.source.splitlines()) else _source_line(exc.filename, line)
    return Location(display, line, _expression_column(text, exc.message or ""))


def _runtime_message(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateNotFound):  # an {% include %} or {% import %} of a missing template
        names = getattr(exc, "templates", None) or [exc.name]
        return f"template {', '.join(repr(str(n)) for n in names)} not found (looked in the project's templates/ and envspec's templates)"
    message = str(exc) or type(exc).__name__
    if isinstance(exc, jinja2.UndefinedError):
        return message if "undefined" in message else f"undefined value: {message}"
    if isinstance(exc, (jinja2.TemplateError, UnsafeValue)):
        return message
    return f"{type(exc).__name__}: {message}" if not isinstance(exc, (TypeError, ValueError)) else message


def _runtime_location(exc: BaseException, filename: str | None, display: str) -> Location:
    frame_file, line = _template_frame(exc.__traceback__, {filename} if filename else set())
    if frame_file and frame_file != filename:
        display = _display(frame_file, frame_file)  # the error is in an included or imported template
    if line <= 0:
        return Location(display, 1, 1)
    return Location(display, line, _expression_column(_source_line(frame_file or filename, line), str(exc)))


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
