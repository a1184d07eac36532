"""Cold start, render and validate against `kubectl kustomize`, as ratios measured in the same run.

    python bench/bench_render.py [--runs 15] [--env preview-pr --pr 107] [--baseline OTHER_CHECKOUT]

envspec is measured as a user runs it: a wheel of this checkout installed in a
throwaway venv (see harness.py), every run a fresh process with no cache hit
(ENVSPEC_NO_CACHE=1). The reference is `kubectl kustomize` over a folder of the
same rendered objects. Runs are interleaved and medians compared. Goals (issue 14):

* cold `envspec render ENV --pr N` <= 2.0x kubectl kustomize (stretch 1.5x);
* `envspec --help` and `envspec --version` <= 1.0x kubectl kustomize;
* `envspec validate` (every environment) <= 1.5x `envspec render --all --out DIR`.

It also times the floor no envspec change can go below: a fresh interpreter of the
same venv importing only the libraries a render needs (click, pydantic with the field
machinery that defining any model imports, jinja2, PyYAML; ruamel.yaml only for the
messages of YAML libyaml refuses) and nothing of envspec.

With --baseline (e.g. a checkout of main), that checkout's wheel runs interleaved too,
for before/after figures from one run. Many environments at once: bench_many.py.
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
from envspec.pipeline import compile_environment
from envspec.render.output import dump_yaml
params = [f"pr={sys.argv[2]}"]
dump_yaml(compile_environment(sys.argv[1], params=params).objects)
count, start = 0, time.perf_counter()
while time.perf_counter() - start < 3.0:
    dump_yaml(compile_environment(sys.argv[1], params=params).objects)
    count += 1
print(count / (time.perf_counter() - start))
"""


# `Field` too: defining any model imports pydantic.fields (and with it annotated_types and
# pydantic.types, ~14 ms), which importing BaseModel alone does not.
FLOOR = "import click, jinja2, jinja2.sandbox, yaml; from pydantic import BaseModel, Field"


def cases_for(inst: Installed, env: str, pr: str, tmp: Path) -> dict[str, tuple[list[str], Path]]:
    cwd = inst.checkout
    return {
        f"{inst.label}: python -c 'import <render deps>' (floor)": ([inst.python, "-c", FLOOR], cwd),
        f"{inst.label}: envspec --help": ([inst.envspec, "--help"], cwd),
        f"{inst.label}: envspec --version": ([inst.envspec, "--version"], cwd),
        f"{inst.label}: envspec render {env} --pr {pr}": ([inst.envspec, "render", env, "--pr", pr], cwd),
        f"{inst.label}: envspec render --all --out DIR": ([inst.envspec, "render", "--all", "--out", str(tmp / f"all-{inst.label}")], cwd),
        f"{inst.label}: envspec validate": ([inst.envspec, "validate"], cwd),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--env", default="preview-pr")
    parser.add_argument("--pr", default="107")
    parser.add_argument("--baseline", help="another checkout (e.g. of main) to measure interleaved, for before/after")
    parser.add_argument("--in-process-seconds", type=float, default=3.0)
    args = parser.parse_args()

    tmp = workdir()
    try:
        found = installs(args.baseline, tmp)
        out = tmp / "objects"
        subprocess.run([found[0].envspec, "render", args.env, "--pr", args.pr, "--out", str(out)],
                       cwd=found[0].checkout, check=True, stderr=subprocess.DEVNULL, env=COLD_ENV)
        cases: dict[str, tuple[list[str], Path]] = {}
        reference = None
        if kubectl():
            reference = "kubectl kustomize DIR (same objects)"
            cases[reference] = ([kubectl() or "kubectl", "kustomize", str(out)], tmp)
        for inst in found:
            cases.update(cases_for(inst, args.env, args.pr, tmp))
        timings = interleaved(cases, args.runs)

        objects = len(list(out.glob("*.yaml"))) - 1
        print(f"cold wall time, {args.runs} interleaved runs ({objects} objects, {os.cpu_count()} CPUs)   median   fastest")
        for name, timing in timings.items():
            print(f"  {name:<58} {timing.median * 1000:7.1f} ms {timing.fastest * 1000:7.1f} ms")
        for inst in found:
            print(f"ratios ({inst.label}, medians):")
            med = {name.split(": ", 1)[1]: t.median for name, t in timings.items() if name.startswith(inst.label + ": ")}
            if reference:
                k = timings[reference].median
                print(ratio_line(f"render {args.env} --pr {args.pr} / kubectl kustomize", med[f"envspec render {args.env} --pr {args.pr}"] / k, 2.0, 1.5))
                print(ratio_line("--help / kubectl kustomize", med["envspec --help"] / k, 1.0))
                print(ratio_line("--version / kubectl kustomize", med["envspec --version"] / k, 1.0))
                floor = med["python -c 'import <render deps>' (floor)"]
                print(f"  {'floor: importing the render dependencies / kubectl kustomize':<58} {floor / k:6.2f}x"
                      f"  (envspec's own share of the render: {(med[f'envspec render {args.env} --pr {args.pr}'] - floor) * 1000:.0f} ms)")
            print(ratio_line("validate / render --all", med["envspec validate"] / med["envspec render --all --out DIR"], 1.5))
            per_second = subprocess.run([inst.python, "-P", "-c", IN_PROCESS.replace("3.0", str(args.in_process_seconds)), args.env, args.pr],
                                        cwd=inst.checkout, check=True, capture_output=True, text=True, env=COLD_ENV).stdout
            print(f"  in-process renders of {args.env} (compile + YAML dump): {float(per_second):.1f} /s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
