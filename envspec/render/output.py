"""Stage 7: write objects as bytes that every reader takes the same way.

ruamel.yaml writes YAML 1.2, where `yes`, `on`, `0777` and `1e3` are plain
strings; kubectl and most Kubernetes tooling read YAML 1.1-style, where they
are a bool, a bool, an octal int and a float. So any string that *some* common
resolver would read as a non-string is double-quoted. Multi-line strings use
literal blocks, for readable scripts and config files in reviews.

Output to a directory is atomic: everything is written to a temporary sibling
and swapped in with renames, so a failed run leaves the old output untouched;
a render that would change nothing writes nothing (`_unchanged`).

An output folder is envspec's own only when envspec wrote it: each one holds a
manifest (`.envspec-output`) listing the files envspec wrote there. A rerun
replaces exactly those files and carries every other file over unchanged (a
user's notes.txt survives); a non-empty folder without a manifest, the project
root, a folder that contains it, and the project's source folders are refused
(see `plan_output`). A folder written by `render --all` holds one folder per
environment; rendering one environment into it writes only `<folder>/<env>/`.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envspec.errors import Location, Problem, SpecError
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

    Representer.add_representer(str, _represent_str)

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


@functools.lru_cache(maxsize=1 << 16)  # keys and label values repeat in every object
def _str_style(data: str) -> str | None:
    """Each string's style: a literal block for readable multi-line text, double quotes where any reader could
    take it for something else, else plain (the emitter still quotes what plain style cannot hold)."""
    if "\n" in data and _block_safe(data):
        return "|"
    if needs_quotes(data):
        return '"'
    return None


def _represent_str(self: Any, data: str) -> Any:
    return self.represent_scalar("tag:yaml.org,2002:str", data, style=_str_style(data))


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    """A YAML stream, one document per object, separated by `---`.

    libyaml through PyYAML writes it (3x faster than ruamel's Python layers); a value that is not
    a plain type takes ruamel's path, which writes the same bytes (tests/test_libyaml.py).
    """
    if not objects:
        return ""
    from envspec.render.libyaml import NotPlain, dump_generated

    try:
        return dump_generated(objects, _str_style)
    except NotPlain:
        pass
    buffer = io.StringIO()
    _yaml().dump_all(objects, buffer)
    text = buffer.getvalue()
    return text[4:] if text.startswith("---\n") else text


def dump_one(obj: Any) -> str:
    from envspec.render.libyaml import NotPlain, dump_generated

    try:
        return dump_generated([obj], _str_style)
    except NotPlain:
        pass
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
    from envspec.render.libyaml import load_generated

    fast = load_generated(text)
    if fast is not None:
        return fast
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


MANIFEST = ".envspec-output"  # the marker that makes a folder envspec's own (no .yaml suffix: not a manifest)
_ABOUT = (
    "Written by `envspec render --out`. envspec replaces only the files listed here on the next run "
    "and leaves every other file in this folder alone. Delete this file and envspec will refuse to write here."
)


@dataclass(frozen=True)
class OutputManifest:
    """What a `.envspec-output` file says: which environment(s) the folder holds and which files envspec wrote."""

    files: tuple[str, ...]
    environment: str | None = None  # `render ENV --out`
    environments: tuple[str, ...] = ()  # `render --all --out`: one folder per environment

    @property
    def combined(self) -> bool:
        return self.environment is None

    def text(self) -> str:
        body: dict[str, Any] = {"about": _ABOUT}
        if self.environment is not None:
            body["environment"] = self.environment
        else:
            body["environments"] = list(self.environments)
        body["files"] = sorted(self.files)
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def read_manifest(folder: Path) -> OutputManifest | None:
    """The folder's manifest, or None when it has none (or one envspec cannot read: then it is not ours)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    files = tuple(f for f in data["files"] if isinstance(f, str))
    if isinstance(data.get("environment"), str):
        return OutputManifest(files, environment=data["environment"])
    if isinstance(data.get("environments"), list):
        return OutputManifest(files, environments=tuple(str(e) for e in data["environments"]))
    return None


def rendered_folder_for(folder: Path, environment: str) -> Path:
    """The folder `diff --against` compares ENVIRONMENT with: one `render ENV --out` wrote for it.

    A folder `render --all` wrote holds every environment (one subfolder each): comparing one
    environment with all of them would report every other environment's objects as pruned, so it
    is refused, naming the subfolder to use. A folder written for another environment is refused
    too. A folder without a marker (written by hand or by another tool) is taken as given.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return folder
    where = Location(f"--against {folder}")
    if manifest.combined:
        listed = ", ".join(manifest.environments) or "none"
        hint = (f"; compare with --against {folder / environment}" if environment in manifest.environments
                else f"; {environment} is not among them")
        raise SpecError([Problem(f"{folder} holds every environment `render --all` wrote ({listed}){hint}", where)])
    if manifest.environment != environment:
        raise SpecError([Problem(f"{folder} holds {manifest.environment}, not {environment}", where)])
    return folder


def environment_output(environment: str, files: dict[str, str]) -> dict[str, str]:
    """One environment's files plus the manifest that marks the folder as envspec's."""
    return {**files, MANIFEST: OutputManifest(tuple(files), environment=environment).text()}


def combined_output(per_environment: dict[str, dict[str, str]]) -> dict[str, str]:
    """`render --all`: a folder per environment (each with its own manifest), and a manifest listing them all."""
    files: dict[str, str] = {}
    for name, env_files in per_environment.items():
        for rel, content in environment_output(name, env_files).items():
            files[f"{name}/{rel}"] = content
    files[MANIFEST] = OutputManifest(tuple(files), environments=tuple(per_environment)).text()
    return files


def _refuse(out: Path, message: str) -> SpecError:
    return SpecError([Problem(message, Location(f"--out {out}"))])


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_folder(out: Path, *, environment: str | None, project_root: Path, source_dirs: tuple[Path, ...]) -> Path:
    """Where `render` writes: `out`, or `out/<environment>` when `out` holds a `render --all` tree.

    Refuses the project root, any folder that contains it, and the project's
    source folders (environments/, templates/ ...) or anything inside them.
    """
    target = out.resolve()
    root = project_root.resolve()
    how = "pass a new or empty folder, e.g. --out rendered"
    if _is_within(root, target):
        what = "the project root" if target == root else f"a folder that contains the project root {root}"
        raise _refuse(out, f"refusing to write into {what}: envspec replaces its output folder; {how}")
    if _is_within(Path.cwd().resolve(), target):
        raise _refuse(out, "refusing to write into the current directory or a folder that contains it: envspec "
                           f"swaps its output folder in as a whole; {how}")
    for source in source_dirs:
        if _is_within(target, source.resolve()):
            raise _refuse(out, f"refusing to write into the project's {source.name}/ folder ({source}); {how}")
    if target.exists() and not target.is_dir():
        raise _refuse(out, f"{out} is a file, not a folder; {how}")
    manifest = read_manifest(target) if target.is_dir() else None
    if environment is not None and manifest is not None and manifest.combined:
        return target / environment
    if environment is not None and manifest is None and target.is_dir():
        inner = read_manifest(target / environment)
        if inner is not None and inner.environment == environment:
            return target / environment  # a folder of environment folders, each written by `render ENV`
    return target


def _walk(folder: Path) -> tuple[set[str], set[str]]:
    """Every file (and symlink) and every empty directory under `folder`, relative to it."""
    files: set[str] = set()
    empty: set[str] = set()
    def unreadable(error: OSError) -> None:
        raise error  # a folder envspec cannot list could hold a user's files: never swap it away

    top = os.fspath(folder)
    strip = len(os.path.join(top, ""))  # relative paths by slicing: this runs over every file, twice per write
    for here, dirs, names in os.walk(top, onerror=unreadable):
        rel = here[strip:]
        prefix = rel + "/" if rel else ""
        for name in list(dirs):
            if os.path.islink(os.path.join(here, name)):
                dirs.remove(name)  # never followed; carried over as a link
                names.append(name)
        for name in names:
            files.add(prefix + name)
        if not dirs and not names and rel:
            empty.add(rel)
    return files, empty


def _folders(paths: set[str]) -> set[str]:
    """Every folder that holds one of `paths` (relative, normalized): what Path(p).parents gives, less `.`."""
    folders: set[str] = set()
    for path in paths:
        cut = path.rfind("/")
        while cut > 0 and path[:cut] not in folders:
            folders.add(path[:cut])
            cut = path.rfind("/", 0, cut)
    return folders


def _owned(folder: Path, manifest: OutputManifest, new_paths: set[str], existing: set[str] | None = None) -> set[str]:
    """The files envspec wrote in `folder` and may replace: its manifest's list, plus the files of an
    environment folder inside it (with its own manifest) that this run writes again. With `existing`
    (the folder's files, from `_walk`) the inner manifests are looked up there instead of searched for:
    only owned files that exist matter to a plan."""
    owned = {MANIFEST, *manifest.files}
    new_dirs = _folders(new_paths)
    suffix = "/" + MANIFEST
    if existing is None:
        inner_markers = [str(m.relative_to(folder)) for m in folder.rglob(MANIFEST) if m.parent != folder]
    else:
        inner_markers = [p for p in existing if p.endswith(suffix)]
    for marker in inner_markers:
        rel = marker[: -len(suffix)]
        if rel not in new_dirs:
            continue
        inner = read_manifest(folder / rel)
        if inner is not None:
            owned |= {f"{rel}/{MANIFEST}", *(f"{rel}/{f}" for f in inner.files)}
    return owned


def _clashes(kept: set[str], new_paths: set[str]) -> list[str]:
    """Kept paths that a new file would overwrite, or that sit where a new file needs a folder (or vice versa)."""
    new_dirs = _folders(new_paths)
    clashes = []
    for path in sorted(kept):
        if path in new_paths or path in new_dirs or not _folders({path}).isdisjoint(new_paths):
            clashes.append(path)
    return clashes


@dataclass(frozen=True)
class OutputPlan:
    """What writing `files` into `target` does: the files carried over untouched, and the files replaced."""

    target: Path
    kept: tuple[str, ...] = ()
    kept_dirs: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()


def _interrupted(target: Path) -> list[Path]:
    """Folders a render moved aside and did not get to remove (it was killed between its two renames)."""
    return sorted(target.parent.glob(f".{target.name}.envspec-old-*")) if target.parent.is_dir() else []


def plan_output(out: Path, target: Path, files: dict[str, str]) -> OutputPlan:
    """Check that envspec may write `files` into `target`, and what it keeps there. SpecError (exit 2) when not."""
    if not target.exists() and _interrupted(target):
        raise _refuse(
            out,
            f"an earlier render was interrupted while replacing {target}; its previous content is in "
            f"{_interrupted(target)[0]}: move that folder back to {target.name} (or delete it), then run again",
        )
    if not target.exists() or not any(target.iterdir()):
        return OutputPlan(target)
    manifest = read_manifest(target)
    folder = "the folder" if target == out.resolve() else str(target)
    if manifest is None:
        raise _refuse(
            out,
            f"{folder} is not empty and was not written by envspec (it has no {MANIFEST} file); "
            "envspec only replaces folders it wrote. Pass a new or empty folder, or move the folder's "
            "contents away yourself",
        )
    existing, empty_dirs = _walk(target)
    new_paths = set(files)
    owned = _owned(target, manifest, new_paths, existing)
    kept = existing - owned
    clashes = _clashes(kept, new_paths)
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise _refuse(
            out,
            f"{folder} holds {shown}, which envspec did not write and would overwrite; "
            "move or rename it, then run again",
        )
    new_dirs = _folders(new_paths)
    kept_dirs = {d for d in empty_dirs if d not in new_dirs and d not in new_paths}
    return OutputPlan(target, tuple(sorted(kept)), tuple(sorted(kept_dirs)), tuple(sorted(existing & owned)))


def _late_arrivals(target: Path, plan: OutputPlan, new_paths: set[str]) -> tuple[str, ...]:
    """Files that appeared in `target` after it was planned: carried over too, or the write is abandoned."""
    existing, _ = _walk(target)
    late = existing - set(plan.kept) - set(plan.replaced)
    if _clashes(late, new_paths):
        raise SpecError(f"{target} changed while envspec was writing it; nothing was replaced, run again")
    return tuple(sorted(late))


def _carry_over(source: Path, staging: Path, plan: OutputPlan, files: tuple[str, ...] | None = None) -> None:
    """Put the files envspec does not own into the new tree: hard links (same file, no copy), else copies."""
    for rel in plan.kept_dirs if files is None else ():
        (staging / rel).mkdir(parents=True, exist_ok=True)
    for rel in plan.kept if files is None else files:
        src, dst = source / rel, staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
            continue
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


# Creating (and removing) a file is kernel time (~0.1-0.6 ms each on a small VM) that releases the
# GIL: with many files a few threads write about twice as fast on 2 CPUs, as long as no two of them
# work in the same folder at once (they would queue for its lock). Below _POOL_MIN files, threads
# cost more than they save.
_POOL_MIN = 32
_POOL_WORKERS = min(8, 2 * (os.cpu_count() or 1))


def _in_parallel(work: Callable[[int], None], count: int, threads: bool) -> None:
    """work(0), ..., work(count - 1): in this order, or on a few threads when `threads`.

    An error stops the threads from taking more work; once all have stopped, the error of the lowest
    index that failed is raised. Indices are handed out in order, so every index below a failed one
    has run by then: it is exactly the error a sequential loop would have raised.
    """
    if not threads or count < 2:
        for index in range(count):
            work(index)
        return
    import threading  # here: the stdout path of `render` never needs it

    indices = iter(range(count))
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[tuple[int, BaseException]] = []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                index = next(indices, None)
            if index is None:
                return
            try:
                work(index)
            except BaseException as exc:  # raised again by the calling thread, below
                with lock:
                    errors.append((index, exc))
                stop.set()

    pool = [threading.Thread(target=worker, name=f"envspec-write-{n}", daemon=True)
            for n in range(min(_POOL_WORKERS, count))]
    for thread in pool:
        thread.start()
    try:
        for thread in pool:
            thread.join()
    except BaseException:  # interrupted while waiting: no thread may still write once the caller cleans up
        stop.set()
        for thread in pool:
            thread.join()
        raise
    if errors:
        raise min(errors, key=lambda error: error[0])[1]


def _xattrs(path: str | int) -> dict[str, bytes]:
    """A file's extended attributes (an ACL, a security label, a user's tags): nearly always none."""
    if not hasattr(os, "listxattr"):  # Linux only; elsewhere only mode and owner are compared
        return {}
    follow = isinstance(path, int)  # a descriptor is the file itself; a path's last link is never followed
    return {name: os.getxattr(path, name, follow_symlinks=follow) for name in os.listxattr(path, follow_symlinks=follow)}


@dataclass(frozen=True)
class _Fresh:
    """What a file envspec creates in the staging tree gets: its permission bits (umask, a default
    ACL), its owner and group (a set-group-ID folder) and extended attributes (ACL, security label).
    An old file is reused only if it has exactly these."""

    mode: int
    uid: int
    gid: int
    xattrs: dict[str, bytes]

    @staticmethod
    def probe(staging: Path) -> _Fresh:
        path = staging / ".envspec-probe"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # as open(path, "w") creates files
        try:
            st = os.fstat(fd)
            xattrs = _xattrs(fd)
        finally:
            os.close(fd)
            os.unlink(path)
        return _Fresh(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, xattrs)

    @staticmethod
    def probe_folder(staging: Path) -> _Fresh:
        """What a subfolder envspec creates in the staging tree gets (as `_stage_files` makes them)."""
        path = staging / ".envspec-probe"
        os.mkdir(path)
        try:
            st = os.lstat(path)
            xattrs = _xattrs(str(path))
        finally:
            os.rmdir(path)
        return _Fresh(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, xattrs)

    def matches(self, st: os.stat_result, size: int, links: int) -> bool:
        return (stat.S_ISREG(st.st_mode) and st.st_nlink == links and st.st_size == size
                and (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (self.mode, self.uid, self.gid))


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    """Whatever changes when a file is written, chmod-ed, linked or replaced."""
    return (st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns)


def _link_unchanged(old: str, new: str, data: bytes, fresh: _Fresh) -> tuple[int, ...] | None:
    """Hard-link `old` to `new` when it is envspec's file with exactly `data` and what a fresh write
    would give it (mode, owner, group, extended attributes); the link's stamp, or None (nothing left
    at `new`) when not.

    Only a regular file with no other link qualifies: a symlink is never followed, and a file the
    user linked elsewhere (`ln rendered/x.yaml ~/x.yaml`) is not shared with the new output. The
    bytes are read through the new link, so what was compared is what the output holds.
    """
    try:
        before = os.lstat(old)
        if not fresh.matches(before, len(data), links=1) or _xattrs(old) != fresh.xattrs:
            return None
        os.link(old, new, follow_symlinks=False)
    except OSError:
        return None
    try:
        st = os.lstat(new)
        if (st.st_dev, st.st_ino) == (before.st_dev, before.st_ino) and fresh.matches(st, len(data), links=2):
            fd = os.open(new, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle:
                if handle.read(len(data) + 1) == data:
                    return _stamp(st)
    except OSError:
        pass
    os.unlink(new)
    return None


def _remove_tree(folder: Path, threads: bool) -> None:
    """Remove the old output after the swap (best effort, as before: the new output is in place),
    with `threads` its subfolders on a few threads."""
    try:
        with os.scandir(folder) as entries:
            subfolders = sorted(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
    except OSError:
        subfolders = []
    _in_parallel(lambda index: shutil.rmtree(subfolders[index], ignore_errors=True), len(subfolders), threads)
    shutil.rmtree(folder, ignore_errors=True)


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _stage_files(staging: Path, target: Path, files: dict[str, str], reusable: set[str],
                 fresh: _Fresh | None) -> dict[str, tuple[int, ...]]:
    """Put `files` into the staging tree: a file of `reusable` (envspec's, in `target`) whose bytes
    are unchanged is hard-linked from there, keeping its inode and mtime (make, rsync and editors see
    it unchanged; ~30x cheaper than creating a file); every other file is written. Returns the links
    made, with their stamps, for `_recheck_links`.

    Links are made first, in order; the files left are written folder by folder (threads take whole
    folders), in the order of each folder's first file. Without `fresh` (see `_probe`) nothing is linked.
    """
    for folder in sorted(_folders(set(files))):  # before any thread writes into them; parents sort first
        os.mkdir(os.path.join(staging, folder))
    names = sorted(files)
    data = [files[rel].encode("utf-8") for rel in names]
    linked: dict[str, tuple[int, ...]] = {}
    unlinked: list[int] = []
    for index, rel in enumerate(names):  # links on this thread: a few µs of syscalls each, threads only add switching
        if fresh is not None and rel in reusable:
            stamp = _link_unchanged(os.path.join(target, rel), os.path.join(staging, rel), data[index], fresh)
            if stamp is not None:
                linked[rel] = stamp
                continue
        unlinked.append(index)

    by_folder: dict[str, list[int]] = {}
    for index in unlinked:
        by_folder.setdefault(os.path.dirname(names[index]), []).append(index)
    batches = list(by_folder.values())

    def write_folder(batch: int) -> None:
        for index in batches[batch]:
            _write_bytes(os.path.join(staging, names[index]), data[index])

    _in_parallel(write_folder, len(batches), threads=len(unlinked) >= _POOL_MIN)
    return linked


def _probe(staging: Path) -> _Fresh | None:
    """What a fresh file gets here, or None (link nothing, write every file) where the file system
    cannot say, e.g. one that does not support extended attributes (sshfs answers EOPNOTSUPP)."""
    try:
        return _Fresh.probe(staging)
    except OSError:
        return None


def _same_file(path: str, data: bytes, fresh: _Fresh) -> tuple[int, ...] | None:
    """The stamp of `path` when it is a regular file (not a symlink) with no other link, exactly `data`,
    and what a fresh write would give it (what `_link_unchanged` asks, without the link); else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        same = fresh.matches(st, len(data), links=1) and _xattrs(fd) == fresh.xattrs and os.read(fd, len(data) + 1) == data
        return _stamp(st) if same else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _same_folder(path: str, fresh: _Fresh) -> bool:
    try:
        st = os.lstat(path)
        return (stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid) == (fresh.uid, fresh.gid)
                and stat.S_IMODE(st.st_mode) == fresh.mode and _xattrs(path) == fresh.xattrs)
    except OSError:
        return False


def _unchanged(target: Path, staging: Path, files: dict[str, str], plan: OutputPlan, fresh: _Fresh) -> bool:
    """Would the swap leave `target` exactly as it is (but for the folder's inode)? Then nothing need be written.

    That holds when the files envspec owns there are exactly `files` (none to add, none to remove),
    each with the very bytes and the attributes a fresh write gives it (`_same_file`), and every
    folder is as the swap would make it: the top one as the staging folder is after its chmod
    (mode, owner, group, extended attributes), every other one what a new subfolder gets. Kept
    files and kept empty folders are hard-linked (or, where a link fails, copied) into the swapped
    tree; skipping the write leaves them as they are. One mismatch is enough to stop: the caller
    then writes the new tree as before.
    """
    if set(plan.replaced) != files.keys():
        return False
    try:
        fresh_folder = _Fresh.probe_folder(staging)
        swapped = os.lstat(staging)  # what the folder would be after the swap: its mode as chmod left it
        top = _Fresh(stat.S_IMODE(swapped.st_mode), swapped.st_uid, swapped.st_gid, _xattrs(str(staging)))
    except OSError:
        return False  # a file system that cannot say (see _probe): the swap decides, as always
    root = os.fspath(target)
    if not _same_folder(root, top):
        return False
    folders = _folders({*plan.replaced, *plan.kept, *plan.kept_dirs}) | set(plan.kept_dirs)
    if not all(_same_folder(os.path.join(root, rel), fresh_folder) for rel in sorted(folders)):
        return False
    stamps: dict[str, tuple[int, ...]] = {}
    for rel in sorted(files):
        stamp = _same_file(os.path.join(root, rel), files[rel].encode("utf-8"), fresh)
        if stamp is None:
            return False
        stamps[rel] = stamp
    # As _recheck_links does before a swap: a file changed in place after it was compared (an editor
    # saving into the output meanwhile) is written, so the output holds exactly what was rendered.
    try:
        return all(_stamp(os.lstat(os.path.join(root, rel))) == stamp for rel, stamp in stamps.items())
    except OSError:
        return False


def _recheck_links(staging: Path, files: dict[str, str], linked: dict[str, tuple[int, ...]]) -> None:
    """Just before the swap: a linked file that was changed in place meanwhile (through the old
    tree) is written afresh, so the output holds exactly what was rendered."""
    for rel, stamp in linked.items():
        path = os.path.join(staging, rel)
        if _stamp(os.lstat(path)) != stamp:
            os.unlink(path)
            _write_bytes(path, files[rel].encode("utf-8"))


def write_tree_atomically(target: Path, files: dict[str, str], plan: OutputPlan | None = None) -> bool:
    """Replace `target` with `files` (relative paths) plus the plan's kept files, or leave it untouched on any failure.
    False when nothing needed writing.

    With a plan, the files envspec wrote there before and would write again byte for byte are
    hard-linked into the new tree instead of written (see `_stage_files`); the old tree is then
    removed as before, and the links keep those files' content alive in the new one. When every
    file is such a file and none would go (`_unchanged`: the GitOps re-render of an unchanged
    project), nothing at all is written: not a link, not a folder.
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.envspec-", dir=target.parent))
    try:
        # mkdtemp makes the folder private (0700); the output keeps the old folder's mode, or the umask's.
        os.chmod(staging, target.stat().st_mode & 0o7777 if target.exists() else 0o777 & ~_umask())
        fresh = _probe(staging) if plan is not None and target.exists() else None  # what a new file gets here
        reusable: set[str] = set()
        if plan is not None and fresh is not None:
            if _unchanged(target, staging, files, plan, fresh):
                os.rmdir(staging)
                return False
            reusable = set(plan.replaced) & set(files)
        linked = _stage_files(staging, target, files, reusable, fresh)
        if plan is not None and target.exists():
            _carry_over(target, staging, plan)
            _carry_over(target, staging, plan, _late_arrivals(target, plan, set(files)))
        _recheck_links(staging, files, linked)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.envspec-old-{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            _remove_tree(old, threads=len(files) >= _POOL_MIN)
        return True
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_tree(target: Path, only: set[str] | None = None) -> dict[str, str]:
    """The folder's files (relative path -> text); with `only`, just those paths."""
    if not target.is_dir():
        return {}
    found: dict[str, str] = {}
    for p in sorted(target.rglob("*")):
        rel = str(p.relative_to(target))
        if p.is_file() and (only is None or rel in only):
            try:
                found[rel] = p.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                found[rel] = "(binary file)\n"
    return found


def owned_tree(target: Path, files: dict[str, str]) -> dict[str, str]:
    """What `--check` compares with: the files envspec wrote in `target` and the ones it would write now.
    A user's own files in the folder are not envspec's output, so they never make it stale."""
    manifest = read_manifest(target) if target.is_dir() else None
    owned = set(files) if manifest is None else _owned(target, manifest, set(files)) | set(files)
    return read_tree(target, owned)
