"""Garbage collection of preview environments whose pull request has ended.

`cleanup.yml` destroys a preview when its PR closes, but a cancelled run, an
outage or a manual `kubectl` session can leave one behind, and each costs a
database, quota and a DNS name. `envspec gc` finds what is left from the
cluster's own records (the ApplySet parents envspec writes per instance) and
destroys the instances whose PR is closed or that nobody applied for longer
than a TTL (measured from the parent's `envspec.dev/last-applied` stamp, or
its creation time when an older envspec wrote it without one).

Only an environment that declares itself a preview (`preview:` in its spec)
is ever a candidate, and only an instance whose name says which PR it
belongs to (by the environment's `instance:` template): gc must never be the
reason production or a shared base disappears. Deciding is kept apart from
doing (`decide` is pure), so the rules are tested without a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Sequence

from envspec.errors import SpecError
from envspec.spec.preview import PreviewSpec

_TRAILING_NUMBER = re.compile(r"^.*?-([1-9][0-9]*)$")
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class PreviewInstance:
    """An environment instance as found in the cluster."""

    instance: str  # e.g. "web-pr-107"
    environment: str  # the spec name recorded on the ApplySet parent
    created: datetime | None = None  # creation time of the ApplySet parent
    last_applied: datetime | None = None  # the parent's envspec.dev/last-applied stamp
    pr_number: int | None = None  # as the environment's instance template reads it (set by find_previews)

    @property
    def pr(self) -> int | None:
        if self.pr_number is not None:
            return self.pr_number
        match = _TRAILING_NUMBER.match(self.instance)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Verdict:
    """What gc decided about one instance, and why; `error` means the decision could not be made."""

    instance: PreviewInstance
    reasons: tuple[str, ...] = ()  # non-empty: past its end, destroy it
    note: str = ""  # why it is kept
    error: str = ""

    @property
    def expired(self) -> bool:
        return bool(self.reasons) and not self.error


ClosedLookup = Callable[[int], bool]  # PR number -> closed? (raises to report a lookup failure)


def parse_duration(text: str) -> timedelta:
    """`90m`, `36h`, `7d`, `2w`: one number and one unit, so nobody has to guess what `1h30` means."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise SpecError(f"--older-than: {text!r} is not a duration like 90m, 36h, 7d or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_closed_prs(text: str, source: str = "<stdin>") -> set[int]:
    """PR numbers, one per line; `#` starts a comment, blank lines are skipped."""
    numbers: set[int] = set()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.isdigit() or int(line) <= 0:
            raise SpecError(f"{source}:{lineno}: expected a PR number, got {line!r}")
        numbers.add(int(line))
    return numbers


def format_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{mins}m"
    return f"{mins}m"


def decide(
    instances: Iterable[PreviewInstance],
    *,
    previews: Mapping[str, PreviewSpec],
    is_closed: ClosedLookup | None,
    older_than: timedelta | None,
    now: datetime | None = None,
) -> list[Verdict]:
    """One verdict per instance of a preview environment (others are dropped), sorted by PR number.

    `older_than` None means each preview's own `ttl` (if it declares one)."""
    now = now or datetime.now(timezone.utc)
    verdicts: list[Verdict] = []
    for item in instances:
        preview = previews.get(item.environment)
        if preview is None:
            continue  # never a candidate, whatever its name says
        pr = preview.pr_of(item.instance)
        ttl = older_than if older_than is not None else (parse_duration(preview.ttl) if preview.ttl else None)
        if pr is None:
            verdicts.append(Verdict(item, note=f"kept: cannot tell which PR {item.instance!r} belongs to"))
            continue
        reasons: list[str] = []
        notes: list[str] = []
        if ttl is not None:
            reason, note = _ttl_verdict(item, ttl, now)
            reasons += [reason] if reason else []
            notes += [note] if note else []
        if is_closed is not None:
            try:
                if is_closed(pr):
                    reasons.insert(0, f"PR #{pr} is closed")
                else:
                    notes.append(f"PR #{pr} is open")
            except Exception as exc:  # noqa: BLE001 - one failed lookup must not hide the others
                if not reasons:
                    verdicts.append(Verdict(item, error=f"cannot tell whether PR #{pr} is closed: {exc}"))
                    continue
                notes.append(f"PR state unknown: {exc}")
        note = "kept: " + ", ".join(notes) if notes else "kept: within its TTL"
        verdicts.append(Verdict(item, reasons=tuple(reasons), note="" if reasons else note))
    return sorted(verdicts, key=lambda v: (v.instance.pr or 0, v.instance.instance))


@dataclass(frozen=True)
class GcOutcome:
    destroyed: list[str]
    failed: list[str]
    kept: list[str]

    @property
    def ok(self) -> bool:
        return not self.failed


def run_gc(
    verdicts: Sequence[Verdict],
    *,
    dry_run: bool,
    destroy: Callable[[PreviewInstance], str | None],
    echo: Callable[[str], None],
) -> GcOutcome:
    """Print each verdict and destroy the expired instances (unless dry-run); keep going past failures.

    `destroy` may return a note instead: it decided again under the instance's lease and kept it."""
    destroyed: list[str] = []
    failed: list[str] = []
    kept: list[str] = []
    expired = [v for v in verdicts if v.expired]
    echo(f"{len(verdicts)} preview instance(s) found, {len(expired)} past their end" + (" (dry run)" if dry_run else ""))
    for verdict in verdicts:
        name = verdict.instance.instance
        if verdict.error:
            echo(f"  {name}: ERROR {verdict.error}")
            failed.append(name)
            continue
        if not verdict.expired:
            echo(f"  {name}: {verdict.note}")
            kept.append(name)
            continue
        why = "; ".join(verdict.reasons)
        if dry_run:
            echo(f"  {name}: would destroy ({why})")
            continue
        echo(f"  {name}: destroying ({why})")
        try:
            kept_note = destroy(verdict.instance)
        except Exception as exc:  # noqa: BLE001 - report every instance, then fail the run
            message = "; ".join(str(p) for p in getattr(exc, "problems", [])) or str(exc) or type(exc).__name__
            echo(f"  {name}: FAILED {message}")
            failed.append(name)
        else:
            if kept_note:
                echo(f"  {name}: kept ({kept_note})")
                kept.append(name)
                continue
            echo(f"  {name}: destroyed")
            destroyed.append(name)
    return GcOutcome(destroyed, failed, kept)


def _ttl_verdict(item: PreviewInstance, ttl: timedelta, now: datetime) -> tuple[str, str]:
    """(reason to destroy, note) from the last apply, else the creation time; a busy preview stays."""
    if item.last_applied is not None:
        idle = now - item.last_applied
        if idle > ttl:
            return f"not applied for over {_format_ttl(ttl)} (last applied {format_age(idle)} ago)", ""
        return "", ""
    if item.created is None:
        return "", "age unknown"
    age = now - item.created
    if age > ttl:
        return f"older than {_format_ttl(ttl)} (age {format_age(age)}, never stamped by an apply)", ""
    return "", ""


def _format_ttl(ttl: timedelta) -> str:
    seconds = int(ttl.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"
