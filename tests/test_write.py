"""Regeneration is safe: hand edits are never lost, only our own files are deleted, and
--check, --dry-run and --diff write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import CONFIGS, SEEDS

from generator import write
from generator.cli import main
from generator.config.load import load_config_file
from generator.layout import layout
from generator.render import render


def run(out: Path, *args: str, config: Path = SEEDS) -> Result:
    return CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out), *args])


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def without_bert(tmp_path: Path) -> Path:
    """The seeds config without its second workload."""
    text = SEEDS.read_text()
    start = text.index("  # Stateful training")
    end = text.index("clusters:")
    config = tmp_path / "smaller.yaml"
    config.write_text(text[:start] + "\n" + text[end:])
    return config


def test_an_edited_file_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    job = out / "base" / "resnet-ddp" / "job.yaml"
    job.write_text(job.read_text().replace("backoffLimit: 0", "backoffLimit: 4"))
    (out / "base" / "bert-finetune" / "service.yaml").unlink()  # would be re-created
    before = snapshot(out)

    result = run(out)

    assert result.exit_code == 3
    assert "base/resnet-ddp/job.yaml" in result.stderr
    assert "--force" in result.stderr
    assert snapshot(out) == before


def test_force_overwrites_an_edited_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    job = out / "base" / "resnet-ddp" / "job.yaml"
    original = job.read_bytes()
    job.write_text("edited\n")
    assert run(out, "--force").exit_code == 0
    assert job.read_bytes() == original
    assert run(out).exit_code == 0


def test_a_file_someone_else_wrote_where_we_write_is_a_conflict(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "base" / "resnet-ddp").mkdir(parents=True)
    (out / "base" / "resnet-ddp" / "job.yaml").write_text("mine\n")
    result = run(out)
    assert result.exit_code == 3
    assert not (out / write.STATE_FILE).exists()
    assert (out / "base" / "resnet-ddp" / "job.yaml").read_text() == "mine\n"


def test_files_no_longer_generated_are_deleted_with_their_empty_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    (out / "notes.md").write_text("my notes\n")
    (out / "base" / "resnet-ddp" / "README.md").write_text("mine\n")

    planned = run(out, "--dry-run", config=without_bert(tmp_path)).stdout.splitlines()
    result = run(out, config=without_bert(tmp_path))

    assert result.exit_code == 0, result.output
    changed = sorted(line.split()[1] for line in planned if line.startswith("update"))
    assert changed == [  # only the files that list what was removed
        "bootstrap/fleet/project/appproject.yaml",
        "bootstrap/local/local/project/appproject.yaml",
        "clusters/eks-training/gitops/application.yaml",
        "clusters/eks-training/workloads/kustomization.yaml",
        "clusters/gke-training/gitops/application.yaml",
        "clusters/gke-training/workloads/kustomization.yaml",
        "clusters/local/gitops/application.yaml",
        "clusters/local/workloads/kustomization.yaml",
    ]
    deleted = [line for line in planned if line.startswith("delete")]
    assert all("bert-finetune" in line or "ml-workloads" in line for line in deleted)
    assert f"0 created, 8 changed, {len(deleted)} deleted" in result.stderr
    assert not (out / "base" / "bert-finetune").exists()
    assert not (out / "base" / "namespaces" / "ml-workloads").exists()
    assert not (out / "overlays" / "local" / "workloads" / "bert-finetune").exists()
    assert not (out / "clusters" / "local" / "workloads" / "namespaces" / "ml-workloads").exists()
    assert (out / "notes.md").read_text() == "my notes\n"
    assert (out / "base" / "resnet-ddp" / "README.md").read_text() == "mine\n"
    state = json.loads((out / write.STATE_FILE).read_text())
    assert not [p for p in state["files"] if "bert" in p]


def test_an_edited_file_no_longer_generated_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    service = out / "base" / "bert-finetune" / "service.yaml"
    service.write_text("# my own now\n")

    result = run(out, config=without_bert(tmp_path))

    assert result.exit_code == 0
    assert service.read_text() == "# my own now\n"
    assert "base/bert-finetune/service.yaml is no longer generated but was edited" in result.stderr
    assert run(out, config=without_bert(tmp_path)).exit_code == 0  # and it stays the person's


def test_check_reports_drift_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(out, "--check")
    assert result.exit_code == 1
    assert "create    base/resnet-ddp/job.yaml" in result.stderr
    assert not out.exists()

    run(out)
    assert run(out, "--check").exit_code == 0
    other = run(out, "--check", config=CONFIGS / "recsys-tensorflow.yaml")
    assert other.exit_code == 1
    assert "delete    base/resnet-ddp/job.yaml" in other.stderr
    assert "update    .mlgitops-state.json" in other.stderr


def test_dry_run_lists_every_action_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    job = out / "base" / "resnet-ddp" / "job.yaml"
    job.write_text("edited\n")
    before = snapshot(out)

    result = run(out, "--dry-run", config=without_bert(tmp_path))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "conflict  base/resnet-ddp/job.yaml" in lines
    assert "delete    base/bert-finetune/job.yaml" in lines
    assert "unchanged base/resnet-ddp/service.yaml" in lines
    assert snapshot(out) == before


def test_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    before = snapshot(out)
    text = SEEDS.read_text().replace("workers: 3", "workers: 5")
    config = tmp_path / "five.yaml"
    config.write_text(text)

    result = run(out, "--diff", config=config)

    assert result.exit_code == 0
    assert "--- a/base/resnet-ddp/job.yaml\n+++ b/base/resnet-ddp/job.yaml\n" in result.stdout
    assert "-  completions: 3\n-  parallelism: 3\n+  completions: 5\n+  parallelism: 5\n" in (
        result.stdout
    )
    assert snapshot(out) == before


def test_a_run_killed_halfway_is_finished_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    moved = tmp_path / "port.yaml"  # a new port changes the Job and the Service
    moved.write_text(SEEDS.read_text().replace("port: 29500", "port: 29400"))
    tree = layout(render(load_config_file(moved))).files
    changes = write.plan(out, tree)
    updates = [c for c in changes if c.action is write.Action.UPDATE]
    assert len(updates) == 2
    (out / updates[0].path).write_bytes(updates[0].new or b"")  # killed after one rename

    result = run(out, config=moved)

    assert result.exit_code == 0, result.stderr
    assert f"0 created, 1 changed, 0 deleted, {len(tree) - 1} unchanged" in result.stderr
    assert run(out, "--check", config=moved).exit_code == 0


def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    (out / write.STATE_FILE).write_text('{"files": {"../../etc/passwd": "x"}}')
    result = run(out)
    assert result.exit_code == 2
    assert "malformed state file; delete it to start over" in result.stderr


@pytest.mark.parametrize("flag", ["--check", "--dry-run", "--diff"])
def test_read_only_modes_never_create_the_output_folder(tmp_path: Path, flag: str) -> None:
    out = tmp_path / "out"
    run(out, flag)
    assert not out.exists()
