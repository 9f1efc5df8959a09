"""Regeneration is safe: hand edits are never lost, only our own files are deleted, and
--check, --dry-run and --diff write nothing."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import CONFIGS, ROOT, SEEDS

from generator import write
from generator.cli import main
from generator.config.load import load_config_file
from generator.layout import layout
from generator.render import render

BENCH = ROOT / "bench"  # the project's own fleet maker


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
    assert changed == [  # only the files that list what was removed, and the record
        ".mlgitops-state.json",
        "bootstrap/fleet/project/appproject.yaml",
        "bootstrap/local/local/project/appproject.yaml",
        "clusters/eks-training/gitops/application.yaml",
        # its training pods' Pod Identity association (the cluster has workload identity)
        "clusters/eks-training/infrastructure/podidentityassociation.yaml",
        "clusters/eks-training/infrastructure/role.yaml",  # its secrets' ARNs
        "clusters/eks-training/workloads/kustomization.yaml",
        "clusters/gke-training/gitops/application.yaml",
        # its secrets' readers, and its ServiceAccount's Workload Identity binding
        "clusters/gke-training/infrastructure/iampolicymember.yaml",
        "clusters/gke-training/workloads/kustomization.yaml",
        "clusters/local/gitops/application.yaml",
        "clusters/local/workloads/kustomization.yaml",
    ]
    deleted = [line for line in planned if line.startswith("delete")]
    assert all("bert-finetune" in line or "ml-workloads" in line for line in deleted)
    assert f"0 created, 11 changed, {len(deleted)} deleted" in result.stderr
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
    assert "update    .mlgitops-state.json" in lines  # as --check counts it
    assert not [line for line in lines if line.startswith("unchanged")]  # only what changes
    assert result.stderr.splitlines()[-1].endswith(" unchanged; nothing written")
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


def test_a_damaged_state_file_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    job = out / "base" / "resnet-ddp" / "job.yaml"
    job.write_text("edited\n")
    (out / write.STATE_FILE).write_text('{"files": {"../../etc/passwd": "x"}}')

    result = run(out, config=without_bert(tmp_path))

    assert result.exit_code == 3  # the edited file is a conflict, not overwritten
    assert "is malformed: every file that differs" in result.stderr
    assert job.read_text() == "edited\n"
    assert (out / "base" / "bert-finetune" / "job.yaml").exists()  # nothing deleted


def test_a_second_writer_waits_for_the_first_and_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(write, "LOCK_WAIT_SECONDS", 0.3)
    with write.locked(out):
        result = run(out)
    assert result.exit_code == 2
    assert "another mlgitops generate is writing this tree" in result.stderr
    assert run(out).exit_code == 0


@pytest.mark.parametrize("flag", ["--check", "--dry-run", "--diff"])
def test_read_only_modes_never_create_the_output_folder(tmp_path: Path, flag: str) -> None:
    out = tmp_path / "out"
    run(out, flag)
    assert not out.exists()


def _fleet_config(path: Path, workloads: int, tag: str) -> Path:
    """A fleet-sized config from bench/make_fleet.py, with its own image tags."""
    spec = importlib.util.spec_from_file_location("make_fleet", BENCH / "make_fleet.py")
    assert spec and spec.loader
    make_fleet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fleet)
    config = make_fleet.fleet(workloads, 6)
    for workload in config["workloads"]:
        workload["image"] = workload["image"].rsplit(":", 1)[0] + f":{tag}"
    config["workloads"] = config["workloads"][: workloads - (tag == "2.0.0") * 5]
    path.write_text(yaml.safe_dump(config))
    return path


def _disk(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# A real `mlgitops generate` that sends itself SIGKILL at its Nth call of a write step:
# the moments are chosen, so the test kills every run it means to, on any machine.
_KILLED_AT = """
import os, signal, sys
from generator import write
step, when = sys.argv.pop(1), int(sys.argv.pop(1))
original, calls = getattr(write, step), [0]
def counted(*args, **kwargs):
    calls[0] += 1
    if calls[0] == when:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(write, step, counted)
from generator.cli import main
main()
"""
# (step, moment): where in its staging or in its renames each run is killed, as a share
# of the steps it has to take (the first rename is the pending record's, the last the
# state file's).
KILL_POINTS = [
    ("_write_temporary", 0.5),
    ("_place", 0.0),
    ("_place", 0.05),
    ("_write_temporary", 0.0),
    ("_place", 0.5),
    ("_place", 1.0),
    ("_place", 0.25),
    ("_write_temporary", 1.0),
    ("_place", 0.9),
    ("_place", 0.75),
]


def _steps(out: Path, files: dict[str, bytes], config: Path) -> int:
    """How many files a run writes into `out` (0 when it is current): those that differ,
    its pending record, and its state file unless that is current already."""
    disk = _disk(out)
    state = write.render_state(files, write.config_record(out, config))
    changed = sum(disk.get(path) != content for path, content in files.items())
    return changed + 1 + (disk.get(write.STATE_FILE) != state) if changed else 0


def test_runs_killed_at_chosen_moments_leave_each_file_old_or_new(tmp_path: Path) -> None:
    """SIGKILL a real `mlgitops generate` switching between two fleets, again and again,
    while it stages files and while it renames them: every file must be whole (one
    version or the other), and a last run converges."""
    out = tmp_path / "out"
    configs = [
        _fleet_config(tmp_path / "a.yaml", 60, "1.0.0"),
        _fleet_config(tmp_path / "b.yaml", 60, "2.0.0"),
    ]
    trees = [layout(render(load_config_file(c))) for c in configs]
    fleets = [(tree.files, config) for tree, config in zip(trees, configs, strict=True)]
    plain = [sys.executable, "-c", "from generator.cli import main; main()"]
    arguments = ["generate", "--out", str(out), "--config"]
    subprocess.run([*plain, *arguments, str(configs[0])], check=True, capture_output=True)
    killed = 0
    for attempt, (step, moment) in enumerate(KILL_POINTS):
        # The other fleet than the one on disk (a run killed while staging changed nothing).
        target = next(t for t in ((attempt + 1) % 2, attempt % 2) if _steps(out, *fleets[t]))
        when = 1 + round(moment * (_steps(out, *fleets[target]) - 1))
        killing = [sys.executable, "-c", _KILLED_AT, step, str(when)]
        command = [*killing, *arguments, str(configs[target])]
        returned = subprocess.run(command, capture_output=True, check=False).returncode
        assert returned in (0, -signal.SIGKILL), returned
        killed += returned == -signal.SIGKILL
        disk = _disk(out)
        for path in set(trees[0].files) | set(trees[1].files):
            versions = {tree.files.get(path) for tree in trees}
            assert disk.get(path) in versions | ({None} if None in versions else set()) or (
                path not in disk
            ), path
    assert killed == len(KILL_POINTS)
    command = [*plain, *arguments]
    final = subprocess.run([*command, str(configs[1])], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    check = subprocess.run([*command, str(configs[1]), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert not list(out.rglob(f"*{write.TEMPORARY_SUFFIX}"))
    assert not (out / write.PENDING_FILE).exists()


def test_temporary_files_of_a_killed_run_are_removed_wherever_they_are(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(out)
    stale = out / "overlays" / "local" / "workloads" / "gone" / f".job.yaml{write.TEMPORARY_SUFFIX}"
    stale.parent.mkdir(parents=True)
    stale.write_text("half a file")
    mine = out / "overlays" / "local" / "workloads" / "notes.txt"
    mine.write_text("kept\n")
    assert run(out).exit_code == 0
    assert not stale.parent.exists()
    assert mine.read_text() == "kept\n"


class _Killed(Exception):
    """Stands for SIGKILL at a chosen moment."""


def _run_killed_after(
    out: Path, config: Path, writes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generate that dies after its first `writes` renames into place (the pending record
    first), once every temporary is written."""
    real = write._place
    done: list[Path] = []

    def dying(temporary: Path, target: Path) -> None:
        if len(done) == writes:
            raise _Killed
        done.append(target)
        real(temporary, target)

    monkeypatch.setattr(write, "_place", dying)
    result = run(out, config=config)
    monkeypatch.setattr(write, "_place", real)
    assert isinstance(result.exception, _Killed), result.output


def test_files_of_several_killed_runs_in_a_row_stay_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A dies after writing one file, run B dies before reaching it: the file holds
    A's version, which neither the state file nor B's own record knows. It is still
    ours, so the next run replaces it instead of calling it a hand edit."""
    configs = {}
    for tag in ("1.4.2", "1.5.0", "1.6.0"):
        configs[tag] = tmp_path / f"{tag}.yaml"
        configs[tag].write_text(
            SEEDS.read_text().replace("resnet-train:1.4.2", f"resnet-train:{tag}")
        )
    out = tmp_path / "out"
    assert run(out, config=configs["1.4.2"]).exit_code == 0
    job = out / "base" / "resnet-ddp" / "job.yaml"
    _run_killed_after(out, configs["1.5.0"], 2, monkeypatch)  # the record, then job.yaml
    assert b"resnet-train:1.5.0" in job.read_bytes()
    _run_killed_after(out, configs["1.6.0"], 1, monkeypatch)  # the record only
    result = run(out, config=configs["1.6.0"])
    assert result.exit_code == 0, result.output
    assert b"resnet-train:1.6.0" in job.read_bytes()
    assert not (out / write.PENDING_FILE).exists()
    assert run(out, "--check", config=configs["1.6.0"]).exit_code == 0
