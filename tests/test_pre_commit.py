"""The pre-commit hooks this repository offers: a valid hook manifest whose entries are
real mlgitops commands that pass on a freshly generated repository and fail when the
tree drifts from its config."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import ROOT, SEEDS, schema_args

from generator.cli import main

REQUIRED = {"id", "name", "entry", "language"}


def _hooks() -> dict[str, dict[str, object]]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in hooks}


def test_the_manifest_declares_both_hooks() -> None:
    hooks = _hooks()
    assert sorted(hooks) == ["mlgitops-check", "mlgitops-validate"]
    for hook in hooks.values():
        assert set(hook) >= REQUIRED
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False


@pytest.mark.parametrize("hook", ["mlgitops-check", "mlgitops-validate"])
def test_each_hook_passes_on_a_generated_repository_and_fails_on_drift(
    hook: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(SEEDS, tmp_path / "mlgitops.yaml")
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["generate"]).exit_code == 0
    command, *args = shlex.split(str(_hooks()[hook]["entry"]))
    assert command == "mlgitops"
    if args[0] == "validate":  # its default schemas, or the same from a folder offline
        assert "--schema-location" not in args
        args += schema_args()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    job = next((tmp_path / "base" / "resnet-ddp").glob("job*.yaml"))
    job.write_text(job.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))
    assert CliRunner().invoke(main, args).exit_code == 1
