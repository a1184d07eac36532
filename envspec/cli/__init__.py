"""The `envspec` command line.

Each command group lives in its own module and registers itself on `main`.
Each command's module is imported only when the command runs (see lazy.py:
`envspec --help` imports nothing but click); modules import only click and
envspec's light modules at import time, and anything that pulls in
`kubernetes` or `digitalocean` is imported inside the command that needs it.
"""

from __future__ import annotations

import gc
import os
import sys
import types

import click

# envspec's models use no pydantic plugins; skipping pydantic's entry-point scan saves ~30 ms per start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
if os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__" and "pydantic.plugin._loader" not in sys.modules:
    # Even with plugins disabled, pydantic imports its plugin loader (and with it importlib.metadata,
    # ~13 ms) at the first model build, only to learn there are none. Tell it so up front.
    _no_plugins = types.ModuleType("pydantic.plugin._loader", "envspec: pydantic plugins are disabled")
    _no_plugins.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules["pydantic.plugin._loader"] = _no_plugins

from envspec import __version__
from envspec.cli.lazy import LazyGroup, exit_now


class EnvspecGroup(LazyGroup):
    """The last resort: no command ever ends in a bare traceback (unless --debug asks for one).
    Commands are imported on first use (LazyGroup)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit, SystemExit):
            raise
        except BrokenPipeError:
            _quiet_stdout()
            raise SystemExit(141) from None  # like a process killed by SIGPIPE: the reader went away
        except BaseException as exc:  # noqa: BLE001 -- everything else becomes a report, never a traceback
            from envspec.cli.common import report_exception

            raise SystemExit(report_exception(exc)) from None


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush cannot fail loudly."""
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


@click.group(cls=EnvspecGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="envspec")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (exit codes stay the same).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Compile environment specs into Kubernetes manifests, and deploy them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def run() -> None:
    """The console script (and `python -m envspec`): run the command, then exit without interpreter teardown.

    The cyclic garbage collector is off while a command that never touches a cluster runs: its
    objects live until it ends anyway, and the collector's passes over every object imported and
    built cost ~8% of a render while finding ~70 KB of garbage per environment (lazy.py turns it
    back on for the commands that run long).
    """
    gc.disable()
    try:
        main(prog_name="envspec")
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    exit_now(code)
