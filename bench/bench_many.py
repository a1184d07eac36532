"""Many environments at once: `render --all --out` of N preview instances against one `kubectl kustomize`.

    python bench/bench_many.py [--instances 100] [--runs 7] [--baseline OTHER_CHECKOUT]

Builds a temporary project: the checkout's environments/ plus N files
`pr-<n>.yaml` that say `extends: preview-pr` and `params: {pr: {default: <n>}}`.
Then, interleaved, as fresh processes of the installed wheel (see harness.py),
with no cache hit: `envspec render --all --out DIR` of that project, and
`kubectl kustomize` of one instance's rendered objects. Goals (issue 14):

* render --all of 100 instances <= 10x one kubectl kustomize run;
* stretch: 500 environments/s in one process (printed from an in-process loop over
  the same project: resolve + compile + YAML files of every instance).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
        reference = None
        if kubectl():
            reference = "kubectl kustomize DIR (one instance)"
            cases[reference] = ([kubectl() or "kubectl", "kustomize", str(one)], tmp)
        for inst in found:
            cases[f"{inst.label}: envspec render --all --out DIR"] = (
                [inst.envspec, "render", "--all", "--out", str(tmp / f"out-{inst.label}")], projects[inst.label])
        timings = interleaved(cases, args.runs)

        print(f"cold wall time, {args.runs} interleaved runs ({args.instances} preview instances, {os.cpu_count()} CPUs)"
              "   median   fastest")
        for name, timing in timings.items():
            print(f"  {name:<58} {timing.median * 1000:7.1f} ms {timing.fastest * 1000:7.1f} ms")
        for inst in found:
            print(f"ratios ({inst.label}, medians):")
            total = timings[f"{inst.label}: envspec render --all --out DIR"].median
            if reference:
                print(ratio_line(f"render --all ({args.instances} instances) / one kubectl kustomize",
                                 total / timings[reference].median, 10.0))
            rate = subprocess.run([inst.python, "-P", "-c", IN_PROCESS, str(projects[inst.label]), str(args.in_process_seconds)],
                                  check=True, capture_output=True, text=True, env=COLD_ENV).stdout
            print(f"  environments/s in one process (stretch >= 500): {float(rate):.1f} /s; "
                  f"cold render --all: {(args.instances + 3) / total:.1f} /s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
