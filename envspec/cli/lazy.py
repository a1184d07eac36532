"""Command modules imported only when their command runs, and an exit without interpreter teardown.

`envspec --help` lists every command with its one-line help, so the group
keeps a table of command name -> (module that registers it, first paragraph of
its help) and imports nothing but click to print the list; `envspec render`
imports the one module that defines `render`. A module still registers its
commands itself (`@main.command()`), so a command may also be imported eagerly.
tests/test_cli.py checks the table against the commands' own help.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

import click

# name -> (module that registers it, the first paragraph of its help)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("envspec.cli.compile", "Check environments: spec, parameters, templates, semantic rules and Kubernetes schemas."),
    "render": ("envspec.cli.compile", "Render ENVIRONMENT to Kubernetes manifests (stdout, or --out DIR)."),
    "schema": ("envspec.cli.compile", "Write the JSON Schema of environment files (for editors) to schemas/environment.schema.json."),
    "outputs": ("envspec.cli.compile", "Print ENVIRONMENT's declared outputs (URLs, database name, namespace...)."),
    "apply": ("envspec.cli.cluster", "Create or update ENV on its cluster (server-side apply), wait for it, prune what left the spec."),
    "diff": ("envspec.cli.cluster", "Show what `apply` would change. Exit 0: no changes; 1: changes; 2: bad input; 3: cluster error."),
    "destroy": ("envspec.cli.cluster", "Delete ENV's objects and the namespaces it created, drop its database, and verify nothing is left."),
    "dns": ("envspec.cli.cloud", "Point the environment's DNS records at its gateway (DigitalOcean DNS)."),
    "cluster": ("envspec.cli.cloud", "Make sure the environment's DigitalOcean Kubernetes cluster exists (never deletes it)."),
    "kubeconfig": ("envspec.cli.cloud", "Fetch a fresh kubeconfig for the environment's cluster; prints the context name."),
    "comment": ("envspec.cli.pullrequest", "Print the Markdown of the PR comment for ENV (first line: a hidden marker workflows search for)."),
    "pr-check": ("envspec.cli.pullrequest", "Exit 0 only if PR is open and its head is still HEAD_SHA (run right before apply)."),
    "gc": ("envspec.cli.pullrequest", "Destroy previews whose PR is closed or not applied for longer than a TTL."),
    "github-deployment": ("envspec.cli.github", "Record a deploy of ENV as a GitHub Deployment named after the instance (e.g. web-pr-107)."),
    "delete-images": ("envspec.cli.github", "Delete a closed PR's images: versions tagged exactly <prefix><N> or <prefix><N>-<sha>, and nothing else."),
    "explain": ("envspec.cli.explain", "Say where each field of a rendered object came from."),
    "config": ("envspec.cli.authoring", "Print ENV's effective spec: merged (extends, --set), parameters and ${...} resolved."),
    "list": ("envspec.cli.authoring", "List environments: their parameters, cluster binding and whether they render without parameters."),
    "init": ("envspec.cli.authoring", "Scaffold a new project in FOLDER; refuses to overwrite any existing file."),
    "completion": ("envspec.cli.completion", "Print the completion script for SHELL."),
}

# Modules whose commands never touch a cluster and end within seconds: no cyclic GC needed (see run()).
SHORT_LIVED = {"envspec.cli.compile", "envspec.cli.explain", "envspec.cli.authoring", "envspec.cli.completion"}


class LazyGroup(click.Group):
    """A group whose commands in LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and LAZY_COMMANDS[cmd_name][0] not in SHORT_LIVED:
            gc.enable()  # apply, destroy, gc...: they wait on clusters and run for minutes
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            importlib.import_module(LAZY_COMMANDS[cmd_name][0])  # registers the command on this group
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table, for the commands not imported yet (as click would print it)."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=LAZY_COMMANDS[name][1])  # a stand-in
            if not command.hidden:
                rows.append((name, command))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        lines = [(name, command.get_short_help_str(limit)) for name, command in rows]
        with formatter.section("Commands"):
            formatter.write_dl(lines)


def exit_now(code: Any) -> None:
    """Exit with `code` (a SystemExit code) without the interpreter's teardown, which costs tens of ms.

    Only once the command is done: stdout and stderr are flushed first (a flush that fails on a closed
    pipe exits 141, as a process killed by SIGPIPE), atexit handlers still run (temporary files,
    logging), and with any other thread alive the normal exit waits for it as before. run() calls
    it only after the command has returned, so an --out write is complete (or rolled back) by then;
    envspec writes every file inside `with`, so no buffered file object is left to the teardown.
    """
    import atexit
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        status = 141 if status == 0 else status
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(status)
