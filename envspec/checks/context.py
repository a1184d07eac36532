"""What every rule can see: the resolved spec (with positions), the rendered objects and the environments it uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from envspec.errors import Location, Problems
from envspec.spec.models import Environment
from envspec.spec.resolve import ResolvedSpec, dotted


@dataclass
class RuleContext:
    resolved: ResolvedSpec
    objects: list[dict[str, Any]]
    problems: Problems
    origins: list[tuple[str | int, ...]] = field(default_factory=list)  # spec path of each object (same order)
    current_rule: str = field(default="", init=False)

    @property
    def spec(self) -> Environment:
        return self.resolved.spec

    def all_specs(self) -> Iterator[Environment]:
        """This environment and, transitively, those it uses (for gateways, issuers and services they own)."""
        seen: set[str] = set()
        stack = [self.resolved]
        while stack:
            current = stack.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            yield current.spec
            stack.extend(current.used.values())

    def locate(self, path: tuple[str | int, ...]) -> Location | None:
        return self.resolved.positions.lookup(path)

    def _note(self, path: tuple[str | int, ...], message: str) -> str:
        """Objects of a project template: name the template, since the spec line only requested it."""
        if len(path) >= 2 and path[0] == "templates" and isinstance(path[1], int) and path[1] < len(self.spec.templates):
            return f"{message} (rendered by template {self.spec.templates[path[1]]})"
        if len(path) == 2 and path[0] == "components" and path[1] in self.spec.components:
            use = self.spec.components[str(path[1])].use
            return f"{message} (rendered by component {use}, components/{use}/)"
        return message

    def error(self, rule: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.error(self._note(path, message), self.locate(path), dotted(path), rule)

    def warn(self, rule: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.warn(self._note(path, message), self.locate(path), dotted(path), rule)
