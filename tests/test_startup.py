"""Fast start and exit (issue 14): lazy command modules, and an exit that skips teardown but loses nothing."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.cli.lazy import LAZY_COMMANDS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_the_lazy_table_matches_each_command(name: str) -> None:
    module, help_text = LAZY_COMMANDS[name]
    importlib.import_module(module)
    command = main.commands[name]
    assert command.callback is not None and command.callback.__module__ == module
    assert inspect.cleandoc(command.help or "").split("\n\n")[0] == help_text, "update LAZY_COMMANDS in envspec/cli/lazy.py"


def test_help_lists_every_command_as_click_would() -> None:
    for module in {m for m, _ in LAZY_COMMANDS.values()}:
        importlib.import_module(module)
    listed = CliRunner().invoke(main, ["--help"]).output
    ctx = click.Context(main, info_name="envspec")
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        assert f"  {name}" in listed and command.get_short_help_str(limit=45)[:30] in listed


PROBE = """
import sys
from envspec.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
loaded = [m for m, mod in list(sys.modules.items()) if getattr(mod, "__file__", None)]  # not the plugin-loader stand-in
print(",".join(sorted(m for m in loaded if m.split(".")[0] in ("envspec", "pydantic", "jinja2", "ruamel", "yaml"))))
"""


def test_help_imports_nothing_but_click_and_the_cli_package() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.strip().splitlines()[-1].split(",")) == {"envspec", "envspec.cli", "envspec.cli.lazy"}


def _envspec(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envspec", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_fast_exit_flushes_everything_and_keeps_exit_codes(tmp_path: Path) -> None:
    rendered = _envspec("render", "preview-pr", "--pr", "107")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == CliRunner().invoke(main, ["render", "preview-pr", "--pr", "107"]).stdout
    assert rendered.stdout.endswith("\n") and "warning" in rendered.stderr

    bad = _envspec("render", "no-such-env")
    assert bad.returncode == 2 and "unknown environment" in bad.stderr
    assert _envspec("no-such-command").returncode == 2
    assert _envspec("--version").stdout.startswith("envspec, version ")

    out = tmp_path / "out"
    written = _envspec("render", "preview-pr", "--pr", "107", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in out.iterdir()) and (out / "kustomization.yaml").read_text().startswith("apiVersion:")
    assert _envspec("render", "preview-pr", "--pr", "107", "--out", str(out), "--check").returncode == 0


def test_the_fast_exit_still_runs_atexit_handlers(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "from envspec.cli.lazy import exit_now\n"
        "sys.stdout.write('buffered')\n"
        "exit_now(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stdout == "buffered"
    assert marker.read_text() == "yes"


GC_PROBE = """
import gc, sys
from envspec.cli import lazy, main
seen = []
real = lazy.exit_now
lazy.exit_now = lambda code: (seen.append(gc.isenabled()), real(code))
import envspec.cli
envspec.cli.exit_now = lazy.exit_now
sys.argv = ["envspec", *sys.argv[1:]]
envspec.cli.run()
"""


@pytest.mark.parametrize(("args", "enabled"), [(["render", "preview-pr", "--pr", "1"], False), (["apply", "--help"], True)])
def test_the_cyclic_gc_is_off_only_for_commands_that_never_touch_a_cluster(args: list[str], enabled: bool) -> None:
    probe = GC_PROBE.replace("seen.append(gc.isenabled())", "sys.stderr.write(f'GC={gc.isenabled()}\\\\n')")
    result = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"GC={enabled}" in result.stderr


def test_render_does_not_import_pydantics_plugin_loader() -> None:
    """pydantic imports importlib.metadata to look for plugins at the first model build; envspec uses none."""
    probe = ("import sys\nfrom envspec.cli import main\ntry:\n    main(['render', 'preview-pr', '--pr', '3'])\n"
             "except SystemExit:\n    pass\nprint('METADATA=' + str('importlib.metadata' in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "METADATA=False", result.stderr


def test_render_imports_no_ruamel_when_every_file_and_template_output_is_plain() -> None:
    """ruamel.yaml (~10 ms to import) is kept for the messages of YAML libyaml refuses; a clean render never needs it."""
    probe = ("import sys\nfrom envspec.cli import main\ntry:\n    main(['render', 'preview-pr', '--pr', '3'])\n"
             "except SystemExit:\n    pass\nprint('RUAMEL=' + str(any(m.split('.')[0] == 'ruamel' for m in sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "RUAMEL=False" in result.stdout, result.stdout[-300:] + result.stderr[-300:]
