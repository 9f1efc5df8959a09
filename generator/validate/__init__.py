"""`mlgitops validate`: the real `kustomize build` of every entry point, strict schemas for
every object it yields, and policy checks — what Argo CD or Flux would choke on, and the
mistakes that bite later.

Problems read `PATH: Kind/name: field: message`. No work is done twice:

- every entry point gets a key from the content of what its build reads (inputs.py);
  a result whose key is in the cache (cache.py) is reused as it is;
- entry points with the same key (thirty clusters that include the same namespace with
  the same values) are built once;
- a pure aggregate (a kustomization that only lists other entry points, such as
  `clusters/<cluster>/workloads/`) is not built: its objects are exactly those of its
  parts when no part renames anything and no two parts hold the same object, so its
  result is composed from theirs; otherwise it is built like any other;
- each distinct object is checked once per Kubernetes version.

Builds run in parallel (they are separate processes). Whatever path a result took, the
report is the same: problems are listed sorted by path, object and field.

Nothing leaves this machine and nothing runs unbounded: a kustomization that names a
remote base, component, chart or file, a file that is not a regular file, a file over
the size bound, or YAML nested too deep or expanding too far is refused before any
build (one problem where it is named, and the entry points that reach it are not
built); kustomize itself runs without network and within memory, time and output
limits (kustomize.py). The cache is trusted only for entries that prove they belong to
their key (cache.py) and have the shape of a result; a result is stored only if the
inputs it was computed from are unchanged once it is known.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from generator.cluster import dispatched, evaluate, inventory
from generator.operator_facts import OPERATORS
from generator.validate import policies
from generator.validate.cache import ResultCache, canonical, fingerprint
from generator.validate.inputs import InputGraph, Refusal
from generator.validate.kustomize import (
    Build,
    Limits,
    build,
    build_together,
    entry_points,
    kustomization_file,
    kustomize_command,
    load_document,
)
from generator.validate.schemas import MissingSchema, SchemaSet

Progress = Callable[[int, int], None]
Output = Build | list[dict[str, Any]]  # one build's printout, or its objects from a shared run
BATCH_FOLDERS = 60  # folders built together in one kustomize run, at most
BATCH_FILES = 200  # resource files in one such run, at most: kustomize slows down with size


@dataclass(frozen=True)
class Problem:
    path: str
    object: str
    field: str
    message: str
    rule: str | None = None

    def __str__(self) -> str:
        rule = f"[{self.rule}] " if self.rule else ""
        where = ": ".join(part for part in (self.path, self.object, self.field) if part)
        return f"{where}: {rule}{self.message}"


@dataclass(frozen=True)
class Waiver:
    path: str
    object: str
    rule: str
    reason: str


@dataclass
class Report:
    builds: int = 0
    objects: int = 0
    problems: list[Problem] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    kustomize_runs: int = 0
    cached: int = 0  # entry points whose result came from the cache
    composed: int = 0  # aggregates whose result was composed from their parts'
    checked: list[str] = field(default_factory=list)  # entry points not from the cache
    landings: dict[str, list[Any]] = field(default_factory=dict)  # cluster -> evaluate.Landing


@dataclass(frozen=True)
class Options:
    schema_locations: list[str]
    kubernetes_version: str
    cluster_versions: dict[str, str] = field(default_factory=dict)  # clusters/<name> -> version
    ignore_missing_schemas: bool = False
    repo_url: str | None = None
    jobs: int = 0
    cache_folder: Path | None = None  # None: no cache
    compose_aggregates: bool = True
    batch_builds: bool = True
    clusters: tuple[Any, ...] = ()  # the config's clusters (model.Cluster): the cluster model


@dataclass
class Result:
    """What validating one build found, without its path: reusable for every entry point
    with the same inputs, and stored as JSON in the cache."""

    error: str | None = None
    objects: int = 0
    ids: list[list[str]] = field(default_factory=list)  # [group, kind, namespace, name]
    problems: list[list[Any]] = field(default_factory=list)  # [object, field, message, rule]
    waivers: list[list[str]] = field(default_factory=list)  # [object, rule, reason]
    sync: list[list[Any]] = field(default_factory=list)  # [object, path, repo URL]
    pods: list[str] = field(default_factory=list)  # namespaces that run pods
    denied: list[str] = field(default_factory=list)  # namespaces with default deny
    # [object, field, namespace, Secret] a pod needs; [namespace, Secret] made here
    secret_refs: list[list[str]] = field(default_factory=list)
    secrets_made: list[list[str]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)  # the cluster model's (inventory)
    cacheable: bool = True

    def add(self, other: Result) -> None:
        self.objects += other.objects
        self.ids += other.ids
        self.problems += other.problems
        self.waivers += other.waivers
        self.sync += other.sync
        self.pods = sorted({*self.pods, *other.pods})
        self.denied = sorted({*self.denied, *other.denied})
        self.secret_refs += other.secret_refs
        self.secrets_made += other.secrets_made
        self.facts += other.facts
        self.cacheable = self.cacheable and other.cacheable


def object_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    return f"{obj.get('kind', '?')}/{name}"


def version_for(folder: str, options: Options) -> str:
    """Workloads are checked against their cluster's version; the rest, the default."""
    parts = folder.split("/")
    if len(parts) >= 3 and parts[0] == "clusters" and parts[2] == "workloads":
        return options.cluster_versions.get(parts[1], options.kubernetes_version)
    return options.kubernetes_version


class _Checker:
    """Schemas and policies for one object, each distinct document once per version."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.schemas = SchemaSet(options.schema_locations)
        self._seen: dict[tuple[str, str], Result] = {}

    def build(self, documents: list[str], version: str) -> Result:
        result = Result()
        for text in documents:
            key = (text, version)
            if key not in self._seen:
                try:
                    obj = load_document(text)
                except yaml.YAMLError as error:
                    return Result(error=f"unreadable build output: {error}", cacheable=False)
                self._seen[key] = self.check(obj, version) if isinstance(obj, dict) else Result()
            result.add(self._seen[key])
        return result

    def objects(self, objects: list[dict[str, Any]], version: str) -> Result:
        """Objects that come parsed (from a shared build), known by their content."""
        result = Result()
        for obj in objects:
            key = (json.dumps(obj, sort_keys=True, default=str), version)
            if key not in self._seen:
                self._seen[key] = self.check(obj, version) if isinstance(obj, dict) else Result()
            result.add(self._seen[key])
        return result

    def check(self, obj: dict[str, Any], version: str) -> Result:
        name = object_name(obj)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        namespace = str(meta.get("namespace") or "")
        identity = [group, str(obj.get("kind")), "" if namespace == "default" else namespace]
        result = Result(objects=1, ids=[[*identity, str(meta.get("name"))]])
        try:
            for error in self.schemas.errors(obj, version):
                result.problems.append([name, error.field, error.message, None])
        except MissingSchema as missing:
            result.cacheable = not missing.transient
            if not self.options.ignore_missing_schemas:
                result.problems.append([name, "", str(missing), None])
        try:
            self.policies(obj, name, result)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError) as error:
            # An object too malformed for the policy checks: its schema problems say
            # why; without any, the object is still not passed as clean.
            if not result.problems:
                message = f"cannot check the policies of this object: {error}"
                result.problems.append([name, "", message, None])
        result.facts = cluster_facts(obj)
        return result

    @staticmethod
    def policies(obj: dict[str, Any], name: str, result: Result) -> None:
        waived = policies.waivers(obj)
        for rule_id, reason in sorted(waived.items()):
            if reason:
                result.waivers.append([name, rule_id, reason])
            else:
                annotation = f"metadata.annotations.{policies.WAIVER_PREFIX}{rule_id.lower()}"
                message = "a waiver must give its reason"
                result.problems.append([name, annotation, message, "MLG009"])
        for rule_id, field_path, message in policies.object_findings(obj):
            if not waived.get(rule_id):
                result.problems.append([name, field_path, message, rule_id])
        result.sync = [[name, target, repo] for target, repo in sync_targets(obj)]
        result.pods = sorted(policies.namespaces_running_pods([obj]))
        result.denied = sorted(policies.namespaces_denied([obj]))
        if not waived.get(policies.SECRET_REFERENCES):
            result.secret_refs = [[name, *ref] for ref in policies.secret_references(obj)]
        result.secrets_made = [list(made) for made in policies.secrets_created(obj)]


def validate_tree(root: Path, options: Options, progress: Progress | None = None) -> Report:
    root = Path(os.path.realpath(root))  # builds name their files by absolute path
    limits = Limits.from_environment()
    command = kustomize_command()
    folders = entry_points(root)
    run = _Run(root, command, options, progress, limits)
    results = run.results_for(folders)
    report = Report(
        builds=len(folders),
        kustomize_runs=run.kustomize_runs,
        cached=run.cached,
        composed=run.composed,
        checked=sorted(_relative(root, f) for f in run.checked),
    )
    refused = sorted({r for folder in folders for r in run.refused.get(folder, [])})
    report.problems += [Problem(_shown(root, r.file), "", r.field, r.message) for r in refused]
    for folder in folders:
        relative = _relative(root, folder)
        result = results[folder]
        if folder in run.refused:
            continue  # said where the refused input is named; not built
        if result.error is not None:
            report.problems.append(
                Problem(relative, "", "", f"kustomize build failed: {result.error}")
            )
            continue
        report.objects += result.objects
        report.problems += [Problem(relative, *problem) for problem in result.problems]
        report.waivers += [Waiver(relative, *waiver) for waiver in result.waivers]
    by_path = {_relative(root, f): results[f] for f in folders}
    not_built = {_relative(root, f) for f in run.refused}
    _check_sync_paths(root, by_path, options, report, not_built)
    _check_default_deny(by_path, report)
    _check_secret_references(by_path, report)
    _check_clusters(by_path, options, report, lambda path: run.facts(root / path))
    report.problems.sort(key=lambda p: (p.path, p.object, p.field, p.rule or "", p.message))
    report.waivers.sort(key=lambda w: (w.path, w.object, w.rule, w.reason))
    return report


def _relative(root: Path, folder: Path) -> str:
    return folder.relative_to(root).as_posix() or "."


def _shown(root: Path, path: str) -> str:
    """A path as the report names it: relative to the tree, even when outside it."""
    return Path(os.path.relpath(path, root)).as_posix()


def result_from(content: dict[str, Any]) -> Result | None:
    """A cached result, if it has exactly the shape of one; anything else is a miss."""
    shapes: dict[str, Callable[[Any], bool]] = {
        "error": lambda v: v is None,  # failed builds are never kept
        "objects": lambda v: type(v) is int and v >= 0,
        "ids": lambda v: _rows(v, (str, str, str, str)),
        "problems": lambda v: _rows(v, (str, str, str, (str, type(None)))),
        "waivers": lambda v: _rows(v, (str, str, str)),
        "sync": lambda v: _rows(v, (str, str, (str, type(None)))),
        "pods": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "denied": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "secret_refs": lambda v: _rows(v, (str, str, str, str)),
        "secrets_made": lambda v: _rows(v, (str, str)),
        "cacheable": lambda v: v is True,
    }
    if set(content) != set(shapes) or not all(shapes[k](v) for k, v in content.items()):
        return None
    return Result(**content)


def _rows(value: Any, columns: tuple[type | tuple[type, ...], ...]) -> bool:
    return isinstance(value, list) and all(
        isinstance(row, list)
        and len(row) == len(columns)
        and all(isinstance(item, kind) for item, kind in zip(row, columns, strict=True))
        for row in value
    )


def facts_from(content: dict[str, Any]) -> list[dict[str, Any]] | None:
    found = content.get("facts")
    if set(content) != {"facts"} or not isinstance(found, list):
        return None
    return found if all(isinstance(fact, dict) for fact in found) else None


class _Run:
    """One validation run: cache, shared builds, composed aggregates."""

    def __init__(
        self,
        root: Path,
        command: list[str],
        options: Options,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> None:
        self.root = root
        self.command = command
        self.options = options
        self.progress = progress
        self.limits = limits or Limits()
        self.graph = InputGraph(self.limits)
        self.checker = _Checker(options)
        self.cache = (
            ResultCache(
                options.cache_folder,
                fingerprint(command, options.schema_locations, options.ignore_missing_schemas),
            )
            if options.cache_folder
            else None
        )
        self.results: dict[Path, Result] = {}
        self.refused: dict[Path, list[Refusal]] = {}
        self.pending: list[tuple[Path, Result]] = []  # to keep, if its inputs hold still
        self.keys: dict[Path, str | None] = {}
        self.versions: dict[Path, str] = {}
        self.checked: list[Path] = []
        self.from_cache: set[Path] = set()
        self.loaded_facts: dict[str, list[dict[str, Any]] | None] = {}
        self.facts_by_content: dict[bytes, list[dict[str, Any]] | None] = {}
        self.kustomize_runs = self.cached = self.composed = 0

    def results_for(self, folders: list[Path]) -> dict[Path, Result]:
        for folder in folders:
            self.versions[folder] = version_for(_relative(self.root, folder), self.options)
            refusals = self.graph.refusals(folder)
            if refusals:
                self.refused[folder] = refusals
                self.keys[folder] = None
                self.results[folder] = Result(error="refused", cacheable=False)
            else:
                self.keys[folder] = self.graph.key(folder)
        buildable = [f for f in folders if f not in self.refused]
        missing = [f for f in buildable if not self._from_cache(f)]
        self.checked = missing
        aggregates = self._aggregates(missing, set(buildable))
        self._build([f for f in missing if f not in aggregates])
        fallback: list[Path] = []
        for folder in aggregates:
            self._compose(folder, aggregates, fallback, set())
        self._build(fallback)
        self._keep()
        return self.results

    def _keep(self) -> None:
        """Store the new results whose inputs are what they were when their keys were
        taken: a file edited during the run would otherwise leave a result under a key
        it was not computed from. Each input's status must be what it was when it was
        read (an edit undone shows in its change time), and the inputs taken again must
        give the same key: which files and folders exist is looked at anew, and a file
        is read anew unless its status is still the one it had when first read."""
        if self.cache is None:
            return
        again = InputGraph(self.limits, earlier=self.graph)
        for folder, result in self.pending:
            key = self.keys[folder]
            if key is None or not self.graph.unchanged(folder):
                continue
            if again.key(folder) != key or again.refusals(folder):
                continue
            # Shallow: the rows are only serialised (asdict would copy them all).
            stored = {f.name: getattr(result, f.name) for f in fields(Result)}
            facts = stored.pop("facts")
            self.cache.put(key, self.versions[folder], stored)
            self.cache.put(f"{key}:facts", self.versions[folder], {"facts": facts})
        self.pending = []

    def _from_cache(self, folder: Path) -> bool:
        key = self.keys[folder]
        if self.cache is None or key is None:
            return False
        content = self.cache.get(key, self.versions[folder])
        found = result_from(content) if content is not None else None
        if found is None:
            return False
        self.results[folder] = found
        self.from_cache.add(folder)
        self.cached += 1
        return True

    def facts(self, folder: Path) -> list[dict[str, Any]] | None:
        """The cluster model's facts of a build: kept apart from its result, so that only
        the paths a cluster is given are read, each distinct build once."""
        result = self.results[folder]
        key = self.keys.get(folder)
        if folder in self.refused:
            return None  # not built: the cluster model does not judge it
        if folder not in self.from_cache or self.cache is None or key is None:
            return result.facts
        if key not in self.loaded_facts:
            found = self._read_facts(f"{key}:facts", self.versions[folder])
            self.loaded_facts[key] = found if found is not None else self._rebuilt_facts(folder)
        return self.loaded_facts[key]

    def _rebuilt_facts(self, folder: Path) -> list[dict[str, Any]] | None:
        """Facts whose cache entry is gone or doubtful: built again, so that no finding
        of the cluster model depends on what the cache holds."""
        self.kustomize_runs += 1
        result = self._check(build(self.command, folder, self.limits), self.versions[folder])
        key = self.keys[folder]
        if result.error is not None:
            return None
        unchanged = key is not None and InputGraph(self.limits).key(folder) == key
        if self.cache is not None and key is not None and result.cacheable and unchanged:
            self.cache.put(f"{key}:facts", self.versions[folder], {"facts": result.facts})
        return result.facts

    def _read_facts(self, key: str, version: str) -> list[dict[str, Any]] | None:
        """Equal facts (thirty clusters' namespaces built alike) are read into one list,
        so the model sees that the clusters were given the same."""
        assert self.cache is not None
        content = self.cache.get(key, version)
        found = facts_from(content) if content is not None else None
        if found is None:
            return None
        digest = hashlib.sha256(canonical(found)).digest()
        return self.facts_by_content.setdefault(digest, found)

    def _store(self, folder: Path, result: Result) -> None:
        self.results[folder] = result
        if self.cache is not None and self.keys[folder] is not None and result.cacheable:
            self.pending.append((folder, result))

    def _aggregates(self, missing: list[Path], entries: set[Path]) -> dict[Path, list[Path]]:
        if not self.options.compose_aggregates:
            return {}
        found = {}
        for folder in missing:
            parts = self.graph.aggregate_parts(folder)
            if parts is not None and all(
                part in entries
                and self.versions[part] == self.versions[folder]
                and self.graph.renames_nothing(part)
                for part in parts
            ):
                found[folder] = parts
        return found

    def _compose(
        self,
        folder: Path,
        aggregates: dict[Path, list[Path]],
        fallback: list[Path],
        composing: set[Path],
    ) -> None:
        if folder in self.results or folder in fallback:
            return
        if folder in composing:  # a cycle: kustomize reports it
            fallback.append(folder)
            return
        composing.add(folder)
        composed = Result()
        for part in aggregates[folder]:
            if part in aggregates:
                self._compose(part, aggregates, fallback, composing)
            result = self.results.get(part)
            if result is None or result.error is not None:
                fallback.append(folder)  # the real build says what is wrong
                return
            composed.add(result)
        identities = [(g, k, n, name) for g, k, n, name in composed.ids]
        if len(set(identities)) != len(identities):
            fallback.append(folder)  # the same object twice: kustomize refuses, in its words
            return
        self.composed += 1
        self._store(folder, composed)

    def _build(self, folders: list[Path]) -> None:
        """Build each distinct input once, small builds together; an entry point that
        fails is built on its own too, so that its error names its own files. Outputs
        are checked as they come, while kustomize builds the next ones."""
        groups: dict[object, list[Path]] = {}
        for folder in folders:
            groups.setdefault(self.keys[folder] or folder, []).append(folder)
        members_of = {members[0]: members for members in groups.values()}
        alone: list[Path] = []

        def take(folder: Path, output: Output) -> None:
            members = members_of.get(folder, [folder])
            if isinstance(output, Build) and output.error is not None:
                alone.extend(members[1:])
                members = members[:1]
            for member in members:
                self._store(member, self._check(output, self.versions[member]))

        singles, batches = self._batches(list(members_of))
        failed = self._run_kustomize(singles, batches, take)
        self._run_kustomize(failed, [], take)
        members_of = {}
        self._run_kustomize(alone, [], take)

    def _check(self, output: Output, version: str) -> Result:
        if not isinstance(output, Build):
            return self.checker.objects(output, version)
        if output.error is not None:
            return Result(error=output.error, cacheable=False)
        return self.checker.build(output.documents, version)

    def _batches(self, folders: list[Path]) -> tuple[list[Path], list[list[Path]]]:
        """Folders to build alone, and groups to build together: folders that rename
        nothing, whose resource files no other folder of the group has."""
        if not self.options.batch_builds:
            return folders, []
        alone: list[Path] = []
        groups: list[tuple[list[Path], set[str]]] = []
        for folder in folders:
            inputs = self.graph.inputs(folder)
            if inputs.key is None or not inputs.local:
                alone.append(folder)
                continue
            files = inputs.resource_files
            for members, used in groups:
                if (
                    len(members) < BATCH_FOLDERS
                    and len(used) + len(files) <= BATCH_FILES
                    and used.isdisjoint(files)
                ):
                    members.append(folder)
                    used |= files
                    break
            else:
                groups.append(([folder], set(files)))
        alone += [members[0] for members, _ in groups if len(members) == 1]
        return alone, [members for members, _ in groups if len(members) > 1]

    def _run_kustomize(
        self, singles: list[Path], batches: list[list[Path]], take: Callable[[Path, Output], None]
    ) -> list[Path]:
        """Hands each folder's output to `take`; returns the folders of batches that did
        not work out."""
        tasks: list[Path | list[Path]] = [*singles, *batches]
        failed: list[Path] = []
        if not tasks:
            return failed
        self.kustomize_runs += len(tasks)
        workers = self.options.jobs or os.cpu_count() or 2
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self._task, task): task for task in tasks}
            for done, future in enumerate(as_completed(futures), start=1):
                output, task = future.result(), futures[future]
                if isinstance(output, Build):
                    take(output.folder, output)
                elif output is not None:
                    for folder, objects in output.items():
                        take(folder, objects)
                elif isinstance(task, list):
                    failed += task
                if self.progress:
                    self.progress(done, len(tasks))
        return failed

    def _task(self, task: Path | list[Path]) -> Build | dict[Path, list[dict[str, Any]]] | None:
        if isinstance(task, Path):
            return build(self.command, task, self.limits)
        owners = {
            file: folder for folder in task for file in self.graph.inputs(folder).resource_files
        }
        return build_together(self.command, task, owners, self.limits)


def sync_targets(obj: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(path, repo URL) that an Argo CD Application or a Flux Kustomization syncs. Fields
    of the wrong type (the schemas report them) give what they can as text."""
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    api = str(obj.get("apiVersion", ""))
    if obj.get("kind") == "Application" and api.startswith("argoproj.io/"):
        sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
        sources = sources if isinstance(sources, list) else []
        return [
            (str(s["path"]), None if s.get("repoURL") is None else str(s["repoURL"]))
            for s in sources
            if isinstance(s, dict) and "path" in s
        ]
    if obj.get("kind") == "Kustomization" and "toolkit.fluxcd.io" in api:
        source = spec.get("sourceRef")
        source = source if isinstance(source, dict) else {}
        repo = f"{source.get('kind', 'GitRepository')}/{source.get('name', '')}"
        return [(str(spec.get("path", "")).removeprefix("./"), repo)]
    return []


def _check_sync_paths(
    root: Path,
    results: dict[str, Result],
    options: Options,
    report: Report,
    not_built: set[str] | None = None,
) -> None:
    own = _own_sources(root, results, options)
    seen: set[tuple[str, str, str]] = set()
    for relative, result in results.items():
        for name, target, repo in result.sync:
            if repo not in own:
                continue  # another repository's path, such as an operator's manifests
            if (relative, name, target) in seen:
                continue
            seen.add((relative, name, target))
            message = _sync_path_problem(root, target, results, not_built or set())
            if message:
                report.problems.append(Problem(relative, name, "spec.path", message, "MLG008"))


def _own_sources(root: Path, results: dict[str, Result], options: Options) -> set[str | None]:
    """The sources (Argo CD repo URLs, Flux source references) that mean this repository:
    the one given, else those through which some path of this tree is synced. With none
    found, every source counts, so a tree whose every path is wrong is still reported."""
    targets = [(target, repo) for result in results.values() for _, target, repo in result.sync]
    if options.repo_url:
        own = {options.repo_url}
    else:
        own = {repo for target, repo in targets if _sync_path_problem(root, target, {}) is None}
    if not own:
        own = {repo for _, repo in targets}
    return own | {None}


def _sync_path_problem(
    root: Path,
    target: str,
    results: dict[str, Result],
    not_built: Collection[str] = frozenset(),
) -> str | None:
    """What is wrong with a path this repository syncs: one that leaves the repository
    (`../outside`, absolute, or through a link), is not a kustomization, or fails."""
    outside = f"{target!r} is outside this repository (a synced path is relative to its root)"
    if os.path.isabs(target):
        return outside
    try:
        folder = (root / target).resolve()
        inside = folder.relative_to(root.resolve()).as_posix()
    except (OSError, ValueError, RuntimeError):
        return outside
    if not folder.is_dir() or kustomization_file(folder) is None:
        return f"{target!r} is not a kustomization in this repository"
    if inside in not_built:
        return None  # refused, and said so where the refused input is named
    result = results.get(inside)
    if result is not None and result.error:
        return f"{target!r} does not build: {result.error}"
    return None


def _check_default_deny(results: dict[str, Result], report: Report) -> None:
    """Per synced path when the tree has GitOps objects (that is what a cluster gets),
    else over the whole tree."""
    synced = {target for result in results.values() for _, target, _ in result.sync}
    scopes = [(path, [result]) for path, result in results.items() if path in synced]
    groups: Iterable[tuple[str, list[Result]]] = scopes or [(".", list(results.values()))]
    for where, group in groups:
        pods = {ns for result in group for ns in result.pods}
        denied = {ns for result in group for ns in result.denied}
        for namespace in sorted(pods - denied):
            report.problems.append(
                Problem(
                    where,
                    f"Namespace/{namespace}",
                    "",
                    "runs pods without a default-deny NetworkPolicy (ingress and egress)",
                    "MLG002",
                )
            )


def _check_secret_references(results: dict[str, Result], report: Report) -> None:
    """MLG030, per synced path as MLG002 (a namespace's pods and the ExternalSecrets that
    make their Secrets are one build), else over the whole tree: a pod naming a Secret
    that nothing there creates never starts (CreateContainerConfigError) or cannot pull."""
    synced = {target for result in results.values() for _, target, _ in result.sync}
    scopes = [(path, [result]) for path, result in results.items() if path in synced]
    groups: Iterable[tuple[str, list[Result]]] = scopes or [(".", list(results.values()))]
    for where, group in groups:
        made = {(ns, name) for result in group for ns, name in result.secrets_made}
        for result in group:
            for obj, field_path, namespace, secret in result.secret_refs:
                if (namespace, secret) in made:
                    continue
                if str(obj).startswith("MultiKueueCluster/"):
                    report.problems.append(_missing_kubeconfig(where, obj, field_path, secret))
                    continue
                report.problems.append(
                    Problem(
                        where,
                        obj,
                        field_path,
                        f"needs Secret {secret!r}, which nothing creates in namespace "
                        f"{namespace!r} (an ExternalSecret, or by hand as the Namespace's "
                        f"{policies.HAND_MADE_SECRETS_ANNOTATION} annotation says): the pods "
                        "never start",
                        policies.SECRET_REFERENCES,
                    )
                )


def _missing_kubeconfig(where: str, obj: str, field_path: str, secret: str) -> Problem:
    """MLG031: MultiKueue cannot reach a worker whose kubeconfig Secret does not exist."""
    return Problem(
        where,
        obj,
        field_path,
        f"reads its worker's kubeconfig from Secret {secret!r} (key kubeconfig) in "
        f"{policies.KUEUE_NAMESPACE!r}, which nothing creates (an ExternalSecret, a Secret, "
        f"or by hand as its {policies.HAND_MADE_KUBECONFIG_ANNOTATION} annotation says): "
        "MultiKueue never connects, and nothing is dispatched to that worker",
        policies.KUBECONFIG_SECRETS,
    )


def cluster_facts(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster model's facts of an object; an object too broken to read has none (its
    schema problems say what is wrong)."""
    try:
        return inventory.facts_of(obj)
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError):
        return []


def _check_clusters(
    results: dict[str, Result],
    options: Options,
    report: Report,
    facts_of: Callable[[str], list[dict[str, Any]] | None],
) -> None:
    """Each cluster of the config, with what its GitOps objects sync to it. A cached
    build whose facts are gone is not judged (the next run without cache is)."""
    memo = evaluate.Memo()  # what clusters given the same builds share
    inputs: dict[str, dispatched.ClusterInput] = {}
    for cluster in options.clusters:
        paths, operators = cluster_paths(results, cluster.name)
        given = {}
        for path in paths:
            found = facts_of(path) if path in results else None
            if found is not None:
                given[path] = found
        infrastructure = f"clusters/{cluster.name}/infrastructure"
        built = facts_of(infrastructure) if infrastructure in results else None
        verdict = evaluate.evaluate(
            cluster,
            given,
            operators,
            (infrastructure, built) if built is not None else None,
            memo,
        )
        report.landings[cluster.name] = verdict.landings
        report.problems += [
            Problem(f.path, f.object, f.field, f.message, f.rule) for f in verdict.findings
        ]
        inputs[cluster.name] = dispatched.ClusterInput(
            given, operators, (infrastructure, built) if built is not None else None
        )
    manager: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results):
        if path.startswith(MANAGER_PATHS):
            found = facts_of(path)
            if found is not None:
                manager[path] = found
    report.problems += [
        Problem(f.path, f.object, f.field, f.message, f.rule)
        for f in dispatched.dispatched_findings(options.clusters, inputs, manager)
    ]


# The management cluster's paths with dispatched runs and their queues (render/dispatch.py).
MANAGER_PATHS = ("clusters/management/workloads/namespaces/", "clusters/management/platform")


def cluster_paths(results: dict[str, Result], cluster: str) -> tuple[list[str], list[str]]:
    """The paths of this repository synced to a cluster (by the sync objects in
    `clusters/<cluster>/gitops`), and the operators synced from their own repositories.
    Without sync objects: the cluster's namespaces, platform and storage paths."""
    prefix = f"clusters/{cluster}/"
    gitops = results.get(f"{prefix}gitops")
    own: list[str] = []
    operators: list[str] = []
    for _, target, repo in gitops.sync if gitops else []:
        operator = _operator_for(target, repo)
        if operator:
            operators.append(operator)
        elif target.startswith(prefix) and target != f"{prefix}infrastructure":
            own.append(target)
    if gitops is None:
        own = [
            path
            for path in results
            if path.startswith(f"{prefix}workloads/namespaces/")
            or path in (f"{prefix}platform", f"{prefix}workloads/storage")
        ]
    return sorted(set(own)), sorted(set(operators))


def _operator_for(target: str, repo: str | None) -> str | None:
    for operator in OPERATORS:
        argocd = repo == operator.repo and target == operator.source_path("argocd")
        flux = repo == f"GitRepository/{operator.name}" and target == operator.source_path("flux")
        if argocd or flux:
            return operator.name
    return None
