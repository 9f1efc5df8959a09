"""`mlgitops validate`: the real `kustomize build` of every entry point, strict schemas for
every object it yields, and policy checks — what Argo CD or Flux would choke on, and the
mistakes that bite later.

Builds run in parallel (they are separate processes); each object is then checked by a
compiled validator cached per kind. Problems read `PATH: Kind/name: field: message`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.validate import policies
from generator.validate.kustomize import (
    Build,
    build,
    entry_points,
    kustomization_file,
    kustomize_command,
)
from generator.validate.schemas import MissingSchema, SchemaSet

Progress = Callable[[int, int], None]


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


@dataclass(frozen=True)
class Options:
    schema_locations: list[str]
    kubernetes_version: str
    cluster_versions: dict[str, str] = field(default_factory=dict)  # clusters/<name> -> version
    ignore_missing_schemas: bool = False
    repo_url: str | None = None
    jobs: int = 0


def object_name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def version_for(folder: str, options: Options) -> str:
    """Workloads are checked against their cluster's version; the rest, the default."""
    parts = folder.split("/")
    if len(parts) >= 3 and parts[0] == "clusters" and parts[2] == "workloads":
        return options.cluster_versions.get(parts[1], options.kubernetes_version)
    return options.kubernetes_version


def validate_tree(root: Path, options: Options, progress: Progress | None = None) -> Report:
    command = kustomize_command()
    folders = entry_points(root)
    report = Report(builds=len(folders))
    builds = _build_all(command, folders, options.jobs, progress)
    schemas = SchemaSet(options.schema_locations)
    for result in builds:
        relative = result.folder.relative_to(root).as_posix() or "."
        if result.error:
            report.problems.append(
                Problem(relative, "", "", f"kustomize build failed: {result.error}")
            )
            continue
        version = version_for(relative, options)
        for obj in result.objects:
            report.objects += 1
            _check_object(obj, relative, version, schemas, options, report)
    _check_sync_paths(root, builds, options, report)
    _check_default_deny(root, builds, report)
    return report


def _build_all(
    command: list[str], folders: list[Path], jobs: int, progress: Progress | None
) -> list[Build]:
    workers = jobs or os.cpu_count() or 2
    results: list[Build] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(lambda f: build(command, f), folders), start=1):
            results.append(result)
            if progress:
                progress(done, len(folders))
    return results


def _check_object(
    obj: dict[str, Any],
    path: str,
    version: str,
    schemas: SchemaSet,
    options: Options,
    report: Report,
) -> None:
    name = object_name(obj)
    try:
        for error in schemas.errors(obj, version):
            report.problems.append(Problem(path, name, error.field, error.message))
    except MissingSchema as missing:
        if not options.ignore_missing_schemas:
            report.problems.append(Problem(path, name, "", str(missing)))
    waived = policies.waivers(obj)
    for rule_id, reason in sorted(waived.items()):
        if reason:
            report.waivers.append(Waiver(path, name, rule_id, reason))
        else:
            annotation = f"metadata.annotations.{policies.WAIVER_PREFIX}{rule_id.lower()}"
            report.problems.append(
                Problem(path, name, annotation, "a waiver must give its reason", "MLG009")
            )
    for rule_id, field_path, message in policies.object_findings(obj):
        if not waived.get(rule_id):
            report.problems.append(Problem(path, name, field_path, message, rule_id))


def sync_targets(obj: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(path, repo URL) that an Argo CD Application or a Flux Kustomization syncs."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Application" and obj.get("apiVersion", "").startswith("argoproj.io/"):
        sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
        return [(s.get("path", ""), s.get("repoURL")) for s in sources if "path" in s]
    if obj.get("kind") == "Kustomization" and "toolkit.fluxcd.io" in obj.get("apiVersion", ""):
        return [(str(spec.get("path", "")).removeprefix("./"), None)]
    return []


def _check_sync_paths(root: Path, builds: list[Build], options: Options, report: Report) -> None:
    built = {b.folder.relative_to(root).as_posix(): b for b in builds}
    seen: set[tuple[str, str, str]] = set()
    for result in builds:
        relative = result.folder.relative_to(root).as_posix()
        for obj in result.objects:
            for target, repo in sync_targets(obj):
                if options.repo_url and repo and repo != options.repo_url:
                    continue
                key = (relative, object_name(obj), target)
                if key in seen:
                    continue
                seen.add(key)
                message = _sync_path_problem(root, target, built)
                if message:
                    report.problems.append(
                        Problem(relative, object_name(obj), "spec.path", message, "MLG008")
                    )


def _sync_path_problem(root: Path, target: str, built: dict[str, Build]) -> str | None:
    folder = (root / target).resolve()
    if not folder.is_dir() or kustomization_file(folder) is None:
        return f"{target!r} is not a kustomization in this repository"
    result = built.get(folder.relative_to(root.resolve()).as_posix())
    if result is not None and result.error:
        return f"{target!r} does not build: {result.error}"
    return None


def _check_default_deny(root: Path, builds: list[Build], report: Report) -> None:
    """Per synced path when the tree has GitOps objects (that is what a cluster gets),
    else over the whole tree."""
    synced = {target for b in builds for obj in b.objects for target, _ in sync_targets(obj)}
    scopes = [b for b in builds if b.folder.relative_to(root).as_posix() in synced]
    groups = [[b] for b in scopes] if scopes else [builds]
    for group in groups:
        objects = [obj for b in group for obj in b.objects]
        missing = policies.namespaces_running_pods(objects) - policies.namespaces_denied(objects)
        where = group[0].folder.relative_to(root).as_posix() if scopes else "."
        for namespace in sorted(missing):
            report.problems.append(
                Problem(
                    where,
                    f"Namespace/{namespace}",
                    "",
                    "runs pods without a default-deny NetworkPolicy (ingress and egress)",
                    "MLG002",
                )
            )
