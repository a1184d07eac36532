"""Stage 8: semantic rules, each named after the failure it prevents.

Schemas say a manifest is well-formed; these rules say it will work. Each rule
is a function in `rules.py` taking a `RuleContext` and reporting problems at the
spec line responsible. `run_rules` runs them all and collects everything.
"""

from __future__ import annotations

from typing import Any

from envspec.checks.context import RuleContext
from envspec.checks.rules import RULES
from envspec.errors import Problems
from envspec.spec.resolve import ResolvedSpec


def run_rules(
    resolved: ResolvedSpec, objects: list[dict[str, Any]], problems: Problems, origins: list[tuple[str | int, ...]] | None = None
) -> None:
    ctx = RuleContext(resolved, objects, problems, list(origins or []))
    for rule in RULES:
        rule(ctx)


__all__ = ["run_rules", "RULES", "RuleContext"]
