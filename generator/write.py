"""The only module that touches the output tree: plan, then apply atomically.

The generator owns exactly the files it wrote. It records them (path -> SHA-256 of the
bytes it wrote) in a state file at the root of the tree, and on every run compares
three things per path: what the config produces now, what is on disk, and what it
wrote last time. From that:

- same bytes on disk as now produced: unchanged, not touched (mtime kept);
- on disk as we last wrote it, new bytes differ: update (its permission bits are kept);
- not on disk: create;
- on disk but not as we last wrote it (a person edited it, wrote it without us, or put
  a symbolic link there): conflict, and nothing at all is written unless `force`;
- written by us before, no longer produced: deleted if unedited, else kept and
  forgotten (it is the person's now);
- anything else in the tree is never touched.

Nothing is ever written, replaced or deleted through a symbolic link: the tree is looked
at without following links, a symlinked folder anywhere on the way to a path we write or
delete (even one pointing inside the tree) stops the run, and a symlinked file where we
write is a conflict that `force` replaces by a real file (the link, not its target).
Everything that would stop a run is found by `plan`, which only reads: a file where a
folder belongs, a folder where a file belongs, an unreadable entry, a state file that is
too large, too deep or unreadable. Each is a `TreeError` naming the path.

A run then writes in two phases. First every new content goes to a temporary file
beside its target and is flushed to disk, after checking that the filesystem has room
for all of them; if any of those writes fails (a full disk, a quota, a permission), the
temporaries and the folders made for them are removed and the tree is as it was. Only
then are the temporaries renamed into place: the pending record first (what this run is
about to write, added to what earlier killed runs were writing), then the files, then
the deletions, then the state file, and the pending record is removed last. A run
killed at any point leaves each file old or new, and the next run finishes the job;
after several killed runs in a row, a file may hold any of their versions, and each is
ours.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import errno
import fcntl
import hashlib
import json
import os
import posixpath
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from generator.errors import MlgitopsError, TreeError

STATE_FILE = ".mlgitops-state.json"
STATE_VERSION = 1
PENDING_FILE = ".mlgitops-state.pending.json"  # what a run is about to write
TEMPORARY_SUFFIX = ".mlgitops-tmp"
LOCK_WAIT_SECONDS = 30.0
MAX_STATE_BYTES = 16 * 1024 * 1024  # the bounds of a config (generator.config)
MAX_STATE_DEPTH = 64
MAX_NAME_BYTES = 255  # one path component, as Linux filesystems allow
MAX_PATH_BYTES = 4096  # a whole path (PATH_MAX)
SPACE_MARGIN_BYTES = 1024 * 1024  # kept free beyond what a run's files take
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO never blocks us
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
    mode: int | None = None  # permission bits of the file on disk, kept when it is replaced


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


# --- The record of what we wrote ------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    files: dict[str, list[str]]  # each path's digests
    problem: str | None  # why a damaged record counts as empty; None when it is fine
    raw: bytes | None  # its bytes on disk; None when there is none


def read_state(root: Path) -> dict[str, set[str]]:
    """For each path we own, the digests it may have: what the last run wrote, and what
    a run that was killed before it could record its work was writing. A missing or
    damaged record counts as empty, which is safe: every existing file that differs from
    what we would write is then a conflict, never overwritten, and nothing is deleted.
    A record that cannot be read at all, or is too large or too deep to be one, stops
    the run (TreeError)."""
    owned: dict[str, set[str]] = {}
    for name in (STATE_FILE, PENDING_FILE):
        for path, values in _load_record(root / name).files.items():
            owned.setdefault(path, set()).update(values)
    return owned


def state_problem(root: Path) -> str | None:
    """Why the state file could not be used, for a warning; None when it is fine."""
    return _load_record(root / STATE_FILE).problem


def _load_record(path: Path) -> _Record:
    """A state file or pending record, read without following a link and in bounded
    memory and time."""
    try:
        handle = os.open(path, _READ)
    except FileNotFoundError:
        return _Record({}, None, None)
    except OSError as error:
        if error.errno == errno.ELOOP:  # not followed, not read: replaced by a real file
            return _Record({}, f"{path} is a symbolic link (not followed)", None)
        raise TreeError(
            path, f"cannot read mlgitops's record of the files it wrote ({error.strerror})"
        ) from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise TreeError(path, "is not a regular file; mlgitops keeps its record there")
        data = b"" if info.st_size > MAX_STATE_BYTES else _read_all(handle, MAX_STATE_BYTES + 1)
    except OSError as error:
        raise TreeError(
            path, f"cannot read mlgitops's record of the files it wrote ({error.strerror})"
        ) from None
    finally:
        os.close(handle)
    if info.st_size > MAX_STATE_BYTES or len(data) > MAX_STATE_BYTES:
        raise TreeError(
            path,
            f"is larger than {MAX_STATE_BYTES // (1024 * 1024)} MiB, the most a state file may "
            "be; it is not mlgitops's record: move it away",
        )
    try:
        parsed: object = json.loads(data.decode("utf-8"))
    except RecursionError:
        parsed = None
        too_deep = True
    except ValueError as error:  # not UTF-8, not JSON
        return _Record({}, f"{path} is unreadable ({error})", data)
    else:
        too_deep = _too_deep(parsed)
    if too_deep:
        raise TreeError(
            path,
            f"is nested deeper than {MAX_STATE_DEPTH} levels; it is not mlgitops's record: "
            "move it away",
        )
    files = parsed.get("files") if isinstance(parsed, dict) else None
    if not isinstance(files, dict):
        return _Record({}, f"{path} is malformed", data)
    found: dict[str, list[str]] = {}
    for key, value in files.items():
        values = value if isinstance(value, list) else [value]
        if not _is_entry(key) or not all(isinstance(v, str) for v in values):
            return _Record({}, f"{path} is malformed", data)
        found[key] = values
    return _Record(found, None, data)


def _read_all(handle: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(handle, min(1024 * 1024, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _too_deep(value: object) -> bool:
    """Whether parsed JSON nests more than MAX_STATE_DEPTH containers (without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > MAX_STATE_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return False


def _is_entry(key: object) -> bool:
    """A path we could have written: relative, normalised, and one the filesystem takes."""
    if not isinstance(key, str) or not key or "\0" in key or key in (STATE_FILE, PENDING_FILE):
        return False
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    parts = encoded.split(b"/")
    return len(encoded) <= MAX_PATH_BYTES and all(
        part not in (b"", b".", b"..") and len(part) <= MAX_NAME_BYTES for part in parts
    )


# Which config wrote the tree, as the state file records it: {"path": P} for a config
# inside the tree (P relative to its root, so the record holds in every clone),
# {"outside": NAME} for one outside it (only its name: where it lies differs per
# machine), {"builtin": true} for the built-in default. A plain `generate` reads it
# back, so it never puts another config (least of all the demo) over the tree.
ConfigRecord = dict[str, object]


def config_record(root: Path, config_file: Path | None) -> ConfigRecord:
    if config_file is None:
        return {"builtin": True}
    real_root, real_config = os.path.realpath(root), os.path.realpath(config_file)
    if real_config.startswith(real_root.rstrip("/") + "/"):
        return {"path": os.path.relpath(real_config, real_root)}
    return {"outside": config_file.name}


def recorded_config(root: Path) -> ConfigRecord | None:
    """What the state file says about the config that wrote the tree; None when it says
    nothing (no state file, a damaged one, or one written before it was recorded)."""
    raw = _load_record(root / STATE_FILE).raw
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else None
    except (ValueError, RecursionError):
        return None
    config = parsed.get("config") if isinstance(parsed, dict) else None
    if isinstance(config, dict) and (
        config == {"builtin": True}
        or (set(config) == {"path"} and _is_entry(config["path"]))
        or (set(config) == {"outside"} and isinstance(config["outside"], str))
    ):
        return config
    return None


def has_record(root: Path) -> bool:
    """Whether mlgitops has written this tree before (its state file lists files)."""
    return bool(_load_record(root / STATE_FILE).files)


def render_state(tree: Mapping[str, bytes], config: ConfigRecord | None = None) -> bytes:
    files = {path: digest(content) for path, content in sorted(tree.items())}
    record: dict[str, object] = {"version": STATE_VERSION, "files": files}
    if config is not None:
        record["config"] = config
    text = json.dumps(record, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def render_pending(root: Path, tree: Mapping[str, bytes]) -> bytes:
    """What this run is about to write, added to what earlier runs that were killed
    before they finished may have written: until a run finishes, a file can hold any
    of those versions, and each is ours."""
    files = _load_record(root / PENDING_FILE).files
    for path, content in tree.items():
        files[path] = sorted({*files.get(path, []), digest(content)})
    text = json.dumps({"version": STATE_VERSION, "files": files}, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


# --- Looking at the tree, never through a link -------------------------------------------

_FOLDER, _MISSING, _FILE, _LINK, _OTHER = "folder", "missing", "file", "link", "other"


class _Disk:
    """What stands at each path under the root, seen with lstat (links are not
    followed). Folders are looked at once each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, tuple[str, str]] = {"": (_root_kind(root), "")}

    def folder(self, folder: str) -> tuple[str, str]:
        """What stands where `folder` should be a real folder, and, when the way to it is
        barred (by a file or a link), the path of what bars it."""
        known = self._folders.get(folder)
        if known is not None:
            return known
        parts = folder.split("/")
        found = self._folders[""]
        for count in range(1, len(parts) + 1):
            step = "/".join(parts[:count])
            cached = self._folders.get(step)
            if cached is None:
                cached = (self._look(step), step) if found[0] == _FOLDER else found
                self._folders[step] = cached
            found = cached
        return found

    def entry(self, path: str) -> tuple[str, os.stat_result | None, str]:
        """What stands at `path` ("under-file" or "under-link" when a parent is not a
        real folder), its lstat, and the path of what bars the way to it."""
        parent, where = self.folder(posixpath.dirname(path))
        if parent == _MISSING:
            return _MISSING, None, ""
        if parent != _FOLDER:
            return f"under-{parent}", None, where
        try:
            info = os.lstat(self.root / path)
        except FileNotFoundError:
            return _MISSING, None, ""
        except OSError as error:
            problem = self._unseen(path, error)
            if problem is None:
                return _MISSING, None, ""
            raise problem from None
        return _kind(info), info, path

    def _look(self, path: str) -> str:
        try:
            return _kind(os.lstat(self.root / path))
        except FileNotFoundError:
            return _MISSING
        except OSError as error:
            problem = self._unseen(path, error)
            if problem is None:
                return _MISSING
            raise problem from None

    def _unseen(self, path: str, error: OSError) -> TreeError | None:
        """The folders above `path` were looked at one by one, so a permission refused
        is its own folder's, which cannot be searched."""
        if error.errno == errno.ENAMETOOLONG:
            return None  # nothing can be there: too long a path to reach
        if error.errno == errno.EACCES:
            folder = self.root / posixpath.dirname(path)
            return TreeError(
                folder,
                f"cannot look inside it ({error.strerror}); mlgitops compares {path} there "
                "with what it writes: give it read and search permission",
            )
        return TreeError(self.root / path, f"cannot look at it ({error.strerror})")


def _kind(info: os.stat_result) -> str:
    if stat.S_ISDIR(info.st_mode):
        return _FOLDER
    if stat.S_ISLNK(info.st_mode):
        return _LINK
    return _FILE if stat.S_ISREG(info.st_mode) else _OTHER


def _root_kind(root: Path) -> str:
    """The root itself may be a link to a folder: that folder is the tree."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        return _MISSING
    except OSError as error:
        raise TreeError(root, f"cannot look at the output folder ({error.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise TreeError(root, "is not a folder; --out names the folder of the tree")
    return _FOLDER


def _barred(root: Path, path: str, kind: str, where: str) -> TreeError:
    """Why `path` can be neither written nor deleted: something stands in the way."""
    if kind == "under-link":
        return TreeError(
            root / where,
            "is a symbolic link where mlgitops needs a real folder: it writes and deletes "
            "only in real folders inside the tree, never through a link (even one that points "
            f"inside it), and {path} is under it: replace the link by a real folder, or "
            "remove it",
        )
    if kind == "under-file":
        return TreeError(
            root / where,
            f"is a file where mlgitops needs a folder (for {path}): move the file away, and "
            "the next run writes the folder",
        )
    if kind == _FOLDER:
        return TreeError(
            root / path,
            "is a folder where mlgitops writes a file: move the folder away, and the next "
            "run writes the file",
        )
    return TreeError(root / path, "is not a regular file (a FIFO, socket or device): remove it")


def _read_file(path: Path) -> bytes:
    try:
        handle = os.open(path, _READ)
        try:
            return _read_all(handle, os.fstat(handle).st_size + 1)
        finally:
            os.close(handle)
    except OSError as error:
        raise TreeError(
            path,
            f"cannot read it ({error.strerror}); mlgitops compares every file it writes or "
            "deletes with what is on disk: give it read permission, or move it away",
        ) from None


def _link_text(path: Path) -> bytes:
    """What stands for a symbolic link where a file belongs: never bytes we wrote."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"(a symbolic link to {target})\n".encode("utf-8", "surrogateescape")


def plan(
    root: Path, tree: Mapping[str, bytes], seeds: Mapping[str, bytes] | None = None
) -> list[Change]:
    """Compare the tree to produce with the disk and the last run's record. Reads only,
    and raises TreeError for anything that would stop the run.

    Seeds (starter files for people's own changes) are created when missing and never
    compared, updated or deleted after that."""
    disk = _Disk(root)
    state = read_state(root)
    changes: list[Change] = []
    for path, content in (seeds or {}).items():
        if path in tree:
            continue
        kind, _, where = disk.entry(path)
        if kind == _MISSING:
            changes.append(Change(path, Action.CREATE, None, content))
        elif kind == "under-file" or (kind == "under-link" and not (root / path).exists()):
            raise _barred(root, path, kind, where)  # to be written, but cannot be
    for path, new in tree.items():
        kind, info, where = disk.entry(path)
        if kind == _MISSING:
            changes.append(Change(path, Action.CREATE, None, new))
        elif kind == _LINK:
            changes.append(Change(path, Action.CONFLICT, _link_text(root / path), new))
        elif kind != _FILE or info is None:
            raise _barred(root, path, kind, where)
        else:
            old = _read_file(root / path)
            mode = stat.S_IMODE(info.st_mode)
            if old == new:
                action = Action.UNCHANGED
            elif digest(old) in state.get(path, ()):
                action = Action.UPDATE
            else:
                action = Action.CONFLICT
            changes.append(Change(path, action, old, new, mode))
    for path in sorted(set(state) - set(tree)):
        kind, _, where = disk.entry(path)
        if kind == "under-link":
            raise _barred(root, path, kind, where)
        if kind == _LINK:
            changes.append(Change(path, Action.FORGET, _link_text(root / path), None))
        elif kind == _FILE:
            old = _read_file(root / path)
            action = Action.DELETE if digest(old) in state[path] else Action.FORGET
            changes.append(Change(path, action, old, None))
        # missing, under a file, a folder, a FIFO: nothing of ours is there
    return sorted(changes, key=lambda change: change.path)


def plan_state(root: Path, tree: Mapping[str, bytes], config: ConfigRecord | None = None) -> Change:
    """Whether the state file itself is current: `--check` counts it like any file."""
    new = render_state(tree, config)
    old = _load_record(root / STATE_FILE).raw
    if old == new:
        return Change(STATE_FILE, Action.UNCHANGED, old, new)
    return Change(STATE_FILE, Action.CREATE if old is None else Action.UPDATE, old, new)


# --- Writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(root: Path, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writer per tree: a second run waits for the first (telling `waiting` who
    holds the tree), then fails clearly. The lock is held on the output folder itself,
    so no lock file is left behind. Folders it had to create for the root are removed
    again if the run fails."""
    created = _make_root(root)
    finished = False
    try:
        try:
            handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise TreeError(root, f"cannot open the output folder ({error.strerror})") from None
        try:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if waiting is not None:
                        waiting(_lock_holder(handle))
                        waiting = None  # said once
                    if time.monotonic() > deadline:
                        raise TreeError(
                            root,
                            "another mlgitops generate is writing this tree; "
                            "try again when it has finished",
                        ) from None
                    time.sleep(0.1)
            yield
            finished = True
        finally:
            os.close(handle)
    finally:
        if not finished:
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if still empty


def _lock_holder(handle: int) -> str:
    """Who holds the lock on the folder open at `handle`: Linux lists each lock in
    /proc/locks as `N: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE ...`."""
    info = os.fstat(handle)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == device:
            pid = fields[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                return f"another mlgitops (process {pid})"
            return f"process {pid} ({command.decode(errors='replace').strip()[:120]})"
    return "another mlgitops run"


def _make_root(root: Path) -> list[Path]:
    """Create the output folder and its missing parents; the ones created, outermost first."""
    missing: list[Path] = []
    folder = root
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        except OSError as error:
            for made in reversed(created):
                with contextlib.suppress(OSError):
                    made.rmdir()
            raise TreeError(
                folder, f"cannot create the output folder ({error.strerror}); nothing was written"
            ) from None
        created.append(folder)
    return created


@dataclass(frozen=True)
class _Staged:
    path: str  # relative to the root
    content: bytes
    mode: int | None  # permission bits to keep; None: the umask's


def apply(
    root: Path,
    changes: Iterable[Change],
    tree: Mapping[str, bytes],
    force: bool,
    config: ConfigRecord | None = None,
) -> None:
    """Carry out a plan. Refuses, writing nothing, if a person's edit would be lost, if
    the filesystem lacks the room, or if any new content cannot be written."""
    changes = list(changes)
    conflicts = [c.path for c in changes if c.action is Action.CONFLICT]
    if conflicts and not force:
        raise EditedFilesError(conflicts)
    writes = [
        _Staged(c.path, c.new, c.mode)
        for c in changes
        if c.action in (Action.CREATE, Action.UPDATE, Action.CONFLICT) and c.new is not None
    ]
    deletes = [c.path for c in changes if c.action is Action.DELETE]
    # Recorded before anything changes, so a run killed halfway still knows its files.
    pending = [_Staged(PENDING_FILE, render_pending(root, tree), None)] if writes or deletes else []
    new_state = render_state(tree, config)
    state = (
        []
        if _load_record(root / STATE_FILE).raw == new_state
        else [_Staged(STATE_FILE, new_state, None)]
    )
    staged = [*pending, *writes, *state]
    for folder in sorted({posixpath.dirname(path) for path in deletes}):
        if not os.access(root / folder, os.W_OK | os.X_OK):
            raise TreeError(
                root / folder,
                "is not writable, and mlgitops deletes files it no longer generates there; "
                "nothing was changed",
            )
    if staged:
        _check_space(root, staged)
        _stage(root, staged)
    _commit(root, pending, writes, deletes, state)
    _remove_stale_temporaries(root)  # a killed run's; after ours, so a refused run leaves all


def _temporary(target: Path) -> Path:
    return target.parent / f".{target.name}{TEMPORARY_SUFFIX}"


def _check_space(root: Path, staged: list[_Staged]) -> None:
    """Refuse before the first write when the filesystem cannot hold every temporary
    (they sit beside the files they replace until all are written)."""
    try:
        fs = os.statvfs(root)
    except OSError:
        return  # cannot tell: the writes will say, and are undone
    block = fs.f_frsize or 4096
    needed = SPACE_MARGIN_BYTES + sum((len(s.content) // block + 2) * block for s in staged)
    free = fs.f_bavail * fs.f_frsize
    if needed > free:
        raise TreeError(
            root,
            f"not enough free space: this run writes {_size(needed - SPACE_MARGIN_BYTES)} "
            f"(and keeps {_size(SPACE_MARGIN_BYTES)} spare) but {_size(free)} is free; nothing "
            "was written: free some space and run again",
        )
    if fs.f_files and len(staged) + 1 > fs.f_favail:
        raise TreeError(
            root,
            f"not enough free inodes: this run writes {len(staged)} files but the filesystem "
            f"has room for {fs.f_favail}; nothing was written",
        )


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def _filesystem_sync() -> Callable[[int], int] | None:
    """syncfs(2): flushes a whole filesystem at once (far faster than an fsync per file)
    and, since Linux 5.8, reports the write-back errors (a full disk, a quota) of
    everything written since the folder it is given was opened. None where it is not
    so: each temporary is then flushed with its own fsync."""
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    if sys.platform != "linux" or not version or (int(version[1]), int(version[2])) < (5, 8):
        return None
    try:
        syncfs: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return syncfs


_SYNCFS = _filesystem_sync()


def _stage(root: Path, staged: list[_Staged]) -> None:
    """Write every new content to its temporary and flush them all to disk. On any
    failure, remove them and the folders made for them: the tree is as it was."""
    made: list[Path] = []
    temporaries: list[Path] = []
    ready: set[str] = set()  # folders written to
    there: set[str] = set()  # folders known to exist
    real_root = os.path.realpath(root)
    try:
        handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # before the writes
        try:
            for item in staged:
                folder = posixpath.dirname(item.path)
                if folder not in ready:
                    _make_folders(root, folder, made, there)
                    _confirm_inside(root, real_root, folder)
                    ready.add(folder)
                temporary = _temporary(root / item.path)
                temporaries.append(temporary)
                _write_temporary(temporary, item.content, item.mode)
            _flush(handle)
        finally:
            os.close(handle)
    except (OSError, TreeError) as error:
        for temporary in reversed(temporaries):
            with contextlib.suppress(OSError):
                temporary.unlink()
        for made_folder in reversed(made):
            with contextlib.suppress(OSError):
                made_folder.rmdir()
        if isinstance(error, TreeError):
            raise
        where = Path(error.filename) if isinstance(error.filename, str) else root
        if error.errno in _NO_SPACE:
            raise TreeError(
                where,
                f"cannot write ({error.strerror}); nothing was changed: free some space and "
                "run again",
            ) from None
        raise TreeError(where, f"cannot write ({error.strerror}); nothing was changed") from None


def _make_folders(root: Path, folder: str, made: list[Path], ready: set[str]) -> None:
    """The missing folders on the way to `folder`, created one by one (plan checked that
    nothing but real folders stands there); `ready` holds those known to be there."""
    if not folder:
        return
    parts = folder.split("/")
    for count in range(1, len(parts) + 1):
        prefix = "/".join(parts[:count])
        if prefix in ready:
            continue
        path = root / prefix
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        else:
            made.append(path)
        ready.add(prefix)


def _confirm_inside(root: Path, real_root: str, folder: str) -> None:
    """Just before writing in a folder: it is the real folder it should be, not a link
    someone put there since the plan."""
    expected = os.path.join(real_root, folder) if folder else real_root
    if os.path.realpath(root / folder) != expected:
        raise TreeError(
            root / folder,
            "became a symbolic link (or stands under one) while mlgitops was running; "
            "nothing was changed",
        )


def _write_temporary(temporary: Path, content: bytes, mode: int | None) -> None:
    """The one low-level write: a new file (never through a link), flushed to disk here
    unless the whole filesystem is flushed once all are written (syncfs)."""
    try:
        handle = os.open(temporary, _CREATE, 0o666)
    except FileExistsError:  # a killed run's, or anything else under our name
        if stat.S_ISDIR(os.lstat(temporary).st_mode):
            raise TreeError(
                temporary, "is a folder under the name of mlgitops's temporary files: remove it"
            ) from None
        temporary.unlink()
        handle = os.open(temporary, _CREATE, 0o666)
    try:
        if mode is not None:
            os.fchmod(handle, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(handle, view) :]
        if _SYNCFS is None:
            os.fsync(handle)
    finally:
        os.close(handle)


def _flush(folder: int) -> None:
    """Every temporary on disk, or the error that kept one from it (with syncfs: of the
    whole filesystem of `folder`, open since before the first write)."""
    if _SYNCFS is not None and _SYNCFS(folder) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _place(temporary: Path, target: Path) -> None:
    """Rename a written temporary into place: atomic, and it replaces a link, not its target."""
    os.replace(temporary, target)


def _commit(
    root: Path,
    pending: list[_Staged],
    writes: list[_Staged],
    deletes: list[str],
    state: list[_Staged],
) -> None:
    """Every temporary is written: rename them into place, pending record first."""
    real_root = os.path.realpath(root)
    left = [root / s.path for s in [*pending, *writes, *state]]
    started = False
    current = root
    try:
        for item in [*pending, *writes]:
            current = root / item.path
            _place(_temporary(current), current)
            left.remove(current)
            started = True
        for path in deletes:
            current = root / path
            _confirm_inside(root, real_root, posixpath.dirname(path))
            current.unlink()
            _remove_empty_parents(current.parent, root)
        for item in state:
            current = root / item.path
            _place(_temporary(current), current)
            left.remove(current)
        (root / PENDING_FILE).unlink(missing_ok=True)
    except (OSError, TreeError) as error:
        for target in left:
            with contextlib.suppress(OSError):
                _temporary(target).unlink()
        if not started:
            if isinstance(error, TreeError):
                raise
            raise TreeError(
                current, f"cannot write ({error.strerror}); nothing was changed"
            ) from None
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise TreeError(
            current,
            f"cannot finish ({reason}); the run stopped partway, every file is whole (old or "
            "new) and recorded as mlgitops's: run again to finish the job",
        ) from None


def _remove_stale_temporaries(root: Path) -> None:
    """Temporary files a killed run left behind, anywhere in the tree (a later config may
    no longer know their folders), with the folders they alone kept alive. Hidden
    folders such as .git are not searched, links are not followed, and only our own
    temporary names are removed. Best effort: what cannot be removed stays."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX):
                with contextlib.suppress(OSError):
                    (Path(folder) / name).unlink()
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
