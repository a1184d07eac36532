"""Stage 2c: `${...}` references inside strings, resolved before validation.

A reference names a parameter (`${params.pr}`), another value of the same spec
(`${namespace.name}`, `${apps.web.host}`), or an output of an environment the
spec `uses` (`${base.postgresqlHost}`). A string that is exactly one reference
takes the referenced value's type (so `replicas: ${params.replicas}` stays an
integer); otherwise the value is formatted into the string. `$${` is a literal
`${`. Unknown references and cycles are errors at the string's position.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from envspec.errors import Problems, one_line
from envspec.memo import Bounded
from envspec.spec.loader import PathKey, Positions, copy_data

REF_RE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


class RefError(Exception):
    """A reference that cannot be resolved; the message is shown to the user.

    `reported` is set once the problem has been recorded at the place it is written, so the
    strings using that value do not repeat it.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.reported = False


Lookup = Callable[[str], Any]


def substitute(text: str, lookup: Lookup) -> Any:
    """Replace references in `text` using `lookup`; a lone reference keeps the value's type."""
    if "${" not in text:
        return text
    kind, payload = _parsed(text)
    if kind == "error":
        raise RefError(payload)
    if kind == "lone":
        name, error = payload
        if error is not None:
            raise RefError(error)
        return lookup(name)
    out: list[str] = []
    for part in payload:  # left to right, as re.sub would: the first bad reference is the one reported
        if isinstance(part, str):
            out.append(part)
            continue
        raw, (name, error) = part
        if error is not None:
            raise RefError(error)
        value = lookup(name)
        if isinstance(value, (dict, list)):
            raise RefError(f"${{{raw}}} is a {'mapping' if isinstance(value, dict) else 'list'}; only a whole string can reference it")
        if isinstance(value, bool):
            out.append("true" if value else "false")
        else:
            out.append("" if value is None else str(value))
    return "".join(out)


# How each string splits into text and references, by its exact text: the same strings come back in
# every environment of a `render --all` (and in every level of an extends chain).
_PARSED: Bounded[str, tuple[str, Any]] = Bounded(8192)


def _parsed(text: str) -> tuple[str, Any]:
    """("error", message) | ("lone", (name, error)) | ("parts", (literal | (raw, (name, error)), ...))."""
    found = _PARSED.get(text)
    if found is None:
        found = _parse(text)
        _PARSED.remember(text, found)
    return found


def _parse(text: str) -> tuple[str, Any]:
    try:
        _check_terminated(text)
    except RefError as exc:
        return "error", str(exc)
    match = REF_RE.fullmatch(text)
    if match and match.group(0) != "$${":
        return "lone", _name_or_error(match.group(1))
    parts: list[Any] = []
    end = 0
    for m in REF_RE.finditer(text):
        parts.append(text[end : m.start()])
        parts.append("${" if m.group(0) == "$${" else (m.group(1), _name_or_error(m.group(1))))
        end = m.end()
    parts.append(text[end:])
    return "parts", tuple(p for p in parts if p != "")


def _name_or_error(raw: str) -> tuple[str | None, str | None]:
    try:
        return _check_name(raw), None
    except RefError as exc:
        return None, str(exc)


def _check_terminated(text: str) -> None:
    """Every `${` must start a complete reference (or be written `$${`); a missing `}` is never literal text."""
    end = 0
    for m in REF_RE.finditer(text):
        _stray(text, end, m.start())
        end = m.end()
    _stray(text, end, len(text))


def _stray(text: str, start: int, stop: int) -> None:
    index = text.find("${", start, stop)
    if index < 0:
        return
    rest = text[index:]
    close = rest.find("}")
    if close < 0:
        raise RefError(f"unterminated reference {_shorten(rest)!r}: '${{' without a closing '}}' (write $${{ for a literal ${{)")
    raise RefError(f"invalid reference {_shorten(rest[: close + 1])!r}: a reference cannot contain '{{' (write $${{ for a literal ${{)")


def _shorten(text: str, limit: int = 40) -> str:
    return one_line(text if len(text) <= limit else text[: limit - 3] + "...")


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.match(name):
        raise RefError(f"invalid reference ${{{one_line(name)}}}: expected a dotted name like params.pr or base.postgresqlHost")
    return name


def has_refs(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


class Interpolator:
    """Resolves every string in a spec, following references through the same spec on demand."""

    def __init__(
        self,
        data: dict[str, Any],
        positions: Positions,
        problems: Problems,
        scopes: dict[str, Callable[[list[str]], Any]],
        refs: list[PathKey] | None = None,
    ):
        self.data = data
        self.refs = refs  # where the strings holding `${` are (merge.ref_paths), if known: the rest is not walked
        self.positions = positions
        self.problems = problems
        self.scopes = scopes  # first segment -> resolver of the remaining segments
        self.resolving: list[PathKey] = []
        self.done: set[PathKey] = set()
        self.failed: set[PathKey] = set()

    def run(self) -> dict[str, Any]:
        if self.refs is None:
            self._walk(self.data, ())
            return self.data
        # The same visits as walking everything, in the same order: every other value is left as it is
        # by a visit, and what a reference resolves to is resolved already (see _mark_done).
        for path in self.refs:
            self._resolve_at(path)
        return self.data

    def _walk(self, node: Any, path: PathKey) -> None:
        if isinstance(node, dict):
            for key in list(node):
                self._resolve_at(path + (key,))
                self._walk(node.get(key), path + (key,))
        elif isinstance(node, list):
            for index in range(len(node)):
                self._resolve_at(path + (index,))
                self._walk(node[index], path + (index,))

    def _container(self, path: PathKey) -> tuple[Any, str | int] | None:
        node: Any = self.data
        for part in path[:-1]:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node, path[-1]

    def _resolve_at(self, path: PathKey) -> Any:
        """Resolve the value at `path` in place (if it is a string with references) and return it."""
        found = self._container(path)
        if found is None:
            raise RefError("no such value")
        parent, key = found
        return self._resolve_in(parent, key, path)

    def _resolve_in(self, parent: Any, key: str | int, path: PathKey) -> Any:
        """`_resolve_at(path)` when the container at path[:-1] is known: `parent`."""
        value = parent[key]
        if path in self.done or not has_refs(value):
            return value
        if path in self.failed:
            if not self.resolving:
                return value  # already reported where it failed
            exc = RefError(f"{_dotted(path)} could not be resolved")
            exc.reported = True  # at `path`, where the mistake is written
            raise exc
        if path in self.resolving:
            raise self._cycle(path)
        self.resolving.append(path)
        try:
            resolved = substitute(value, lambda name: self._lookup(name))
        except RefError as exc:
            self.failed.add(path)
            if not exc.reported:
                self._report(exc, path)
            if len(self.resolving) == 1:
                return value
            raise
        finally:
            self.resolving.pop()
        parent[key] = resolved
        self.done.add(path)
        if isinstance(resolved, (dict, list)):
            self._mark_done(resolved, path)
        return resolved

    def _mark_done(self, node: Any, path: PathKey) -> None:
        """A copied mapping/list is resolved already: its strings (a `$${` literal among them) are never read again."""
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            self.done.add(path + (key,))
            if isinstance(value, (dict, list)):
                self._mark_done(value, path + (key,))

    def _report(self, exc: RefError, path: PathKey) -> None:
        """Record the problem at the string that holds the broken reference, naming the string that led there."""
        exc.reported = True
        at = getattr(exc, "at", None) or path
        message = str(exc)
        if at != self.resolving[0] and not message.startswith("reference cycle"):
            message += f" (used by {_dotted(self.resolving[0])})"
        self.problems.error(message, self.positions.lookup(at), _dotted(at))  # the string's line and column

    def _cycle(self, path: PathKey) -> RefError:
        """A cycle is reported at the string it starts from, or at a --set value if one is part of it."""
        members = self.resolving[self.resolving.index(path) :]
        cycle = " -> ".join(_dotted(p) for p in members + [path])
        exc = RefError(f"reference cycle: {cycle}")
        exc.at = members[0]  # type: ignore[attr-defined]
        for member in members:
            location = self.positions.lookup(member)
            if location is not None and location.path.startswith("--set "):
                exc.at = member  # type: ignore[attr-defined]
                break
        return exc

    def _lookup(self, name: str) -> Any:
        parts = name.split(".")
        head, rest = parts[0], parts[1:]
        if head in self.scopes:
            return self.scopes[head](rest)
        # A value of this same spec.
        path: PathKey = ()
        node: Any = self.data
        for part in parts:
            key: str | int = part
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise RefError(f"unknown reference ${{{name}}}")
                key = int(part)
            elif not isinstance(node, dict) or part not in node:
                if path and isinstance(node, dict):
                    import difflib

                    hint = difflib.get_close_matches(part, list(node), n=1)
                    suffix = f"; did you mean {'.'.join([*map(str, path), hint[0]])!r}?" if hint else ""
                    raise RefError(f"unknown reference ${{{name}}}{suffix}")
                raise RefError(_unknown(name, self.data, list(self.scopes)))
            path = path + (key,)
            node = self._resolve_in(node, key, path)
        self._walk(node, path)  # a referenced mapping/list must be fully resolved too
        return copy_data(node)


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown(name: str, data: dict[str, Any], scopes: list[str]) -> str:
    import difflib

    head = name.split(".")[0]
    candidates = sorted(set(scopes) | set(data))
    hint = difflib.get_close_matches(head, candidates, n=1)
    suffix = f"; did you mean {hint[0]!r}?" if hint and hint[0] != head else ""
    return f"unknown reference ${{{name}}}{suffix}"


def mapping_scope(label: str, values: dict[str, Any]) -> Callable[[list[str]], Any]:
    """A scope over a plain mapping, such as resolved parameters or another environment's outputs."""

    def resolve(rest: list[str]) -> Any:
        if not rest:
            raise RefError(f"${{{label}}} needs a name after it, e.g. ${{{label}.{next(iter(values), 'name')}}}")
        node: Any = values
        for i, part in enumerate(rest):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                import difflib

                where = ".".join([label, *rest[: i + 1]])
                keys = list(node) if isinstance(node, dict) else []
                hint = difflib.get_close_matches(part, keys, n=1)
                known = f"; did you mean {hint[0]!r}?" if hint else (f" (known: {', '.join(sorted(keys))})" if keys else "")
                raise RefError(f"unknown reference ${{{where}}}{known}")
        return copy_data(node)

    return resolve
