"""Results of validated builds, kept on disk between runs and keyed by everything they
depend on: the build's input key (see inputs.py), the Kubernetes version it was checked
against, and a fingerprint of the checker itself (mlgitops' validate code, the
kustomize binary, the versions of the packages that read and check objects, every
schema location's files, and the options). Entries are never updated in place, only
added, so concurrent runs and several trees can share one folder, and deleting it at
any time only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from generator import __version__

CACHE_VERSION = 1


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
    parts.append(_stat(Path(command[0])))
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
        raw = self.get_bytes(input_key, version)
        if raw is None:
            return None
        try:
            found: dict[str, Any] = json.loads(raw)
        except ValueError:
            return None
        return found

    def get_bytes(self, input_key: str, version: str) -> bytes | None:
        try:
            return self._path(input_key, version).read_bytes()
        except OSError:
            return None

    def put(self, input_key: str, version: str, result: dict[str, Any]) -> None:
        path = self._path(input_key, version)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(result, separators=(",", ":")))
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)  # a cache that cannot be written is no cache
