"""Rewriting an output folder is cheap and changes nothing but what changed (issue 14).

A file envspec wrote before with exactly the bytes it writes now is hard-linked into the new
tree (it keeps its inode and mtime); everything else is written afresh, as before. Many files
are written on a few threads; the result, and the first error, are those of a sequential write.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import envspec.render.output as output
from envspec.cli import main
from envspec.render.output import MANIFEST, environment_output, plan_output, write_tree_atomically
from tests.conftest import REPO


def write(out: Path, files: dict[str, str]) -> None:
    write_tree_atomically(out, files, plan_output(out, out, files))


def inodes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_ino for p in sorted(folder.rglob("*")) if not p.is_dir()}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and permission bits (and every symlink's target) under `folder`."""
    found: dict[str, tuple[bytes, int]] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            found[rel] = (os.readlink(p).encode(), 0)
        elif p.is_file():
            found[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        else:
            found[rel + "/"] = (b"", stat.S_IMODE(p.stat().st_mode))
    return found


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def fresh_mode() -> int:
    return 0o666 & ~_umask()


FILES = environment_output("e", {"a.yaml": "kind: A\n", "b.yaml": "kind: B\n", "kustomization.yaml": "resources: []\n"})


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    write(folder, FILES)
    return folder


def test_unchanged_files_are_linked_and_keep_their_mtime(out: Path) -> None:
    before = inodes(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    write(out, FILES)
    assert inodes(out) == before  # the marker too: its list of files did not change
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    assert all(p.stat().st_nlink == 1 for p in out.iterdir())  # the old tree is gone, links and all
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    assert {rel: data for rel, (data, _) in snapshot(out).items()} == {rel: text.encode() for rel, text in FILES.items()}


def test_an_unchanged_output_is_not_written_at_all(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GitOps re-render of an unchanged project: not a file, a link or a folder is made or replaced."""
    (out / "notes.txt").write_text("mine\n")  # a user's file changes nothing: it is kept either way
    (out / "sub").mkdir()  # nor does an empty folder of theirs
    folder, before, files = out.stat(), snapshot(out), inodes(out)

    def no_writes(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing should be linked or replaced")

    monkeypatch.setattr(output.os, "link", no_writes)
    monkeypatch.setattr(output.os, "replace", no_writes)
    assert write_tree_atomically(out, FILES, plan_output(out, out, FILES)) is False
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (folder.st_ino, folder.st_mtime_ns)
    assert snapshot(out) == before and inodes(out) == files
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # the probe's staging folder is gone


@pytest.mark.parametrize("change", [
    pytest.param(lambda out: (out / "a.yaml").unlink(), id="an owned file is missing"),
    pytest.param(lambda out: (out / "a.yaml").write_text("kind: X\n"), id="an owned file was edited"),
    pytest.param(lambda out: (out / "a.yaml").chmod(0o600), id="an owned file's mode differs"),
    pytest.param(lambda out: (out / "sub").chmod(0o700), id="a subfolder's mode differs"),
])
def test_any_difference_from_a_fresh_write_writes_the_tree(out: Path, change: Callable[[Path], None]) -> None:
    files = environment_output("e", {**{rel: FILES[rel] for rel in FILES if rel != MANIFEST}, "sub/c.yaml": "kind: C\n"})
    write(out, files)
    change(out)
    assert write_tree_atomically(out, files, plan_output(out, out, files)) is True
    assert {rel: data for rel, (data, _) in snapshot(out).items() if not rel.endswith("/")} == {
        rel: text.encode() for rel, text in files.items()}
    assert stat.S_IMODE((out / "a.yaml").stat().st_mode) == fresh_mode()
    assert stat.S_IMODE((out / "sub").stat().st_mode) == fresh_mode() | (0o111 & ~_umask())


def test_a_file_changed_in_place_after_the_comparison_is_written(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saving into the output while the unchanged check runs: the render writes, and the
    output holds what was rendered."""
    real = output._same_file
    edited: list[str] = []

    def compare_then_edit(path: str, *args: object) -> object:
        stamp = real(path, *args)  # type: ignore[arg-type]
        if path.endswith("a.yaml") and not edited:
            with open(path, "r+") as handle:  # in place, same size: only the stamp (mtime, ctime) tells
                handle.write("kind: X\n")
            edited.append(path)
        return stamp

    os.utime(out / "a.yaml", ns=(0, 0))  # so the edit's mtime differs, however coarse the clock
    monkeypatch.setattr(output, "_same_file", compare_then_edit)
    assert write_tree_atomically(out, FILES, plan_output(out, out, FILES)) is True
    assert edited and (out / "a.yaml").read_text() == "kind: A\n"


def test_an_owned_file_no_longer_rendered_is_removed(out: Path) -> None:
    files = environment_output("e", {"a.yaml": "kind: A\n", "kustomization.yaml": "resources: []\n"})
    assert write_tree_atomically(out, files, plan_output(out, out, files)) is True
    assert not (out / "b.yaml").exists()


def test_changed_and_new_files_are_written_afresh(out: Path) -> None:
    before = inodes(out)
    files = environment_output("e", {"a.yaml": "kind: A\n", "b.yaml": "kind: B2\n", "c.yaml": "kind: C\n",
                                     "kustomization.yaml": "resources: []\n"})
    write(out, files)
    after = inodes(out)
    assert after["a.yaml"] == before["a.yaml"] and after["kustomization.yaml"] == before["kustomization.yaml"]
    assert after["b.yaml"] != before["b.yaml"] and after[MANIFEST] != before[MANIFEST]  # the marker lists c.yaml now
    assert (out / "b.yaml").read_text() == "kind: B2\n" and (out / "c.yaml").read_text() == "kind: C\n"
    assert (out / MANIFEST).read_text() == files[MANIFEST]


def test_a_symlink_in_place_of_an_owned_file_is_not_followed(out: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("kind: A\n")  # the very bytes envspec writes
    (out / "a.yaml").unlink()
    (out / "a.yaml").symlink_to(elsewhere)
    write(out, FILES)
    assert not (out / "a.yaml").is_symlink() and (out / "a.yaml").read_text() == "kind: A\n"
    assert (out / "a.yaml").stat().st_ino != elsewhere.stat().st_ino
    assert elsewhere.read_text() == "kind: A\n" and elsewhere.stat().st_nlink == 1


def test_an_owned_file_the_user_linked_elsewhere_is_not_shared(out: Path, tmp_path: Path) -> None:
    """`ln out/a.yaml ~/a.yaml`: the user's link keeps the old file; the new output gets its own."""
    theirs = tmp_path / "theirs.yaml"
    os.link(out / "a.yaml", theirs)
    write(out, FILES)
    assert (out / "a.yaml").stat().st_ino != theirs.stat().st_ino
    assert theirs.read_text() == "kind: A\n" and theirs.stat().st_nlink == 1
    theirs.write_text("edited\n")
    assert (out / "a.yaml").read_text() == "kind: A\n"


def test_a_file_whose_mode_differs_from_a_fresh_write_is_rewritten(out: Path) -> None:
    before = inodes(out)
    (out / "a.yaml").chmod(0o600)
    write(out, FILES)
    assert inodes(out)["a.yaml"] != before["a.yaml"] and inodes(out)["b.yaml"] == before["b.yaml"]
    assert stat.S_IMODE((out / "a.yaml").stat().st_mode) == fresh_mode()


@pytest.mark.skipif(not hasattr(os, "setxattr"), reason="extended attributes are Linux's")
def test_a_file_with_an_attribute_a_fresh_file_lacks_is_rewritten(out: Path) -> None:
    try:
        os.setxattr(out / "a.yaml", "user.reviewed", b"yes")
    except OSError:
        pytest.skip("this file system keeps no user attributes")
    before = inodes(out)
    write(out, FILES)
    assert inodes(out)["a.yaml"] != before["a.yaml"] and inodes(out)["b.yaml"] == before["b.yaml"]
    assert os.listxattr(out / "a.yaml") == []


def test_a_new_umask_rewrites_every_file_with_the_mode_it_gives(out: Path) -> None:
    before = inodes(out)
    previous = os.umask(0o077)
    try:
        write(out, FILES)
    finally:
        os.umask(previous)
    assert all(inodes(out)[rel] != before[rel] for rel in FILES)
    assert all(stat.S_IMODE((out / rel).stat().st_mode) == 0o600 for rel in FILES)


def test_a_file_changed_in_place_while_rendering_gets_the_rendered_bytes(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saving into the old tree after the file was linked: the output still holds what was rendered."""
    real = output._late_arrivals

    def edit_then_look(target: Path, *args: object) -> tuple[str, ...]:
        with open(target / "a.yaml", "r+") as handle:  # in place: the linked inode itself
            handle.write("kind: X\n")
        return real(target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(output, "_late_arrivals", edit_then_look)
    write(out, {**FILES, "b.yaml": "kind: B2\n"})  # a change, so the tree is written and a.yaml linked
    assert (out / "a.yaml").read_text() == "kind: A\n"


def many(count: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    files = {f"env-{n % 5}/object-{n:03}.yaml": f"kind: Thing\nmetadata: {{name: t{n}}}\n" for n in range(count)}
    return environment_output("e", {**files, **(extra or {})})


def test_many_files_on_threads_give_what_one_thread_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = many(200)
    assert len(files) >= output._POOL_MIN
    write(tmp_path / "threads", files)
    monkeypatch.setattr(output, "_POOL_MIN", 10**9)
    write(tmp_path / "one", files)
    assert snapshot(tmp_path / "threads") == snapshot(tmp_path / "one")
    assert stat.S_IMODE((tmp_path / "threads").stat().st_mode) == stat.S_IMODE((tmp_path / "one").stat().st_mode)


def test_an_error_on_a_thread_leaves_the_target_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out, many(100))
    (out / "notes.txt").write_text("mine\n")
    before, ids = snapshot(out), inodes(out)
    too_long = {f"env-1/{'x' * 300}-{n}.yaml": "kind: Bad\n" for n in (1, 2)}  # no file system takes such a name
    changed = many(100, too_long)
    for rel in list(changed)[::2]:
        changed[rel] += "# changed\n"
    with pytest.raises(OSError) as error:
        write(out, changed)
    assert error.value.filename.endswith(f"{'x' * 300}-1.yaml")  # the first in order, as a loop would have met it
    assert snapshot(out) == before and inodes(out) == ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging tree left behind


def test_a_failed_link_falls_back_to_writing(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(output.os, "link", refuse)
    files = {**FILES, "b.yaml": "kind: B2\n"}  # a change, so the tree is written
    write(out, files)
    assert {rel: data for rel, (data, _) in snapshot(out).items()} == {rel: text.encode() for rel, text in files.items()}


def test_a_file_system_without_extended_attributes_writes_every_file(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshfs and other FUSE mounts answer listxattr with EOPNOTSUPP: the second render there failed."""
    import errno

    def unsupported(*args: object, **kwargs: object) -> list[str]:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    before = inodes(out)
    monkeypatch.setattr(output.os, "listxattr", unsupported)
    write(out, FILES)
    assert {rel: data for rel, (data, _) in snapshot(out).items()} == {rel: text.encode() for rel, text in FILES.items()}
    assert all(inodes(out)[rel] != ino for rel, ino in before.items())  # written afresh, none linked


def test_render_all_again_links_every_file_and_stays_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    for folder in ("environments", "templates", "components"):
        shutil.copytree(REPO / folder, root / folder)
    monkeypatch.chdir(root)
    run = CliRunner().invoke
    assert run(main, ["render", "--all", "--out", "rendered"]).exit_code == 0
    (root / "rendered" / "notes.txt").write_text("mine\n")
    before = inodes(root / "rendered")
    result = run(main, ["render", "--all", "--out", "rendered"])
    assert result.exit_code == 0, result.output
    count = sum(1 for p in (root / "rendered").rglob("*") if p.is_file()) - 1  # less the user's notes.txt
    assert f"rendered is up to date: its {count} files are unchanged, nothing was written; kept 1 file(s)" in result.stderr
    assert inodes(root / "rendered") == before  # the user's notes.txt too: kept as it was
    (root / "rendered" / "local" / "kustomization.yaml").write_text("edited\n")
    again = run(main, ["render", "--all", "--out", "rendered"])
    assert again.exit_code == 0 and f"\nwrote {count} files to rendered; kept 1 file(s)" in again.stderr
    assert run(main, ["render", "--all", "--out", "rendered", "--check"]).exit_code == 0
    assert sorted(p.name for p in root.iterdir()) == ["components", "environments", "rendered", "templates"]


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c.yaml", "d-1"]), min_size=1, max_size=4).map("/".join), max_size=6))
def test_folders_are_the_paths_parents(paths: list[str]) -> None:
    expected = {str(parent) for p in paths for parent in Path(p).parents if str(parent) != "."}
    assert output._folders(set(paths)) == expected
