"""Many environments at once: `render --all --out` of N preview instances against one `kubectl kustomize`.

    python bench/bench_many.py [--instances 100] [--runs 7] [--baseline OTHER_CHECKOUT]

Builds a temporary project: the checkout's environments/ plus N files
`pr-<n>.yaml` that say `extends: preview-pr` and `params: {pr: {default: <n>}}`.
Then, interleaved, as fresh processes of the installed wheel (see harness.py),
with no cache hit: `envspec render --all --out DIR` of that project, and
`kubectl kustomize` of one instance's rendered objects. Goals (issue 14):

* render --all of 100 instances <= 10x one kubectl kustomize run;
  measured twice: into the folder the previous run wrote (the GitOps re-render; every
  file is recomputed and compared, unchanged ones are kept) and into a new folder
  each run (every file created). Creating a file is the file system's cost, so the run
  also prints what creating that many empty files costs on this machine;
* stretch: 500 environments/s in one process (printed from an in-process loop over
  the same project: resolve + compile + YAML files of every instance).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import COLD_ENV, Installed, interleaved, installs, kubectl, ratio_line, workdir  # noqa: E402

IN_PROCESS = """
import sys, time
from pathlib import Path
from envspec.pipeline import compile_all
from envspec.render.output import render_files
from envspec.spec.project import Project
project = Project(Path(sys.argv[1]).resolve())
def once():
    compiled, _ = compile_all(project)
    for result in compiled.values():
        render_files(result.objects)
    return len(compiled)
once()
envs, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]):
    envs += once()
print(envs / (time.perf_counter() - start))
"""


def _create_files(folder: Path, count: int) -> float:
    """Seconds this machine's file system takes to create `count` empty files (median of 3)."""
    times = []
    for _ in range(3):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        start = time.perf_counter()
        for n in range(count):
            os.close(os.open(folder / f"f{n}.yaml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        times.append(time.perf_counter() - start)
    shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(times)


def make_project(inst: Installed, folder: Path, instances: int) -> Path:
    """The checkout's environments plus `instances` preview instances that extend preview-pr."""
    shutil.copytree(inst.checkout / "environments", folder / "environments")
    for extra in ("templates", "components"):
        if (inst.checkout / extra).is_dir():
            shutil.copytree(inst.checkout / extra, folder / extra)
    for n in range(1, instances + 1):
        (folder / "environments" / f"pr-{n}.yaml").write_text(f"extends: preview-pr\nparams: {{pr: {{default: {n}}}}}\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", help="another checkout (e.g. of main) to measure interleaved, for before/after")
    parser.add_argument("--in-process-seconds", type=float, default=5.0)
    args = parser.parse_args()

    tmp = workdir()
    try:
        found = installs(args.baseline, tmp)
        projects = {inst.label: make_project(inst, tmp / f"project-{inst.label}", args.instances) for inst in found}
        one = tmp / "one"
        subprocess.run([found[0].envspec, "render", "preview-pr", "--pr", "107", "--out", str(one)],
                       cwd=found[0].checkout, check=True, stderr=subprocess.DEVNULL, env=COLD_ENV)
        cases: dict[str, tuple[list[str], Path]] = {}
        setups: dict[str, Callable[[], None]] = {}
        reference = None
        if kubectl():
            reference = "kubectl kustomize DIR (one instance)"
            cases[reference] = ([kubectl() or "kubectl", "kustomize", str(one)], tmp)
        for inst in found:
            cases[f"{inst.label}: envspec render --all --out DIR"] = (
                [inst.envspec, "render", "--all", "--out", str(tmp / f"out-{inst.label}")], projects[inst.label])
            fresh = tmp / f"fresh-{inst.label}"
            cases[f"{inst.label}: envspec render --all --out NEW_DIR"] = (
                [inst.envspec, "render", "--all", "--out", str(fresh)], projects[inst.label])
            setups[f"{inst.label}: envspec render --all --out NEW_DIR"] = functools.partial(shutil.rmtree, fresh, True)
        timings = interleaved(cases, args.runs, setups)
        files = sum(1 for p in (tmp / f"out-{found[0].label}").rglob("*") if p.is_file())
        create = _create_files(tmp / "create-probe", files)

        print(f"cold wall time, {args.runs} interleaved runs ({args.instances} preview instances, {os.cpu_count()} CPUs)"
              "   median   fastest")
        for name, timing in timings.items():
            print(f"  {name:<58} {timing.median * 1000:7.1f} ms {timing.fastest * 1000:7.1f} ms")
        print(f"  {f'(this machine: creating {files} empty files)':<58} {create * 1000:7.1f} ms")
        for inst in found:
            print(f"ratios ({inst.label}, medians):")
            total = timings[f"{inst.label}: envspec render --all --out DIR"].median
            if reference:
                print(ratio_line(f"render --all ({args.instances} instances) / one kubectl kustomize",
                                 total / timings[reference].median, 10.0))
                fresh_total = timings[f"{inst.label}: envspec render --all --out NEW_DIR"].median
                print(ratio_line("  the same into a new folder", fresh_total / timings[reference].median, 10.0))
                print(ratio_line("  the same into a new folder, less creating its files",
                                 (fresh_total - create) / timings[reference].median, 10.0))
            rate = subprocess.run([inst.python, "-P", "-c", IN_PROCESS, str(projects[inst.label]), str(args.in_process_seconds)],
                                  check=True, capture_output=True, text=True, env=COLD_ENV).stdout
            print(f"  environments/s in one process (stretch >= 500): {float(rate):.1f} /s; "
                  f"cold render --all: {(args.instances + 3) / total:.1f} /s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
