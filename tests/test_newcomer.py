"""The traps a new user fell into: a plain `generate` that put the demo over a tree
another config wrote, options silently reinterpreted, messages that said the wrong
thing or nothing."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import SEEDS

from generator import write
from generator.cli import main


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def fleet_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder generated with `--config fleet.yaml` (no mlgitops.yaml in it)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(SEEDS, tmp_path / "fleet.yaml")
    result = _run("generate", "--config", "fleet.yaml")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_a_plain_generate_uses_the_config_that_wrote_the_tree(fleet_folder: Path) -> None:
    before = _snapshot(fleet_folder)
    assert b'"path": "fleet.yaml"' in before[write.STATE_FILE]
    result = _run("generate")
    assert result.exit_code == 0, result.output
    assert "using fleet.yaml, which generated ." in result.stderr
    assert ", 0 deleted, " in result.stderr and "built-in default" not in result.stderr
    assert _snapshot(fleet_folder) == before
    # CI and pre-commit run plain commands: they find the config the same way.
    assert _run("generate", "--check").exit_code == 0


def test_the_built_in_default_is_never_put_over_another_configs_tree(
    fleet_folder: Path,
) -> None:
    (fleet_folder / "fleet.yaml").unlink()
    before = _snapshot(fleet_folder)
    result = _run("generate")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlgitops: . was generated from fleet.yaml, which is not there: give the config "
        "with --config\n"
    )
    assert _snapshot(fleet_folder) == before


def test_a_tree_from_a_config_outside_it_asks_for_that_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(SEEDS, tmp_path / "fleet.yaml")
    monkeypatch.chdir(tmp_path)
    assert _run("generate", "--config", "fleet.yaml", "--out", "tree").exit_code == 0
    monkeypatch.chdir(tmp_path / "tree")
    before = _snapshot(tmp_path / "tree")
    result = _run("generate")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlgitops: . was generated from a config outside it (fleet.yaml): give it with --config\n"
    )
    assert _snapshot(tmp_path / "tree") == before
    assert _run("generate", "--config", "../fleet.yaml", "--check").exit_code == 0


def test_a_tree_recorded_before_configs_were_recorded_is_not_given_the_default(
    fleet_folder: Path,
) -> None:
    state = fleet_folder / write.STATE_FILE
    state.write_text(state.read_text().replace('"config": {\n    "path": "fleet.yaml"\n  },\n', ""))
    assert '"config"' not in state.read_text()
    (fleet_folder / "fleet.yaml").unlink()
    before = _snapshot(fleet_folder)
    result = _run("generate")
    assert result.exit_code == 2
    assert "the built-in default is never put over another config's tree" in result.stderr
    assert _snapshot(fleet_folder) == before


def test_the_demo_tree_records_the_built_in_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = _run("generate")
    assert first.exit_code == 0, first.output
    assert "using the built-in default config" in first.stderr
    assert b'"builtin": true' in (tmp_path / write.STATE_FILE).read_bytes()
    assert _run("generate", "--check").exit_code == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--check", "--dry-run"], "--check and --dry-run are different modes: choose one"),
        (["--dry-run", "--diff"], "--dry-run and --diff are different modes: choose one"),
        (["--check", "--diff"], "--check and --diff are different modes: choose one"),
        (["--output", "json"], "--output json reports --check or --dry-run: add one of them"),
        (["--diff", "--output", "json"], "--output json reports --check or --dry-run: add one"),
        (["--check", "--force"], "--force writes; --check writes nothing: choose one"),
    ],
)
def test_options_that_would_be_reinterpreted_are_usage_errors(
    fleet_folder: Path, options: list[str], message: str
) -> None:
    before = _snapshot(fleet_folder)
    result = _run("generate", *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _snapshot(fleet_folder) == before


def test_dry_run_and_check_agree_and_dry_run_lists_only_what_changes(fleet_folder: Path) -> None:
    (fleet_folder / write.STATE_FILE).unlink()
    dry = _run("generate", "--config", "fleet.yaml", "--dry-run")
    check = _run("generate", "--config", "fleet.yaml", "--check")
    assert dry.exit_code == 0 and check.exit_code == 1
    assert dry.stdout == f"create    {write.STATE_FILE}\n"
    assert check.stderr.splitlines()[0] == f"create    {write.STATE_FILE}"
    summary = dry.stderr.splitlines()[-1]
    assert summary.startswith("mlgitops: .: 1 to create, 0 to change, 0 to delete, ")
    assert summary.endswith(" unchanged; nothing written")
    assert not (fleet_folder / write.STATE_FILE).exists()


def test_check_after_a_hand_edit_says_how_to_get_past_it(fleet_folder: Path) -> None:
    job = fleet_folder / "base" / "resnet-ddp" / "job.yaml"
    job.write_text(job.read_text() + "# mine\n")
    result = _run("generate", "--check")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "mlgitops: . is out of date: 1 file(s) differ, 1 of them edited by hand: move those "
        "changes into the config or a custom/ folder and revert the files, or run "
        "`mlgitops generate --force` to overwrite them"
    )
    refused = _run("generate")
    assert refused.exit_code == 3
    assert "mlgitops: these generated files were changed by hand" in refused.stderr


def test_a_missing_state_file_is_said_like_a_damaged_one(fleet_folder: Path) -> None:
    (fleet_folder / write.STATE_FILE).unlink()
    result = _run("generate", "--config", "fleet.yaml")
    assert result.exit_code == 0, result.output
    assert (
        f"mlgitops: warning: . has no {write.STATE_FILE} (mlgitops's record of the files it wrote)"
    ) in result.stderr
    fresh = _run("generate", "--config", "fleet.yaml", "--out", "elsewhere")
    assert "warning" not in fresh.stderr  # a new tree has nothing to say


def test_waiting_for_the_lock_says_who_holds_the_tree(
    fleet_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write, "LOCK_WAIT_SECONDS", 0.3)
    handle = os.open(fleet_folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = _run("generate")
    finally:
        os.close(handle)
    assert result.exit_code == 2
    waiting = [line for line in result.stderr.splitlines() if "waiting for it" in line]
    assert waiting == [
        f"mlgitops: process {os.getpid()} ({waiting[0].split('(', 1)[1].split(')')[0]}) is "
        "writing this tree; waiting for it to finish (up to 30 s)"
    ] or waiting == [
        "mlgitops: another mlgitops run is writing this tree; waiting for it to finish (up to 30 s)"
    ]
    if Path("/proc/locks").exists():
        assert f"process {os.getpid()} " in waiting[0]
    assert "another mlgitops generate is writing this tree" in result.stderr


def test_every_usage_message_says_it_is_mlgitops(tmp_path: Path) -> None:
    (tmp_path / "mlgitops.yaml").write_text("# mine\n")
    result = _run("init", "--config", str(tmp_path / "mlgitops.yaml"))
    assert result.exit_code == 2
    assert result.stderr.startswith("mlgitops: ")


def test_diff_outside_git_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(SEEDS, tmp_path / "mlgitops.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    if subprocess.run(["git", "rev-parse"], capture_output=True).returncode == 0:
        pytest.skip("the temporary folder is inside a git repository")
    result = _run("diff", "--against", "HEAD")
    assert result.exit_code == 2
    assert result.stderr.count("not a git repository") == 1, result.stderr
    assert result.stderr.startswith("mlgitops: ")


def test_a_config_in_a_folder_that_cannot_be_entered_is_a_message(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(SEEDS, locked / "mlgitops.yaml")
    locked.chmod(0)
    try:
        if os.access(locked / "mlgitops.yaml", os.R_OK):
            pytest.skip("this user reads files whatever their folders' modes (root)")
        result = _run("generate", "--config", str(locked / "mlgitops.yaml"), "--dry-run")
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 2
    assert result.stderr == (
        f"mlgitops: {locked / 'mlgitops.yaml'}: cannot read the config file (Permission denied)\n"
    )
