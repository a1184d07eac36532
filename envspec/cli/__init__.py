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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="envspec")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Compile environment specs into Kubernetes manifests, and deploy them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


from envspec.cli import compile as _compile  # noqa: E402,F401  (registers validate, render, schema, outputs)
from envspec.cli import cluster as _cluster  # noqa: E402,F401  (registers apply, diff, destroy)
from envspec.cli import cloud as _cloud  # noqa: E402,F401  (registers dns, cluster, kubeconfig)
from envspec.cli import pullrequest as _pullrequest  # noqa: E402,F401  (registers comment, gc)
from envspec.cli import explain as _explain  # noqa: E402,F401  (registers explain)
from envspec.cli import authoring as _authoring  # noqa: E402,F401  (registers config, list, init)
from envspec.cli import completion as _completion  # noqa: E402,F401  (registers completion)
