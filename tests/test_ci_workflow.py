"""The CI workflow the generated repository gets: valid YAML with the expected steps,
the kubeconform step only when asked, none when turned off, and its check passes on the
tree as generated (the state of the repository's first commit). It is hardened as the
workflow scanners ask: least permissions, no persisted credentials, and every action
pinned to the commit of a release of it, named in a comment."""

from __future__ import annotations

import re
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
    steps = workflow["jobs"]["check"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps[:2]] == [
        "actions/checkout",
        "actions/setup-python",
    ]
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


def test_no_permission_at_the_top_and_the_job_only_reads(tmp_path: Path) -> None:
    workflow = _workflow(_generate(tmp_path, "ci: {kubeconform: true}\n"))
    assert workflow["permissions"] == {}
    assert [job["permissions"] for job in workflow["jobs"].values()] == [{"contents": "read"}]


def test_checkout_keeps_no_credentials(tmp_path: Path) -> None:
    steps = _workflow(_generate(tmp_path))["jobs"]["check"]["steps"]
    (checkout,) = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"persist-credentials": False}


# The releases pinned, each checked against the action's repository: `git rev-parse
# <tag>^{commit}` in a clone of it.
RELEASES = {
    "actions/checkout": ("11d5960a326750d5838078e36cf38b85af677262", "v4.4.0"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
}


def test_every_action_is_pinned_to_a_full_commit_with_its_tag_in_a_comment(
    tmp_path: Path,
) -> None:
    text = (_generate(tmp_path, "ci: {kubeconform: true}\n") / WORKFLOW).read_text()
    uses = re.findall(r"^\s*- uses: (\S+)@(\S+)(.*)$", text, flags=re.MULTILINE)
    assert {name for name, _, _ in uses} == set(RELEASES)
    for name, ref, rest in uses:
        assert re.fullmatch("[0-9a-f]{40}", ref), (name, ref)
        commit, tag = RELEASES[name]
        assert (ref, rest) == (commit, f"  # {tag}")
    # A comment, not part of the value: what GitHub reads is owner/name@commit.
    loaded = [
        s["uses"] for s in _workflow(tmp_path / "repo")["jobs"]["check"]["steps"] if "uses" in s
    ]
    assert loaded == [f"{name}@{commit}" for name, (commit, _) in RELEASES.items()]
