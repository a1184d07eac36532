"""Which environments are per-pull-request previews, read from their `preview:` block.

`envspec gc` must know which instances belong to a pull request and which PR,
without a site's naming convention in Python: the environment says which
parameter carries the PR number, and its `instance:` template (for example
`web-pr-${params.pr}`) says how that number appears in an instance's name.
Read from the composed file (before parameters are resolved), so no PR number
is needed to find the previews.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envspec.errors import Problem, SpecError
from envspec.spec.merge import load_composed
from envspec.spec.project import Project

_REF = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class PreviewSpec:
    environment: str
    pr_param: str
    ttl: str | None
    instance_pattern: re.Pattern[str]

    def pr_of(self, instance: str) -> int | None:
        """The PR number an instance of this preview belongs to, or None when its name does not say."""
        match = self.instance_pattern.fullmatch(instance)
        return int(match.group("pr")) if match else None


def instance_pattern(template: str, pr_param: str) -> re.Pattern[str] | None:
    """A regular expression for instance names made from `template`; None without the PR parameter in it."""
    parts: list[str] = []
    found = False
    last = 0
    for match in _REF.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        if match.group(1).strip() == f"params.{pr_param}" and not found:
            parts.append(r"(?P<pr>[1-9][0-9]*)")
            found = True
        else:
            parts.append(r"[-a-z0-9]+?")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts)) if found else None


def preview_environments(project: Project) -> dict[str, PreviewSpec]:
    """Every environment of the project that declares `preview:`."""
    out: dict[str, PreviewSpec] = {}
    problems: list[Problem] = []
    for name in project.environment_names():
        data, positions, _ = load_composed(project, project.environment_path(name))
        block = data.get("preview")
        if not isinstance(block, dict):
            continue
        pr_param = str(block.get("prParam") or "pr")
        template = str(data.get("instance") or name)
        pattern = instance_pattern(template, pr_param)
        if pattern is None:
            problems.append(
                Problem(
                    f"a preview's instance name must contain ${{params.{pr_param}}}, so gc can tell which PR "
                    f"an instance belongs to (instance is {template!r})",
                    positions.lookup(("instance",) if "instance" in data else ("preview",)),
                    "instance" if "instance" in data else "preview",
                )
            )
            continue
        ttl = block.get("ttl")
        out[name] = PreviewSpec(name, pr_param, str(ttl) if ttl else None, pattern)
    if problems:
        raise SpecError(problems)
    return out
