"""Results of validated builds, kept on disk between runs and keyed by everything they
depend on: the build's input key (see inputs.py), the Kubernetes version it was checked
against, and a fingerprint of the checker itself (mlgitops' validate code, the
kustomize binary, the versions of the packages that read and check objects, every
schema location's files, and the options). Entries are never updated in place, only
added, so concurrent runs and several trees can share one folder, and deleting it at
any time only costs time.

An entry is trusted only when it proves it belongs where it was found: it names the
input key, the Kubernetes version and the fingerprint it was stored under, and carries
a MAC of its content keyed by those three, so an entry copied from another key, written
by hand, cut short or damaged reads as a miss (the build runs again). Its content's
shape is checked by the reader (validate's `Result`), and anything doubtful is a miss
too. Entries are read within a size bound, and only if they are regular files.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from generator import __version__
from generator.validate.kustomize import Refused, read_input

CACHE_VERSION = 4  # 3: secret references (MLG030); 4: EKS add-ons, GKE sidecars (facts)
MAX_ENTRY_BYTES = 512 * 1024 * 1024


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlgitops" / "validate"


def fingerprint(command: list[str], schema_locations: list[str], ignore_missing: bool) -> str:
    """Everything besides a build's inputs that its result depends on."""
    parts: list[Any] = [CACHE_VERSION, __version__, command, ignore_missing]
    code = Path(__file__).parent
    parts += [_digest(path) for path in sorted(code.glob("*.py"))]
    # The cluster model's facts are kept with each result: its code is part of them.
    parts += [_digest(path) for path in sorted((code.parent / "cluster").glob("*.py"))]
    parts.append(_binary_digest(Path(command[0])))
    for package in ("kubernetes-validate", "jsonschema", "PyYAML"):
        try:
            parts.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            parts.append(None)
    for location in schema_locations:
        parts.append(location)
        if "{{" not in location and Path(location).is_dir():
            parts.append(_listing(Path(location)))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _binary_digest(path: Path) -> str | None:
    """The kustomize binary by its content: installed again (as a CI runner does on every
    run, with a new modification time), the same binary keeps the cache's results."""
    status = _stat(path)
    return None if status is None else _file_digest(str(path), *status)


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str | None:
    """Read once per process for each (size, modification time) the file has."""
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def _stat(path: Path) -> list[int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _listing(folder: Path) -> list[Any]:
    """Names, sizes and modification times of a schema folder's files: a schema edited
    in place changes the fingerprint."""
    found = []
    for parent, _, files in os.walk(folder):
        for name in sorted(files):
            path = Path(parent) / name
            found.append([path.relative_to(folder).as_posix(), _stat(path)])
    return sorted(found)


class ResultCache:
    """One JSON file per result, named by the hash of its key."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def _path(self, input_key: str, version: str) -> Path:
        name = hashlib.sha256(f"{self.fingerprint}:{input_key}:{version}".encode()).hexdigest()
        return self.folder / name[:2] / f"{name}.json"

    def get(self, input_key: str, version: str) -> dict[str, Any] | None:
        """The content stored under this key, or None: missing, unreadable, or not
        provably stored for this key, version and fingerprint."""
        try:
            raw = read_input(self._path(input_key, version), MAX_ENTRY_BYTES)
            entry = json.loads(raw)
        except (Refused, ValueError, RecursionError):
            return None
        if not isinstance(entry, dict) or set(entry) != {"entry", "content", "mac"}:
            return None
        content = entry["content"]
        if entry["entry"] != self._identity(input_key, version) or not isinstance(content, dict):
            return None
        expected = self._mac(input_key, version, content)
        if not isinstance(entry["mac"], str) or not hmac.compare_digest(entry["mac"], expected):
            return None
        return content

    def put(self, input_key: str, version: str, content: dict[str, Any]) -> None:
        path = self._path(input_key, version)
        entry = {
            "entry": self._identity(input_key, version),
            "content": content,
            "mac": self._mac(input_key, version, content),
        }
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(entry, separators=(",", ":")))
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)  # a cache that cannot be written is no cache

    def _identity(self, input_key: str, version: str) -> list[Any]:
        return [CACHE_VERSION, self.fingerprint, input_key, version]

    def _mac(self, input_key: str, version: str, content: dict[str, Any]) -> str:
        secret = json.dumps(self._identity(input_key, version)).encode()
        message = canonical(content)
        return hmac.new(secret, message, hashlib.sha256).hexdigest()


def canonical(content: Any) -> bytes:
    """One text for equal content, whatever order its keys were written in."""
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
