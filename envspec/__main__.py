from envspec.cli import run

run()
