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


def test_top_level_help_has_examples_exit_codes_and_whole_descriptions() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    assert "Examples:" in result.output and "mlgitops generate --check" in result.output
    assert "Exit codes: 0 ok;" in result.output
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands
    for name, command in main.commands.items():  # type: ignore[attr-defined]
        first = " ".join(command.get_short_help_str(limit=300).split())
        assert first in " ".join(commands.split()), name


def test_validate_help_names_every_exit_code_and_describes_every_option() -> None:
    result = CliRunner().invoke(main, ["validate", "--help"], terminal_width=100)
    text = " ".join(result.output.split())
    assert "Exit 0 when clean, 1 with one line per problem, 2 for a usage error" in text
    assert "--output [text|json|junit] One line per problem; a JSON report" in text
    options = [p for p in main.commands["validate"].params if p.param_type_name == "option"]  # type: ignore[attr-defined]
    assert all(getattr(option, "help", None) for option in options)


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
