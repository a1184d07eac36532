"""Start and discover: the effective configuration of an environment, the list of environments, a new project.

`config` is the merged and resolved spec (after extends, --set, parameters and
`${...}`): what the model holds, not what is rendered. A spec never holds a
secret value (it names the environment variable each value comes from), so
neither does this output.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from envspec.errors import MISSING_PARAMETER, Location, Problem, SpecError
from envspec.spec.project import ENVIRONMENTS_DIR, Project
from envspec.spec.resolve import Resolver


def effective_config(project: Project, name: str, params: Sequence[str] = (), sets: Sequence[str] = (),
                     *, use_examples: bool = False) -> dict[str, Any]:
    resolved = Resolver(project).resolve(name, params, sets, use_examples=use_examples)
    data = resolved.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("extends", None)  # already merged in
    data["params"] = dict(resolved.params)  # the values in effect, not their declarations
    return data


def config_text(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    from envspec.render.output import dump_one

    return dump_one(data)


def config_diff(project: Project, a: str, b: str) -> str:
    """A unified diff of two environments' effective specs (parameters at their defaults or examples)."""
    left = config_text(effective_config(project, a, use_examples=True), "yaml")
    right = config_text(effective_config(project, b, use_examples=True), "yaml")
    return "".join(
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(left.splitlines(True), right.splitlines(True), fromfile=a, tofile=b)
    )


# ---------------------------------------------------------------- list


@dataclass
class EnvironmentInfo:
    name: str
    description: str
    params: list[dict[str, Any]]
    cluster: str
    renders_without_parameters: bool
    error: str | None = None  # the environment does not resolve (validate says why)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params": self.params, "cluster": self.cluster,
                "rendersWithoutParameters": self.renders_without_parameters, "error": self.error}


def _binding(cluster: dict[str, Any]) -> str:
    parts = []
    if cluster.get("context"):
        parts.append(f"context {cluster['context']}")
    if cluster.get("server"):
        parts.append(f"server {cluster['server']}")
    if cluster.get("caFingerprint"):
        parts.append("CA fingerprint")
    if cluster.get("digitalocean"):
        parts.append("DigitalOcean endpoint")
    if cluster.get("confirm"):
        parts.append("confirm")
    return ", ".join(parts) or "-"


def list_environments(project: Project) -> list[EnvironmentInfo]:
    from envspec.spec.merge import load_composed

    resolver = Resolver(project)
    out: list[EnvironmentInfo] = []
    for name in project.environment_names():
        try:
            data, _, _ = load_composed(project, project.environment_path(name))
        except SpecError as exc:
            out.append(EnvironmentInfo(name, "", [], "-", False, str(exc.problems[0])))
            continue
        params = []
        for pname, decl in (data.get("params") or {}).items():
            if isinstance(decl, dict):
                entry = {"name": pname, "type": decl.get("type")}
                entry.update({k: decl[k] for k in ("default", "example", "description") if k in decl})
                entry["required"] = "default" not in decl
                params.append(entry)
        cluster = data.get("cluster") if isinstance(data.get("cluster"), dict) else {}
        renders, error = True, None
        try:
            resolver.resolve(name)
        except SpecError as exc:
            renders = False
            if not all(p.code == MISSING_PARAMETER for p in exc.problems):
                error = str(exc.problems[0])
        out.append(EnvironmentInfo(name, str(data.get("description") or ""), params, _binding(cluster), renders, error))
    return out


def list_text(infos: list[EnvironmentInfo]) -> str:
    lines = []
    for info in infos:
        renders = "renders without parameters" if info.renders_without_parameters else "needs parameters"
        if info.error:
            renders = f"has errors: {info.error}"
        lines.append(f"{info.name}: {renders}; cluster: {info.cluster}")
        if info.description:
            lines.append(f"  {info.description}")
        for p in info.params:
            default = f" = {json.dumps(p['default'])}" if "default" in p else " (required)"
            example = f", e.g. {json.dumps(p['example'])}" if "example" in p else ""
            lines.append(f"  --param {p['name']}: {p['type']}{default}{example}")
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------- init

SCHEMA_HEADER = "# yaml-language-server: $schema=../schemas/environment.schema.json\n"

DEFAULTS = """# Shared by every environment of this project: environments `extends: _defaults` and
# override what differs; `key: null` removes an inherited key.
labels:
  app.kubernetes.io/part-of: {project}

apps:
  web:
    image: ${{params.image}}
    replicas: 1
    containers:
      web:
        port: 80
        readinessPath: /
        resources:
          requests: {{cpu: 50m, memory: 64Mi}}
          limits: {{cpu: 200m, memory: 128Mi}}
    service: {{port: 80}}
"""

ENVIRONMENT = SCHEMA_HEADER + """# envspec render {name}    envspec validate {name}    envspec explain {name} Deployment/web
extends: _defaults
description: {name} environment of {project}.
params:
  image: {{type: image, default: "nginxdemos/hello:0.4", description: The web image}}
cluster:
  # The one cluster this environment may touch; add `server:` or `caFingerprint:` to bind it for real.
  context: {context}
namespace:
  name: {project}-{name}
"""

GITIGNORE = """# envspec: output rendered by hand (`envspec render ENV --out out`), fetched kubeconfigs, the venv.
# Commit `rendered/` (envspec render --all) only if you deploy GitOps-style.
/out/
/kubeconfig*
*.kubeconfig
.venv/
"""

CI = """# envspec checks: specs valid, committed schema and rendered output current.
name: envspec
on: [push, pull_request]
permissions:
  contents: read
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.12"}
      - run: pip install envspec   # or the requirement your project pins
      - run: envspec validate   # annotations on the PR's diff (GITHUB_ACTIONS=true)
      - run: envspec schema --check
      - run: envspec render --all --check
"""


def scaffold(name: str, project_name: str, context: str) -> dict[str, str]:
    """Relative path -> content of a new project."""
    from envspec.schema import environment_schema_text

    values = {"name": name, "project": project_name, "context": context}
    return {
        f"{ENVIRONMENTS_DIR}/_defaults.yaml": DEFAULTS.format(**values),
        f"{ENVIRONMENTS_DIR}/{name}.yaml": ENVIRONMENT.format(**values),
        "schemas/environment.schema.json": environment_schema_text(),
        ".gitignore": GITIGNORE,
        ".github/workflows/envspec.yml": CI,
    }


def _dns_label(text: str) -> str:
    import re

    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")
    return label or "app"


def init_project(folder: Path, *, environment: str = "dev", context: str = "kind-kind") -> list[str]:
    """Write a new project into `folder`; refuses (writing nothing) when any of its files exists."""
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", environment):
        raise SpecError([Problem(f"environment name must be a DNS label (got {environment!r})", Location("--env"))])
    files = scaffold(environment, _dns_label(folder.resolve().name), context)
    existing = [rel for rel in files if (folder / rel).exists()]
    if existing:
        raise SpecError([Problem("exists; envspec init never overwrites a file (nothing was written)",
                                 Location(str(folder / rel))) for rel in existing])
    for rel, content in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as handle:  # "x": never replace a file that appeared meanwhile
            handle.write(content)
    return list(files)
