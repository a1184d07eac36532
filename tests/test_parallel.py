"""Many environments in worker processes (issue 14): the same bytes, errors and exit codes as one process.

The command-line tests run envspec as a real process (forking inside pytest, with its
threads, would fall back to the serial loop) through a small probe that records which
process compiled each environment, and can make one of them crash or hang.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envspec import parallel
from envspec.errors import SpecError
from tests.conftest import REPO

# envspec's console script, with compile_resolved wrapped: it logs "<environment> <pid>" to PROBE_LOG,
# and for the environment named in PROBE_CRASH exits (PROBE_HOW=exit), kills itself (kill) or hangs (hang).
PROBE = """
import os, sys, time
import envspec.pipeline, envspec.validate
original = envspec.pipeline.compile_resolved
def probe(project, resolved):
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(f"{resolved.name} {os.getpid()}\\n")
    if resolved.name == os.environ.get("PROBE_CRASH"):
        how = os.environ.get("PROBE_HOW", "exit")
        if how == "exit":
            os._exit(3)
        if how == "kill":
            os.kill(os.getpid(), 9)
        time.sleep(60)
    return original(project, resolved)
envspec.pipeline.compile_resolved = envspec.validate.compile_resolved = probe
from envspec.cli import run
run()
"""

INSTANCES = 10


def make_project(root: Path, bad: bool = False, syntax: bool = False) -> Path:
    """The repository's environments plus preview instances (with `bad`, three broken ones; with
    `syntax`, one whose YAML does not parse)."""
    for folder in ("environments", "templates", "components"):
        shutil.copytree(REPO / folder, root / folder)
    for n in range(1, INSTANCES + 1):
        (root / "environments" / f"pr-{n}.yaml").write_text(f"extends: preview-pr\nparams: {{pr: {{default: {n}}}}}\n")
    if bad:
        envs = root / "environments"
        (envs / "bad-a.yaml").write_text("extends: preview-pr\nparams: {pr: {default: 3}}\napps:\n  web:\n    replicas: 0\n")
        (envs / "bad-b.yaml").write_text("extends: preview-pr\nparams: {pr: {default: 4}}\napps:\n  nosuch: {}\n")
        (envs / "pr-5x.yaml").write_text("extends: preview-pr\nparams: {pr: {default: 5}}\nreplicaz: 2\n")
    if syntax:
        (root / "environments" / "pr-5y.yaml").write_text("extends: [\n")
    return root


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("many"))


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("broken"), bad=True)


@pytest.fixture(scope="module")
def unparsable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("unparsable"), bad=True, syntax=True)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[bytes], log: Path):
        self.code, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        lines = log.read_text().split() if log.exists() else []
        self.pids = {env: int(pid) for env, pid in zip(lines[::2], lines[1::2])}

    @property
    def processes(self) -> int:
        return len(set(self.pids.values()))


def envspec(project: Path, *args: str, env: dict[str, str] | None = None, **extra: str) -> Run:
    log = project.parent / f"probe-{time.monotonic_ns()}.log"
    environ = {k: v for k, v in os.environ.items() if k not in ("ENVSPEC_JOBS", "GITHUB_ACTIONS")}
    environ.update({"PROBE_LOG": str(log), "ENVSPEC_NO_CACHE": "1", **(env or {}), **extra})
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=project, env=environ, capture_output=True, timeout=300)
    return Run(proc, log)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def same(a: Run, b: Run) -> None:
    assert (a.code, a.stdout.decode(), a.stderr.decode()) == (b.code, b.stdout.decode(), b.stderr.decode())


# --- the command line: parallel and serial runs are byte for byte the same -------------------


def test_render_all_in_workers_writes_the_same_files_and_says_the_same(many: Path) -> None:
    serial = envspec(many, "render", "--all", "--out", "out-1", "--jobs", "1")
    workers = envspec(many, "render", "--all", "--out", "out-3", "--jobs", "3")
    assert serial.code == 0, serial.stderr.decode()
    assert workers.code == 0 and workers.stdout == serial.stdout == b""
    assert workers.stderr.replace(b"out-3", b"out-1") == serial.stderr  # "wrote N files to out-K" names its folder
    assert b"warning" in serial.stderr  # the preview instances' unpinned images: printed in the same order
    assert tree(many / "out-3") == tree(many / "out-1")
    assert serial.processes == 1
    assert workers.processes == 3  # three workers, none of it in the parent
    assert len(workers.pids) == len(serial.pids) == INSTANCES + 3  # preview-pr needs parameters: skipped


def test_render_all_check_in_workers_prints_the_same_diff(many: Path) -> None:
    assert envspec(many, "render", "--all", "--out", "checked", "-j", "1").code == 0
    stale = many / "checked" / "pr-7" / "kustomization.yaml"
    stale.write_text(stale.read_text() + "# edited\n")
    next(p for p in sorted((many / "checked" / "pr-2").glob("*.yaml")) if p.name != "kustomization.yaml").unlink()
    serial = envspec(many, "render", "--all", "--out", "checked", "--check", "-j", "1")
    workers = envspec(many, "render", "--all", "--out", "checked", "--check", "-j", "2")
    assert serial.code == 1 and b"# edited" in serial.stdout
    same(serial, workers)
    assert workers.processes == 2


@pytest.mark.parametrize("name", ["broken", "unparsable"])
def test_errors_in_several_environments_are_all_reported_in_the_same_order(name: str, request: pytest.FixtureRequest) -> None:
    project = request.getfixturevalue(name)
    serial = envspec(project, "render", "--all", "--out", "out", "-j", "1")
    workers = envspec(project, "render", "--all", "--out", "out", "-j", "3")
    assert serial.code == 2
    text = serial.stderr.decode()
    assert "environments/bad-a.yaml:5:15: apps.web.replicas: must be >= 1 (got 0)" in text
    assert "environments/bad-b.yaml:4:3: apps.nosuch.image: required key is missing" in text
    assert "environments/pr-5x.yaml:3:11: replicaz: unknown key 'replicaz'" in text
    assert ("environments/pr-5y.yaml:2:1: YAML syntax error" in text) == (name == "unparsable")
    same(serial, workers)
    assert workers.processes == 3  # the three workers (bad-a fails before compiling, wherever it ran)
    assert not (project / "out").exists()


@pytest.mark.parametrize("flags", [[], ["--strict"], ["-o", "json"]])
def test_validate_in_workers_reports_the_same(broken: Path, flags: list[str]) -> None:
    serial = envspec(broken, "validate", *flags, "-j", "1")
    workers = envspec(broken, "validate", *flags, "-j", "2")
    assert serial.code == 2
    same(serial, workers)
    assert serial.processes == 1 and workers.processes == 2
    if flags == ["-o", "json"]:
        assert json.loads(serial.stdout)["errors"] >= 4


def test_validate_reports_a_file_that_does_not_parse_and_goes_on(unparsable: Path) -> None:
    """All errors of a run at once: a file that does not parse is one environment's error, and the
    environments after it are still checked (validate stopped there before), in workers as in one process."""
    serial = envspec(unparsable, "validate", "-j", "1")
    workers = envspec(unparsable, "validate", "-j", "2")
    text = serial.stderr.decode()
    assert serial.code == 2 and "pr-5y.yaml:2:1: YAML syntax error" in text
    assert "pr-9: 2 warnings" in text, text  # pr-9 comes after pr-5y: it was never checked before
    same(serial, workers)


def test_validate_of_named_environments_in_workers(many: Path) -> None:
    names = ["pr-3", "local", "pr-1", "production", "pr-2"]
    serial = envspec(many, "validate", *names, "-j", "1")
    workers = envspec(many, "validate", *names, "-j", "4")
    assert serial.code == 0 and b"ok: pr-3, local, pr-1, production, pr-2" in serial.stderr
    same(serial, workers)
    assert workers.processes == 4


def test_envspec_jobs_sets_the_workers_and_jobs_wins(many: Path) -> None:
    assert envspec(many, "validate", ENVSPEC_JOBS="1").processes == 1
    assert envspec(many, "validate", ENVSPEC_JOBS="2").processes == 2
    assert envspec(many, "validate", "--jobs", "1", ENVSPEC_JOBS="2").processes == 1


@pytest.mark.parametrize("args, where", [
    (["render", "--all", "--jobs", "0"], "--jobs"),
    (["validate", "-j", "two"], "--jobs"),
    (["render", "--all"], "ENVSPEC_JOBS"),
])
def test_a_bad_worker_count_is_a_located_error(many: Path, args: list[str], where: str) -> None:
    run = envspec(many, *args, env={"ENVSPEC_JOBS": "many"})
    assert run.code == 2
    got = "'0'" if "0" in args else "'two'" if "two" in args else "'many'"
    assert run.stderr.decode() == f"{where}: must be a whole number >= 1 or 'auto' (got {got})\n"


def test_jobs_on_a_single_render_is_refused_not_ignored(many: Path) -> None:
    run = envspec(many, "render", "local", "--jobs", "0")
    assert run.code == 2
    assert run.stderr.decode() == "--jobs: only render --all compiles several environments (give --all, or drop --jobs)\n"


# --- a worker that dies, Ctrl-C ---------------------------------------------------------------


@pytest.mark.parametrize("how, why", [("exit", "exited with status 3"), ("kill", "killed by signal 9 (SIGKILL)")])
def test_a_worker_that_dies_is_an_error_naming_its_environment(broken: Path, how: str, why: str) -> None:
    run = envspec(broken, "render", "--all", "--out", "out", "-j", "2", PROBE_CRASH="pr-4", PROBE_HOW=how)
    assert run.code == 70
    lines = run.stderr.decode().splitlines()
    died = (f"environments/pr-4.yaml: the worker process compiling 'pr-4' died ({why}); nothing of it was checked "
            "or rendered (run with --jobs 1 to compile in one process)")
    assert died in lines
    assert any(line.startswith("environments/bad-a.yaml:5:15: ") for line in lines)  # the other errors: all still there
    assert any(line.startswith("environments/pr-5x.yaml:3:11: ") for line in lines)
    assert lines.index(died) > lines.index(next(line for line in lines if "bad-b.yaml" in line))  # serial order
    assert "pr-5" in run.pids and "pr-9" in run.pids  # the rest of the dead worker's share was compiled
    assert not (broken / "out").exists()


def test_validate_reports_a_dead_worker(many: Path) -> None:
    run = envspec(many, "validate", "-j", "2", PROBE_CRASH="pr-2", PROBE_HOW="kill")
    assert run.code == 70
    assert ("environments/pr-2.yaml: the worker process compiling 'pr-2' died (killed by signal 9 (SIGKILL)); "
            "nothing of it was checked or rendered (run with --jobs 1 to compile in one process)") in run.stderr.decode()


def _signal_the_parent_while_a_worker_hangs(many: Path, signum: int, out: str) -> tuple[int, bytes, set[int]]:
    """Start `render --all -j 2` with the worker compiling pr-6 hanging, send `signum` to envspec
    alone (not its process group) once it hangs, and return its exit code, its stderr and the pids
    of the workers it had."""
    log = many.parent / f"{out}.log"
    environ = {k: v for k, v in os.environ.items() if k != "ENVSPEC_JOBS"}
    environ.update({"PROBE_LOG": str(log), "PROBE_CRASH": "pr-6", "PROBE_HOW": "hang", "ENVSPEC_NO_CACHE": "1"})
    proc = subprocess.Popen([sys.executable, "-c", PROBE, "render", "--all", "--out", out, "-j", "2"], cwd=many,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while "pr-6" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signum)  # the parent only: it must stop the workers itself
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, err, {int(line.split()[1]) for line in log.read_text().splitlines()} - {proc.pid}


def _assert_gone(pids: set[int]) -> None:
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_ctrl_c_stops_the_workers(many: Path) -> None:
    code, err, workers = _signal_the_parent_while_a_worker_hangs(many, signal.SIGINT, "hung")
    assert code == 130
    assert err.decode() == "interrupted\n"
    _assert_gone(workers)
    assert not (many / "hung").exists()


def test_sigterm_to_the_parent_ends_the_workers_too(many: Path) -> None:
    """A CI job or Argo CD timeout sends SIGTERM to envspec only: its workers must not outlive it."""
    code, _, workers = _signal_the_parent_while_a_worker_hangs(many, signal.SIGTERM, "termed")
    assert code == 143
    _assert_gone(workers)
    assert not (many / "termed").exists()


# --- envspec.parallel itself ------------------------------------------------------------------


def square_with_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def slow_square_with_pid(n: int) -> tuple[int, int]:
    time.sleep(0.05 if n % 5 else 0.2)  # uneven: a worker meeting a slow item takes fewer of the rest
    return n * n, os.getpid()


def test_results_come_back_in_order_from_other_processes() -> None:
    got = parallel.map_in_workers(list(range(20)), slow_square_with_pid, workers=3, lost=lambda n, why: (-1, 0))
    assert [value for value, _ in got] == [n * n for n in range(20)]
    pids = {pid for _, pid in got}
    assert len(pids) == 3 and os.getpid() not in pids  # every worker took some, the parent none
    for pid in pids - {os.getpid()}:  # every worker reaped: no zombie left
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_first_exception_in_item_order_is_raised_here() -> None:
    def work(n: int) -> int:
        if n in (4, 9):
            raise SpecError(f"item {n}")
        return n

    with pytest.raises(SpecError) as caught:
        parallel.map_in_workers(list(range(12)), work, workers=2, lost=lambda n, why: -1)
    assert [str(p) for p in caught.value.problems] == ["item 4"]
    assert caught.value.exit_code == 2


def test_an_exception_that_does_not_pickle_crosses_as_its_text() -> None:
    class Local(Exception):  # defined here: pickle cannot find it by name
        pass

    def work(n: int) -> int:
        if n == 3:
            raise Local("broken")
        return n

    with pytest.raises(RuntimeError) as caught:
        parallel.map_in_workers(list(range(6)), work, workers=2, lost=lambda n, why: -1)
    assert caught.value.args == ("Local: broken",)
    assert 'raise Local("broken")' in caught.value.__notes__[0]  # the worker's traceback, for --debug


def test_workers_take_items_as_they_get_free() -> None:
    """A shared queue, not fixed shares: with one slow item, the other worker takes all the rest."""
    def work(n: int) -> tuple[int, int]:
        time.sleep(1.5 if n == 1 else 0.01)
        return n, os.getpid()

    got = parallel.map_in_workers(list(range(12)), work, workers=2, lost=lambda n, why: (-1, 0))
    assert [n for n, _ in got] == list(range(12))
    slow = got[1][1]
    assert all(pid != slow for _, pid in got[2:])  # every item after the slow one went to the other worker


def test_a_dead_worker_loses_only_the_item_it_was_on() -> None:
    def work(n: int) -> int:
        if n == 3:
            os._exit(5)
        return n

    got = parallel.map_in_workers(list(range(10)), work, workers=2, lost=lambda n, why: f"lost {n}: {why}")
    assert got == [0, 1, 2, "lost 3: exited with status 5", 4, 5, 6, 7, 8, 9]


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "can_fork", lambda: True)
    monkeypatch.setattr(parallel, "available_cpus", lambda: 8)
    assert parallel.worker_count(1, None) == 1
    assert parallel.worker_count(parallel.PER_WORKER, None) == 1  # too few to pay for a fork
    assert parallel.worker_count(parallel.PER_WORKER + 1, None) == 2
    assert parallel.worker_count(1000, None) == 8
    assert parallel.worker_count(parallel.PER_WORKER_VALIDATE + 1, None, parallel.PER_WORKER_VALIDATE) == 2
    assert parallel.worker_count(5, 3) == 3 and parallel.worker_count(2, 16) == 2  # asked for: as asked
    monkeypatch.setattr(parallel, "available_cpus", lambda: 1)
    assert parallel.worker_count(1000, None) == 1  # one CPU: serial
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    assert parallel.worker_count(1000, 4) == 1  # no dependable fork: serial


def test_parse_jobs() -> None:
    assert parallel.parse_jobs(None, "--jobs") is None
    assert parallel.parse_jobs("auto", "--jobs") is None and parallel.parse_jobs(" ", "X") is None
    assert parallel.parse_jobs("4", "--jobs") == 4
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(SpecError) as caught:
            parallel.parse_jobs(bad, "ENVSPEC_JOBS")
        assert str(caught.value) == f"ENVSPEC_JOBS: must be a whole number >= 1 or 'auto' (got {bad!r})"


def test_the_documented_threshold_is_the_one_used() -> None:
    from click.testing import CliRunner

    from envspec.cli import main

    render, validate = parallel.PER_WORKER + 1, parallel.PER_WORKER_VALIDATE + 1  # ceil(n / per) >= 2 from here
    for command in ("render", "validate"):
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
        assert f"none below {render} environments to render, {validate} to validate" in text
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"none for fewer than {render} environments to render or {validate} to validate" in readme
    assert f"at most one per {parallel.PER_WORKER} environments to render or {parallel.PER_WORKER_VALIDATE} to validate" in readme


def test_the_queue_fits_a_small_pipe() -> None:
    """A user past fs.pipe-user-pages-soft gets pipes of a page or two: the queue, written in full before
    the first fork, must fit what the pipe holds or the parent would block on it for ever."""
    script = """
import fcntl, os
from envspec import parallel
real_pipe = os.pipe
def small_pipe():
    r, w = real_pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    return r, w
parallel.os.pipe = small_pipe
got = parallel.map_in_workers(list(range(5000)), lambda n: n * 2, workers=2, lost=lambda n, why: -1)
assert got == [n * 2 for n in range(5000)], got[:10]
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr
