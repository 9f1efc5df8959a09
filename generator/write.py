"""The only module that touches the output tree: plan, then apply atomically.

The generator owns exactly the files it wrote. It records them (path -> SHA-256 of the
bytes it wrote) in a state file at the root of the tree, and on every run compares
three things per path: what the config produces now, what is on disk, and what it
wrote last time. From that:

- same bytes on disk as now produced: unchanged, not touched (mtime kept);
- on disk as we last wrote it, new bytes differ: update;
- not on disk: create;
- on disk but not as we last wrote it (a person edited it, or wrote it without us):
  conflict, and nothing at all is written unless `force`;
- written by us before, no longer produced: deleted if unedited, else kept and
  forgotten (it is the person's now);
- anything else in the tree is never touched.

Every file goes to a temporary file in its own folder and is renamed into place, and
the state file is written last, so a run killed at any point leaves each file old or
new, and the next run finishes the job. Before it writes anything, a run adds what it
is about to write to a pending record, which only a finished run removes: after
several killed runs in a row, a file may hold any of their versions, and each is ours.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from generator.errors import MlgitopsError, UsageError

STATE_FILE = ".mlgitops-state.json"
STATE_VERSION = 1
PENDING_FILE = ".mlgitops-state.pending.json"  # what a run is about to write
TEMPORARY_SUFFIX = ".mlgitops-tmp"
LOCK_WAIT_SECONDS = 30.0


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    FORGET = "keep"  # ours before, edited since, no longer generated: left to the person


@dataclass(frozen=True)
class Change:
    path: str
    action: Action
    old: bytes | None
    new: bytes | None


class EditedFilesError(MlgitopsError):
    """Generated files were edited by hand; nothing was written."""

    exit_code = 3

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        listing = "\n".join(f"  {path}" for path in paths)
        super().__init__(
            "these generated files were changed by hand since mlgitops wrote them, so nothing "
            f"was written:\n{listing}\nMove your changes into the config or a custom/ folder, "
            "or run again with --force to overwrite them."
        )


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_state(root: Path) -> dict[str, set[str]]:
    """For each path we own, the digests it may have: what the last run wrote, and what
    a run that was killed before it could record its work was writing. A missing or
    damaged record counts as empty, which is safe: every existing file that differs from
    what we would write is then a conflict, never overwritten, and nothing is deleted."""
    owned: dict[str, set[str]] = {}
    for name in (STATE_FILE, PENDING_FILE):
        for path, values in _read_state(root / name)[0].items():
            owned.setdefault(path, set()).update(values)
    return owned


def state_problem(root: Path) -> str | None:
    """Why the state file could not be used, for a warning; None when it is fine."""
    return _read_state(root / STATE_FILE)[1]


def _read_state(path: Path) -> tuple[dict[str, list[str]], str | None]:
    """Each path's digests: one in the state file, any number in the pending record."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as error:
        return {}, f"{path} is unreadable ({error})"
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict):
        return {}, f"{path} is malformed"
    found: dict[str, list[str]] = {}
    for key, value in files.items():
        values = value if isinstance(value, list) else [value]
        if not (isinstance(key, str) and _is_inside(key)) or not all(
            isinstance(v, str) for v in values
        ):
            return {}, f"{path} is malformed"
        found[key] = values
    return found, None


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One writer per tree: a second run waits for the first, then fails clearly.
    The lock is held on the output folder itself, so no lock file is left behind."""
    root.mkdir(parents=True, exist_ok=True)
    handle = os.open(root, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UsageError(
                        f"{root}: another mlgitops generate is writing this tree; "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(handle)


def render_state(tree: Mapping[str, bytes]) -> bytes:
    files = {path: digest(content) for path, content in sorted(tree.items())}
    text = json.dumps({"version": STATE_VERSION, "files": files}, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def render_pending(root: Path, tree: Mapping[str, bytes]) -> bytes:
    """What this run is about to write, added to what earlier runs that were killed
    before they finished may have written: until a run finishes, a file can hold any
    of those versions, and each is ours."""
    files = _read_state(root / PENDING_FILE)[0]
    for path, content in tree.items():
        files[path] = sorted({*files.get(path, []), digest(content)})
    text = json.dumps({"version": STATE_VERSION, "files": files}, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def _is_inside(path: str) -> bool:
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and path == str(pure)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return b""  # a folder where a file belongs: never ours, so a conflict


def plan(
    root: Path, tree: Mapping[str, bytes], seeds: Mapping[str, bytes] | None = None
) -> list[Change]:
    """Compare the tree to produce with the disk and the last run's record. Reads only.

    Seeds (starter files for people's own changes) are created when missing and never
    compared, updated or deleted after that."""
    state = read_state(root)
    changes: list[Change] = [
        Change(path, Action.CREATE, None, content)
        for path, content in (seeds or {}).items()
        if path not in tree and not (root / path).exists()
    ]
    for path, new in tree.items():
        old = _read(root / path)
        if old is None:
            changes.append(Change(path, Action.CREATE, None, new))
        elif old == new:
            changes.append(Change(path, Action.UNCHANGED, old, new))
        elif digest(old) in state.get(path, ()):
            changes.append(Change(path, Action.UPDATE, old, new))
        else:
            changes.append(Change(path, Action.CONFLICT, old, new))
    for path in sorted(set(state) - set(tree)):
        old = _read(root / path)
        if old is None:
            continue
        action = Action.DELETE if digest(old) in state[path] else Action.FORGET
        changes.append(Change(path, action, old, None))
    return sorted(changes, key=lambda change: change.path)


def apply(root: Path, changes: Iterable[Change], tree: Mapping[str, bytes], force: bool) -> None:
    """Carry out a plan. Refuses, writing nothing, if a person's edit would be lost."""
    changes = list(changes)
    conflicts = [c.path for c in changes if c.action is Action.CONFLICT]
    if conflicts and not force:
        raise EditedFilesError(conflicts)
    _remove_stale_temporaries(root)
    if any(c.action not in (Action.UNCHANGED, Action.FORGET) for c in changes):
        # Recorded before anything changes, so a run killed halfway still knows its files.
        _atomic_write(root / PENDING_FILE, render_pending(root, tree))
    folders: set[Path] = set()  # known to exist: one mkdir per folder, not per file
    for change in changes:
        target = root / change.path
        if change.action in (Action.CREATE, Action.UPDATE, Action.CONFLICT):
            assert change.new is not None
            _atomic_write(target, change.new, folders)
        elif change.action is Action.DELETE:
            target.unlink()
            _remove_empty_parents(target.parent, root)
    state_path = root / STATE_FILE
    new_state = render_state(tree)
    if _read(state_path) != new_state:
        _atomic_write(state_path, new_state)
    (root / PENDING_FILE).unlink(missing_ok=True)


def _atomic_write(target: Path, content: bytes, folders: set[Path] | None = None) -> None:
    folder = target.parent
    temporary = folder / f".{target.name}{TEMPORARY_SUFFIX}"
    try:
        if folders is None or folder not in folders:
            folder.mkdir(parents=True, exist_ok=True)
            if folders is not None:
                folders.add(folder)
        with open(temporary, "wb") as handle:
            handle.write(content)
        os.replace(temporary, target)
    except IsADirectoryError:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"{target}: a folder stands where mlgitops writes a file") from None
    except OSError as error:
        raise UsageError(f"{target}: cannot write ({error.strerror})") from None


def _remove_stale_temporaries(root: Path) -> None:
    """Temporary files a killed run left behind, anywhere in the tree (a later config may
    no longer know their folders), with the folders they alone kept alive. Hidden
    folders such as .git are not searched; only our own temporary names are removed."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX):
                (Path(folder) / name).unlink(missing_ok=True)
                _remove_empty_parents(Path(folder), root)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def unified_diff(change: Change) -> str:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = (change.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    before = f"a/{change.path}" if change.old is not None else "/dev/null"
    after = f"b/{change.path}" if change.new is not None else "/dev/null"
    return "".join(difflib.unified_diff(old, new, before, after))


def plan_state(root: Path, tree: Mapping[str, bytes]) -> Change:
    """Whether the state file itself is current: `--check` counts it like any file."""
    new = render_state(tree)
    old = _read(root / STATE_FILE)
    if old == new:
        return Change(STATE_FILE, Action.UNCHANGED, old, new)
    return Change(STATE_FILE, Action.CREATE if old is None else Action.UPDATE, old, new)
