"""`envspec explain`: where each field of a rendered object came from.

For one object of a compiled environment, and each of its fields:

- the template file:line whose `{{ ... }}` placed the value (found by rendering
  the object's template unit again with every value tagged by a YAML anchor
  that names the template line, then reading the anchors back);
- the spec key the value comes from (matched by value within the spec subtree
  the object was rendered from, preferring keys named like the field);
- the chain of files that set, overrode or deleted that key, base first
  (`_defaults.yaml:40:5 -> production.yaml:22:5 -> --set ...`), or the model's default;
- the `${...}` references the written value went through, each with its
  value and where that was set (parameters: the flag or the default; a used
  environment's output: that file), recursively.

Nothing here touches a cluster, and values are the rendered ones: no Secret value exists in them.
"""

from __future__ import annotations

import difflib
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from envspec.errors import Location, SpecError
from envspec.pipeline import Compiled, compile_environment
from envspec.spec.interpolate import REF_RE
from envspec.spec.loader import PathKey, load_document
from envspec.spec.merge import load_composed
from envspec.spec.params import split_assignment
from envspec.spec.project import Project, find_project
from envspec.spec.resolve import apply_sets, dotted
from envspec.errors import Problems

MAX_REFERENCE_DEPTH = 8


@dataclass
class Step:
    """One file (or flag) in the chain that set a spec key."""

    location: Location
    action: str  # "set" | "deleted" | "set by parent"
    written: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"file": self.location.path, "line": self.location.line, "col": self.location.col,
                "action": self.action, "written": self.written}


@dataclass
class Reference:
    name: str
    value: Any
    source: str  # "--pr 107", "environments/web-pr.yaml:14:5 (params.pr.default)", ...
    location: Location | None = None
    references: list["Reference"] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        loc = self.location
        return {"reference": f"${{{self.name}}}", "value": self.value, "source": self.source,
                "file": loc.path if loc else None, "line": loc.line if loc else None, "col": loc.col if loc else None,
                "references": [r.as_json() for r in self.references]}


@dataclass
class FieldOrigin:
    path: str  # the field inside the object, e.g. spec.template.spec.containers[0].image
    value: Any
    template: Location | None = None
    spec_path: str | None = None  # dotted spec key, e.g. apps.api.image
    default: bool = False  # the model's default (no file sets the key)
    chain: list[Step] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    note: str = ""  # what set a value no spec key holds (labels, checksums envspec adds)

    def as_json(self) -> dict[str, Any]:
        tpl = self.template
        return {
            "field": self.path, "value": self.value,
            "template": {"file": tpl.path, "line": tpl.line} if tpl else None,
            "spec": None if self.spec_path is None else {
                "path": self.spec_path, "default": self.default,
                "chain": [s.as_json() for s in self.chain], "references": [r.as_json() for r in self.references]},
            "note": self.note or None,
        }


@dataclass
class Explanation:
    environment: str
    object_id: str
    fields: list[FieldOrigin]

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "object": self.object_id, "fields": [f.as_json() for f in self.fields]}


# ---------------------------------------------------------------- finding the object and the field


def _object_label(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


# kubectl's short names for the kinds envspec renders (`deploy/api`, `svc/api`).
SHORT_KINDS = {
    "deploy": "deployment", "svc": "service", "cm": "configmap", "ns": "namespace", "pdb": "poddisruptionbudget",
    "quota": "resourcequota", "netpol": "networkpolicy", "pvc": "persistentvolumeclaim", "cert": "certificate",
    "gtw": "gateway", "es": "externalsecret",
}


def _kind_key(text: str, kinds: set[str]) -> str:
    """`Deployment`, `deployment`, `deployments`, `deploy` -> `deployment` (as kubectl reads them)."""
    kind = text.lower()
    kind = SHORT_KINDS.get(kind, kind)
    if kind not in kinds:
        for singular in (kind[:-2] if kind.endswith("es") else None, kind[:-1] if kind.endswith("s") else None):
            if singular and singular in kinds:
                return singular
    return kind


def find_object(compiled: Compiled, target: str) -> int:
    """The index of KIND/NAME (or KIND/NAMESPACE/NAME); the kind is read as kubectl reads it
    (any case, plural, short name: `deploy/api`)."""
    parts = target.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SpecError(f"{target!r}: expected KIND/NAME, e.g. Deployment/api (or KIND/NAMESPACE/NAME)")
    kind = _kind_key(parts[0], {o["kind"].lower() for o in compiled.objects})
    name = parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    matches = [
        i for i, o in enumerate(compiled.objects)
        if o["kind"].lower() == kind and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(f"{o['kind']}/{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in (compiled.objects[i] for i in matches))
        raise SpecError(f"{target!r} names {len(matches)} objects ({ids}); give KIND/NAMESPACE/NAME")
    known = sorted({_object_label(o) for o in compiled.objects})
    hint = difflib.get_close_matches(target, known, n=1, cutoff=0.5)
    more = f"; did you mean {hint[0]!r}?" if hint else f" (objects: {', '.join(known)})"
    raise SpecError(f"{compiled.name} renders no object {target!r}{more}")


def leaves(value: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every scalar (and empty container) in `value`, with its path."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, path + (key,))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaves(child, path + (index,))
    else:
        yield path, value


def field_path(text: str, obj: dict[str, Any]) -> PathKey:
    """`spec.template.spec.containers[0].image`; a list item may also be named (`containers.php.image`)."""
    import re

    tokens = [t for t in re.split(r"\.|\[|\]", text) if t != ""]
    path: list[str | int] = []
    node: Any = obj
    for token in tokens:
        if isinstance(node, list):
            if token.isdigit() and int(token) < len(node):
                path.append(int(token))
                node = node[int(token)]
                continue
            named = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == token]
            if named:
                path.append(named[0])
                node = node[named[0]]
                continue
        elif isinstance(node, dict) and token in node:
            path.append(token)
            node = node[token]
            continue
        keys = list(node) if isinstance(node, dict) else [str(i) for i in range(len(node))] if isinstance(node, list) else []
        hint = difflib.get_close_matches(token, [str(k) for k in keys], n=1)
        where = dotted(path) or "the object"
        suggestion = f"; did you mean {hint[0]!r}?" if hint else (f" (it has: {', '.join(map(str, keys))})" if keys else "")
        raise SpecError(f"{text}: {where} has no field {token!r}{suggestion}")
    return tuple(path)


# ---------------------------------------------------------------- template lines


def _template_line(frame: Any) -> tuple[str, int] | None:
    """The template file and line of the Jinja frame that is writing a value."""
    while frame is not None and "debug_info" not in frame.f_globals:
        frame = frame.f_back
    if frame is None:
        return None
    pairs = [tuple(map(int, x.split("="))) for x in (frame.f_globals.get("debug_info") or "").split("&") if "=" in x]
    line = 0
    for template_line, code_line in pairs:
        if code_line <= frame.f_lineno:
            line = template_line
    return str(frame.f_globals.get("__file__") or frame.f_globals.get("name") or "?"), line


@dataclass
class TemplateTrace:
    lines: dict[PathKey, Location] = field(default_factory=dict)  # field -> the `{{ ... }}` that wrote it
    present: set[PathKey] = field(default_factory=set)  # every field the template itself produced
    file: str | None = None  # the template that rendered the object
    source: list[str] = field(default_factory=list)

    def locate(self, path: PathKey, value: Any) -> Location | None:
        """The `{{ ... }}` that wrote the field, else the template line that spells it literally."""
        found = nearest(self.lines, path)
        if found is not None or path not in self.present or self.file is None:
            return found
        key = next((p for p in reversed(path) if isinstance(p, str)), "")
        literal = f"{key}: {value}" if not isinstance(value, bool) else f"{key}: {str(value).lower()}"
        for number, text in enumerate(self.source, start=1):
            if text.strip().lstrip("- ").strip() == literal:
                return Location(self.file, number)
        return Location(self.file)


def template_origins(compiled: Compiled, project: Project, index: int) -> TemplateTrace:
    """Field path -> template file:line that wrote it, for objects[index] (by rendering its unit again, traced)."""
    from markupsafe import Markup
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    from envspec.render.context import build_units
    from envspec.render.templates import _display, _finalize, make_environment

    obj = compiled.objects[index]
    origin = tuple(compiled.origins[index]) if index < len(compiled.origins) else ()
    marks: dict[str, tuple[str, int]] = {}
    counter = itertools.count()

    def traced(value: Any) -> Markup:
        text = _finalize(value)
        if isinstance(value, Markup):
            return text
        where = _template_line(sys._getframe(1))
        if where is None:
            return text
        anchor = f"envspec{next(counter)}"
        marks[anchor] = where
        return Markup(f"&{anchor} ") + text

    env = make_environment(str(project.templates_dir)).overlay(finalize=traced, cache_size=0)
    out = TemplateTrace()
    for unit in build_units(compiled.spec, compiled.name, compiled.instance):
        if tuple(unit.origin) != origin:
            continue
        template = env.get_template(unit.template)
        text = template.render(unit.context)
        for node in YAML(typ="safe", pure=True).compose_all(text):
            if not isinstance(node, MappingNode):
                continue
            found: dict[PathKey, Location] = {}
            present: set[PathKey] = set()
            plain: dict[str, Any] = {}

            def walk(n: Any, path: PathKey) -> None:
                present.add(path)
                if n.anchor and n.anchor in marks:
                    file, line = marks[n.anchor]
                    found[path] = Location(_display(file, unit.template), line)
                if isinstance(n, MappingNode):
                    for k, v in n.value:
                        if not path:
                            plain[k.value] = v.value if not isinstance(v, (MappingNode, SequenceNode)) else v
                        walk(v, path + (k.value,))
                elif isinstance(n, SequenceNode):
                    for i, v in enumerate(n.value):
                        walk(v, path + (i,))

            walk(node, ())
            meta = plain.get("metadata")
            name = next((v.value for k, v in meta.value if k.value == "name"), None) if isinstance(meta, MappingNode) else None
            if plain.get("kind") == obj["kind"] and name == obj["metadata"]["name"]:
                file = template.filename or unit.template
                source = Path(file).read_text(encoding="utf-8").splitlines() if template.filename else []
                out = TemplateTrace(found, present, _display(template.filename, unit.template), source)
    return out


def nearest(origins: dict[PathKey, Location], path: PathKey) -> Location | None:
    for n in range(len(path), -1, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return None


# ---------------------------------------------------------------- spec keys


def _spec_leaves(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    yield path, data
    if isinstance(data, dict):
        for key, child in data.items():
            yield from _spec_leaves(child, path + (key,))
    elif isinstance(data, list):
        for index, child in enumerate(data):
            yield from _spec_leaves(child, path + (index,))


def _words(path: Sequence[str | int]) -> set[str]:
    return {p.lower() for p in path if isinstance(p, str)}


def match_spec_key(spec_data: dict[str, Any], origin: PathKey, field: PathKey, value: Any, written: set[PathKey]) -> PathKey | None:
    """The spec key whose resolved value the field shows: same value, nearest the object's origin, named alike."""
    if value in (None, "", [], {}):
        return None
    best: tuple[float, PathKey] | None = None
    field_words = _words(field)
    last = str(field[-1]).lower() if field and isinstance(field[-1], str) else ""
    for path, candidate in _spec_leaves(spec_data):
        if not path:
            continue
        if isinstance(value, str) and path[-1] == value and isinstance(candidate, dict):
            # A name the spec gives as a key: `containers: {copy-code: ...}` -> `name: copy-code`.
            score = 100 if origin and path[: len(origin)] == origin else -50
            parent = str(path[-2]).lower() if len(path) >= 2 else ""
            if path == origin and (field[:1] == ("metadata",) or "labels" in field_words or "matchlabels" in field_words):
                score += 40  # the object itself is named after its key
            elif parent in field_words or any(len(w) >= 3 and w in parent for w in field_words):
                score += 40  # containers: {php: ...} -> containers[N].name: php; secretEnv: {X: ...} -> env[N].name: X
            if best is None or score > best[0]:
                best = (score, path)
            continue
        if candidate != value or type(candidate) is not type(value):
            continue
        score = 0.0
        if origin and path[: len(origin)] == origin:
            score += 100
        elif path[:1] in (("apps",), ("jobs",), ("routes",), ("certificates",), ("issuers",), ("claims",), ("secrets",), ("configMaps",)):
            score -= 50  # another object's key holding the same value
        if path[:1] in (("outputs",), ("params",), ("uses",), ("objects",), ("patches",)):
            score -= 60  # values other environments read, not what renders objects
        names = [p for p in path if isinstance(p, str)]
        tail = names[-1].lower() if names else ""
        if tail == last:
            score += 40
        elif last and tail:
            score += 20 * difflib.SequenceMatcher(None, tail, last).ratio()
        spec_words = _words(path)
        score += 5 * len(field_words & spec_words)
        score += 15 * sum(1 for w in field_words for p in spec_words if w != p and len(p) >= 4 and (p in w or w in p))
        if path in written:
            score += 3
        score -= 0.1 * len(path)
        if best is None or score > best[0]:
            best = (score, path)
    if best is None or best[0] < 0 or (isinstance(value, (bool, int)) and best[0] < 40):
        return None  # matched by chance only
    return best[1]


@dataclass
class SpecSources:
    """The files an environment is composed of, each read on its own, plus the --set flags."""

    project: Project
    name: str
    params: Sequence[str]  # NAME=VALUE, --pr first (as pr=N)
    sets: Sequence[str]
    pr: str | None = None

    def __post_init__(self) -> None:
        path = self.project.environment_path(self.name)
        data, positions, chain = load_composed(self.project, path)
        apply_sets(data, positions, self.sets, Problems())
        self.raw = data  # merged, --set applied, references not yet resolved
        self.positions = positions
        self.layers = [load_document(p, self.project.display(p)) for p in chain]

    def chain(self, path: PathKey) -> list[Step]:
        steps: list[Step] = []
        for doc in self.layers:
            for n in range(len(path), 0, -1):
                prefix = path[:n]
                if prefix not in doc.positions.by_path:
                    continue
                written = _get(doc.data, prefix)
                if written is None:
                    steps.append(Step(doc.positions.by_path[prefix], "deleted"))
                elif n == len(path):
                    steps.append(Step(doc.positions.by_path[prefix], "set", _plain(written)))
                elif not isinstance(written, dict):
                    steps.append(Step(doc.positions.by_path[prefix], "set by parent", _plain(written)))
                else:
                    continue
                break
        for raw in self.sets:
            pair = split_assignment(raw)
            if pair is None:
                continue
            parts = tuple(int(p) if p.isdigit() else p for p in pair[0].split("."))
            if path[: len(parts)] == parts:
                steps.append(Step(Location(f"--set {raw}"), "set", pair[1]))
        return steps


def _get(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else "..."


class Tracer:
    """Follows `${...}` references to where their values were written."""

    def __init__(self, compiled: Compiled, sources: SpecSources):
        self.compiled = compiled
        self.sources = sources
        self.used_sources: dict[str, SpecSources] = {}

    def references(self, raw: Any, sources: SpecSources, params: dict[str, Any], depth: int = 0) -> list[Reference]:
        if not isinstance(raw, str) or "${" not in raw or depth > MAX_REFERENCE_DEPTH:
            return []
        out: list[Reference] = []
        for match in REF_RE.finditer(raw):
            name = (match.group(1) or "").strip()
            if not name:
                continue
            out.append(self._one(name, sources, params, depth))
        return out

    def _one(self, name: str, sources: SpecSources, params: dict[str, Any], depth: int) -> Reference:
        parts = name.split(".")
        head = parts[0]
        if head == "params" and len(parts) > 1:
            pname = parts[1]
            value = params.get(pname)
            given = [raw for raw in sources.params if (split_assignment(raw) or ("",))[0] == pname]
            if given:
                flag = given[-1]
                from_pr = pname == "pr" and sources.pr is not None and flag == f"pr={sources.pr}" and len(given) == 1
                return Reference(name, value, f"--pr {sources.pr}" if from_pr else f"--param {flag}")
            location = sources.positions.lookup(("params", pname, "default"))
            ref = Reference(name, value, f"params.{pname}.default", location)
            ref.references = self.references(_get(sources.raw, ("params", pname, "default")), sources, params, depth + 1)
            return ref
        uses = sources.raw.get("uses") if isinstance(sources.raw.get("uses"), dict) else {}
        if head in (uses or {}):
            other = str(uses[head])
            used = self.used_sources.get(other) or SpecSources(sources.project, other, (), ())
            self.used_sources[other] = used
            resolved = self.compiled.resolved.used.get(head)
            value = _get(resolved.spec.outputs, tuple(parts[1:])) if resolved else None
            path = ("outputs", *parts[1:])
            ref = Reference(name, value, f"{other}: {dotted(path)}", used.positions.lookup(path))
            other_params = resolved.params if resolved else {}
            ref.references = self.references(_get(used.raw, path), used, other_params, depth + 1)
            return ref
        path = tuple(int(p) if p.isdigit() else p for p in parts)
        value = _get(self.compiled.spec.model_dump(mode="json", by_alias=True), path) if sources is self.sources else None
        ref = Reference(name, value, dotted(path), sources.positions.lookup(path))
        ref.references = self.references(_get(sources.raw, path), sources, params, depth + 1)
        return ref


def explain(
    name: str,
    target: str,
    field_text: str | None = None,
    *,
    root: Path | None = None,
    pr: str | None = None,
    params: Sequence[str] = (),
    sets: Sequence[str] = (),
    project: Project | None = None,
) -> Explanation:
    project = project or find_project(root)
    params = [*([f"pr={pr}"] if pr is not None else []), *params]
    compiled = compile_environment(name, project=project, params=params, sets=sets)
    index = find_object(compiled, target)
    obj = compiled.objects[index]
    focus = field_path(field_text, obj) if field_text else ()
    templates = template_origins(compiled, project, index)
    sources = SpecSources(project, name, params, sets, pr)
    tracer = Tracer(compiled, sources)
    spec_data = compiled.spec.model_dump(mode="json", by_alias=True)
    origin = tuple(compiled.origins[index]) if index < len(compiled.origins) else ()
    written = set(sources.positions.by_path)

    fields: list[FieldOrigin] = []
    for path, value in leaves(_get(obj, focus) if focus else obj, focus):
        entry = FieldOrigin(dotted(path), value, templates.locate(path, value))
        if path not in templates.present:
            entry.template = None
            entry.note = "added by envspec (the labels and checksums every object gets)"
            label = path[-1] if len(path) >= 2 and path[-2] == "labels" else None
            if isinstance(label, str) and label in compiled.spec.labels and compiled.spec.labels[label] == value:
                _trace_key(entry, ("labels", label), sources, tracer, compiled)
            fields.append(entry)
            continue
        spec_key = match_spec_key(spec_data, origin, path, value, written)
        if spec_key is not None:
            _trace_key(entry, spec_key, sources, tracer, compiled)
        elif nearest(templates.lines, path) is None:
            entry.note = "written in the template itself"
        else:
            entry.note = "derived by envspec from the spec (no one key holds this value)"
        fields.append(entry)
    return Explanation(name, f"{obj['kind']}/{obj['metadata'].get('namespace') + '/' if obj['metadata'].get('namespace') else ''}{obj['metadata']['name']}", fields)


def _trace_key(entry: FieldOrigin, spec_key: PathKey, sources: SpecSources, tracer: Tracer, compiled: Compiled) -> None:
    entry.spec_path = dotted(spec_key)
    entry.chain = sources.chain(spec_key)
    entry.default = not entry.chain
    if entry.chain and entry.chain[-1].action != "deleted":
        entry.references = tracer.references(_get(sources.raw, spec_key), sources, compiled.resolved.params)


# ---------------------------------------------------------------- text


def _value_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _reference_lines(refs: list[Reference], indent: str) -> list[str]:
    lines: list[str] = []
    for ref in refs:
        where = f"{ref.location}" if ref.location else ref.source
        label = f" ({ref.source})" if ref.location else ""
        lines.append(f"{indent}via ${{{ref.name}}} = {_value_text(ref.value)}  {where}{label}")
        lines.extend(_reference_lines(ref.references, indent + "  "))
    return lines


def explanation_text(explanation: Explanation) -> str:
    lines = [f"{explanation.object_id} in {explanation.environment}"]
    for entry in explanation.fields:
        lines.append(f"{entry.path or '(object)'}: {_value_text(entry.value)}")
        if entry.spec_path is not None:
            if entry.default:
                lines.append(f"    spec      {entry.spec_path} (the model's default; no file sets it)")
            else:
                chain = " -> ".join(
                    f"{s.location}{' (deleted)' if s.action == 'deleted' else ''}" for s in entry.chain
                )
                lines.append(f"    spec      {entry.spec_path}: {chain}")
                last = entry.chain[-1]
                if isinstance(last.written, str) and "${" in last.written:
                    lines.append(f"    written   {_value_text(last.written)}")
            lines.extend(_reference_lines(entry.references, "    "))
        elif entry.note:
            lines.append(f"    note      {entry.note}")
        if entry.template is not None:
            lines.append(f"    template  {entry.template}")
    return "\n".join(lines) + "\n"
