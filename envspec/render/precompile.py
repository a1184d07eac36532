"""envspec's own templates ship precompiled: Jinja's generated Python, one module per template.

A cold render used to spend ~25 ms in Jinja's lexer, parser and code generator
(and CPython's compiler) for the package templates, on every run without a warm
bytecode cache: CI and Argo CD's plugin start from nothing. This module writes
the code Jinja generates for each template in envspec/templates/ into
envspec/render/compiled/ (`environment.compile(source, name, filename,
raw=True)`, as jinja2.ModuleLoader's compile_templates does), with the
environment templates.py renders with, and records each source's sha256 and the
configuration the code was generated for. pip byte-compiles the modules at
install, so loading one costs a .pyc read.

    python -m envspec.render.precompile            # regenerate envspec/render/compiled/
    python -m envspec.render.precompile --check    # exit 1 when it is stale (a test runs this)

The artefact can never serve stale code: templates.py uses it only when the
template's source text hashes to the recorded sha256 and the environment's
configuration (and Jinja's version) is the recorded one; otherwise the template
is compiled from source, as any project template is. The modules are not
imported as modules: like Template.from_code, the loader runs a module's code in
a namespace that holds the environment.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import CodeType

import jinja2

COMPILED = Path(__file__).resolve().parent / "compiled"
INDEX = "__init__.py"
GENERATOR = "python -m envspec.render.precompile"


def module_name(template: str) -> str:
    """The module holding a template's code: `app/app.yaml.j2` -> `t_app_app_yaml_j2`."""
    return "t_" + re.sub(r"[^0-9A-Za-z]", "_", template)


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def codegen_options(environment: jinja2.Environment) -> tuple[str, ...]:
    """Everything besides the source that shapes the code Jinja generates (lexer, parser, code generator), one
    line each. The artefact records it; an environment that differs in any of them compiles from source."""
    finalize = environment.finalize
    lines = [
        f"jinja2 {jinja2.__version__}",
        f"class {type(environment).__module__}.{type(environment).__qualname__}",
        f"code generator {environment.code_generator_class.__module__}.{environment.code_generator_class.__qualname__}",
        f"delimiters {environment.block_start_string} {environment.block_end_string} {environment.variable_start_string}"
        f" {environment.variable_end_string} {environment.comment_start_string} {environment.comment_end_string}",
        f"line prefixes {environment.line_statement_prefix!r} {environment.line_comment_prefix!r}",
        f"trim_blocks {environment.trim_blocks} lstrip_blocks {environment.lstrip_blocks}"
        f" keep_trailing_newline {environment.keep_trailing_newline} newline {environment.newline_sequence!r}",
        f"autoescape {environment.autoescape!r}",  # a callable has no stable repr: never matches, so compiles
        f"finalize {finalize is not None} {getattr(finalize, 'jinja_pass_arg', None)}",
        f"sandboxed {environment.sandboxed} optimized {environment.optimized} async {environment.is_async}",
        f"intercepted {sorted(getattr(environment, 'intercepted_binops', ()))} {sorted(getattr(environment, 'intercepted_unops', ()))}",
        f"extensions {sorted(environment.extensions)}",
        f"filters {' '.join(sorted(environment.filters))}",
        f"tests {' '.join(sorted(environment.tests))}",
    ]
    return tuple(lines)


def precompiled_code(environment: jinja2.Environment, name: str, source: str) -> CodeType | None:
    """The shipped code object of package template `name`, if it was generated from exactly `source` for this
    environment's configuration; else None (compile from source)."""
    try:
        from envspec.render import compiled
    except ImportError:  # not generated yet (a checkout before its first `python -m envspec.render.precompile`)
        return None

    entry = compiled.TEMPLATES.get(name)
    if entry is None or entry[1] != source_digest(source) or compiled.OPTIONS != codegen_options(environment):
        return None
    module = f"{compiled.__name__}.{entry[0]}"
    try:  # the .pyc pip wrote at install (or writes now, as any import would)
        return SourceFileLoader(module, str(COMPILED / f"{entry[0]}.py")).get_code(module)
    except (OSError, ImportError, SyntaxError):  # a damaged install: compiling from source is always right
        return None


def source_index(templates: Path) -> dict[str, tuple[str, str]]:
    """Template name -> (module, sha256 of its source), for every template under `templates`."""
    index: dict[str, tuple[str, str]] = {}
    owners: dict[str, str] = {}
    for path in sorted(templates.rglob("*.j2")):
        name = path.relative_to(templates).as_posix()
        module = module_name(name)
        if module in owners:
            raise SystemExit(f"templates {name!r} and {owners[module]!r} map to one module {module}")
        owners[module] = name
        index[name] = (module, source_digest(path.read_text(encoding="utf-8")))
    return index


def generate(templates: Path | None = None) -> dict[str, str]:
    """File name -> text of every file of the artefact, for the templates under `templates` (envspec's own)."""
    from envspec.render.templates import PACKAGE_TEMPLATES, new_environment

    folder = templates or PACKAGE_TEMPLATES
    environment = new_environment([str(folder)], package=folder)
    index = source_index(folder)
    files: dict[str, str] = {}
    for name, (module, _) in index.items():
        source = (folder / name).read_text(encoding="utf-8")
        code = environment.compile(source, name, f"envspec/templates/{name}", raw=True)
        # Appended, never prepended: Jinja's debug_info maps the code's line numbers to the template's.
        files[f"{module}.py"] = f"{code}\n# Generated from envspec/templates/{name} by `{GENERATOR}`: do not edit.\n"
    options = "".join(f"    {line!r},\n" for line in codegen_options(environment))
    entries = "".join(f"    {name!r}: ({module!r}, {digest!r}),\n" for name, (module, digest) in index.items())
    files[INDEX] = (
        f'"""Generated by `{GENERATOR}` from envspec/templates/: do not edit.\n\n'
        "Jinja's code for each package template (see envspec/render/precompile.py): template name -> (module,\n"
        'sha256 of the source it was generated from), and the configuration it was generated for."""\n\n'
        f"OPTIONS = (\n{options})\n\n"
        f"TEMPLATES = {{\n{entries}}}\n"
    )
    return files


def stale_files(files: dict[str, str], target: Path = COMPILED) -> list[str]:
    """The artefact's files that differ from `files`, are missing, or should not be there."""
    present = {p.name for p in target.glob("*.py")} if target.is_dir() else set()
    wrong = [name for name, text in files.items() if not (target / name).is_file() or (target / name).read_text(encoding="utf-8") != text]
    return sorted(wrong + [name for name in present - set(files)])


def write(files: dict[str, str], target: Path = COMPILED) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in {p.name for p in target.glob("*.py")} - set(files):
        (target / name).unlink()  # a template that is gone
    for name, text in files.items():
        path = target / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None, templates: Path | None = None, target: Path = COMPILED) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = generate(templates)
    shown = os.path.relpath(target) if not os.path.relpath(target).startswith("..") else str(target)
    if "--check" in args:
        stale = stale_files(files, target)
        if stale:
            print(f"{shown} is stale ({', '.join(stale)}): run `{GENERATOR}`", file=sys.stderr)
            return 1
        print(f"{shown} is up to date", file=sys.stderr)
        return 0
    write(files, target)
    print(f"wrote {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
