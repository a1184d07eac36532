"""Problems a person can act on.

Every stage reports what went wrong as `Problem`s that carry a source location
and a dotted path; the CLI prints them as ``file:line:col: dotted.path: message``.
Stages collect problems instead of raising on the first one, so a run reports
everything it found at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

Severity = Literal["error", "warning"]

# Problem codes callers react to.
MISSING_PARAMETER = "missing-parameter"

# Exit codes used across the CLI.
EXIT_OK = 0
EXIT_CHANGES = 1  # diff found changes, or --check found stale output
EXIT_USER_ERROR = 2  # bad spec, parameter, template, flag or refusal by a guard
EXIT_OPERATION = 3  # a cluster, cloud, helm or GitHub operation failed (like kubectl diff's >1)
EXIT_INTERNAL = 70  # a bug in envspec itself (EX_SOFTWARE): never a user error


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a file (spec or template)."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        path = one_line(self.path)
        if self.line <= 0:
            return path
        if self.col <= 0:
            return f"{path}:{self.line}"
        return f"{path}:{self.line}:{self.col}"


_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode("ascii") for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


_RARE_LINE_BREAKS = {k: v for k, v in _LINE_BREAKS.items() if k != ord("\n")}


def one_line(text: str) -> str:
    """`text` with every character that would start a new output line escaped (a --set value may hold any)."""
    return text.translate(_LINE_BREAKS)


@dataclass(frozen=True)
class Problem:
    message: str
    location: Location | None = None
    path: str = ""  # dotted path inside the spec, e.g. apps.api.replicas
    severity: Severity = "error"
    rule: str | None = None  # name of the semantic rule that raised it, if any
    code: str | None = None  # a machine-readable kind for callers that react to it (not printed)
    environments: tuple[str, ...] = ()  # where validate found it (a shared file's problem shows in several)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.severity == "warning":
            parts.append("warning")
        if self.path:
            parts.append(one_line(self.path))
        message = f"{self.message} [{self.rule}]" if self.rule else self.message
        parts.append(message.translate(_RARE_LINE_BREAKS))  # "\n" stays: some operation errors span lines
        return ": ".join(parts)


class EnvspecError(Exception):
    """Base for errors the CLI reports without a traceback."""

    exit_code: int = EXIT_USER_ERROR

    def __init__(self, problems: Iterable[Problem] | str, *, exit_code: int | None = None):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: list[Problem] = list(problems)
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(EnvspecError):
    """The user's input (spec, parameters, templates, flags) is wrong."""

    exit_code = EXIT_USER_ERROR


class OperationError(EnvspecError):
    """Something outside the user's input failed: cluster, cloud API, helm, GitHub."""

    exit_code = EXIT_OPERATION


@dataclass
class Problems:
    """Collector used by stages that keep going after the first problem."""

    items: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    def error(self, message: str, location: Location | None = None, path: str = "", rule: str | None = None) -> None:
        self.items.append(Problem(message, location, path, "error", rule))

    def warn(self, message: str, location: Location | None = None, path: str = "", rule: str | None = None) -> None:
        self.items.append(Problem(message, location, path, "warning", rule))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)
