"""`generate` never crosses the tree and never crashes: nothing is written, replaced or
deleted outside the output folder or through a symbolic link, a tree or state file that
cannot be used gets one located message (exit 2) before anything is written, and a run
that fails for space leaves the tree as it was."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import ROOT, SEEDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import write
from generator.cli import main
from generator.config.load import load_config_file
from generator.errors import TreeError
from generator.layout import layout
from generator.render import render

Picture = dict[str, tuple[str, bytes, int]]
NOBODY = 65534


def run(out: Path, *args: str, config: Path = SEEDS) -> Result:
    return CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out), *args])


def picture(root: Path) -> Picture:
    """Every entry under root, links not followed: kind, bytes (a link's target) and the
    mtime of files. Equal pictures: nothing was written, replaced or deleted."""
    found: Picture = {}
    if not root.exists():
        return found
    for folder, subfolders, files in os.walk(root):
        for name in [*subfolders, *files]:
            path = Path(folder) / name
            info = os.lstat(path)
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path).encode("utf-8", "surrogateescape"), 0)
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("folder", b"", stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                try:
                    content = path.read_bytes()
                except OSError:
                    content = b"(unreadable)"
                found[relative] = ("file", content, info.st_mtime_ns)
            else:
                found[relative] = ("other", b"", info.st_mtime_ns)
    return found


def without_bert(tmp_path: Path) -> Path:
    """The seeds config without its second workload: a run that deletes its files."""
    text = SEEDS.read_text()
    start = text.index("  # Stateful training")
    config = tmp_path / "smaller.yaml"
    config.write_text(text[:start] + "\n" + text[text.index("clusters:") :])
    return config


def with_tag(tmp_path: Path, tag: str) -> Path:
    """The seeds config with another image tag: a run that updates job.yaml."""
    config = tmp_path / f"{tag}.yaml"
    config.write_text(SEEDS.read_text().replace("resnet-train:1.4.2", f"resnet-train:{tag}"))
    return config


def assert_refused(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("mlgitops: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


def leftovers(out: Path) -> list[Path]:
    return [*out.rglob(f"*{write.TEMPORARY_SUFFIX}"), *out.glob(write.PENDING_FILE)]


# --- Symbolic links ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["base/resnet-ddp", "overlays/local/workloads/resnet-ddp"])
@pytest.mark.parametrize("flags", [(), ("--force",), ("--check",), ("--dry-run",), ("--diff",)])
def test_a_folder_linked_outside_the_tree_is_never_written_through(
    tmp_path: Path, folder: str, flags: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    outside = tmp_path / "outside"
    shutil.move(out / folder, outside)
    for edited in outside.iterdir():  # hand edits there: --force would overwrite them
        edited.write_text("# someone else's\n")
    (out / folder).symlink_to(outside)
    before, tree = picture(outside), picture(out)

    result = run(out, *flags, config=with_tag(tmp_path, "9.9.9"))

    assert_refused(result, f"{out / folder}: is a symbolic link", "real folder")
    assert picture(outside) == before
    assert picture(out) == tree


def test_a_prune_never_deletes_through_a_linked_folder(tmp_path: Path) -> None:
    """The review's case: the workload leaves the config while its folder is a link to a
    folder outside: its files there were deleted ("17 deleted") and the folder emptied."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    outside = tmp_path / "outside"
    shutil.move(out / "base" / "bert-finetune", outside)
    (out / "base" / "bert-finetune").symlink_to(outside)
    before, tree = picture(outside), picture(out)

    result = run(out, config=without_bert(tmp_path))

    assert_refused(result, "base/bert-finetune: is a symbolic link")
    assert picture(outside) == before
    assert picture(out) == tree


def test_a_folder_linked_inside_the_tree_is_refused_too(tmp_path: Path) -> None:
    """We own real folders only: a link to another of our folders would make two paths
    one file, and a write to one a silent change of the other."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    shutil.rmtree(out / "overlays" / "local" / "workloads" / "resnet-ddp")
    (out / "overlays" / "local" / "workloads" / "resnet-ddp").symlink_to(
        out / "overlays" / "local" / "workloads" / "bert-finetune", target_is_directory=True
    )
    tree = picture(out)

    result = run(out, "--force")

    assert_refused(result, "overlays/local/workloads/resnet-ddp: is a symbolic link")
    assert picture(out) == tree


def test_a_linked_file_is_a_conflict_and_force_replaces_the_link_not_its_target(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    job = out / "base" / "resnet-ddp" / "job.yaml"
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(job.read_bytes())  # the same bytes: still not our file
    job.unlink()
    job.symlink_to(outside)

    conflict = run(out)
    assert conflict.exit_code == 3
    assert "base/resnet-ddp/job.yaml" in conflict.stderr
    assert job.is_symlink()

    assert run(out, "--force").exit_code == 0
    assert not job.is_symlink()
    assert job.read_bytes() == outside.read_bytes()
    assert run(out, "--check").exit_code == 0


def test_a_custom_folder_linked_elsewhere_is_left_alone_unless_its_seed_must_be_written(
    tmp_path: Path,
) -> None:
    """custom/ folders are people's: one linked to shared patches that hold their
    kustomization.yaml is not touched; one whose seed is missing cannot get it through
    the link, and the run says so."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    shared = tmp_path / "shared-patches"
    shutil.move(out / "clusters" / "local" / "custom", shared)
    (out / "clusters" / "local" / "custom").symlink_to(shared)
    before = picture(shared)
    assert run(out).exit_code == 0
    assert picture(shared) == before

    (shared / "kustomization.yaml").unlink()
    before, tree = picture(shared), picture(out)
    assert_refused(run(out), "clusters/local/custom: is a symbolic link")
    assert picture(shared) == before
    assert picture(out) == tree


def test_the_output_folder_itself_may_be_a_link(tmp_path: Path) -> None:
    """--out names the tree; where it really is does not matter."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    assert run(tmp_path / "out").exit_code == 0
    assert (real / "base" / "resnet-ddp" / "job.yaml").is_file()
    assert run(tmp_path / "out", "--check").exit_code == 0


# --- What stands where it should not -------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--force",), ("--check",), ("--dry-run",)])
def test_a_generated_folder_replaced_by_a_file_is_refused_before_any_write(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    shutil.rmtree(out / "base" / "bert-finetune")
    (out / "base" / "bert-finetune").write_text("an accident\n")
    (out / "base" / "resnet-ddp" / "service.yaml").unlink()  # would be written first
    tree = picture(out)

    result = run(out, *flags, config=with_tag(tmp_path, "9.9.9"))

    assert_refused(result, f"{out / 'base' / 'bert-finetune'}: is a file where mlgitops needs")
    assert picture(out) == tree


@pytest.mark.parametrize("flags", [(), ("--force",), ("--check",), ("--dry-run",)])
def test_a_folder_where_a_file_belongs_is_refused_before_any_write(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    job = out / "base" / "resnet-ddp" / "job.yaml"
    job.unlink()
    job.mkdir()
    (job / "notes.txt").write_text("mine\n")
    tree = picture(out)

    result = run(out, *flags, config=with_tag(tmp_path, "9.9.9"))

    assert_refused(result, f"{job}: is a folder where mlgitops writes a file")
    assert picture(out) == tree


def test_an_output_folder_that_is_a_file_or_under_one_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("not a folder\n")
    refused = run(file)
    assert refused.exit_code == 2
    assert "is a file" in refused.stderr
    assert "Traceback" not in refused.output
    assert_refused(run(file / "out"), "cannot create the output folder (Not a directory)")
    assert_refused(run(file / "out", "--check"), "cannot look at the output folder")
    assert file.read_text() == "not a folder\n"


# --- Damaged state files ---------------------------------------------------------------------

EMPTY = hashlib.sha256(b"").hexdigest()  # what a folder read as a file would hash to


@pytest.mark.parametrize(
    "entry",
    [
        "base/resnet-ddp",  # a folder: was unlinked, mid-write
        ".",
        "",
        "base/resnet-ddp/job.yaml/deeper",  # under a file
        "base/\0job.yaml",
        "base/" + "n" * 256,
        "/".join(["d" * 200] * 21),  # over 4096 bytes
        "/etc/passwd",
        "base//resnet-ddp/job.yaml",
        "base/\udc80.yaml",
        write.STATE_FILE,
    ],
)
def test_odd_state_entries_are_never_a_crash_and_never_delete_a_folder(
    tmp_path: Path, entry: str
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    state = json.loads((out / write.STATE_FILE).read_text())
    state["files"][entry] = EMPTY
    (out / write.STATE_FILE).write_text(json.dumps(state))
    files = {path for path, (kind, _, _) in picture(out).items() if kind == "file"}

    result = run(out, config=without_bert(tmp_path))

    assert result.exit_code in (0, 3), result.output  # 3: a damaged record loses nothing
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (out / "base" / "resnet-ddp" / "job.yaml").is_file()
    left = {path for path, (kind, _, _) in picture(out).items() if kind == "file"}
    assert {p for p in files if "bert" not in p and "ml-workloads" not in p} <= left
    assert not leftovers(out)
    assert run(out, config=without_bert(tmp_path)).exit_code in (0, 3)


@pytest.mark.parametrize("depth", [65, 1000, 200_000])
@pytest.mark.parametrize("name", [write.STATE_FILE, write.PENDING_FILE])
def test_a_state_file_nested_too_deep_is_refused(tmp_path: Path, depth: int, name: str) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    (out / name).write_text('{"files": ' + "[" * depth + "]" * depth + "}")
    tree = picture(out)
    for flags in [(), ("--force",), ("--check",)]:
        result = run(out, *flags, config=with_tag(tmp_path, "9.9.9"))
        assert_refused(result, f"{out / name}: is nested deeper than 64 levels")
    assert picture(out) == tree


def test_a_state_file_larger_than_a_config_may_be_is_refused_unread(tmp_path: Path) -> None:
    """A sparse 1.8 GB file: refused from its size, without reading it (a state file
    read in full took 72 s and 1.8 GB of memory)."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    with (out / write.STATE_FILE).open("r+b") as state:
        state.truncate(1_800_000_000)
    result = run(out, "--force", config=with_tag(tmp_path, "9.9.9"))
    assert_refused(result, "is larger than 16 MiB, the most a state file may be")
    assert b"9.9.9" not in (out / "base" / "resnet-ddp" / "job.yaml").read_bytes()


def test_a_state_file_just_over_the_limit_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    (out / write.STATE_FILE).write_bytes(b" " * (write.MAX_STATE_BYTES + 1))
    assert_refused(run(out, "--check"), "is larger than 16 MiB")


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_state_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    state = out / write.STATE_FILE
    state.unlink()
    if kind == "folder":
        state.mkdir()
    else:
        os.mkfifo(state)  # read without care, a FIFO blocks the run for ever
    tree = picture(out)
    result = run(out, "--force", config=with_tag(tmp_path, "9.9.9"))
    assert_refused(result, f"{state}: is not a regular file")
    assert picture(out) == tree


def test_a_linked_state_file_is_not_followed_and_is_replaced(tmp_path: Path) -> None:
    """Like any linked file: not read (so every file that differs counts as edited) and,
    at the end of the run, replaced by a real file; the link's target is untouched."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    state = out / write.STATE_FILE
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(state.read_bytes())
    state.unlink()
    state.symlink_to(elsewhere)
    before = (elsewhere.read_bytes(), elsewhere.stat().st_mtime_ns)

    result = run(out, config=with_tag(tmp_path, "9.9.9"))
    assert result.exit_code == 3  # not read: job.yaml differs from what it was written as
    assert "is a symbolic link (not followed)" in result.stderr
    assert run(out, "--force", config=with_tag(tmp_path, "9.9.9")).exit_code == 0
    assert not state.is_symlink()
    assert json.loads(state.read_text())["files"]
    assert (elsewhere.read_bytes(), elsewhere.stat().st_mtime_ns) == before


# --- Permissions (real ones: as an unprivileged user when the tests run as root) ------------


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A folder an unprivileged user may write, removed whatever its modes end as."""
    folder = Path(tempfile.mkdtemp(prefix="mlgitops-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o777)
        shutil.rmtree(folder)


def _as_user(command: list[str]) -> subprocess.CompletedProcess[str]:
    """COMMAND in its own process, as an unprivileged user if we are root (root reads and
    writes whatever the modes say)."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip(
                "running as root without setpriv to drop privileges: modes are not enforced"
            )
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/nonexistent"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd="/")


def as_user(*args: str) -> subprocess.CompletedProcess[str]:
    """`mlgitops generate ARGS`, as an unprivileged user."""
    return _as_user(
        [sys.executable, "-c", "from generator.cli import main; main()", "generate", *args]
    )


def modes_are_enforced(folder: Path) -> bool:
    """Whether that user is really kept out of a file of mode 0 and a folder of mode 0555."""
    probe = folder / "probe"
    probe.write_text("x\n")
    probe.chmod(0)
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    script = (
        "import sys\n"
        "try: open(sys.argv[1]).read()\nexcept PermissionError: pass\nelse: sys.exit(1)\n"
        "try: open(sys.argv[2] + '/x', 'w')\nexcept PermissionError: pass\nelse: sys.exit(1)\n"
    )
    result = _as_user([sys.executable, "-c", script, str(probe), str(locked)])
    probe.unlink()
    locked.rmdir()
    return result.returncode == 0


def assert_refused_process(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("mlgitops: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def tree_of_nobody(shared: Path, tmp_path: Path) -> Path:
    """A generated tree owned by the unprivileged user, and the configs it is run with."""
    for config in (SEEDS, with_tag(tmp_path, "9.9.9"), without_bert(tmp_path)):
        shutil.copy(config, shared / config.name)
    if not modes_are_enforced(shared):
        pytest.skip("this user reads files whatever their modes: permissions cannot be tested")
    result = as_user("--config", str(shared / SEEDS.name), "--out", str(shared / "out"))
    assert result.returncode == 0, result.stderr
    return shared / "out"


@pytest.mark.parametrize("flags", [(), ("--force",), ("--check",), ("--dry-run",)])
@pytest.mark.parametrize(
    ("unreadable", "message"),
    [
        ("base/resnet-ddp/job.yaml", "cannot read it (Permission denied)"),
        ("base/bert-finetune/service.yaml", "cannot read it (Permission denied)"),
        ("base/bert-finetune", "cannot look inside it (Permission denied)"),
        (write.STATE_FILE, "cannot read mlgitops's record"),
    ],
)
def test_unreadable_entries_are_refused_before_any_write(
    tree_of_nobody: Path, flags: tuple[str, ...], unreadable: str, message: str
) -> None:
    out = tree_of_nobody
    (out / unreadable).chmod(0)
    tree = picture(out)
    result = as_user("--config", str(out.parent / "9.9.9.yaml"), "--out", str(out), *flags)
    assert_refused_process(result, f"{out / unreadable}: {message}")
    assert picture(out) == tree


def test_an_unreadable_state_file_with_force_writes_nothing(tree_of_nobody: Path) -> None:
    """It used to write every file, then crash before recording them."""
    out = tree_of_nobody
    (out / write.STATE_FILE).chmod(0)
    tree = picture(out)
    result = as_user("--config", str(out.parent / "smaller.yaml"), "--out", str(out), "--force")
    assert_refused_process(result, "cannot read mlgitops's record")
    assert picture(out) == tree
    (out / write.STATE_FILE).chmod(0o644)
    again = as_user("--config", str(out.parent / "smaller.yaml"), "--out", str(out))
    assert again.returncode == 0, again.stderr


def test_an_unwritable_folder_leaves_the_tree_as_it_was(tree_of_nobody: Path) -> None:
    out = tree_of_nobody
    (out / "base" / "resnet-ddp").chmod(0o555)
    tree = picture(out)
    result = as_user("--config", str(out.parent / "9.9.9.yaml"), "--out", str(out))
    assert_refused_process(result, "cannot write (Permission denied); nothing was changed")
    assert picture(out) == tree
    assert not leftovers(out)


def test_an_unwritable_folder_to_delete_from_is_refused_before_any_write(
    tree_of_nobody: Path,
) -> None:
    out = tree_of_nobody
    (out / "base" / "bert-finetune").chmod(0o555)
    tree = picture(out)
    result = as_user("--config", str(out.parent / "smaller.yaml"), "--out", str(out))
    assert_refused_process(result, "base/bert-finetune: is not writable", "nothing was changed")
    assert picture(out) == tree


def test_an_unwritable_parent_of_the_output_folder_is_a_message(shared: Path) -> None:
    parent = shared / "read-only"
    parent.mkdir()
    if os.geteuid() == 0:
        os.chown(parent, NOBODY, NOBODY)
    parent.chmod(0o555)
    if not modes_are_enforced(shared):
        pytest.skip("this user writes folders whatever their modes: permissions cannot be tested")
    for out in (parent / "out", parent / "deeper" / "out"):
        result = as_user("--config", str(SEEDS), "--out", str(out))
        assert_refused_process(result, "cannot create the output folder (Permission denied)")
    assert list(parent.iterdir()) == []


# --- Modes ------------------------------------------------------------------------------------


def test_a_read_only_generated_file_keeps_its_mode_when_it_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    job = out / "base" / "resnet-ddp" / "job.yaml"
    job.chmod(0o444)
    service = out / "base" / "resnet-ddp" / "service.yaml"
    service.chmod(0o640)

    assert run(out, config=with_tag(tmp_path, "9.9.9")).exit_code == 0
    assert b"resnet-train:9.9.9" in job.read_bytes()
    assert stat.S_IMODE(job.stat().st_mode) == 0o444

    moved = tmp_path / "port.yaml"  # a new port changes the Service
    moved.write_text(with_tag(tmp_path, "9.9.9").read_text().replace("29500", "29400"))
    assert run(out, config=moved).exit_code == 0
    assert b"29400" in service.read_bytes()
    assert stat.S_IMODE(service.stat().st_mode) == 0o640
    assert stat.S_IMODE(job.stat().st_mode) == 0o444


# --- A full disk --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_a_write_that_fails_for_space_at_any_point_leaves_the_tree_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The low-level write raises ENOSPC (or EDQUOT) at a random write: the clean message,
    and the tree byte for byte as before, even the pending record of an earlier killed
    run. Then, with space again, the run succeeds."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    chance = random.Random(seed)
    if seed >= 3:  # each temporary flushed on its own, as where syncfs is missing
        monkeypatch.setattr(write, "_SYNCFS", None)
    if seed % 2:  # an earlier killed run left its record: it must survive as it was
        pending = {"version": 1, "files": {"base/resnet-ddp/job.yaml": ["0" * 64]}}
        (out / write.PENDING_FILE).write_text(json.dumps(pending))
    config = without_bert(tmp_path) if seed % 3 == 0 else with_tag(tmp_path, "9.9.9")
    (out / "base" / "resnet-ddp" / "service.yaml").unlink()  # a create, besides updates
    tree = picture(out)
    real = write._write_temporary
    calls: list[Path] = []

    def counting(temporary: Path, content: bytes, mode: int | None) -> None:
        calls.append(temporary)
        real(temporary, content, mode)

    monkeypatch.setattr(write, "_write_temporary", counting)
    dry = tmp_path / "dry"
    shutil.copytree(out, dry, symlinks=True)
    assert run(dry, config=config).exit_code == 0
    count = len(calls)
    assert count > 2
    failing_at = chance.randrange(count)
    code = chance.choice([errno.ENOSPC, errno.EDQUOT])

    def filling(temporary: Path, content: bytes, mode: int | None) -> None:
        if len(calls) == count + failing_at:
            temporary.write_bytes(content[: len(content) // 2])  # half written, then full
            raise OSError(code, os.strerror(code), str(temporary))
        calls.append(temporary)
        real(temporary, content, mode)

    monkeypatch.setattr(write, "_write_temporary", filling)
    result = run(out, config=config)

    assert_refused(result, os.strerror(code), "nothing was changed: free some space")
    assert picture(out) == tree
    monkeypatch.setattr(write, "_write_temporary", real)
    assert run(out, config=config).exit_code == 0
    assert run(out, "--check", config=config).exit_code == 0
    assert not leftovers(out)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_a_flush_that_fails_after_every_write_leaves_the_tree_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A filesystem that takes the writes but fails to flush them (delayed allocation on a
    full disk, a quota counted at write-back)."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    config = without_bert(tmp_path)
    tree = picture(out)

    def failing(folder: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(write, "_flush", failing)
    assert_refused(run(out, config=config), os.strerror(code), "nothing was changed")
    assert picture(out) == tree
    monkeypatch.undo()
    assert run(out, config=config).exit_code == 0
    assert not (out / "base" / "bert-finetune").exists()


def test_not_enough_free_space_is_refused_before_the_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    tree = picture(out)
    free = os.statvfs(out)
    monkeypatch.setattr(write, "SPACE_MARGIN_BYTES", free.f_bavail * free.f_frsize)
    result = run(out, config=with_tag(tmp_path, "9.9.9"))
    assert_refused(result, "not enough free space", "nothing was written")
    assert picture(out) == tree


TMPFS_SCRIPT = """
import json, os, subprocess, sys
from pathlib import Path
from click.testing import CliRunner
from generator import write
from generator.cli import main
sys.path.insert(0, {tests!r})
from test_write_boundaries import picture

mount, seeds, fleet, report = (Path(p) for p in sys.argv[1:])
out = mount / "out"

def generate(config, *flags):
    args = ["generate", "--config", str(config), "--out", str(out), *flags]
    result = CliRunner().invoke(main, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return {{"code": result.exit_code, "stderr": result.stderr, "crashed": crashed}}

found = {{"seeds": generate(seeds)}}
before = picture(out)
found["checked"] = generate(fleet)
found["checked_same"] = picture(out) == before
write._check_space = lambda root, staged: None  # the filesystem said yes, then filled up
found["filled"] = generate(fleet)
found["filled_same"] = picture(out) == before
found["leftovers"] = [str(p) for p in out.rglob("*" + write.TEMPORARY_SUFFIX)]
subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
found["roomy"] = generate(fleet)
found["check"] = generate(fleet, "--check")
report.write_text(json.dumps(found))
"""


def test_a_full_disk_leaves_the_tree_as_it_was_and_a_later_run_succeeds(tmp_path: Path) -> None:
    """A real small tmpfs (in a user and mount namespace): a fleet larger than the free
    space is refused before the first write; with the space check out of the way, the
    real ENOSPC mid-run is undone; with more space, the same run succeeds."""
    mount = tmp_path / "disk"
    mount.mkdir()
    probe = (
        subprocess.run(
            ["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=1m", "mlgitops", str(mount)],
            capture_output=True,
            text=True,
        )
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        reason = probe.stderr.strip() if probe else "no unshare"
        pytest.skip(f"cannot mount a small tmpfs in a user+mount namespace: {reason}")
    spec = importlib.util.spec_from_file_location("make_fleet", ROOT / "bench" / "make_fleet.py")
    assert spec and spec.loader
    make_fleet = importlib.util.module_from_spec(spec)  # the project's own fleet maker
    spec.loader.exec_module(make_fleet)
    fleet_config = tmp_path / "fleet.yaml"
    fleet_config.write_text(yaml.safe_dump(make_fleet.fleet(30, 6)))
    script = tmp_path / "disk.py"
    script.write_text(TMPFS_SCRIPT.format(tests=str(ROOT / "tests")))
    report = tmp_path / "report.json"
    shell = (
        f'mount -t tmpfs -o size=2560k mlgitops "{mount}" && '
        f'exec "{sys.executable}" "{script}" "{mount}" "{SEEDS}" "{fleet_config}" "{report}"'
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(report.read_text())
    assert found["seeds"]["code"] == 0, found["seeds"]
    assert found["checked"]["code"] == 2, found["checked"]
    assert "not enough free space" in found["checked"]["stderr"]
    assert found["checked_same"]
    assert found["filled"]["code"] == 2, found["filled"]
    assert not found["filled"]["crashed"]
    assert "No space left on device" in found["filled"]["stderr"]
    assert "nothing was changed" in found["filled"]["stderr"]
    assert found["filled_same"]
    assert found["leftovers"] == []
    assert found["roomy"]["code"] == 0, found["roomy"]
    assert found["check"]["code"] == 0, found["check"]
    assert not list(mount.iterdir())  # the tmpfs was the namespace's alone


# --- Random trees ---------------------------------------------------------------------------

ODD_NAMES = [
    "new\nline.yaml",
    "n" * 255,
    ".hidden",
    f".job.yaml{write.TEMPORARY_SUFFIX}",
    "ünïcødé.yaml",
    " ",
    "-",
    "kustomization.yaml~",
]
STATE_GARBAGE = [
    b"",
    b"\xff\xfe",
    b"null",
    b"[]",
    b'{"files": []}',
    b'{"files": {"base/resnet-ddp": "' + EMPTY.encode() + b'"}}',
    b'{"files": {".": "x"}}',
    b'{"files": {"base/\\u0000x": "x"}}',
    b'{"files": {"../outside/file.yaml": "x"}}',
    b'{"files": {"base/bert-finetune/job.yaml": ["x", ["y"]]}}',
    b'{"files": ' * 5000,
    b"[" * 100 + b"]" * 100,
]


@st.composite
def damage(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    kinds = [
        "link-folder-outside",
        "link-folder-inside",
        "file-for-folder",
        "folder-for-file",
        "link-file-outside",
        "odd-name",
        "garbage-state",
        "unreadable",
        "edit",
        "remove",
    ]
    return draw(
        st.lists(
            st.tuples(st.sampled_from(kinds), st.integers(0, 10_000), st.integers(0, 10_000)),
            min_size=1,
            max_size=4,
        )
    )


def _break(out: Path, outside: Path, kind: str, pick: int, other: int) -> None:
    entries = sorted(out.rglob("*"), key=str)
    folders = [p for p in entries if p.is_dir() and not p.is_symlink()]
    files = [p for p in entries if p.is_file() and not p.is_symlink()]
    folder = folders[pick % len(folders)] if folders else out
    file = files[pick % len(files)] if files else None
    if kind == "link-folder-outside" and folders:
        shutil.rmtree(folder)
        folder.symlink_to(outside)
    elif kind == "link-folder-inside" and len(folders) > 1:
        target = folders[other % len(folders)]
        shutil.rmtree(folder)
        if target.exists() and folder not in target.parents:
            folder.symlink_to(target, target_is_directory=True)
    elif kind == "file-for-folder" and folders:
        shutil.rmtree(folder)
        folder.write_text("a file\n")
    elif kind == "folder-for-file" and file:
        file.unlink()
        file.mkdir()
        (file / "inside.yaml").write_text("x\n")
    elif kind == "link-file-outside" and file:
        file.unlink()
        file.symlink_to(outside / "file.yaml")
    elif kind == "odd-name":
        (folder / ODD_NAMES[other % len(ODD_NAMES)]).write_text("odd\n")
    elif kind == "garbage-state":
        (out / write.STATE_FILE).unlink(missing_ok=True)
        (out / write.STATE_FILE).write_bytes(STATE_GARBAGE[other % len(STATE_GARBAGE)])
    elif kind == "unreadable":
        (file or folder).chmod(0)
    elif kind == "edit" and file:
        file.write_text("# edited\n")
    elif kind == "remove" and file:
        file.unlink()


def _outside_picture(top: Path) -> tuple[Picture, list[str]]:
    return picture(top / "outside"), sorted(p.name for p in top.iterdir())


FLAGS = [(), ("--force",), ("--check",), ("--dry-run",), ("--diff",)]


@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    damages=damage(),
    flags=st.sampled_from(FLAGS),
    smaller=st.booleans(),
)
def test_random_trees_never_crash_and_never_write_outside(
    baseline: Path, damages: list[tuple[str, int, int]], flags: tuple[str, ...], smaller: bool
) -> None:
    top = Path(tempfile.mkdtemp(prefix="mlgitops-fuzz-"))
    try:
        out = top / "out"
        shutil.copytree(baseline / "out", out, symlinks=True)
        shutil.copytree(baseline / "out" / "base" / "resnet-ddp", top / "outside")
        (top / "outside" / "file.yaml").write_text("outside\n")
        for kind, pick, other in damages:
            _break(out, top / "outside", kind, pick, other)
        before, tree = _outside_picture(top), picture(out)

        result = run(out, *flags, config=baseline / ("smaller.yaml" if smaller else "seeds.yaml"))

        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert "Traceback" not in result.output
        allowed = {0, 1, 2} if flags == ("--check",) else {0, 2} if flags else {0, 2, 3}
        assert result.exit_code in allowed, result.output
        assert _outside_picture(top) == before
        if result.exit_code != 0 or flags not in [(), ("--force",)]:
            assert picture(out) == tree  # refused, or read-only: nothing written
        if result.exit_code == 2:
            assert result.stderr.startswith("mlgitops: "), result.stderr
    finally:
        for path in [top, *top.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o777)
        shutil.rmtree(top)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("baseline")
    shutil.copy(SEEDS, folder / "seeds.yaml")
    without_bert(folder)
    assert run(folder / "out", config=folder / "seeds.yaml").exit_code == 0
    return folder


# --- Failures after the first rename, and changes made while a run runs -----------------------


def test_a_rename_that_fails_midway_is_a_message_and_the_next_run_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    config = with_tag(tmp_path, "9.9.9")
    real = write._place
    placed: list[Path] = []

    def failing(temporary: Path, target: Path) -> None:
        if len(placed) == 2:  # the pending record and one file are in place
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(target))
        placed.append(target)
        real(temporary, target)

    monkeypatch.setattr(write, "_place", failing)
    result = run(out, config=config)
    assert_refused(result, "the run stopped partway", "run again to finish the job")
    assert (out / write.PENDING_FILE).is_file()  # what it wrote is still known as ours
    assert not list(out.rglob(f"*{write.TEMPORARY_SUFFIX}"))
    monkeypatch.setattr(write, "_place", real)
    assert run(out, config=config).exit_code == 0
    assert run(out, "--check", config=config).exit_code == 0
    assert not leftovers(out)


def test_a_folder_linked_away_after_the_plan_is_not_written_through(tmp_path: Path) -> None:
    """The plan saw a real folder; by the time of writing it is a link: the write checks
    again where each folder really is, and nothing is changed."""
    out = tmp_path / "out"
    assert run(out).exit_code == 0
    tree = layout(render(load_config_file(with_tag(tmp_path, "9.9.9")))).files
    changes = write.plan(out, tree)
    outside = tmp_path / "outside"
    shutil.move(out / "base" / "resnet-ddp", outside)
    (out / "base" / "resnet-ddp").symlink_to(outside)
    before, inside = picture(outside), picture(out)
    with pytest.raises(TreeError, match="became a symbolic link"):
        write.apply(out, changes, tree, force=False)
    assert picture(outside) == before
    assert picture(out) == inside
