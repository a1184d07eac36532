"""The PR comment shows how long the build and the deploy took."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec.cli import main
from envspec.github.comment import format_duration

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0s"), (42.4, "42s"), (59.6, "1m 00s"), (312, "5m 12s"), (3725, "1h 02m")])
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_deployed_comment_shows_build_and_deploy_durations() -> None:
    result = CliRunner().invoke(main, ["comment", "preview-pr", "--pr", "107", "--kind", "deployed", "--root", str(ROOT),
                                       "--build-seconds", "312", "--deploy-seconds", "95"])
    assert result.exit_code == 0, result.output
    assert "Timing: build took **5m 12s** · deploy took **1m 35s**" in result.stdout


def test_no_timing_line_without_durations() -> None:
    result = CliRunner().invoke(main, ["comment", "preview-pr", "--pr", "107", "--root", str(ROOT)])
    assert result.exit_code == 0 and "Timing:" not in result.stdout


def test_a_negative_duration_is_a_user_error() -> None:
    result = CliRunner().invoke(main, ["comment", "preview-pr", "--pr", "107", "--root", str(ROOT), "--build-seconds", "-1"])
    assert result.exit_code == 2
