"""`envspec completion bash|zsh|fish`: the shell script that completes commands, options,
environment names and parameter names (see envspec.cli.completers)."""

from __future__ import annotations

import click

from envspec.cli import main

COMPLETE_VAR = "_ENVSPEC_COMPLETE"


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(envspec completion bash)"     (e.g. in ~/.bashrc)
    zsh:   eval "$(envspec completion zsh)"      (e.g. in ~/.zshrc)
    fish:  envspec completion fish > ~/.config/fish/completions/envspec.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the three choices are click's built-in shells
    click.echo(cls(main, {}, "envspec", COMPLETE_VAR).source())
