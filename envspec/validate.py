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
from envspec import parallel
from envspec.pipeline import Compiled, compile_resolved, worker_died
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
    """(apiVersion, kind) -> schema for every served version of every CRD found in `dirs`.

    A folder that does not exist (or holds no CRD) is an error: a check that silently
    switches itself off would report "ok" for custom resources it never looked at.
    """
    from envspec.render.output import load_all

    out: dict[tuple[str, str], CrdSchema] = {}
    problems: list[Problem] = []
    for folder in dirs:
        where = Location(f"--crds {folder}")
        try:
            exists = Path(folder).is_dir()
        except (OSError, ValueError):  # e.g. a NUL byte in the name
            exists = False
        if not exists:
            problems.append(Problem("no such directory", where))
            continue
        found = 0
        for path in sorted(Path(folder).rglob("*.y*ml")):
            try:
                docs = list(load_all(path.read_text(encoding="utf-8")))
            except Exception as exc:  # noqa: BLE001 -- a broken file among the CRDs is the user's to fix
                problems.append(Problem(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", where))
                continue
            for doc in docs:
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc.get("spec") or {}
                try:
                    for version in spec.get("versions", []):
                        schema = (version.get("schema") or {}).get("openAPIV3Schema")
                        if schema and version.get("served", True):
                            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                            out[key] = CrdSchema(spec["group"], spec["names"]["kind"], version["name"], _closed(schema))
                            found += 1
                except (KeyError, TypeError, AttributeError):
                    problems.append(Problem(f"{path}: a CustomResourceDefinition without spec.group, names.kind or versions", where))
        if not found and not any(p.location == where for p in problems):
            problems.append(Problem("holds no CustomResourceDefinition (*.yaml, *.yml)", where))
    if problems:
        raise SpecError(problems)
    return out


def _closed(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it is structural.

    The API server prunes fields a structural schema does not declare, so a misspelt
    field (`dnsNamez`) would vanish silently; here it is an error instead. Objects that
    keep unknown fields (`x-kubernetes-preserve-unknown-fields`, embedded resources,
    `additionalProperties`) or combine schemas (`allOf`...) are left as they are.
    """
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) for key, value in schema.items()}
    open_ended = (
        schema.get("x-kubernetes-preserve-unknown-fields")
        or schema.get("x-kubernetes-embedded-resource")
        or "additionalProperties" in schema
        or any(k in schema for k in ("allOf", "anyOf", "oneOf", "not"))
    )
    if "properties" in schema and schema.get("type", "object") == "object" and not open_ended:
        out["additionalProperties"] = False
    return out


def supported_kube_versions() -> list[str]:
    from kubernetes_validate import utils

    return sorted({utils.major_minor(v) for v in utils.all_versions()}, key=lambda v: tuple(int(p) for p in v.split(".")))


def check_kube_version(version: str) -> str:
    """`1.34`, `v1.34` or `1.34.2` -> `1.34`; anything kubernetes-validate has no schemas for is an error."""
    import re

    supported = supported_kube_versions()
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version.strip())
    minor = f"{int(match.group(1))}.{int(match.group(2))}" if match else None
    if minor not in supported:
        raise SpecError([Problem(f"unsupported Kubernetes version {version!r} (supported: {', '.join(supported)})", Location("--kube-version"))])
    return minor


def _crd_messages(error: Any) -> list[tuple[list[Any], str]]:
    """One message per unknown field (with a did-you-mean), else jsonschema's own."""
    import difflib

    path = list(error.absolute_path)
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return [(path, error.message)]
    known = list((error.schema or {}).get("properties") or {})
    out = []
    for key in sorted(k for k in error.instance if k not in known):
        hint = difflib.get_close_matches(str(key), known, n=1)
        suffix = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(sorted(known))})"
        out.append(([*path, key], f"unknown field (the API server would drop it silently){suffix}"))
    return out or [(path, error.message)]


def _path_text(path: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(root)"


def check_schemas(
    compiled: Compiled, kube_version: str, crds: dict[tuple[str, str], CrdSchema], unchecked: list[str] | None = None
) -> list[Problem]:
    """Problems of every object against its schema; custom resources without one are added to `unchecked`."""
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
            for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
                for path, text in _crd_messages(error):
                    message = f"{label}: {_path_text(path)}: {text} (CRD {crd.group}/{crd.version})"
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
                if unchecked is not None:  # a custom resource whose CRD is not at hand (--crds): counted, not checked
                    unchecked.append(f"{obj['apiVersion']} {obj['kind']}")
                continue
            message = f"{label}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {kube_version}: {exc}"
            problems.append(Problem(message, location, rule="schema"))
    return problems


def _bound_params(resolver: Resolver, name: str, given: Sequence[str]) -> list[list[str]]:
    """Extra parameter sets at each integer parameter's minimum and maximum (unless given explicitly)."""
    given_names = {pair[0] for raw in given if (pair := split_assignment(raw))}
    extra: list[list[str]] = []
    for pname, decl in resolver.declared_params(name).items():
        if not isinstance(decl, dict) or decl.get("type") != "integer" or pname in given_names:
            continue
        for bound in ("minimum", "maximum"):
            if isinstance(decl.get(bound), int):
                extra.append([*given, f"{pname}={decl[bound]}"])
    return extra


@dataclass
class ValidationReport:
    problems: list[Problem]
    warnings: list[Problem]
    checked: list[str]
    unchecked: list[str]  # "apiVersion Kind" of each custom resource no schema was found for
    lost: list[str] = dataclasses.field(default_factory=list)  # environments whose worker process died

    def counts(self, strict: bool = False) -> str:
        """`2 errors, 1 warning (web-pr: 2 errors; local, web-pr: 1 warning)`; --strict says warnings count."""
        def plural(n: int, word: str) -> str:
            return f"{n} {word}{'s' if n != 1 else ''}"

        per_env: dict[str, list[int]] = {}
        for index, group in enumerate((self.problems, self.warnings)):
            for problem in group:
                for env in problem.environments or ("-",):
                    per_env.setdefault(env, [0, 0])[index] += 1
        detail = "; ".join(
            f"{env}: {', '.join(t for t in (plural(e, 'error') if e else '', plural(w, 'warning') if w else '') if t)}"
            for env, (e, w) in per_env.items()
        )
        text = f"{plural(len(self.problems), 'error')}, {plural(len(self.warnings), 'warning')}"
        text += f" ({detail})" if detail else ""
        if strict and self.warnings:
            text += "; --strict: warnings are errors"
        return text

    def failed(self, strict: bool = False) -> bool:
        return bool(self.problems or (strict and self.warnings))

    def summary(self) -> str:
        text = f"ok: {', '.join(self.checked)}"
        if self.warnings:
            text += f" ({len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''})"
        if self.unchecked:
            kinds = sorted(set(self.unchecked))
            text += (
                f" ({len(self.unchecked)} custom resource{'s' if len(self.unchecked) != 1 else ''} had no schema and "
                f"{'were' if len(self.unchecked) != 1 else 'was'} not checked: {', '.join(kinds)}; pass --crds DIR)"
            )
        return text


def validate_report(
    names: Sequence[str],
    *,
    root: Path | None = None,
    params: Sequence[str] = (),
    sets: Sequence[str] = (),
    kube_version: str | None = None,
    crd_dirs: Sequence[Path] = (),
    project: Project | None = None,
    jobs: int | None = 1,
) -> ValidationReport:
    """Every check of `names` (all environments when empty), each environment on its own: with
    jobs != 1 they are split over worker processes (None: one per CPU, see envspec.parallel), and
    the report is the same, in the same order."""
    version = check_kube_version(kube_version) if kube_version is not None else DEFAULT_KUBE_VERSION
    crds = load_crds(crd_dirs)
    project = project or find_project(root)
    resolver = Resolver(project)
    targets = list(names) or project.environment_names()

    def one(name: str) -> tuple[list[Problem], list[Problem], list[str]]:
        """One environment's errors, warnings and unchecked custom resources (plain data: it may run
        in a worker process, see envspec.parallel)."""
        problems: list[Problem] = []
        warnings: list[Problem] = []
        unchecked: list[str] = []
        seen: set[str] = set()
        try:
            extra = _bound_params(resolver, name, params)
        except SpecError:
            extra = []  # the file does not load: the first run reports why, and the other environments go on
        runs = [list(params)] + extra
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
                        problems.append(dataclasses.replace(problem, message=problem.message + note, environments=(name,)))
                continue
            if index == 0:
                warnings.extend(dataclasses.replace(w, environments=(name,)) for w in compiled.warnings)
                problems.extend(dataclasses.replace(p, environments=(name,))
                                for p in check_schemas(compiled, version, crds, unchecked))
        return problems, warnings, unchecked

    lost: list[str] = []

    def died(name: str, why: str) -> tuple[list[Problem], list[Problem], list[str]]:
        lost.append(name)
        return [dataclasses.replace(worker_died(project, name, why), environments=(name,))], [], []

    problems: list[Problem] = []
    warnings: list[Problem] = []
    unchecked: list[str] = []
    workers = parallel.worker_count(len(targets), jobs, parallel.PER_WORKER_VALIDATE)
    for env_problems, env_warnings, env_unchecked in parallel.map_in_workers(targets, one, workers=workers, lost=died):
        problems += env_problems
        warnings += env_warnings
        unchecked += env_unchecked
    return ValidationReport(merge_environments(problems), merge_environments(warnings), targets, unchecked, lost)


def merge_environments(problems: Sequence[Problem]) -> list[Problem]:
    """One problem per text: a mistake in a shared file (`_defaults.yaml`) is reported once, naming
    every environment it showed in, in the order they were checked."""
    merged: dict[str, Problem] = {}
    for problem in problems:
        key = str(dataclasses.replace(problem, environments=()))
        if key in merged:
            old = merged[key]
            envs = old.environments + tuple(e for e in problem.environments if e not in old.environments)
            merged[key] = dataclasses.replace(old, environments=envs)
        else:
            merged[key] = problem
    return list(merged.values())
