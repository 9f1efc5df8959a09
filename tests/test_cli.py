"""The command line as scripts and people meet it: help with examples on every command,
and JSON on stdout from the read-only modes of generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SEEDS

from generator.cli import main


@pytest.mark.parametrize("command", sorted(main.commands))  # type: ignore[attr-defined]
def test_every_command_has_help_with_examples(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert f"mlgitops {command}" in result.output.split("Examples:", 1)[1]


def test_dry_run_and_check_speak_json_for_scripts(tmp_path: Path) -> None:
    base = ["generate", "--config", str(SEEDS), "--out", str(tmp_path / "tree")]
    planned = CliRunner().invoke(main, [*base, "--dry-run", "--output", "json"])
    assert planned.exit_code == 0, planned.output
    report = json.loads(planned.stdout)
    assert report["upToDate"] is False
    assert {f["action"] for f in report["files"]} == {"create"}
    assert not (tmp_path / "tree").exists()
    stale = CliRunner().invoke(main, [*base, "--check", "--output", "json"])
    assert stale.exit_code == 1
    assert json.loads(stale.stdout)["upToDate"] is False
    assert CliRunner().invoke(main, base).exit_code == 0
    fresh = CliRunner().invoke(main, [*base, "--check", "--output", "json"])
    assert fresh.exit_code == 0
    files = json.loads(fresh.stdout)["files"]
    assert files and {f["action"] for f in files} == {"unchanged"}
