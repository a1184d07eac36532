"""envspec's own templates ship precompiled (envspec/render/precompile.py): never stale, same output and errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import jinja2
import pytest

from envspec.errors import Problems
from envspec.pipeline import compile_environment
from envspec.render import precompile, templates
from envspec.render.output import dump_yaml
from envspec.render.templates import PACKAGE_TEMPLATES, RenderUnit, new_environment, render_units


@pytest.fixture(autouse=True)
def fresh_environments(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts (and leaves) with no environment, so no template is cached across tests."""
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    templates.make_environment.cache_clear()
    yield
    templates.make_environment.cache_clear()


@pytest.fixture
def jinja_compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file of every template Jinja's compiler runs for."""
    compiled: list[str] = []
    original = templates.BoundedSandbox.compile

    def spy(self: Any, source: Any, name: Any = None, filename: Any = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(filename))
        return original(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(templates.BoundedSandbox, "compile", spy)
    return compiled


def test_the_artefact_is_current() -> None:
    from envspec.render import compiled

    assert compiled.TEMPLATES == precompile.source_index(PACKAGE_TEMPLATES)  # every template, at its current sha256
    if compiled.OPTIONS[0] == f"jinja2 {jinja2.__version__}":
        assert precompile.main(["--check"]) == 0
    else:  # generated for the Jinja the lock pins, another is installed here: it reports so and is not used
        assert precompile.main(["--check"]) == 1
        source = (PACKAGE_TEMPLATES / "_container.j2").read_text()
        assert precompile.precompiled_code(new_environment([str(PACKAGE_TEMPLATES)]), "_container.j2", source) is None


def test_the_artefact_is_for_the_jinja_the_image_installs(repo_root: Path) -> None:
    from envspec.render import compiled

    locked = re.search(r"^jinja2==(\S+)", (repo_root / "requirements" / "deploy.txt").read_text(), re.MULTILINE)
    assert locked and compiled.OPTIONS[0] == f"jinja2 {locked.group(1)}"


def test_check_detects_an_edited_template(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(PACKAGE_TEMPLATES, folder)
    target = tmp_path / "compiled"
    assert precompile.main([], templates=folder, target=target) == 0
    assert precompile.main(["--check"], templates=folder, target=target) == 0
    path = folder / "namespace" / "namespace.yaml.j2"
    path.write_text(path.read_text() + "# edited\n")
    assert precompile.main(["--check"], templates=folder, target=target) == 1
    (folder / "namespace" / "namespace.yaml.j2").unlink()  # a template that is gone leaves a stale module
    assert precompile.stale_files(precompile.generate(folder), target) == [
        "__init__.py", "t_namespace_namespace_yaml_j2.py"]
    assert precompile.main([], templates=folder, target=target) == 0
    assert not (target / "t_namespace_namespace_yaml_j2.py").exists()
    assert precompile.main(["--check"], templates=folder, target=target) == 0


def test_a_cold_render_never_compiles_envspecs_templates(repo_root: Path, jinja_compiles: list[str]) -> None:
    compile_environment("preview-pr", root=repo_root, params=["pr=107"])
    compile_environment("production", root=repo_root)
    assert jinja_compiles  # the project's own templates (templates/, components/) still compile from source
    assert not [f for f in jinja_compiles if f.startswith(str(PACKAGE_TEMPLATES))]


def test_output_is_what_jinja_compiles_from_source(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    precompiled = {name: dump_yaml(compile_environment(name, root=repo_root, params=params).objects)
                   for name, params in (("preview-pr", ["pr=107"]), ("production", []), ("local", []))}
    templates.make_environment.cache_clear()
    monkeypatch.setattr(precompile, "precompiled_code", lambda *args: None)
    for name, params in (("preview-pr", ["pr=107"]), ("production", []), ("local", [])):
        assert dump_yaml(compile_environment(name, root=repo_root, params=params).objects) == precompiled[name]


def _loaded(folder: Path, name: str, compiles: list[str]) -> jinja2.Template:
    compiles.clear()
    return new_environment([str(folder)], package=folder).get_template(name)


def test_an_edited_package_template_is_compiled_from_its_source(tmp_path: Path, jinja_compiles: list[str]) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(PACKAGE_TEMPLATES, folder)
    name = "namespace/namespace.yaml.j2"
    template = _loaded(folder, name, jinja_compiles)
    assert jinja_compiles == [] and template.filename == str(folder / name)
    assert template.render(item={"name": "n"}) == 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "n"\n'

    (folder / name).write_text((folder / name).read_text().replace("Namespace", "Namespace # edited"))
    template = _loaded(folder, name, jinja_compiles)
    assert jinja_compiles == [str(folder / name)]
    assert "# edited" in template.render(item={"name": "n"})


def test_an_environment_configured_otherwise_compiles_from_source(jinja_compiles: list[str]) -> None:
    environment = new_environment([str(PACKAGE_TEMPLATES)])
    environment.get_template("namespace/namespace.yaml.j2")
    assert jinja_compiles == []
    other = environment.overlay(trim_blocks=False, cache_size=0)
    other.get_template("namespace/namespace.yaml.j2")
    assert jinja_compiles == [str(PACKAGE_TEMPLATES / "namespace" / "namespace.yaml.j2")]


def test_a_project_template_of_the_same_name_still_wins(tmp_path: Path) -> None:
    (tmp_path / "templates" / "namespace").mkdir(parents=True)
    (tmp_path / "templates" / "namespace" / "namespace.yaml.j2").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ item.name }}\n  labels: {ours: 'yes'}\n")
    problems = Problems()
    out = render_units([RenderUnit("namespace/namespace.yaml.j2", {"item": {"name": "n"}})], tmp_path / "templates", problems)
    assert not problems.items
    assert out[0].obj["metadata"]["labels"] == {"ours": "yes"}


APP = {"kind": "Deployment", "name": "x", "namespace": "n", "replicas": None, "service": None, "selector": {"a": "b"},
       "strategy": "Recreate", "imagePullSecrets": [], "initContainers": [], "containers": [{"image": "i"}]}


@pytest.mark.parametrize("unit", [
    RenderUnit("namespace/namespace.yaml.j2", {"item": {}}),
    RenderUnit("app/app.yaml.j2", {"item": APP}),  # the error is in _container.j2's macro, imported by app.yaml.j2
    RenderUnit("config/configmap.yaml.j2", {"item": {"name": "c", "namespace": "n", "data": {"k": object()}}}),
], ids=["undefined", "in-imported-macro", "unsafe-value"])
def test_template_errors_name_the_same_file_and_line(unit: RenderUnit, monkeypatch: pytest.MonkeyPatch) -> None:
    precompiled = Problems()
    render_units([unit], None, precompiled)
    templates.make_environment.cache_clear()
    monkeypatch.setattr(precompile, "precompiled_code", lambda *args: None)
    from_source = Problems()
    render_units([unit], None, from_source)
    assert precompiled.items and [str(p) for p in precompiled.items] == [str(p) for p in from_source.items]
    assert all(p.location and p.location.line > 1 for p in precompiled.items)


def test_the_error_in_an_imported_macro_is_located_there(repo_root: Path) -> None:
    problems = Problems()
    render_units([RenderUnit("app/app.yaml.j2", {"item": APP})], None, problems)
    assert [str(p) for p in problems.items] == [
        "envspec/templates/_container.j2:2:9: template error: undefined value: 'dict object' has no attribute 'name'"]


def test_the_artefact_is_in_the_wheel() -> None:
    from setuptools import find_packages

    root = Path(precompile.__file__).resolve().parents[2]
    assert "envspec.render.compiled" in find_packages(str(root), include=["envspec*"])
