"""`envspec validate`: compile, run the semantic rules at parameter bounds, and check object schemas.

Built-in kinds are checked offline against the Kubernetes OpenAPI schemas that
kubernetes-validate ships (for a chosen version); custom resources against the
openAPIV3Schema of their CustomResourceDefinitions when the CRDs are given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from envspec.errors import Location, Problem, SpecError
from envspec.pipeline import Compiled, compile_resolved
from envspec.spec.params import split_assignment
from envspec.spec.project import Project, find_project
from envspec.spec.resolve import Resolver

DEFAULT_KUBE_VERSION = "1.34"


@dataclass(frozen=True)
class CrdSchema:
    group: str
    kind: str
    version: str
    schema: dict[str, Any]


def load_crds(dirs: Iterable[Path]) -> dict[tuple[str, str], CrdSchema]:
    """(apiVersion, kind) -> schema for every served version of every CRD found in `dirs`."""
    from envspec.render.output import load_all

    out: dict[tuple[str, str], CrdSchema] = {}
    for folder in dirs:
        for path in sorted(Path(folder).rglob("*.y*ml")):
            for doc in load_all(path.read_text(encoding="utf-8")):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec.get("versions", []):
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if schema and version.get("served", True):
                        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                        out[key] = CrdSchema(spec["group"], spec["names"]["kind"], version["name"], schema)
    return out


def _path_text(path: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(root)"


def check_schemas(compiled: Compiled, kube_version: str, crds: dict[tuple[str, str], CrdSchema]) -> list[Problem]:
    import jsonschema
    import kubernetes_validate

    from envspec import kubeschemas

    problems: list[Problem] = []
    for index, obj in enumerate(compiled.objects):
        location = compiled.locate(index) or Location(str(compiled.source))
        label = f"{obj['kind']} {obj['metadata'].get('namespace', '') + '/' if obj['metadata'].get('namespace') else ''}{obj['metadata']['name']}"
        crd = crds.get((obj["apiVersion"], obj["kind"]))
        if crd is not None:
            validator = jsonschema.Draft7Validator(crd.schema)
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
                message = f"{label}: {_path_text(error.absolute_path)}: {error.message} (CRD {crd.group}/{crd.version})"
                problems.append(Problem(message, location, rule="schema"))
            continue
        try:
            kubeschemas.validate(obj, kube_version, strict=True)  # kubernetes_validate.validate, schemas decoded once
        except kubernetes_validate.ValidationError as exc:
            error = exc.caused_by if hasattr(exc, "caused_by") else exc
            path = getattr(error, "absolute_path", [])
            message = getattr(error, "message", str(exc)).splitlines()[0]
            problems.append(Problem(f"{label}: {_path_text(path)}: {message} (Kubernetes {kube_version})", location, rule="schema"))
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            if "." in obj["apiVersion"].split("/")[0]:
                continue  # a custom resource whose CRD is not at hand (--crds): nothing to check it against
            message = f"{label}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {kube_version}: {exc}"
            problems.append(Problem(message, location, rule="schema"))
    return problems


def _bound_params(resolver: Resolver, name: str, given: Sequence[str]) -> list[list[str]]:
    """Extra parameter sets at each integer parameter's minimum and maximum (unless given explicitly)."""
    from envspec.spec.merge import load_composed

    data, _, _ = load_composed(resolver.project, resolver.project.environment_path(name))
    given_names = {pair[0] for raw in given if (pair := split_assignment(raw))}
    extra: list[list[str]] = []
    for pname, decl in (data.get("params") or {}).items():
        if not isinstance(decl, dict) or decl.get("type") != "integer" or pname in given_names:
            continue
        for bound in ("minimum", "maximum"):
            if isinstance(decl.get(bound), int):
                extra.append([*given, f"{pname}={decl[bound]}"])
    return extra


def validate_environments(
    names: Sequence[str],
    *,
    root: Path | None = None,
    params: Sequence[str] = (),
    sets: Sequence[str] = (),
    kube_version: str | None = None,
    crd_dirs: Sequence[Path] = (),
    project: Project | None = None,
) -> tuple[list[Problem], list[Problem], list[str]]:
    project = project or find_project(root)
    resolver = Resolver(project)
    crds = load_crds(crd_dirs)
    version = kube_version or DEFAULT_KUBE_VERSION
    targets = list(names) or project.environment_names()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    seen: set[str] = set()
    for name in targets:
        runs = [list(params)] + _bound_params(resolver, name, params)
        for index, run_params in enumerate(runs):
            try:
                resolved = resolver.resolve(name, run_params, sets, use_examples=True)
                compiled = compile_resolved(project, resolved)
            except SpecError as exc:
                note = "" if index == 0 else f" (with {run_params[-1]})"
                for problem in exc.problems:
                    text = str(problem)
                    if text not in seen:
                        seen.add(text)
                        problems.append(dataclasses.replace(problem, message=problem.message + note))
                continue
            if index == 0:
                warnings.extend(compiled.warnings)
                problems.extend(check_schemas(compiled, version, crds))
    return problems, warnings, targets
