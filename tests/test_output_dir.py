"""`render --out` owns only what it wrote (issue 9, "On disk").

Each test runs the real command line on a copy of a project and then checks
the folder byte for byte: what envspec refuses, what it replaces, and that a
user's own files are never deleted.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from envspec.cli import main
from envspec.render.output import MANIFEST, OutputManifest, output_folder, owned_tree, plan_output, read_manifest
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "hello"


def render(*args: str) -> Result:
    return CliRunner().invoke(main, ["render", *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (relative paths), to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "hello"
    shutil.copytree(EXAMPLE, project)
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's environments with `render --all` written to rendered/."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "environments", root / "environments")
    shutil.copytree(REPO / "templates", root / "templates")  # the project's own templates (preview-base's)
    shutil.copytree(REPO / "components", root / "components")  # the project's own components (monitoring, ...)
    monkeypatch.chdir(root)
    result = render("--all", "--out", "rendered")
    assert result.exit_code == 0, result.output
    return root


# --- refusals: exit 2, a message naming the folder and the way out, nothing deleted ----------


def test_rendering_into_the_project_root_is_refused_and_deletes_nothing(hello: Path) -> None:
    before = snapshot(hello)
    result = render("hello", "--root", ".", "--out", ".")
    assert result.exit_code == 2
    assert "--out .: refusing to write into the project root" in result.stderr
    assert "pass a new or empty folder" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(hello) == before
    assert sorted(p.name for p in hello.iterdir()) == ["environments", "templates"]


@pytest.mark.parametrize("out", ["environments", "templates", "environments/out", "templates/x/y", "components"])
def test_the_projects_source_folders_are_refused(hello: Path, out: str) -> None:
    before = snapshot(hello)
    result = render("hello", "--out", out)
    assert result.exit_code == 2, result.output
    folder = out.split("/")[0]
    assert f"--out {out}: refusing to write into the project's {folder}/ folder" in result.stderr
    assert snapshot(hello) == before


def test_a_folder_that_contains_the_project_is_refused(hello: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    for out in ("..", str(tmp_path), "/"):
        result = render("hello", "--out", out)
        assert result.exit_code == 2, (out, result.output)
        assert f"--out {out}: refusing to write into a folder that contains the project root" in result.stderr
    assert snapshot(tmp_path) == before


def test_a_non_empty_folder_envspec_did_not_write_is_refused(hello: Path) -> None:
    mine = hello / "docs"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    (mine / "deployment_hello-dev_hello.yaml").write_text("# mine, not envspec's\n")
    result = render("hello", "--out", "docs")
    assert result.exit_code == 2
    assert f"--out docs: the folder is not empty and was not written by envspec (it has no {MANIFEST} file)" \
        in result.stderr
    assert "Pass a new or empty folder" in result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["deployment_hello-dev_hello.yaml", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "my notes\n"


def test_a_file_as_out_is_refused(hello: Path) -> None:
    (hello / "out").write_text("a file\n")
    result = render("hello", "--out", "out")
    assert result.exit_code == 2 and "--out out: out is a file, not a folder" in result.stderr
    assert (hello / "out").read_text() == "a file\n"


def test_an_unreadable_marker_makes_the_folder_not_ours(hello: Path) -> None:
    assert render("hello", "--out", "out").exit_code == 0
    (hello / "out" / MANIFEST).write_text("not json")
    before = snapshot(hello / "out")
    result = render("hello", "--out", "out")
    assert result.exit_code == 2 and "was not written by envspec" in result.stderr
    assert snapshot(hello / "out") == before


def test_output_written_before_markers_existed_is_refused_with_the_fix(project: Path) -> None:
    (project / "rendered" / MANIFEST).unlink()
    before = snapshot(project / "rendered")
    result = render("--all", "--out", "rendered")
    assert result.exit_code == 2 and f"it has no {MANIFEST} file" in result.stderr
    assert snapshot(project / "rendered") == before


# --- what envspec owns: a new, an empty or a folder it wrote ---------------------------------


def test_new_and_empty_folders_are_written_with_a_manifest(hello: Path) -> None:
    (hello / "empty").mkdir()
    for out in ("new/nested", "empty"):
        result = render("hello", "--out", out)
        assert result.exit_code == 0, result.output
        folder = hello / out
        manifest = read_manifest(folder)
        assert manifest is not None and manifest.environment == "hello"
        written = sorted(p.name for p in folder.iterdir())
        assert sorted([*manifest.files, MANIFEST]) == written
        assert "kustomization.yaml" in written
        umask = os.umask(0o022)
        os.umask(umask)
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # not the staging folder's private 0700


def test_a_rerun_replaces_what_envspec_wrote_and_keeps_the_users_files(hello: Path) -> None:
    assert render("hello", "--out", "out").exit_code == 0
    out = hello / "out"
    (out / "notes.txt").write_text("my notes\n")
    (out / "mine").mkdir()
    (out / "mine" / "extra.yaml").write_text("kind: Mine\n")
    (out / "empty-dir").mkdir()
    (out / "link").symlink_to("notes.txt")
    job = "job_hello-dev_welcome.yaml"
    assert (out / job).is_file()
    result = render("hello", "--out", "out", "--param", "tier=prod")  # every object now in hello-prod
    assert result.exit_code == 0, result.output
    assert "kept 3 file(s) envspec did not write" in result.stderr
    assert not (out / job).exists()  # envspec's own stale file is gone
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert (out / "mine" / "extra.yaml").read_text() == "kind: Mine\n"
    assert (out / "empty-dir").is_dir() and (out / "link").is_symlink()
    manifest = read_manifest(out)
    assert manifest is not None and job not in manifest.files and "notes.txt" not in manifest.files


def test_a_users_file_where_envspec_would_write_is_refused(hello: Path) -> None:
    assert render("hello", "--out", "out").exit_code == 0
    out = hello / "out"
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].remove("kustomization.yaml")  # as if the user had put this file there
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "kustomization.yaml").write_text("# the user's own kustomization\n")
    result = render("hello", "--out", "out")
    assert result.exit_code == 2
    assert "holds kustomization.yaml, which envspec did not write and would overwrite" in result.stderr
    assert (out / "kustomization.yaml").read_text() == "# the user's own kustomization\n"


# --- a folder of several environments (rendered/, as `render --all` writes it) --------------


def test_one_environment_into_a_folder_of_several_writes_only_its_own(project: Path) -> None:
    rendered = project / "rendered"
    (rendered / "notes.txt").write_text("notes\n")
    others = {name: snapshot(rendered / name) for name in ("preview-base", "production")}
    (rendered / "local" / "configmap_default_app-config.yaml").write_text("stale\n")
    result = render("local", "--out", "rendered")
    assert result.exit_code == 0, result.output
    assert "to rendered/local" in result.stderr
    assert sorted(p.name for p in rendered.iterdir()) == [MANIFEST, "local", "notes.txt", "preview-base", "production"]
    assert {name: snapshot(rendered / name) for name in others} == others
    assert (rendered / "notes.txt").read_text() == "notes\n"
    assert (rendered / "local" / "configmap_default_app-config.yaml").read_text() != "stale\n"
    check = render("--all", "--out", "rendered", "--check")
    assert check.exit_code == 0, check.output


def test_render_all_keeps_user_files_and_other_output_and_check_ignores_them(project: Path) -> None:
    rendered = project / "rendered"
    (rendered / "notes.txt").write_text("notes\n")
    (rendered / "production" / "README.md").write_text("how we deploy\n")
    pr = render("preview-pr", "--pr", "107", "--out", "rendered")
    assert pr.exit_code == 0, pr.output
    pr_files = snapshot(rendered / "preview-pr")
    assert "deployment_preview-pr-107_web.yaml" in pr_files

    check = render("--all", "--out", "rendered", "--check")
    assert check.exit_code == 0, check.output  # the user's files are not envspec's output
    again = render("--all", "--out", "rendered")
    assert again.exit_code == 0, again.output
    assert (rendered / "notes.txt").read_text() == "notes\n"
    assert (rendered / "production" / "README.md").read_text() == "how we deploy\n"
    assert snapshot(rendered / "preview-pr") == pr_files  # written by `render preview-pr`, not by --all
    assert render("--all", "--out", "rendered", "--check").exit_code == 0


def test_render_all_removes_output_of_an_environment_that_is_gone(project: Path) -> None:
    (project / "environments" / "local.yaml").unlink()
    (project / "rendered" / "local" / "notes.txt").write_text("mine\n")
    assert render("--all", "--out", "rendered").exit_code == 0
    assert sorted(p.name for p in (project / "rendered" / "local").iterdir()) == ["notes.txt"]
    assert read_manifest(project / "rendered").environments == ("preview-base", "production")


def test_check_reports_a_changed_owned_file_but_not_a_users_file(project: Path) -> None:
    rendered = project / "rendered"
    (rendered / "local" / "notes.txt").write_text("mine\n")
    assert render("--all", "--out", "rendered", "--check").exit_code == 0
    (rendered / "local" / "service_default_web.yaml").write_text("edited\n")
    stale = render("--all", "--out", "rendered", "--check")
    assert stale.exit_code == 1 and "rendered/local/service_default_web.yaml" in stale.stdout
    assert "notes.txt" not in stale.stdout


def test_a_failed_write_leaves_the_old_output_and_the_users_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import envspec.render.output as output

    rendered = project / "rendered"
    (rendered / "notes.txt").write_text("notes\n")
    (rendered / "local" / "service_default_web.yaml").write_text("edited\n")  # so the render has to write
    before = snapshot(rendered)

    def broken(src: str, dst: str, *args: object, **kwargs: object) -> None:
        raise OSError(28, "disk full", str(dst))

    monkeypatch.setattr(output.os, "link", broken)
    monkeypatch.setattr(output.shutil, "copy2", broken)
    result = render("--all", "--out", "rendered")
    assert result.exit_code == 2
    assert "--out rendered: cannot write" in result.stderr and "disk full" in result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.output
    assert snapshot(rendered) == before
    assert sorted(p.name for p in project.iterdir()) == ["components", "environments", "rendered", "templates"]  # no staging left behind


# --- the pieces ------------------------------------------------------------------------------


def test_manifest_text_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    one = OutputManifest(("b.yaml", "a.yaml"), environment="e")
    assert one.text() == OutputManifest(("a.yaml", "b.yaml"), environment="e").text()
    (tmp_path / MANIFEST).write_text(one.text())
    assert read_manifest(tmp_path) == OutputManifest(("a.yaml", "b.yaml"), environment="e")


def test_owned_tree_and_plan_see_only_envspecs_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MANIFEST).write_text(OutputManifest(("a.yaml",), environment="e").text())
    (folder / "a.yaml").write_text("old\n")
    (folder / "notes.txt").write_text("mine\n")
    files = {"a.yaml": "new\n", "b.yaml": "new\n", MANIFEST: "m\n"}
    assert set(owned_tree(folder, files)) == {MANIFEST, "a.yaml"}
    plan = plan_output(folder, folder, files)
    assert plan.kept == ("notes.txt",) and plan.replaced == (MANIFEST, "a.yaml")
    assert output_folder(folder, environment="e", project_root=tmp_path / "p", source_dirs=()) == folder.resolve()


def test_a_folder_of_environment_folders_without_its_own_marker(hello: Path) -> None:
    assert render("hello", "--out", "out/hello").exit_code == 0
    (hello / "out" / "other").mkdir()
    (hello / "out" / "other" / "keep.yaml").write_text("kind: Keep\n")
    result = render("hello", "--out", "out", "--param", "tier=prod")
    assert result.exit_code == 0, result.output
    assert "to out/hello" in result.stderr
    assert (hello / "out" / "other" / "keep.yaml").read_text() == "kind: Keep\n"
    assert (hello / "out" / "hello" / "namespace_hello-prod.yaml").is_file()


def test_the_current_directory_is_refused(hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (hello / "out").mkdir()
    monkeypatch.chdir(hello / "out")
    result = render("hello", "--root", str(hello), "--out", ".")
    assert result.exit_code == 2 and "refusing to write into the current directory" in result.stderr
    assert list((hello / "out").iterdir()) == []


def test_an_interrupted_swap_is_reported_not_papered_over(hello: Path) -> None:
    assert render("hello", "--out", "out").exit_code == 0
    (hello / "out" / "notes.txt").write_text("mine\n")
    (hello / "out").rename(hello / ".out.envspec-old-4242")  # killed between moving the old folder aside and the swap
    result = render("hello", "--out", "out")
    assert result.exit_code == 2
    assert "an earlier render was interrupted" in result.stderr and ".out.envspec-old-4242" in result.stderr
    assert (hello / ".out.envspec-old-4242" / "notes.txt").read_text() == "mine\n"
    assert not (hello / "out").exists()


def test_a_file_added_while_rendering_is_carried_over(hello: Path) -> None:
    from envspec.render.output import environment_output, write_tree_atomically

    assert render("hello", "--out", "out").exit_code == 0
    out = hello / "out"
    files = environment_output("hello", {"kustomization.yaml": "resources: []\n"})
    plan = plan_output(out, out, files)
    (out / "late.txt").write_text("written after the plan\n")
    write_tree_atomically(out, files, plan)
    assert (out / "late.txt").read_text() == "written after the plan\n"
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "kustomization.yaml", "late.txt"]



@given(st.lists(st.text(min_size=1), max_size=8), st.text(min_size=1))
def test_any_manifest_round_trips(files: list[str], environment: str) -> None:
    import tempfile

    manifest = OutputManifest(tuple(files), environment=environment)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / MANIFEST).write_text(manifest.text(), encoding="utf-8")
        assert read_manifest(Path(folder)) == OutputManifest(tuple(sorted(files)), environment=environment)


def test_the_marker_is_invisible_to_kustomize_and_diff_against(project: Path) -> None:
    """The committed folders stay plain kustomize directories: the real kubectl builds them unchanged."""
    import subprocess

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is on PATH in this environment (see GUIDE.md)"
    built = subprocess.run([kubectl, "kustomize", str(project / "rendered" / "production")],
                           capture_output=True, text=True, check=True).stdout
    files = [p for p in (project / "rendered" / "production").iterdir() if p.suffix == ".yaml"]
    assert built.count("\nkind: ") + built.startswith("kind: ") == len(files) - 1  # every object, no marker
    result = CliRunner().invoke(main, ["diff", "production", "--against", "rendered/production"])
    assert result.exit_code == 0, result.output


def test_a_folder_that_cannot_be_listed_stops_the_write(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable subfolder could hold a user's files: envspec does not swap the folder away from them."""
    import envspec.render.output as output

    rendered = project / "rendered"
    (rendered / "private").mkdir()
    (rendered / "private" / "secret-notes.txt").write_text("mine\n")
    real_walk = os.walk

    def walk(top: object, *args: object, onerror: object = None, **kwargs: object):  # type: ignore[no-untyped-def]
        for here, dirs, names in real_walk(top, *args, **kwargs):  # type: ignore[arg-type]
            if Path(here).name == "private":
                onerror(PermissionError(13, "Permission denied", here))  # type: ignore[operator]
                continue
            yield here, dirs, names

    monkeypatch.setattr(output.os, "walk", walk)
    before = snapshot(rendered)
    result = render("--all", "--out", "rendered")
    assert result.exit_code == 2, result.output
    assert "Permission denied" in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(rendered) == before
