"""Shared by the benchmarks: envspec installed from a wheel, and cold timings of fresh processes.

A user runs an installed wheel, not an editable checkout: setuptools' editable
finder is imported by a .pth file at every interpreter start and resolves
`envspec` through a custom meta-path finder. So each benchmark builds a wheel of
the checkout it measures and installs it (without dependencies) into a throwaway
venv whose dependencies come from the running interpreter's site-packages.
`--baseline OTHER_CHECKOUT` installs a second wheel, so "before" and "after"
run interleaved on the same (noisy, shared) machine and their medians compare.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Installed:
    """One checkout's wheel in its own venv: `envspec` is its console script."""

    label: str
    checkout: Path
    venv: Path

    @property
    def envspec(self) -> str:
        return str(self.venv / "bin" / "envspec")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def install_wheel(checkout: Path, label: str, workdir: Path) -> Installed:
    """Build `checkout`'s wheel and install it into a fresh venv under `workdir` (~10 s)."""
    wheels = workdir / f"wheel-{label}"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(checkout)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    venv = workdir / f"venv-{label}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies (and only them: a path line, so no .pth file of that folder, such as an
    # editable finder, is run) come from the interpreter running the benchmark.
    (purelib / "zz-bench-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("envspec-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Installed(label, checkout, venv)


def installs(baseline: str | None, workdir: Path) -> list[Installed]:
    """This checkout's install, and the baseline checkout's when one is given."""
    found = [install_wheel(REPO, "this", workdir)]
    if baseline:
        found.append(install_wheel(Path(baseline).resolve(), "baseline", workdir))
    return found


# Every cold run misses every cache envspec has (the Jinja bytecode cache is per user).
COLD_ENV = {**os.environ, "ENVSPEC_NO_CACHE": "1"}


@dataclass
class Timing:
    name: str
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def fastest(self) -> float:
        return min(self.times)


def run_once(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, setup=None) -> float:  # type: ignore[no-untyped-def]
    if setup is not None:
        setup()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env or COLD_ENV)
    return time.perf_counter() - start


def interleaved(cases: dict[str, tuple[list[str], Path]], runs: int, setups: dict | None = None) -> dict[str, Timing]:  # type: ignore[type-arg]
    """Wall time of `runs` fresh processes per case, the cases taking turns (so load spikes hit all alike)."""
    setups = setups or {}
    timings = {name: Timing(name) for name in cases}
    for name, (cmd, cwd) in cases.items():  # one warm-up each: page cache, bytecode
        run_once(cmd, cwd, setup=setups.get(name))
    for _ in range(runs):
        for name, (cmd, cwd) in cases.items():
            timings[name].times.append(run_once(cmd, cwd, setup=setups.get(name)))
    return timings


def ratio_line(label: str, value: float, goal: float, stretch: float | None = None) -> str:
    verdict = "meets" if value <= goal else "MISSES"
    extra = f", stretch <= {stretch:.2f}x {'met' if value <= stretch else 'not met'}" if stretch else ""
    return f"  {label:<58} {value:6.2f}x  (goal <= {goal:.2f}x: {verdict}{extra})"


def kubectl() -> str | None:
    return shutil.which("kubectl")


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="envspec-bench-"))
