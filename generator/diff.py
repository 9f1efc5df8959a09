"""`mlgitops diff`: what every cluster would get differently, object by object, if the
config in the working tree replaced the one at a git revision.

Both configs go through the normal pipeline (load → render → layout) in memory. What a
cluster gets is the `kustomize build` of its sync paths, and the rendered units alone
cannot say that exactly: per-cloud and per-cluster patches (resources on local
clusters, GPU limits, identity annotations) and image rewrites are applied by kustomize,
not by the renderers. So both trees are written to one temporary folder and the real
kustomize builds each synced path; a path whose inputs are the same in both trees
(validate's content key, generator.validate.inputs) cannot differ and is not built,
and equal inputs are built once. A one-field edit builds only the paths it reaches.

What is compared, per cluster: its GitOps sync objects (`clusters/<cluster>/gitops`),
every path they sync from this repository (infrastructure, storage, platform, one per
namespace) and the files made for it that no engine syncs (a kind cluster's config).
Per scope (`bootstrap/<scope>`): the root object and the project or source. Operators'
manifests come from their upstream repositories at pinned tags: their sync objects
show the tag, their objects are not fetched. Files no cluster receives (the CI
workflow) are not compared: `mlgitops generate --diff` shows every file. The seed
folders (custom/) are compared as generated, on both sides, so people's edits there
are not part of the difference.

An object is known by its API group, kind, namespace and name within its cluster (an
object that moves between paths of one cluster is changed, not removed and added).
Field paths read `spec.template.spec.containers[0].image`; keys that are not plain
words are quoted (`metadata.annotations["argocd.argoproj.io/sync-wave"]`). Lists of
equal length are compared item by item; otherwise items are matched by content, so an
inserted item is one addition (at its new index) rather than a change of every item
after it; a removed item is named by its old index.

The comparison and the reports are pure; reading git, writing the temporary trees and
running kustomize are the edges, kept in the functions at the end of this module.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import click

from generator.config import model
from generator.config.load import MAX_CONFIG_BYTES
from generator.errors import ConfigError, MlgitopsError, Problem, UsageError
from generator.layout import Layout
from generator.render import dispatch
from generator.render.entrypoints import cluster_folder
from generator.render.gitops import gitops_folder, manager_sync_paths, scopes, sync_paths
from generator.render.objects import Document, Manifest, Unit

TargetType = Literal["cluster", "scope"]


class BuildError(MlgitopsError):
    """A rendered tree does not build, so there is nothing to compare. Exit code 2, not
    1: scripts read 1 as "there are differences"."""

    exit_code = 2


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True, order=True)
class ObjectId:
    """An object's identity within one cluster. Displayed `Kind/namespace/name`."""

    kind: str
    namespace: str
    name: str
    group: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.kind, self.namespace, self.name) if part)


def object_id(obj: Manifest) -> ObjectId:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name", obj.get("name", ""))  # a kind config names itself at the top
    return ObjectId(
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace") or ""),
        name=str(name or ""),
        group=str(obj.get("apiVersion", "")).rpartition("/")[0],
    )


@dataclass(frozen=True)
class Located:
    """An object and the path (or file) of the repository it comes from."""

    path: str
    manifest: Manifest


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()  # a field one side does not have


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any = ABSENT
    new: Any = ABSENT


@dataclass(frozen=True)
class ObjectChange:
    id: ObjectId
    path: str
    old: Manifest
    new: Manifest
    old_path: str
    fields: list[FieldChange]


@dataclass(frozen=True)
class TargetDiff:
    """The differences of one cluster, or of one scope's bootstrap."""

    type: TargetType
    name: str
    added: list[tuple[ObjectId, Located]] = field(default_factory=list)
    removed: list[tuple[ObjectId, Located]] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class FleetDiff:
    old_label: str  # the revision, as given
    new_label: str  # the working tree's config file
    targets: list[TargetDiff]  # only those that differ, clusters first, in config order

    @property
    def differs(self) -> bool:
        return bool(self.targets)


@dataclass(frozen=True)
class Target:
    """What one cluster (or scope) gets: folders built by kustomize, and rendered files
    no engine syncs, compared as they are."""

    type: TargetType
    name: str
    folders: tuple[str, ...]
    documents: tuple[Document, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """One side of the comparison: a config and what the pipeline made of it."""

    label: str
    config: model.Config
    units: list[Unit | Document]
    tree: Layout


# ----------------------------------------------------------------- pure comparison


def targets(config: model.Config, units: list[Unit | Document]) -> list[Target]:
    """Per cluster, its sync objects and the paths of this repository they sync; per
    scope, its bootstrap folder."""
    by_folder = {unit.folder: unit for unit in units if isinstance(unit, Unit)}
    documents = [unit for unit in units if isinstance(unit, Document)]
    found: list[Target] = []
    for cluster in config.clusters:
        paths = sync_paths(config, cluster, by_folder)
        folders = [gitops_folder(cluster), *(p.path for p in paths if p.operator is None)]
        own = cluster_folder(cluster) + "/"
        found.append(
            Target(
                "cluster",
                cluster.name,
                tuple(folders),
                tuple(d for d in documents if d.path.startswith(own)),
            )
        )
    manager = manager_sync_paths(config, by_folder)
    if manager:
        # The management cluster's own paths: what dispatched runs change (render/dispatch.py).
        folders = [dispatch.manager_gitops_folder()]
        folders += [p.path for p in manager if p.operator is None]
        found.append(Target("cluster", dispatch.MANAGER, tuple(folders)))
    found += [Target("scope", scope.folder, (scope.folder,)) for scope in scopes(config)]
    return found


ObjectKey = tuple[ObjectId, str]  # the path is "" unless two objects share an identity


def index_objects(sources: Iterable[tuple[str, list[Manifest]]]) -> dict[ObjectKey, Located]:
    """Objects by identity; a second object with the same identity in one cluster (a
    conflict the engines report) is kept apart by its path rather than lost."""
    found: dict[ObjectKey, Located] = {}
    for path, objects in sources:
        for obj in objects:
            identity = object_id(obj)
            key = (identity, "") if (identity, "") not in found else (identity, path)
            found[key] = Located(path, obj)
    return found


def compare_target(
    kind: TargetType,
    name: str,
    old: dict[ObjectKey, Located],
    new: dict[ObjectKey, Located],
) -> TargetDiff:
    added = [(key[0], new[key]) for key in sorted(new) if key not in old]
    removed = [(key[0], old[key]) for key in sorted(old) if key not in new]
    changed = []
    for key in sorted(new):
        if key not in old:
            continue
        before, after = old[key], new[key]
        fields = field_changes(before.manifest, after.manifest)
        if fields:
            changed.append(
                ObjectChange(
                    key[0], after.path, before.manifest, after.manifest, before.path, fields
                )
            )
    return TargetDiff(kind, name, added, removed, changed)


def _canonical(value: Any) -> str:
    """Equality that tells `true` from `1` and `"1"` from `1`, as Kubernetes does."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


_WORD = re.compile(r"[A-Za-z_$][\w$-]*")


def join_key(path: str, key: Any) -> str:
    text = str(key)
    if _WORD.fullmatch(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text)}]"


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Every leaf that differs, in the order the fields appear."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            changes += field_changes(
                old.get(key, ABSENT), new.get(key, ABSENT), join_key(path, key)
            )
        return changes
    if old is ABSENT and new is ABSENT:
        return []
    if old is ABSENT or new is ABSENT:
        return [FieldChange(path, old, new)]
    if isinstance(old, list) and isinstance(new, list):
        return _list_changes(old, new, path)
    if _canonical(old) == _canonical(new):
        return []
    return [FieldChange(path, old, new)]


def _list_changes(old: list[Any], new: list[Any], path: str) -> list[FieldChange]:
    if len(old) == len(new):
        return [
            change
            for index, (a, b) in enumerate(zip(old, new, strict=True))
            for change in field_changes(a, b, f"{path}[{index}]")
        ]
    matcher = difflib.SequenceMatcher(
        None, [_canonical(v) for v in old], [_canonical(v) for v in new], autojunk=False
    )
    changes: list[FieldChange] = []
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        if operation == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for offset in range(paired):
            changes += field_changes(old[i1 + offset], new[j1 + offset], f"{path}[{j1 + offset}]")
        changes += [FieldChange(f"{path}[{i}]", old=old[i]) for i in range(i1 + paired, i2)]
        changes += [FieldChange(f"{path}[{j}]", new=new[j]) for j in range(j1 + paired, j2)]
    return changes


def merge_targets(
    old: list[Target], new: list[Target]
) -> list[tuple[Target | None, Target | None]]:
    """Pairs of the same cluster (or scope) on both sides: clusters first, each kind in
    the new config's order, then those only the old config has."""
    old_by = {(t.type, t.name): t for t in old}
    new_by = {(t.type, t.name): t for t in new}
    keys = list(new_by) + [key for key in old_by if key not in new_by]
    keys.sort(key=lambda key: 0 if key[0] == "cluster" else 1)  # stable: order kept
    return [(old_by.get(key), new_by.get(key)) for key in keys]


# ------------------------------------------------------------------------ reports


def _value(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, default=str)


def _field_lines(change: FieldChange) -> list[tuple[str, str]]:
    """A changed text of several lines shows its changed lines, as `git diff` does."""
    if change.old is ABSENT:
        return [("+", f"{change.path}: {_value(change.new)}")]
    if change.new is ABSENT:
        return [("-", f"{change.path}: {_value(change.old)}")]
    if _is_text(change.old) and _is_text(change.new):
        lines = [("~", f"{change.path}:")]
        edits = difflib.unified_diff(
            change.old.splitlines(), change.new.splitlines(), n=1, lineterm=""
        )
        for line in list(edits)[2:]:  # without the ---/+++ header
            if not line.startswith("@@"):
                lines.append((line[0], "  " + line[1:]))
            elif len(lines) > 1:
                lines.append((" ", "  ..."))
        return lines
    return [("~", f"{change.path}: {_value(change.old)} -> {_value(change.new)}")]


def _is_text(value: Any) -> bool:
    """A string of several lines (a script, a config file)."""
    return isinstance(value, str) and "\n" in value.rstrip("\n")


_COLORS = {"+": "green", "-": "red", "~": "yellow"}


def format_text(diff: FleetDiff, color: bool = False) -> str:
    """For people: one block per cluster, one line per object, one per changed field."""

    def mark(sign: str, text: str) -> str:
        line = f"{sign} {text}"
        return click.style(line, fg=_COLORS[sign]) if color and sign in _COLORS else line

    lines: list[str] = []
    for target in diff.targets:
        heading = f"{target.type} {target.name}"
        lines.append(click.style(heading, bold=True) if color else heading)
        entries: list[tuple[str, ObjectId, list[str]]] = []
        entries += [("+", identity, []) for identity, _ in target.added]
        entries += [("-", identity, []) for identity, _ in target.removed]
        for change in target.changed:
            details = [mark(*line) for f in change.fields for line in _field_lines(f)]
            if change.old_path != change.path:
                details.insert(0, f"  moved from {change.old_path} to {change.path}")
            entries.append(("~", change.id, details))
        for sign, identity, details in sorted(entries, key=lambda e: (e[1], e[0])):
            lines.append("  " + mark(sign, str(identity)))
            lines += ["      " + detail for detail in details]
    return "".join(line + "\n" for line in lines)


def summary(diff: FleetDiff) -> str:
    if not diff.differs:
        return f"no differences between {diff.old_label} and {diff.new_label}"
    clusters = sum(1 for t in diff.targets if t.type == "cluster")
    scopes_ = len(diff.targets) - clusters
    where = [f"{clusters} cluster(s)"] + ([f"{scopes_} scope(s)"] if scopes_ else [])
    counts = (
        f"{sum(len(t.changed) for t in diff.targets)} object(s) changed, "
        f"{sum(len(t.added) for t in diff.targets)} added, "
        f"{sum(len(t.removed) for t in diff.targets)} removed"
    )
    return f"{diff.old_label} -> {diff.new_label}: {' and '.join(where)} differ: {counts}"


def _object_json(identity: ObjectId, located: Located) -> dict[str, Any]:
    return {
        "apiVersion": located.manifest.get("apiVersion"),
        "kind": identity.kind,
        "namespace": identity.namespace or None,
        "name": identity.name,
        "path": located.path,
    }


def _field_json(change: FieldChange) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": change.path}
    if change.old is not ABSENT:
        entry["old"] = change.old
    if change.new is not ABSENT:
        entry["new"] = change.new
    return entry


def format_json(diff: FleetDiff) -> str:
    """For scripts: every difference, with the added and removed objects in full. A
    field missing on one side has no `old` (added) or no `new` (removed)."""
    document = {
        "against": diff.old_label,
        "config": diff.new_label,
        "differences": diff.differs,
        "targets": [
            {
                "type": target.type,
                "name": target.name,
                "added": [
                    _object_json(i, located) | {"object": located.manifest}
                    for i, located in target.added
                ],
                "removed": [
                    _object_json(i, located) | {"object": located.manifest}
                    for i, located in target.removed
                ],
                "changed": [
                    _object_json(change.id, Located(change.path, change.new))
                    | ({"oldPath": change.old_path} if change.old_path != change.path else {})
                    | {"fields": [_field_json(f) for f in change.fields]}
                    for change in target.changed
                ],
            }
            for target in diff.targets
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


# -------------------------------------------------------------------------- edges


def use_color(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Color only for a person at a terminal, and never when NO_COLOR is set to
    anything but the empty string (https://no-color.org)."""
    return stream.isatty() and not environ.get("NO_COLOR")


def _rendered(label: str, config: model.Config) -> Rendered:
    from generator.layout import layout
    from generator.render import render

    units = render(config)
    return Rendered(label, config, units, layout(units))


def render_config(data: bytes, label: str) -> Rendered:
    """A config's bytes (from git) through the normal pipeline, in memory."""
    from generator.config.load import load_config_bytes

    return _rendered(label, load_config_bytes(data, label))


def render_file(path: Path) -> Rendered:
    """The working tree's config file through the normal pipeline, in memory."""
    from generator.config.load import load_config_file

    return _rendered(str(path), load_config_file(path))


def _git(folder: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(folder), *arguments], capture_output=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("diff needs git: install it, or put it on PATH") from None


def _git_message(run: subprocess.CompletedProcess[bytes]) -> str:
    lines = run.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("fatal: ") if lines else f"exit code {run.returncode}"


def config_at_revision(config_path: Path, revision: str) -> tuple[bytes, str]:
    """The config file's content at a revision of the repository that holds it (`git
    show REV:path`), and its name for messages (`REV:path`)."""
    if not revision or revision.startswith("-"):
        raise UsageError(f"{revision!r} is not a revision")
    resolved = config_path.resolve()
    top_run = _git(resolved.parent, "rev-parse", "--show-toplevel")
    if top_run.returncode != 0:
        reason = _git_message(top_run)
        said = "not a git repository" in reason  # git's own words say it already
        raise UsageError(
            f"{config_path}: "
            + (f"{reason}" if said else f"not in a git repository ({reason})")
            + "; diff compares with a git revision"
        )
    top = Path(top_run.stdout.decode().strip()).resolve()
    relative = resolved.relative_to(top).as_posix()
    commit_run = _git(top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit_run.returncode != 0:
        raise UsageError(f"unknown revision {revision!r} in {top}")
    commit = commit_run.stdout.decode().strip()
    type_run = _git(top, "cat-file", "-t", f"{commit}:{relative}")
    if type_run.returncode != 0 or type_run.stdout.decode().strip() != "blob":
        raise UsageError(f"{relative} does not exist at {revision}")
    label = f"{revision}:{relative}"
    size_run = _git(top, "cat-file", "-s", f"{commit}:{relative}")
    size = size_run.stdout.decode().strip()
    if size_run.returncode != 0 or not size.isdigit():
        raise UsageError(f"cannot read {relative} at {revision}: {_git_message(size_run)}")
    if int(size) > MAX_CONFIG_BYTES:
        raise _too_large(label)
    data = _read_blob(top, f"{commit}:{relative}", label, relative, revision)
    return data, label


def _too_large(label: str) -> ConfigError:
    """The same refusal as for a config file in the working tree."""
    limit = MAX_CONFIG_BYTES // (1024 * 1024)
    message = f"the file is larger than {limit} MiB, the most a config may be"
    return ConfigError([Problem(label, 1, 1, "", message)])


def _read_blob(top: Path, blob: str, label: str, relative: str, revision: str) -> bytes:
    """A blob's content through a bounded read: never more than the config limit held,
    whatever git prints."""
    try:
        process = subprocess.Popen(
            ["git", "-C", str(top), "cat-file", "blob", blob],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise UsageError("diff needs git: install it, or put it on PATH") from None
    assert process.stdout is not None
    with process:
        data = process.stdout.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            process.kill()
        process.stdout.close()
        code = process.wait()
    if len(data) > MAX_CONFIG_BYTES:
        raise _too_large(label)
    if code != 0:
        raise UsageError(f"cannot read {relative} at {revision}: exit code {code}")
    return data


def _write_tree(root: Path, tree: Layout) -> None:
    for relative, data in {**tree.files, **tree.seeds}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def diff_rendered(old: Rendered, new: Rendered, jobs: int = 0) -> FleetDiff:
    """Compare what every cluster gets from two rendered configs: writes both trees to a
    temporary folder and builds, with the real kustomize, each synced path whose inputs
    differ between them."""
    if old.tree == new.tree:
        return FleetDiff(old.label, new.label, [])
    pairs = merge_targets(targets(old.config, old.units), targets(new.config, new.units))
    from generator.validate.kustomize import kustomize_command

    try:
        command = kustomize_command()
    except UsageError:
        raise UsageError(
            "diff needs kustomize: install `kustomize`, or kubectl "
            "(`pip install mlgitops[kubectl]` puts one next to mlgitops)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="mlgitops-diff-") as scratch:
        roots = (Path(os.path.realpath(scratch), "old"), Path(os.path.realpath(scratch), "new"))
        _write_tree(roots[0], old.tree)
        _write_tree(roots[1], new.tree)
        keys = _build_keys(pairs, roots)
        built = _build_all(command, roots, keys, jobs)
    results: list[TargetDiff] = []
    for before, after in pairs:
        known = after or before
        assert known is not None  # every pair has at least one side
        sides = [
            index_objects(_sources(target, side, keys, built))
            for side, target in enumerate((before, after))
        ]
        target_diff = compare_target(known.type, known.name, sides[0], sides[1])
        if target_diff.differs:
            results.append(target_diff)
    return FleetDiff(old.label, new.label, results)


BuildKeys = dict[tuple[int, str], str]  # (side, folder) -> key of its build


def _build_keys(
    pairs: list[tuple[Target | None, Target | None]], roots: tuple[Path, Path]
) -> BuildKeys:
    """The folders whose build can differ between the sides, each with a key: builds
    with equal keys print the same objects (validate's content key, else the folder's
    own path). A folder with the same key on both sides is left out: it cannot differ."""
    from generator.validate.inputs import InputGraph

    graphs = (InputGraph(), InputGraph())
    keys: BuildKeys = {}
    for pair in pairs:
        for folder in sorted({f for target in pair if target for f in target.folders}):
            found = [
                graphs[side].key(roots[side] / folder) if (roots[side] / folder).is_dir() else None
                for side in (0, 1)
            ]
            if found[0] is not None and found[0] == found[1]:
                continue
            for side in (0, 1):
                if (roots[side] / folder).is_dir():
                    keys[(side, folder)] = found[side] or f"{side}:{folder}"
    return keys


def _build_all(
    command: list[str], roots: tuple[Path, Path], keys: BuildKeys, jobs: int
) -> dict[str, list[Manifest]]:
    """Each distinct build once, in parallel: objects by build key."""
    from generator.validate.kustomize import build, load_document

    distinct: dict[str, tuple[int, str]] = {}
    for (side, folder), key in sorted(keys.items()):
        distinct.setdefault(key, (side, folder))
    workers = jobs or os.cpu_count() or 2
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outputs = list(
            pool.map(lambda where: build(command, roots[where[0]] / where[1]), distinct.values())
        )
    found: dict[str, list[Manifest]] = {}
    for (key, (side, folder)), output in zip(distinct.items(), outputs, strict=True):
        if output.error is not None:
            which = "the revision" if side == 0 else "the working tree"
            raise BuildError(f"kustomize build of {folder} ({which}) failed: {output.error}")
        documents = (load_document(text) for text in output.documents)
        found[key] = [obj for obj in documents if isinstance(obj, dict)]
    return found


def _sources(
    target: Target | None, side: int, keys: BuildKeys, built: dict[str, list[Manifest]]
) -> list[tuple[str, list[Manifest]]]:
    if target is None:
        return []
    sources = [
        (folder, built[keys[(side, folder)]]) for folder in target.folders if (side, folder) in keys
    ]
    sources += [(document.path, document.objects) for document in target.documents]
    return sources
