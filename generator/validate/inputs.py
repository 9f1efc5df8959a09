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

Before anything is built, `refusals` walks the same kustomizations for what validate
will not hand to kustomize at all: a remote reference (a URL, a git repository, a Helm
repository: a build never reaches the network), a file that is not a regular file (a
FIFO would hang the build), a file larger than the input bound, and YAML nested too
deep or whose aliases expand too far. Every read here is bounded the same way: a file
is hashed in chunks, and read whole only within the bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.validate.kustomize import (
    KUSTOMIZATION_NAMES,
    ORIGIN_ANNOTATION,
    Limits,
    Refused,
    _Loader,
    check_regular,
    might_exceed,
    read_input,
    yaml_problem,
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


@dataclass(frozen=True, order=True)
class Refusal:
    """An input refused before building: where it is named (the kustomization file, as
    a path relative to the tree when inside it) and in which field, and why."""

    file: str
    field: str
    message: str


# Fields whose strings name what kustomize reads: (field, key of the string in each
# item or None for the item itself, whether the file is YAML kustomize parses).
FILE_FIELDS: tuple[tuple[str, str | None, bool], ...] = (
    ("resources", None, True),
    ("components", None, True),
    ("bases", None, True),
    ("crds", None, True),
    ("configurations", None, True),
    ("generators", None, True),
    ("transformers", None, True),
    ("validators", None, True),
    ("patchesStrategicMerge", None, True),
    ("patches", "path", True),
    ("patchesJson6902", "path", True),
    ("replacements", "path", True),
)
GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")
HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|:)")
_SCP = re.compile(r"^[\w.-]+@[\w.-]+:")
_HOST = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(:\d+)?$")
_GIT_QUERY = re.compile(r"[?&](ref|version|timeout|submodules)=")


def is_remote(value: str, folder: Path) -> bool:
    """Whether kustomize would fetch this reference: a URL (http, https, ssh, git,
    file), `git@host:repo`, go-getter's `git::`, a host path (`github.com/org/repo`),
    or a git query (`?ref=`) or subfolder (`repo//path`) naming nothing here."""
    text = value.strip()
    if _SCHEME.match(text) or _SCP.match(text) or text.startswith("git@"):
        return True
    try:
        if os.path.lexists(folder / text):
            return False
    except (OSError, ValueError):
        return False
    first = text.split("/", 1)[0]
    return (
        bool(_GIT_QUERY.search(text)) or "//" in text or ("/" in text and bool(_HOST.match(first)))
    )


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

    def __init__(self, limits: Limits | None = None, earlier: InputGraph | None = None) -> None:
        """`earlier`: a graph of the same tree taken before, whose reads of a file are
        reused while the file's status is still what it was when that graph read it
        (an edit changes its change time). Everything else, which files and folders
        exist above all, is looked at again."""
        self.limits = limits or Limits()
        self._earlier = earlier
        self._inputs: dict[str, Inputs] = {}
        self._files: dict[str, tuple[str, bool] | None] = {}  # path -> (hash, names an origin)
        self._documents: dict[str, dict[str, Any] | None] = {}
        self._visiting: set[str] = set()
        self._own: dict[str, tuple[list[Refusal], list[str]]] = {}  # refusals, folders named
        self._checked: dict[str, str | None] = {}  # file -> why it is refused
        self._stats: dict[str, Stamp | None] = {}  # file -> its status when it was read
        self._reads: dict[str, list[str]] = {}  # folder -> files its key read
        self._reaches: dict[str, list[str]] = {}  # folder -> folders its key reached
        self._raw: dict[str, bytes | Refused] = {}  # kustomization -> its bytes
        self._parsed: dict[str, tuple[str | None, Any]] = {}  # kustomization -> parsed

    def unchanged(self, folder: Path) -> bool:
        """Whether every file this folder's key was computed from still has the status
        it had when it was read (an edit changes its change time, even an edit undone
        to the same content)."""
        for name in _walk(folder, lambda name: self._reaches.get(name, [])):
            if name not in self._reads:
                return False  # never computed: nothing to compare with
            for file in self._reads[name]:
                if self._stats.get(file) is None or _stamp(file) != self._stats[file]:
                    return False
        return True

    def refusals(self, folder: Path) -> list[Refusal]:
        """What this folder's build would read that validate refuses to hand to kustomize,
        in every kustomization it reaches (each read once per graph)."""
        found: set[Refusal] = set()
        for name in _walk(folder, lambda name: self._own[name][1]):
            if name not in self._own:
                self._own[name] = self._own_refusals(Path(name))
            found.update(self._own[name][0])
        return sorted(found)

    def _own_refusals(self, folder: Path) -> tuple[list[Refusal], list[str]]:
        refused: list[Refusal] = []
        reached: list[str] = []
        names = [folder / n for n in KUSTOMIZATION_NAMES if os.path.lexists(folder / n)]
        for name in names:
            try:
                check_regular(name.stat(), self.limits.input_bytes)
            except OSError:
                continue  # a dangling link: kustomize says it is missing
            except Refused as why:
                refused.append(Refusal(str(name), "", f"the kustomization {why}"))
        if refused or not names:
            return refused, reached
        problem, document = self._parse(names[0])
        if problem:
            return [Refusal(str(names[0]), "", problem)], reached
        if not isinstance(document, dict):
            return refused, reached  # kustomize says what is wrong with it
        for where, value, parsed in _named_files(document):
            reason = self._reference_problem(folder, value, parsed, where, reached)
            if reason:
                refused.append(Refusal(str(names[0]), where, reason))
        for field in HELM_FIELDS:
            entries = document.get(field)
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                for key in ("repo", "chartRepoUrl"):
                    if isinstance(entry, dict) and entry.get(key):
                        message = (
                            f"a Helm chart from the repository {entry[key]!r}: validate "
                            "never fetches anything (a generated tree has no remote charts)"
                        )
                        refused.append(Refusal(str(names[0]), f"{field}[{index}].{key}", message))
        return refused, reached

    def _reference_problem(
        self, folder: Path, value: str, parsed: bool, where: str, reached: list[str]
    ) -> str | None:
        if is_remote(value, folder):
            return (
                f"{value!r} is a remote reference: validate builds only what is in this "
                "repository and never fetches anything (a generated tree has no remote bases)"
            )
        target = folder / value
        try:
            status = target.stat()
        except (OSError, ValueError):
            return None  # missing: kustomize says so
        if stat.S_ISDIR(status.st_mode):
            if where.split("[")[0] in REFERENCE_FIELDS:
                reached.append(os.path.normpath(target))
            return None
        name = os.path.normpath(target)
        if name not in self._checked:
            self._checked[name] = self._file_problem(target, status, parsed)
        why = self._checked[name]
        return f"{value!r} {why}" if why else None

    def _file_problem(self, path: Path, status: os.stat_result, parsed: bool) -> str | None:
        try:
            check_regular(status, self.limits.input_bytes)
            if not parsed:
                return None
            data = read_input(path, self.limits.input_bytes)
        except Refused as why:
            return str(why)
        if might_exceed(data):
            problem = yaml_problem(data)
            return f"is beyond the bounds of an input: {problem}" if problem else None
        return None

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

    def _read(self, path: Path) -> bytes:
        """A kustomization's bytes, read once per graph, within the bounds (Refused);
        its status is taken before the read, so that a later edit shows."""
        name = os.path.normpath(path)
        if name not in self._raw:
            stamp = self._stats.setdefault(name, _stamp(name))
            earlier = self._earlier
            if earlier is not None and name in earlier._raw and _same(earlier, name, stamp):
                self._raw[name] = earlier._raw[name]
                if name in earlier._parsed:
                    self._parsed[name] = earlier._parsed[name]
            else:
                try:
                    self._raw[name] = read_input(path, self.limits.input_bytes)
                except Refused as why:
                    self._raw[name] = why
        found = self._raw[name]
        if isinstance(found, Refused):
            raise found
        return found

    def _parse(self, path: Path) -> tuple[str | None, Any]:
        """(why it is refused, the document): YAML beyond the bounds is never built."""
        name = os.path.normpath(path)
        if name not in self._parsed:
            try:
                data = self._read(path)
            except Refused as why:
                self._parsed[name] = (f"the kustomization {why}", None)
                return self._parsed[name]
            if name in self._parsed:  # an earlier graph's, of the same bytes
                return self._parsed[name]
            problem = yaml_problem(data)
            document = None
            if problem is None:
                try:
                    document = yaml.load(data, Loader=_Loader)
                except (yaml.YAMLError, RecursionError):
                    document = None  # kustomize says what is wrong with it
            self._parsed[name] = (problem, document)
        return self._parsed[name]

    def _document(self, folder: Path) -> dict[str, Any] | None:
        name = os.path.normpath(folder)
        if name not in self._documents:
            found = [folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()]
            document = self._parse(found[0])[1] if len(found) == 1 else None
            self._documents[name] = document if isinstance(document, dict) else None
        return self._documents[name]

    def _compute(self, folder: Path) -> Inputs:
        found = [folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()]
        if len(found) != 1:
            return UNKNOWN
        here = os.path.normpath(folder)
        reads = self._reads[here] = [os.path.normpath(found[0])]
        reaches = self._reaches[here] = []
        document = self._document(folder)  # None beyond the bounds: never parsed further
        if document is None or any(field in document for field in UNCACHEABLE_FIELDS):
            return UNKNOWN
        try:
            events = _events(self._read(found[0]))
        except (Refused, yaml.YAMLError):
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
                hashed = self._file(target)
                reads.append(os.path.normpath(target))
                if hashed is None:
                    return UNKNOWN  # beyond the bounds: refused, or built to say why
                digest, names_origin = hashed
                local = local and not names_origin
                references.append((value, digest))
            elif kind == "folder":
                if _kustomization_names(target) != 1:
                    return UNKNOWN
                reached = self.inputs(target)
                reaches.append(os.path.normpath(target))
                if reached.key is None:
                    return UNKNOWN
                local = local and reached.local
                if value in _listed(document):
                    resource_files |= reached.resource_files
                references.append((value, reached.key))
        content = json.dumps([found[0].name, events, references], separators=(",", ":"))
        key = hashlib.sha256(content.encode()).hexdigest()
        return Inputs(key, local, frozenset(resource_files))

    def _file(self, path: Path) -> tuple[str, bool] | None:
        """A file's content hash, read in chunks, and whether it names an origin; None
        for what is not a regular file within the size bound."""
        name = os.path.normpath(path)
        if name not in self._files:
            stamp = self._stats[name] = _stamp(name)  # before reading: a later edit shows
            earlier = self._earlier
            if earlier is not None and name in earlier._files and _same(earlier, name, stamp):
                self._files[name] = earlier._files[name]
            else:
                self._files[name] = _hash_file(path, self.limits.input_bytes)
        return self._files[name]


Stamp = tuple[int, int, int, int, int]


def _same(earlier: InputGraph, name: str, stamp: Stamp | None) -> bool:
    """Whether a file has the status an earlier graph saw when it read it."""
    return stamp is not None and earlier._stats.get(name) == stamp


def _stamp(name: str) -> Stamp | None:
    try:
        status = os.stat(name)
    except (OSError, ValueError):
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _hash_file(path: Path, limit: int) -> tuple[str, bool] | None:
    marker = ORIGIN_ANNOTATION.encode()
    digest = hashlib.sha256()
    names_origin = False
    tail = b""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    with os.fdopen(descriptor, "rb") as opened:
        try:
            check_regular(os.fstat(descriptor), limit)
        except Refused:
            return None
        read = 0
        for chunk in iter(lambda: opened.read(CHUNK), b""):
            read += len(chunk)
            if read > limit:
                return None
            digest.update(chunk)
            names_origin = names_origin or marker in tail + chunk
            tail = chunk[-len(marker) :]
    return digest.hexdigest(), names_origin


CHUNK = 1024 * 1024


def _named_files(document: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(field, string, whether kustomize parses it as YAML) for every string of the
    kustomization that names something kustomize reads."""
    for field, key, parsed in FILE_FIELDS:
        entries = document.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            value = entry if key is None else entry.get(key) if isinstance(entry, dict) else None
            if isinstance(value, str) and value.strip() and "\n" not in value:
                yield f"{field}[{index}]" + (f".{key}" if key else ""), value, parsed
    for field in GENERATOR_FIELDS:
        entries = document.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            for key in ("files", "envs", "env"):
                values = entry.get(key)
                listed = values if isinstance(values, list) else [values]
                for number, value in enumerate(listed):
                    if isinstance(value, str) and value.strip():
                        where = f"{field}[{index}].{key}" + (f"[{number}]" if key != "env" else "")
                        yield where, value.split("=", 1)[-1], False
    for field in HELM_FIELDS:
        entries = document.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            files = entry.get("additionalValuesFiles")
            listed = [("valuesFile", entry.get("valuesFile"))]
            listed += [
                (f"additionalValuesFiles[{number}]", value)
                for number, value in enumerate(files if isinstance(files, list) else [])
            ]
            for key, value in listed:
                if isinstance(value, str) and value.strip():
                    yield f"{field}[{index}].{key}", value, True
    openapi = document.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"], False


def _walk(start: Path, reached: Callable[[str], Sequence[str]]) -> Iterator[str]:
    """Each kustomization folder reachable from `start`, once; `reached(name)` is asked
    for a folder's edges only after the caller has seen it."""
    seen: set[str] = set()
    waiting = [os.path.normpath(start)]
    while waiting:
        name = waiting.pop()
        if name in seen:
            continue
        seen.add(name)
        yield name
        waiting += reached(name)


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
