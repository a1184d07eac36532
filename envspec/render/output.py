"""Stage 7: write objects as bytes that every reader takes the same way.

ruamel.yaml writes YAML 1.2, where `yes`, `on`, `0777` and `1e3` are plain
strings; kubectl and most Kubernetes tooling read YAML 1.1-style, where they
are a bool, a bool, an octal int and a float. So any string that *some* common
resolver would read as a non-string is double-quoted. Multi-line strings use
literal blocks, for readable scripts and config files in reviews.

Output to a directory is atomic: everything is written to a temporary sibling
and swapped in with renames, so a failed run leaves the old output untouched.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from envspec.objects import object_id

# Strings any YAML 1.1 or 1.2 resolver could read as something other than a string.
_NON_STRING = re.compile(
    r"""^(?:
        ~|null|Null|NULL|
        y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|
        [-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+)|
        [-+]?(?:[0-9][0-9_]*)(?::[0-5]?[0-9])*|
        [-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|
        [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|
        [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*|
        =|<<
    )$""",
    re.VERBOSE,
)


def needs_quotes(text: str) -> bool:
    return text == "" or bool(_NON_STRING.match(text))


@functools.lru_cache(maxsize=1)
def _yaml():  # type: ignore[no-untyped-def]
    """ruamel's safe dumper: the Python representer below chooses each scalar's style, libyaml emits."""
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import SafeRepresenter

    class Representer(SafeRepresenter):
        pass

    def represent_str(self: Any, data: str) -> Any:
        if "\n" in data and _block_safe(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        if needs_quotes(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return self.represent_scalar("tag:yaml.org,2002:str", data)

    Representer.add_representer(str, represent_str)

    yaml = YAML(typ="safe", pure=False)
    yaml.Representer = Representer
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keys keep the canonical order normalize gave them
    yaml.width = 4096
    yaml.allow_unicode = True
    return yaml


def _block_safe(text: str) -> bool:
    """Literal blocks can't hold trailing spaces on a line, tabs-first lines or special characters faithfully."""
    if any(line != line.rstrip(" \t") for line in text.split("\n")):
        return False
    if text.startswith((" ", "\t")) or "\r" in text:
        return False
    return all(ch == "\n" or ch == "\t" or (32 <= ord(ch) < 127) or ord(ch) > 0xA0 for ch in text) and "\u2028" not in text and "\u2029" not in text and "\ufeff" not in text


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    """A YAML stream, one document per object, separated by `---`."""
    if not objects:
        return ""
    buffer = io.StringIO()
    _yaml().dump_all(objects, buffer)
    text = buffer.getvalue()
    return text[4:] if text.startswith("---\n") else text


def dump_one(obj: Any) -> str:
    buffer = io.StringIO()
    _yaml().dump(obj, buffer)
    return buffer.getvalue()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def dump_sorted(obj: Any) -> str:
    """One object with every mapping's keys sorted: for diffs between objects whose key order differs
    (a live object from the API server against a rendered one)."""
    return dump_one(_sorted(obj))


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream (YAML 1.2, as envspec writes it)."""
    from ruamel.yaml import YAML

    return [doc for doc in YAML(typ="safe", pure=False).load_all(text) if doc is not None]


def dump_json(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2, ensure_ascii=False) + "\n"


def file_name(obj: dict[str, Any], extension: str = "yaml") -> str:
    """A stable, readable file name: kind_namespace_name.yaml (no order prefix, so inserts don't rename)."""
    parts = object_id(obj).split("/")
    safe = [re.sub(r"[^a-z0-9.-]+", "-", p.lower()) for p in parts]
    return "_".join(safe) + f".{extension}"


_DOCUMENT_START = re.compile(r"^---\n", re.MULTILINE)


def render_files(objects: list[dict[str, Any]], fmt: str = "yaml") -> dict[str, str]:
    """File name -> content for a directory of objects plus its kustomization.yaml (listing apply order)."""
    if fmt == "json":
        texts = [json.dumps(obj, indent=2, ensure_ascii=False) + "\n" for obj in objects]
    else:
        # One emitter pass for all objects, split at the document markers: a line that is exactly
        # `---` only ever separates documents (block scalars are indented), and one pass is much
        # cheaper than an emitter per object.
        texts = _DOCUMENT_START.split(dump_yaml(objects)) if objects else []
    files: dict[str, str] = {}
    for obj, text in zip(objects, texts, strict=True):
        files[file_name(obj, "json" if fmt == "json" else "yaml")] = text
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    files["kustomization.yaml"] = dump_one(kustomization)
    return files


def write_tree_atomically(target: Path, files: dict[str, str]) -> None:
    """Replace `target` with exactly `files` (relative paths), or leave it untouched on any failure."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.envspec-", dir=target.parent))
    try:
        for rel, content in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.envspec-old-{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_tree(target: Path) -> dict[str, str]:
    if not target.is_dir():
        return {}
    return {
        str(p.relative_to(target)): p.read_text(encoding="utf-8")
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }
