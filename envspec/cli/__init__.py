"""The `envspec` command line.

Each command group lives in its own module and registers itself on `main`.
Modules here import only click and envspec's light modules at import time;
anything that pulls in `kubernetes` or `digitalocean` is imported inside the
command that needs it, so `envspec --help` and `envspec render` start fast.
"""

from __future__ import annotations

import os

import click

# envspec's models use no pydantic plugins; skipping pydantic's entry-point scan saves ~30 ms per start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from envspec import __version__


class EnvspecGroup(click.Group):
    """The last resort: no command ever ends in a bare traceback (unless --debug asks for one)."""

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


from envspec.cli import compile as _compile  # noqa: E402,F401  (registers validate, render, schema, outputs)
from envspec.cli import cluster as _cluster  # noqa: E402,F401  (registers apply, diff, destroy)
from envspec.cli import cloud as _cloud  # noqa: E402,F401  (registers dns, cluster, kubeconfig)
from envspec.cli import pullrequest as _pullrequest  # noqa: E402,F401  (registers comment, gc)
from envspec.cli import github as _github  # noqa: E402,F401  (registers github-deployment, delete-images)
from envspec.cli import explain as _explain  # noqa: E402,F401  (registers explain)
from envspec.cli import authoring as _authoring  # noqa: E402,F401  (registers config, list, init)
from envspec.cli import completion as _completion  # noqa: E402,F401  (registers completion)
