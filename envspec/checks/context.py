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
    origins: list[tuple[str | int, ...]] = field(default_factory=list)  # spec path of each object, index for index
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

    def error(self, rule: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.error(message, self.locate(path), dotted(path), rule)

    def warn(self, rule: str, path: tuple[str | int, ...], message: str) -> None:
        self.problems.warn(message, self.locate(path), dotted(path), rule)
