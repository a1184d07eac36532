"""Print cold start and render figures.

    python bench/bench_render.py [--runs 9] [--env preview-pr --pr 107]

Measures, as medians of fresh processes: `envspec --help`, one render to stdout,
one render to a directory, and `kubectl kustomize` over that directory (the
same objects); then renders per second in one warm process. Targets (2-core
machine): --help < 120 ms; cold render < 450 ms and <= 3.5x kubectl kustomize.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def envspec_cmd() -> list[str]:
    exe = shutil.which("envspec", path=str(Path(sys.executable).parent)) or shutil.which("envspec")
    return [exe] if exe else [sys.executable, "-m", "envspec"]


def cold(cmd: list[str], runs: int) -> tuple[float, float]:
    """(median, fastest) wall time of `runs` fresh processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--env", default="preview-pr")
    parser.add_argument("--pr", default="107")
    args = parser.parse_args()

    # An installed package has bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE would not,
    # and every run would then pay for compiling envspec's sources. Compile once, as pip install does.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "envspec")], check=True)
    envspec = envspec_cmd()
    render = [*envspec, "render", args.env, "--pr", args.pr]
    out = Path(tempfile.mkdtemp(prefix="envspec-bench-")) / "out"
    subprocess.run([*render, "--out", str(out)], cwd=REPO, check=True, stderr=subprocess.DEVNULL)
    cold(render, 1)  # warm the OS file cache and the template bytecode cache once

    rows = [
        ("envspec --help", cold([*envspec, "--help"], args.runs)),
        (f"envspec render {args.env} (stdout)", cold(render, args.runs)),
        (f"envspec render {args.env} --out DIR", cold([*render, "--out", str(out)], args.runs)),
    ]
    kubectl = shutil.which("kubectl")
    if kubectl:
        rows.append(("kubectl kustomize DIR (same objects)", cold([kubectl, "kustomize", str(out)], args.runs)))

    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from envspec.pipeline import compile_environment
    from envspec.render.output import dump_yaml

    params = [f"pr={args.pr}"]
    dump_yaml(compile_environment(args.env, params=params).objects)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3.0:
        dump_yaml(compile_environment(args.env, params=params).objects)
        count += 1
    per_second = count / (time.perf_counter() - start)

    objects = len(list(out.glob("*.yaml"))) - 1
    print(f"cold wall time of {args.runs} runs ({objects} objects, {os.cpu_count()} CPUs):   median    fastest")
    for name, (median, fastest) in rows:
        print(f"  {name:<45} {median * 1000:7.1f} ms {fastest * 1000:7.1f} ms")
    if kubectl:
        print(f"  {'render / kubectl kustomize':<45} {rows[1][1][0] / rows[-1][1][0]:7.2f} x  {rows[1][1][1] / rows[-1][1][1]:7.2f} x")
    print(f"in-process renders (compile + YAML dump): {per_second:.1f} /s")
    shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
