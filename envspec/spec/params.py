"""Stage 2b: typed parameters given on the command line.

A spec declares its parameters (`params:`); the command line supplies values
(`--pr 107` is `--param pr=107`). Values are checked against their declaration
here, before anything is rendered, so `--pr 0` or a truncated image digest is a
located error instead of a broken manifest.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from envspec.errors import MISSING_PARAMETER, Location, Problem, Problems
from envspec.memo import Bounded
from envspec.objects import DIGEST_PATTERN
from envspec.spec.base import SpecModel
from envspec.spec.loader import Positions

DIGEST_RE = re.compile(rf"^{DIGEST_PATTERN}$")
# registry/path[:tag][@digest]; components per the distribution reference grammar, simplified.
IMAGE_RE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z0-9+._-]+:[A-Za-z0-9=_-]+))?$"
)


class ImageRef:
    """A parsed container image reference."""

    def __init__(self, name: str, tag: str | None, digest: str | None):
        self.name, self.tag, self.digest = name, tag, digest

    @property
    def pinned(self) -> bool:
        return self.digest is not None and bool(DIGEST_RE.match(self.digest))


def parse_image(value: str) -> tuple[ImageRef | None, str | None]:
    """(reference, None) or (None, reason)."""
    match = IMAGE_RE.match(value)
    if not match:
        return None, "not a valid image reference (expected registry/name[:tag][@sha256:<64 hex>])"
    digest = match.group("digest")
    if digest is not None and not DIGEST_RE.match(digest):
        hexpart = digest.split(":", 1)[-1]
        if digest.startswith("sha256:") and re.fullmatch(r"[0-9a-f]*", hexpart):
            return None, f"digest is truncated: sha256 needs 64 hex characters (got {len(hexpart)})"
        return None, "digest must be sha256:<64 lowercase hex>"
    return ImageRef(match.group("name"), match.group("tag"), digest), None


class Param(SpecModel):
    """A parameter the command line may (or must) supply."""

    type: Literal["integer", "string", "enum", "image"]
    description: str = ""
    default: int | str | None = None
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    values: list[str] | None = Field(default=None, description="Allowed values of an enum parameter.")
    digest: Literal["required", "optional"] = Field(
        default="optional", description="For image parameters: whether a sha256 digest must be present."
    )
    example: int | str | None = Field(
        default=None, description="A value used by `validate` when the parameter has no default."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Param":
        if self.type == "enum" and not self.values:
            raise ValueError("an enum parameter needs `values`")
        if self.type != "enum" and self.values is not None:
            raise ValueError("`values` applies only to enum parameters")
        if self.type != "integer" and (self.minimum is not None or self.maximum is not None):
            raise ValueError("`minimum`/`maximum` apply only to integer parameters")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("`minimum` is greater than `maximum`")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"`pattern` is not a valid regular expression: {exc}") from None
        return self

    @property
    def required(self) -> bool:
        return self.default is None

    def coerce(self, raw: Any) -> tuple[Any, str | None]:
        """Check one value; return (typed value, None) or (None, reason)."""
        if self.type == "integer":
            if isinstance(raw, bool):
                return None, f"must be an integer (got {raw!r})"
            if isinstance(raw, int):
                value = raw
            else:
                text = str(raw).strip()
                if not re.fullmatch(r"[+-]?[0-9]+", text):
                    return None, f"must be an integer (got {str(raw)!r})"
                value = int(text)
            if self.minimum is not None and value < self.minimum:
                return None, f"must be >= {self.minimum} (got {value})"
            if self.maximum is not None and value > self.maximum:
                return None, f"must be <= {self.maximum} (got {value})"
            return value, None
        text = str(raw)
        if self.type == "enum":
            assert self.values is not None
            if text not in self.values:
                return None, f"must be one of {', '.join(self.values)} (got {text!r})"
            return text, None
        if self.type == "image":
            ref, reason = parse_image(text)
            if ref is None:
                return None, f"{reason} (got {text!r})"
            if self.digest == "required" and not ref.pinned:
                return None, f"must be pinned by digest (@sha256:<64 hex>) (got {text!r})"
            return text, None
        if self.pattern is not None:
            matched = fullmatch_bounded(self.pattern, text)
            if matched is None:
                return None, f"`pattern` {self.pattern} took over {PATTERN_SECONDS:g} s to match {text!r}; simplify it (nested repetition such as (a+)+ backtracks exponentially)"
            if not matched:
                return None, f"must match {self.pattern} (got {text!r})"
        return text, None


PATTERN_SECONDS = 1.0


def fullmatch_bounded(pattern: str, text: str, seconds: float = PATTERN_SECONDS) -> bool | None:
    """re.fullmatch, but None instead of a hang when a pattern backtracks catastrophically.

    A parameter value may come from a pull request (CI passes it with --param), so a pattern
    like (a+)+ must not let it stall the run.
    """
    from envspec.timelimit import TimeLimitExceeded, time_limit

    key = (pattern, text)
    if key in _MATCHED:  # the budget (a timer per call) costs more than most matches: each pair is matched once
        return _MATCHED[key]
    try:
        with time_limit(seconds):
            matched = re.fullmatch(pattern, text) is not None
    except TimeLimitExceeded:
        return None  # not kept: a budget that ran out is no verdict on the pattern
    _MATCHED.remember(key, matched)
    return matched


# Verdicts of fullmatch_bounded by (pattern, text): `render --all` checks the same component and
# parameter values in every environment. A verdict depends on nothing else; one process only.
_MATCHED: Bounded[tuple[str, str], bool] = Bounded(4096)


class SourcedParam(str):
    """A NAME=VALUE read from somewhere other than the command line (`ARGOCD_ENV_PR`, ARGOCD_APP_PARAMETERS).

    It is a plain string everywhere else; only its problems differ: they point at the variable the
    value came from, not at the spec's `params:` or a `--param` flag the user never wrote.
    """

    source: Location

    def __new__(cls, text: str, source: Location) -> "SourcedParam":
        value = super().__new__(cls, text)
        value.source = source
        return value


def split_assignment(raw: str) -> tuple[str, str] | None:
    if "=" not in raw:
        return None
    name, value = raw.split("=", 1)
    name = name.strip()
    return (name, value) if name else None


def resolve_params(
    declared: dict[str, Param],
    raw_values: list[str],
    positions: Positions,
    problems: Problems,
    *,
    use_examples: bool = False,
) -> dict[str, Any]:
    """Typed values for every declared parameter; problems for missing, unknown or ill-typed ones."""
    given: dict[str, str] = {}
    sources: dict[str, Location] = {}  # where a value not given by a flag came from (the last one given wins)
    for raw in raw_values:
        pair = split_assignment(raw)
        source = raw.source if isinstance(raw, SourcedParam) else None
        if pair is None:
            problems.error(f"--param {raw!r}: expected NAME=VALUE", source)
            continue
        name, value = pair
        if name not in declared:
            hint = difflib.get_close_matches(name, list(declared), n=1)
            known = f"; did you mean {hint[0]!r}?" if hint else f" (declared: {', '.join(sorted(declared)) or 'none'})"
            problems.error(f"unknown parameter {name!r}{known}", source or positions.lookup(("params",)), f"params.{name}")
            continue
        given[name] = value
        if source is not None:
            sources[name] = source
        else:
            sources.pop(name, None)

    values: dict[str, Any] = {}
    for name, param in declared.items():
        location = positions.lookup(("params", name))
        if name in given:
            value, reason = param.coerce(given[name])
            if reason:
                if name in sources:
                    problems.error(reason, sources[name], f"params.{name}")
                else:
                    flag = "--pr" if name == "pr" else f"--param {name}"
                    problems.error(f"{flag}: {reason}", location, f"params.{name}")
                continue
            values[name] = value
        elif isinstance(param.default, str) and "${" in param.default:
            values[name] = param.default  # references other parameters: resolved and checked afterwards
        elif param.default is not None:
            value, reason = param.coerce(param.default)
            if reason:
                problems.error(f"default: {reason}", positions.lookup(("params", name, "default")), f"params.{name}.default")
                continue
            values[name] = value
        elif use_examples and param.example is not None:
            values[name] = param.coerce(param.example)[0]
        else:
            flag = "--pr N" if name == "pr" else f"--param {name}=..."
            problems.add(
                Problem(f"missing required parameter {name!r} (pass {flag})", location, f"params.{name}", code=MISSING_PARAMETER)
            )
    return values
