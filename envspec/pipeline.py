"""The compiler, stage by stage:

    spec file -> load (positions) -> extends / --set / params / ${...} -> Environment model   (envspec.spec.resolve)
              -> components -> template units (envspec.components, envspec.render.context)
              -> Jinja -> parsed objects                                                   (envspec.render.templates)
              -> + raw objects (envspec.render.raw) -> patches (envspec.render.patches)
              -> labels, checksums, order (envspec.render.normalize, envspec.kinds)
              -> semantic rules (envspec.checks) -> objects + DeployPlan (envspec.plan)

Output, diff and apply take it from there; nothing here imports the deployer (envspec.kube).
This module only wires the stages.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from envspec.errors import EXIT_INTERNAL, MISSING_PARAMETER, Location, Problem, Problems, SpecError
from envspec.render.context import base_labels, build_units
from envspec.render.normalize import duplicate_ids, normalize, secret_skeleton
from envspec.render.patches import apply_patches
from envspec.render.raw import raw_objects
from envspec.render.templates import render_units
from envspec.spec.base import plain
from envspec.spec.crossref import reference_problems
from envspec.spec.models import Environment
from envspec.spec.project import Project, find_project
from envspec.spec.resolve import ResolvedSpec, Resolver

if TYPE_CHECKING:  # pragma: no cover
    from envspec.plan import DeployPlan

T = TypeVar("T")


@dataclass
class Compiled:
    name: str
    instance: str
    source: Path
    resolved: ResolvedSpec
    objects: list[dict[str, Any]]
    labels: dict[str, str]
    warnings: list[Problem] = field(default_factory=list)
    origins: list[tuple[str | int, ...]] = field(default_factory=list)  # spec path of each object
    sources: list[Location | None] = field(default_factory=list)  # the file position of raw objects from files

    def locate(self, index: int) -> Location | None:
        """The position responsible for objects[index]: its raw-object file, else its spec path."""
        if index < len(self.sources) and self.sources[index] is not None:
            return self.sources[index]
        return self.resolved.positions.lookup(self.origins[index] if index < len(self.origins) else ())

    @property
    def spec(self) -> Environment:
        return self.resolved.spec

    @functools.cached_property
    def plan(self) -> "DeployPlan":
        """What apply, diff and destroy need; built on first use, so rendering never pays for it."""
        return build_plan(self.resolved, self.objects, self.labels, self.origins)


def compile_environment(
    name: str,
    *,
    root: Path | None = None,
    params: Sequence[str] = (),
    sets: Sequence[str] = (),
    use_examples: bool = False,
    project: Project | None = None,
) -> Compiled:
    project = project or find_project(root)
    resolved = Resolver(project).resolve(name, params, sets, use_examples=use_examples)
    return compile_resolved(project, resolved)


def compile_resolved(project: Project, resolved: ResolvedSpec) -> Compiled:
    from envspec.checks import run_rules

    spec, name, instance = resolved.spec, resolved.name, resolved.instance
    problems = Problems()
    units = build_units(spec, name, instance, project.root, problems, resolved.locate_path)
    problems.raise_if_errors()
    rendered = render_units(units, project.templates_dir, problems, resolved.locate_path)
    rendered += raw_objects(spec, project.root, problems, resolved.locate_path)
    problems.raise_if_errors()

    labels = base_labels(name, instance, spec.labels)
    rendered = apply_patches(rendered, list(spec.patches), labels, problems, resolved.locate_path)
    problems.raise_if_errors()
    secret_sources = {
        (s.namespace or spec.namespace.name, sname): plain(s, exclude_defaults=True)
        for sname, s in spec.secrets.items()
    }
    objects, sources = normalize(rendered, labels, secret_sources, spec.namespace.name)
    origins = [r.origin for r in sources]
    for dupe in duplicate_ids(objects):
        problems.error(f"two objects render as {dupe}", resolved.locate())
    references = reference_problems(spec, resolved.positions, objects)
    if references:  # a missing Secret is the cause; rules (requiredEnv) would only report its symptoms
        problems.items.extend(references)
        problems.raise_if_errors()

    # The Secrets built at apply time are never rendered, but their skeletons meet the same rules.
    built = apply_time_secrets(spec, labels)
    run_rules(resolved, objects + [o for o, _ in built], problems, origins + [p for _, p in built])
    problems.raise_if_errors()
    return Compiled(
        name, instance, resolved.source, resolved, objects, labels, problems.warnings, origins, [r.location for r in sources]
    )


def apply_time_secrets(spec: Environment, labels: dict[str, str]) -> list[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """The skeleton (no data) of each Secret apply builds from `secrets:`, with the spec path that asks for it."""
    return [
        (secret_skeleton(sname, s.namespace or spec.namespace.name, s.type, labels),
         ("secrets", sname))
        for sname, s in spec.secrets.items()
        if s.external is None
    ]


def job_gates(spec: Environment, objects: list[dict[str, Any]], origins: Sequence[tuple[str | int, ...]]) -> dict[str, list[str]]:
    """Each object an app with `after:` rendered -> the ids of the Jobs it waits for (found by spec origin)."""
    from envspec.objects import object_id

    jobs: dict[str, str] = {}
    for obj, origin in zip(objects, origins):
        if obj.get("kind") == "Job" and origin[:1] == ("jobs",) and len(origin) > 1:
            jobs[str(origin[1])] = object_id(obj)
        elif obj.get("kind") == "Job" and tuple(origin) == ("database",):
            jobs[spec.database.job if spec.database else ""] = object_id(obj)
    gates: dict[str, list[str]] = {}
    for obj, origin in zip(objects, origins):
        if origin[:1] == ("apps",) and len(origin) > 1 and str(origin[1]) in spec.apps:
            needs = [jobs[j] for j in spec.apps[str(origin[1])].after if j in jobs]
            if needs:
                gates[object_id(obj)] = needs
    return gates


def object_sources(
    resolved: ResolvedSpec, objects: list[dict[str, Any]], origins: Sequence[tuple[str | int, ...]]
) -> dict[str, tuple[Location | None, str]]:
    """Each object's id -> where the spec asks for it (a namespace: the key that names it)."""
    from envspec.objects import object_id
    from envspec.spec.resolve import dotted

    out: dict[str, tuple[Location | None, str]] = {}
    for obj, origin in zip(objects, origins):
        path = tuple(origin)
        if obj.get("kind") == "Namespace" and path == ("namespace",):
            path = ("namespace", "name")
        out[object_id(obj)] = (resolved.positions.lookup(path), dotted(path))
    return out


def build_plan(
    resolved: ResolvedSpec,
    objects: list[dict[str, Any]],
    labels: dict[str, str],
    origins: Sequence[tuple[str | int, ...]] = (),
) -> "DeployPlan":
    """What apply/diff/destroy need beyond the objects; secret *sources* only, never values."""
    from envspec.components.database.lifecycle import plan_parts as database_plan_parts
    from envspec.plan import ClusterBinding, DeployPlan, HelmChart, RemoteManifest, SecretSource

    spec = resolved.spec
    secrets = [
        SecretSource(
            name=sname,
            namespace=s.namespace or spec.namespace.name,
            type=s.type,
            data_from_env=dict(s.fromEnv) if s.type == "Opaque" else {"password": s.passwordEnv or ""},
            registry=s.registry,
            username=s.username,
            labels=labels,
            generate=tuple(s.generate),
        )
        for sname, s in spec.secrets.items()
        if s.external is None  # external secrets are rendered as ExternalSecret objects instead
    ]
    helm = [
        HelmChart(release=rname, namespace=c.namespace, repository=c.repository, chart=c.chart, version=c.version, values=c.values)
        for rname, c in spec.helm.items()
    ]
    owned = [spec.namespace.name] if spec.namespace.create else []
    if spec.gateway and spec.gateway.createNamespace:
        owned.append(spec.gateway.namespace)
    drop, database_secrets = database_plan_parts(spec, labels)
    secrets += database_secrets
    return DeployPlan(
        environment=resolved.name,
        instance=resolved.instance,
        objects=objects,
        cluster=ClusterBinding(
            context=spec.cluster.context,
            server=spec.cluster.server,
            digitalocean_cluster=spec.digitalocean.cluster.name if spec.digitalocean and spec.digitalocean.cluster else None,
            ca_fingerprint=spec.cluster.caFingerprint,
            digitalocean=spec.cluster.digitalocean,
        ),
        labels=labels,
        secrets=secrets,
        helm=helm,
        remote_manifests=[RemoteManifest(url=m.url, sha256=m.sha256) for m in spec.manifests],
        owned_namespaces=owned,
        protected_namespaces=list(spec.protectedNamespaces),
        requires_confirmation=spec.cluster.confirm,
        requires_pinned_images=spec.requirePinnedImages,
        app_images=sorted({app.image for app in spec.apps.values() if app.pinImage}),
        database_drop=drop,
        outputs={k: v if isinstance(v, str) else str(v) for k, v in spec.outputs.items()},
        applyset_namespace=spec.namespace.name,
        after=job_gates(spec, objects, origins),
        sources=object_sources(resolved, objects, origins),
    )


def compile_all(
    project: Project,
    names: Sequence[str] | None = None,
    *,
    finish: Callable[[Compiled], T] | None = None,
    jobs: int | None = 1,
) -> tuple[dict[str, Any], list[str]]:
    """Every environment that compiles without parameters; the names needing parameters are returned apart.

    Each environment compiles on its own, so with `finish` (what the caller keeps of each Compiled:
    plain data such as file texts and warnings, since it runs in a worker and crosses a pipe) they
    are split over `jobs` worker processes (None: one per CPU, fewer for few environments; see
    envspec.parallel). Results, skipped names and errors come back in the serial order, all at once.
    Without `finish` the Compiled objects are returned and everything runs in this process.
    """
    from envspec import parallel

    resolver = Resolver(project)

    def one(env_name: str) -> tuple[str, Any]:
        try:
            resolved = resolver.resolve(env_name)
        except SpecError as exc:
            if all(p.code == MISSING_PARAMETER for p in exc.problems):
                return "skipped", None
            return "problems", exc.problems
        try:
            result = compile_resolved(project, resolved)
        except SpecError as exc:
            return "problems", exc.problems
        return "compiled", finish(result) if finish is not None else result

    def lost(env_name: str, why: str) -> tuple[str, Any]:
        return "lost", [worker_died(project, env_name, why)]

    targets = list(names or project.environment_names())
    workers = parallel.worker_count(len(targets), jobs) if finish is not None else 1
    compiled: dict[str, Any] = {}
    skipped: list[str] = []
    problems: list[Problem] = []
    crashed = False
    for env_name, (outcome, value) in zip(targets, parallel.map_in_workers(targets, one, workers=workers, lost=lost)):
        if outcome == "compiled":
            compiled[env_name] = value
        elif outcome == "skipped":
            skipped.append(env_name)
        else:
            problems.extend(value)
            crashed = crashed or outcome == "lost"
    if problems:
        raise SpecError(problems, exit_code=EXIT_INTERNAL if crashed else None)
    return compiled, skipped


def worker_died(project: Project, env_name: str, why: str) -> Problem:
    """The error that stands for an environment whose worker process died while compiling it."""
    return Problem(
        f"the worker process compiling {env_name!r} died ({why}); nothing of it was checked or rendered "
        "(run with --jobs 1 to compile in one process)",
        Location(project.display(project.environments_dir / f"{env_name}.yaml")),
    )
