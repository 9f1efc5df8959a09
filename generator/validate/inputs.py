"""What a `kustomize build` reads, summed up in one hash, without running kustomize.

A build's output depends only on its kustomization, the files and folders that names,
recursively, and the relative paths between them. So the key of a folder is a hash of
its kustomization (as YAML events: comments and formatting do not count) and, for
every string in it that names an existing file or folder relative to it, that string
with the file's content hash or the folder's own key. Builds with the same key print
the same objects, wherever they are: thirty clusters that include the same cloud
namespace with the same values are built once, and a build whose key is in the cache
is not built again.

Strings that name nothing are ignored (they are values, such as a namespace); strings
naming something are counted whether or not kustomize reads them, which can only make
keys change more often than needed, never less. Where that reasoning does not hold,
the key is None and the folder is always built on its own: a kustomization that does
not parse, a reference to a folder without a kustomization (it may hold anything), a
remote or missing resource, Helm charts (read from a chart home by convention), a cycle.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.validate.kustomize import (
    KUSTOMIZATION_NAMES,
    ORIGIN_ANNOTATION,
    _Loader,
    read_kustomization,
)

# Kustomization fields that change nothing but their own folder's objects' fields. A
# folder whose every kustomization (its own and those it reaches) uses only these
# renames nothing, so a parent that merely lists such folders builds exactly the
# concatenation of their builds (kustomize fixes name references across siblings
# only for renamed objects).
LOCAL_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "resources",
        "components",
        "patches",
        "patchesStrategicMerge",
        "patchesJson6902",
        "namespace",
        "images",
        "labels",
        "commonLabels",
        "commonAnnotations",
        "replicas",
        "sortOptions",
    }
)
REFERENCE_FIELDS = ("resources", "components", "bases")
UNCACHEABLE_FIELDS = ("helmCharts", "helmGlobals", "helmChartInflationGenerator")
AGGREGATE_FIELDS = frozenset({"apiVersion", "kind", "resources"})


@dataclass(frozen=True)
class Inputs:
    """What a folder's build depends on. `key` is None when it cannot be known without
    kustomize; `local` when nothing it reaches renames an object or writes build
    metadata; `resource_files` are the files it reaches through `resources:`, the only
    files objects come from."""

    key: str | None
    local: bool = False
    resource_files: frozenset[str] = frozenset()


UNKNOWN = Inputs(None)


class InputGraph:
    """The inputs of the kustomization folders of one tree, each computed once."""

    def __init__(self) -> None:
        self._inputs: dict[str, Inputs] = {}
        self._files: dict[str, tuple[str, bool]] = {}  # path -> (hash, names an origin)
        self._documents: dict[str, dict[str, Any] | None] = {}
        self._visiting: set[str] = set()

    def key(self, folder: Path) -> str | None:
        return self.inputs(folder).key

    def inputs(self, folder: Path) -> Inputs:
        name = os.path.normpath(folder)
        if name in self._inputs:
            return self._inputs[name]
        if name in self._visiting:
            return UNKNOWN  # a cycle: kustomize reports it
        self._visiting.add(name)
        try:
            found = self._compute(Path(name))
        finally:
            self._visiting.discard(name)
        self._inputs[name] = found
        return found

    def renames_nothing(self, folder: Path) -> bool:
        """Whether no kustomization this folder reaches can rename an object."""
        return self.inputs(folder).local

    def aggregate_parts(self, folder: Path) -> list[Path] | None:
        """The folders a pure aggregate lists (a kustomization of nothing but other
        kustomization folders as resources), or None when it is anything more."""
        document = self._document(folder)
        if document is None or not set(document) <= AGGREGATE_FIELDS:
            return None
        if document.get("kind", "Kustomization") != "Kustomization":
            return None
        resources = document.get("resources") or []
        if not isinstance(resources, list) or not resources:
            return None
        parts = []
        for entry in resources:
            part = Path(os.path.normpath(folder / str(entry)))
            if not isinstance(entry, str) or _kustomization_names(part) != 1:
                return None
            parts.append(part)
        return parts

    def _document(self, folder: Path) -> dict[str, Any] | None:
        name = os.path.normpath(folder)
        if name not in self._documents:
            found = [folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()]
            self._documents[name] = read_kustomization(found[0]) if len(found) == 1 else None
        return self._documents[name]

    def _compute(self, folder: Path) -> Inputs:
        found = [folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()]
        if len(found) != 1:
            return UNKNOWN
        try:
            events = _events(found[0].read_bytes())
        except (OSError, yaml.YAMLError):
            return UNKNOWN
        document = self._document(folder)
        if document is None or any(field in document for field in UNCACHEABLE_FIELDS):
            return UNKNOWN
        local = set(document) <= LOCAL_FIELDS and not _allows_renames(document)
        resource_files: set[str] = set()
        for field in REFERENCE_FIELDS:
            entries = document.get(field) or []
            if not isinstance(entries, list):
                return UNKNOWN
            for entry in entries:
                target = folder / str(entry)
                kind = _kind(target) if isinstance(entry, str) else None
                if kind is None:
                    return UNKNOWN  # remote or missing: build it, and let kustomize say
                if kind == "file" and field != "components":
                    resource_files.add(os.path.normpath(target))
        references: list[tuple[str, str]] = []
        for value in sorted(set(_strings(document))):
            target = folder / value
            kind = _kind(target)
            if kind == "file":
                digest, names_origin = self._file(target)
                local = local and not names_origin
                references.append((value, digest))
            elif kind == "folder":
                if _kustomization_names(target) != 1:
                    return UNKNOWN
                reached = self.inputs(target)
                if reached.key is None:
                    return UNKNOWN
                local = local and reached.local
                if value in _listed(document):
                    resource_files |= reached.resource_files
                references.append((value, reached.key))
        content = json.dumps([found[0].name, events, references], separators=(",", ":"))
        key = hashlib.sha256(content.encode()).hexdigest()
        return Inputs(key, local, frozenset(resource_files))

    def _file(self, path: Path) -> tuple[str, bool]:
        name = os.path.normpath(path)
        if name not in self._files:
            data = path.read_bytes()
            names_origin = ORIGIN_ANNOTATION.encode() in data
            self._files[name] = (hashlib.sha256(data).hexdigest(), names_origin)
        return self._files[name]


def _listed(document: dict[str, Any]) -> set[str]:
    """What a kustomization includes: its resources, bases and components."""
    return {
        entry
        for field in REFERENCE_FIELDS
        for entry in document.get(field) or []
        if isinstance(entry, str)
    }


def _kind(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


def _kustomization_names(folder: Path) -> int:
    return sum(1 for n in KUSTOMIZATION_NAMES if (folder / n).is_file())


def _events(text: bytes) -> list[Any]:
    """The YAML as the parser sees it: values, quoted or plain, structure; no comments."""
    found: list[Any] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent):
            found.append(["s", event.value, event.implicit[0], event.tag, event.anchor])
        elif isinstance(event, yaml.AliasEvent):
            found.append(["a", event.anchor])
        elif isinstance(event, yaml.CollectionStartEvent):
            found.append([type(event).__name__[0], event.tag, event.anchor])
        else:
            found.append([type(event).__name__[:-5]])
    return found


def _strings(node: Any) -> list[str]:
    """Every string value that could name a file: whole, or after `key=` as generators
    write `files: [name=path]`."""
    found: list[str] = []
    if isinstance(node, dict):
        for value in node.values():
            found += _strings(value)
    elif isinstance(node, list):
        for item in node:
            found += _strings(item)
    elif isinstance(node, str) and node and "\n" not in node and len(node) < 1024:
        found.append(node)
        if "=" in node:
            found.append(node.split("=", 1)[1])
    return [s for s in found if s and "\0" not in s]


def _allows_renames(document: dict[str, Any]) -> bool:
    patches = document.get("patches") or []
    return any(
        isinstance(p, dict) and (p.get("options") or {}).get("allowNameChange") for p in patches
    )
