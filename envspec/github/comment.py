"""The Markdown of the one pull-request comment envspec keeps per preview.

Workflows find the comment by the hidden marker on its first line and edit it
in place, so a PR never collects a pile of stale comments (the seed project
did). Everything here is a pure function of its inputs: no clock, no network,
no environment, so the same plan and change set always give the same bytes and
snapshot tests can pin the format.

What goes in is deliberately narrow: the plan's declared outputs, the image
references of the rendered objects, and a change set whose Secret diffs are
already masked by `envspec diff`. A last pass masks Secret ``data:`` and
``stringData:`` lines anyway, and scrubs any value the caller names, because a
comment is public and cannot be taken back once GitHub has mailed it out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Protocol, Sequence

from envspec.github import COMMENT_KINDS
from envspec.kube.secrets import MASK
from envspec.objects import containers_of, is_pinned, object_id

Kind = Literal["plan", "deployed", "destroyed", "failed"]
KINDS: tuple[Kind, ...] = COMMENT_KINDS  # type: ignore[assignment]

# GitHub rejects issue comments longer than 65,536 characters; keep a margin
# for whatever a workflow appends (a footer, a link) when it posts the body.
GITHUB_COMMENT_LIMIT = 65_536
DEFAULT_MAX_CHARS = 65_000
MAX_ERROR_LINES = 40
MAX_ERROR_CHARS = 4_000
MAX_LISTED_IDS = 50



class Changes(Protocol):
    """What the comment needs from `envspec.kube.diff.ChangeSet` (duck-typed on purpose)."""

    created: list[str]
    changed: list[str]
    pruned: list[str]
    conflicts: list[str]
    notes: list[str]
    diff: str


@dataclass(frozen=True)
class ChangeSummary:
    """A plain stand-in for ChangeSet, used when reading its JSON without the kube engine."""

    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # ids whose apply would fail on another manager's fields
    notes: list[str] = field(default_factory=list)  # what the diff could not compare (e.g. Secret data)
    diff: str = ""


@dataclass(frozen=True)
class ImageUse:
    """One image reference and the containers that run it."""

    image: str
    used_by: tuple[str, ...]
    must_pin: bool = False  # apply refuses it unpinned (an app image under requirePinnedImages)

    @property
    def pinned(self) -> bool:
        return is_pinned(self.image)

    @property
    def refused(self) -> bool:
        return self.must_pin and not self.pinned


@dataclass(frozen=True)
class CommentInput:
    """Everything a comment may show. Build it from a compiled plan with `comment_input`."""

    environment: str
    instance: str
    kind: Kind
    outputs: Mapping[str, str] = field(default_factory=dict)
    images: Sequence[ImageUse] = ()
    changes: Changes | None = None
    error: str | None = None
    run_url: str | None = None
    commit: str | None = None
    # Stage name -> seconds it took ("build", "deploy"), measured by the workflow; shown in this order.
    durations: Mapping[str, float] = field(default_factory=dict)


def changes_from_json(text: str) -> ChangeSummary:
    """Read the JSON that `envspec diff --json-out` writes (fields created/changed/pruned/diff)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("change set JSON must be an object")
    lists: dict[str, list[str]] = {}
    for key in ("created", "changed", "pruned", "conflicts", "notes"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"change set field {key!r} must be a list of strings")
        lists[key] = list(value)
    diff = data.get("diff", "")
    if not isinstance(diff, str):
        raise ValueError("change set field 'diff' must be a string")
    return ChangeSummary(diff=diff, **lists)


def collect_images(objects: Iterable[Mapping[str, Any]], must_pin: Iterable[str] = ()) -> list[ImageUse]:
    """Every container image (init containers included), with the containers using it, sorted;
    `must_pin` are the images apply refuses without a digest."""
    required = set(must_pin)
    uses: dict[str, list[str]] = {}
    for obj in objects:
        for _, container in containers_of(dict(obj)):
            image = container.get("image")
            if image:
                uses.setdefault(str(image), []).append(f"{object_id(dict(obj))} ({container.get('name', '?')})")
    return [ImageUse(image, tuple(sorted(set(users))), image in required) for image, users in sorted(uses.items())]


def comment_input(
    plan: Any,
    kind: Kind,
    *,
    changes: Changes | None = None,
    error: str | None = None,
    run_url: str | None = None,
    commit: str | None = None,
    durations: Mapping[str, float] | None = None,
) -> CommentInput:
    """Pick from a `DeployPlan` only what a public comment may show: outputs and image references."""
    return CommentInput(
        environment=plan.environment,
        instance=plan.instance,
        kind=kind,
        outputs=dict(plan.outputs),
        images=collect_images(plan.objects, plan.app_images if plan.requires_pinned_images else ()),
        changes=changes,
        error=error,
        run_url=run_url,
        commit=commit,
        durations=dict(durations or {}),
    )


def format_duration(seconds: float) -> str:
    """`42s`, `5m 07s`, `1h 02m`: whole seconds, as a person reads a run's timing."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def marker(instance: str) -> str:
    """The hidden first line workflows search for to update the comment instead of adding one."""
    return f"<!-- envspec:{instance} -->"


def render_comment(
    data: CommentInput,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    redact: Iterable[str] = (),
) -> str:
    """The full comment body, at most `max_chars` characters, ending in a newline."""
    if data.kind not in KINDS:
        raise ValueError(f"unknown comment kind {data.kind!r}; expected one of {', '.join(KINDS)}")
    secrets = sorted({v for v in redact if v and len(v) >= 4}, key=len, reverse=True)
    head = "\n".join(_head(data)).rstrip("\n") + "\n\n"
    foot = "\n".join(_foot(data)).rstrip("\n") + "\n"
    diff_text = ""
    if data.changes is not None and data.kind in ("plan", "deployed", "failed") and data.changes.diff.strip():
        diff_text = mask_secret_data(data.changes.diff)
    # Scrub before measuring: redaction changes lengths, and the budget must hold for the final text.
    head, foot, diff_text = (_scrub(part, secrets) for part in (head, foot, diff_text))
    body = head
    if diff_text:
        budget = max_chars - len(head) - len(foot) - 1
        body += _details(diff_text, budget, data.run_url) + "\n"
    body += foot
    if len(body) > max_chars:  # only when head/foot alone are too long: a huge error text or outputs
        body = _hard_cut(body, max_chars)
    return body


def mask_secret_data(diff: str) -> str:
    """Mask values under ``data:``/``stringData:`` of Secret objects in a unified diff.

    `envspec diff` already masks these; this pass exists so a bug there cannot
    publish a credential. An object whose kind the diff does not reveal is
    treated as a Secret: hiding a ConfigMap value costs little, leaking a
    password costs a rotation.
    """
    out: list[str] = []
    kind: str | None = None
    block_indent: int | None = None
    for line in diff.splitlines():
        header = _header_kind(line)
        if header is not None:
            if line.startswith("--- ") or header:  # `+++ /dev/null` (a deletion) keeps the `---` side's kind
                kind = header or None
            block_indent = None
            out.append(line)
            continue
        prefix, text = (line[:1], line[1:]) if line[:1] in ("+", "-", " ") else ("", line)
        stripped = text.lstrip(" ")
        indent = len(text) - len(stripped)
        if stripped.startswith("kind:"):
            kind = stripped[5:].strip().strip("'\"") or kind
        if block_indent is not None and stripped and indent <= block_indent:
            block_indent = None
        if block_indent is not None and stripped:
            if ":" in stripped and not stripped.startswith("#"):
                key, _, value = stripped.partition(":")
                if value.strip() and not value.strip().startswith(MASK[:-1]):
                    line = f"{prefix}{' ' * indent}{key}: {MASK}"
            elif not stripped.startswith(MASK[:-1]):
                line = f"{prefix}{' ' * indent}{MASK}"  # a continuation line of a block scalar
        elif re.match(r"(data|stringData):", stripped) and kind in (None, "Secret"):
            key, _, value = stripped.partition(":")
            if value.strip() and value.strip() not in ("{}", "null"):
                line = f"{prefix}{' ' * indent}{key}: {MASK}"  # inline mapping: mask it whole
            else:
                block_indent = indent
        out.append(line)
    return "\n".join(out) + ("\n" if diff.endswith("\n") else "")


def _header_kind(line: str) -> str | None:
    """For a diff file header, the object's kind ('' if unknown); None for other lines.

    Headers name objects as `envspec diff` writes them (`--- live/Kind/ns/name`,
    `+++ envspec/Kind/ns/name`), or plainly (`--- Kind/ns/name (live)`).
    """
    if not (line.startswith("--- ") or line.startswith("+++ ")):
        return None
    target = line[4:].split()[0] if line[4:].split() else ""
    for segment in target.split("/"):
        if segment[:1].isupper():
            return segment
    return ""


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


_HEADINGS: dict[str, str] = {
    "plan": "Plan for `{instance}`",
    "deployed": "Deployed `{instance}`",
    "destroyed": "Destroyed `{instance}`",
    "failed": "Deployment of `{instance}` failed",
}


def _head(data: CommentInput) -> list[str]:
    lines = [marker(data.instance), f"### envspec: {_HEADINGS[data.kind].format(instance=data.instance)}", ""]
    facts = [f"Environment: `{data.environment}`", f"instance: `{data.instance}`"]
    if data.commit:
        facts.append(f"commit: `{data.commit}`")
    lines += [" · ".join(facts), ""]
    if data.durations:
        took = [f"{stage} took **{format_duration(seconds)}**" for stage, seconds in data.durations.items()]
        lines += ["Timing: " + " · ".join(took), ""]
    if data.kind == "plan":
        lines += ["Nothing has been applied yet; a maintainer approves the deploy job to apply this plan.", ""]
    elif data.kind == "destroyed":
        lines += [
            "The namespace, its objects and the per-PR database were deleted and verified gone."
            " The URLs below no longer serve this PR.",
            "",
        ]
    elif data.kind == "failed":
        lines += ["The run stopped with this error:", ""]
        lines += _fenced(_short_error(data.error or "(no error text was given)"), "text")
        lines.append("")
    if data.outputs:
        lines += _outputs(data)
    if data.images and data.kind != "destroyed":
        lines += _images(data.images)
    if data.changes is not None and data.kind != "destroyed":
        lines += _summary(data.changes)
    return lines


def _outputs(data: CommentInput) -> list[str]:
    lines = ["| Output | Value |", "| --- | --- |"]
    for key in sorted(data.outputs):
        value = str(data.outputs[key])
        shown = value if value.startswith(("http://", "https://")) and data.kind != "destroyed" else f"`{value}`"
        lines.append(f"| {key} | {_cell(shown)} |")
    return lines + [""]


def _images(images: Sequence[ImageUse]) -> list[str]:
    lines = ["| Image | Pinned | Used by |", "| --- | --- | --- |"]
    for use in images:
        pinned = "yes" if use.pinned else "**no: apply refuses it without a sha256 digest**" if use.must_pin else "no"
        lines.append(f"| `{use.image}` | {pinned} | {_cell(', '.join(use.used_by))} |")
    refused = [u for u in images if u.refused]
    if refused:
        lines += ["", f"> [!WARNING]\n> {len(refused)} image(s) are not pinned by a full `sha256:` digest;"
                  " `envspec apply` refuses them where the environment sets `requirePinnedImages`."]
    return lines + [""]


def _summary(changes: Changes) -> list[str]:
    counts = f"**{len(changes.created)}** to create, **{len(changes.changed)}** to change, **{len(changes.pruned)}** to prune"
    if not (changes.created or changes.changed or changes.pruned or changes.conflicts):
        return ["No object changes: the cluster already matches this render.", *[f"- Note: {n}" for n in changes.notes], ""]
    lines = [f"Object changes: {counts}.", ""]
    for title, ids in (("Create", changes.created), ("Change", changes.changed), ("Prune", changes.pruned)):
        if ids:
            shown = sorted(ids)[:MAX_LISTED_IDS]
            more = f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else ""
            lines.append(f"- {title}: " + ", ".join(f"`{i}`" for i in shown) + more)
    if changes.conflicts:
        shown = sorted(changes.conflicts)[:MAX_LISTED_IDS]
        lines.append(
            "- **Conflicts** (another field manager owns these fields; apply will stop unless "
            "`--force-conflicts`): " + ", ".join(f"`{i}`" for i in shown)
        )
    for note in changes.notes:
        lines.append(f"- Note: {note}")
    return lines + [""]


def _foot(data: CommentInput) -> list[str]:
    lines: list[str] = []
    if data.run_url:
        lines.append(f"<sub>Posted by envspec from [this workflow run]({data.run_url}).</sub>")
    else:
        lines.append("<sub>Posted by envspec.</sub>")
    return lines


def _details(diff: str, budget: int, run_url: str | None) -> str:
    """The collapsed diff block, cut on a line boundary so that it fits `budget` characters."""
    fence = "`" * max(3, _longest_backtick_run(diff) + 1)
    lines = diff.rstrip("\n").split("\n")
    where = f"the `envspec-diff` artifact of [the workflow run]({run_url})" if run_url else (
        "the `envspec-diff` artifact of the workflow run, or run `envspec diff` locally"
    )

    def block(kept: list[str], cut: int) -> str:
        parts = ["<details>", f"<summary>Full diff ({len(lines)} lines)</summary>", "", f"{fence}diff", *kept, fence]
        if cut:
            parts += ["", f"**Diff truncated: {cut} of {len(lines)} lines not shown.** See {where}."]
        parts += ["", "</details>"]
        return "\n".join(parts) + "\n"

    if len(block(lines, 0)) <= budget:
        return block(lines, 0)
    kept: list[str] = []
    used = len(block([], len(lines)))
    for line in lines:
        cost = len(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    if len(block([], len(lines))) > budget:  # not even the frame fits: leave a pointer only
        return f"The diff ({len(lines)} lines) is too long for a comment; see {where}.\n"
    return block(kept, len(lines) - len(kept))


def _longest_backtick_run(text: str) -> int:
    runs = re.findall(r"`+", text)
    return max((len(r) for r in runs), default=0)


def _fenced(text: str, info: str) -> list[str]:
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return [f"{fence}{info}", *text.rstrip("\n").split("\n"), fence]


def _short_error(text: str) -> str:
    lines = text.strip("\n").split("\n")
    cut = len(lines) - MAX_ERROR_LINES
    if cut > 0:
        lines = lines[:MAX_ERROR_LINES] + [f"... ({cut} more lines in the workflow log)"]
    out = "\n".join(lines)
    if len(out) > MAX_ERROR_CHARS:
        out = out[: MAX_ERROR_CHARS].rsplit("\n", 1)[0] + "\n... (cut; see the workflow log)"
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _hard_cut(body: str, max_chars: int) -> str:
    note = "\n\n(comment cut to fit GitHub's limit; see the workflow run)\n"
    return body[: max(0, max_chars - len(note))].rsplit("\n", 1)[0] + note
