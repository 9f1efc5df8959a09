"""The CI workflow the generated repository gets: valid YAML with the expected steps,
the kubeconform step only when asked, none when turned off, and its check passes on the
tree as generated (the state of the repository's first commit)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from helpers import SEEDS

from generator import __version__
from generator.cli import main

WORKFLOW = ".github/workflows/mlgitops.yaml"


def _generate(tmp_path: Path, extra: str = "") -> Path:
    tree = tmp_path / "repo"
    tree.mkdir()
    (tree / "mlgitops.yaml").write_text(SEEDS.read_text() + extra)
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tree / "mlgitops.yaml"), "--out", str(tree)]
    )
    assert result.exit_code == 0, result.output
    return tree


def _workflow(tree: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((tree / WORKFLOW).read_text())
    return loaded


def test_the_workflow_checks_the_tree_and_validates_every_build(tmp_path: Path) -> None:
    workflow = _workflow(_generate(tmp_path))
    assert workflow["on"] == {"pull_request": {}, "push": {"branches": ["main"]}}
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["check"]["steps"]
    assert [s.get("uses") for s in steps[:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]
    runs = [s["run"] for s in steps[2:]]
    assert runs[0] == f'pip install "mlgitops[kubectl]=={__version__}"'
    assert runs[1] == "mlgitops generate --check"
    assert shlex.split(runs[2])[:3] == ["mlgitops", "validate", "--schema-location"]
    assert "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" in runs[2]
    assert len(steps) == 5


def test_kubeconform_runs_only_when_asked(tmp_path: Path) -> None:
    steps = _workflow(_generate(tmp_path, "ci: {kubeconform: true}\n"))["jobs"]["check"]["steps"]
    assert "kubeconform-linux-amd64.tar.gz" in steps[5]["run"]
    assert shlex.split(steps[6]["run"])[:4] == ["mlgitops", "validate", "--engine", "kubeconform"]


def test_no_workflow_when_turned_off(tmp_path: Path) -> None:
    tree = _generate(tmp_path, "ci: {workflow: false}\n")
    assert not (tree / ".github").exists()


def test_the_check_step_passes_on_the_generated_repository(
    tmp_path: Path, monkeypatch: Any
) -> None:
    tree = _generate(tmp_path)
    (step,) = [
        s for s in _workflow(tree)["jobs"]["check"]["steps"] if "--check" in s.get("run", "")
    ]
    monkeypatch.chdir(tree)
    result = CliRunner().invoke(main, shlex.split(step["run"])[1:])
    assert result.exit_code == 0, result.output
    shutil.rmtree(tree / "base")
    assert CliRunner().invoke(main, shlex.split(step["run"])[1:]).exit_code == 1
