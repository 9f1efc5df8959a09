"""Edit mlgitops.yaml from the command line: set a workload's image, add or remove a
workload or a cluster. Every edit keeps the file as people wrote it (comments, order,
quoting, flow and block style, blank lines) outside the lines it changes
(generator.edit_text), is checked with the normal loader before anything is written,
and is written atomically: a temporary file in the same folder, renamed over the config.

New workloads and clusters start from what `mlgitops init` writes (generator.starter).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import cloud_facts
from generator.config import model
from generator.config.load import MAX_CONFIG_BYTES, load_config_bytes, load_config_text
from generator.edit_text import (
    Source,
    Span,
    block_lines,
    choose,
    expected_copy,
    indexed,
    replace_scalar,
    round_trip_value,
    splice_lines,
)
from generator.errors import ConfigError, UsageError

SECTIONS = {"workload": "workloads", "cluster": "clusters"}
RUNTIMES: tuple[str, ...] = typing.get_args(model.Runtime)
FRAMEWORKS: tuple[str, ...] = typing.get_args(model.Framework)


@dataclass(frozen=True)
class Edited:
    """The new text, what changed (one line each, for people) and how the text was made."""

    text: str
    changes: list[str]
    method: str


class RefusedEdit(ConfigError):
    """The edit would make the config invalid: the loader's located problems, and what
    that means for the file."""

    def __init__(self, error: ConfigError, file: str, already: bool) -> None:
        super().__init__(error.problems)
        why = "it is invalid, and stays so edited" if already else "the edit makes it invalid"
        self.args = (
            f"{self.args[0]}\nmlgitops: {file}: not changed: {why} "
            "(the line numbers are those of the edited text)",
        )


# -- the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """The config as read: the path given, the file written (a symlink's target inside
    the same folder), its text and its permission bits."""

    path: Path
    target: Path
    data: bytes
    text: str
    mode: int


def read_config(path: Path) -> ConfigFile:
    """The config to edit; UsageError when it cannot be edited safely in place."""
    target = _target(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        raise UsageError(
            f"mlgitops: {path}: no such config file (`mlgitops init` writes one)"
        ) from None
    except OSError as error:
        raise UsageError(f"mlgitops: {path}: cannot read it ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"mlgitops: {path}: not a regular file")
    if not os.access(target, os.W_OK):
        raise UsageError(f"mlgitops: {path}: not writable, so it cannot be edited")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"mlgitops: {path}: its folder {target.parent} is not writable (the config is "
            "replaced through a temporary file beside it)"
        )
    data = _read(path, target)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        load_config_bytes(data, str(path))  # raises the loader's located message
        raise  # pragma: no cover - the loader always raises for text that is not UTF-8
    return ConfigFile(path, target, data, text, stat.S_IMODE(info.st_mode))


def _target(path: Path) -> Path:
    if not path.is_symlink():
        return path
    target = path.resolve()
    folder = path.absolute().parent.resolve()
    if not target.is_relative_to(folder):
        raise UsageError(
            f"mlgitops: {path}: a symlink to {target}, outside its folder; edit that file "
            "instead (give it with --config)"
        )
    return target


def _read(path: Path, target: Path) -> bytes:
    try:
        with target.open("rb") as config_file:
            data = config_file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise UsageError(f"mlgitops: {path}: cannot read it ({error.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        load_config_bytes(data, str(path))  # the loader's message for a file too large
    return data


def write_config(config: ConfigFile, text: str) -> None:
    """Replace the config by `text` atomically, with the same permission bits; refuse
    when the file changed since it was read."""
    if _read(config.path, config.target) != config.data:
        raise UsageError(
            f"mlgitops: {config.path}: changed while it was being edited; nothing was "
            "written, run the command again"
        )
    folder = config.target.parent
    try:
        handle, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{config.target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise UsageError(
            f"mlgitops: {config.path}: cannot write beside it ({error.strerror})"
        ) from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fchmod(out.fileno(), config.mode)
            os.fsync(out.fileno())
        os.replace(temporary, config.target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UsageError(
            f"mlgitops: {config.path}: cannot write it ({error.strerror}); it was not changed"
        ) from None


def checked(edited: Edited, file: str, original: str) -> model.Config:
    """The edited config, loaded as `mlgitops generate` loads it."""
    try:
        return load_config_text(edited.text, file)
    except ConfigError as error:
        try:
            load_config_text(original, file)
        except ConfigError:
            raise RefusedEdit(error, file, already=True) from None
        raise RefusedEdit(error, file, already=False) from None


# -- set image ------------------------------------------------------------------------


def image_name(image: str) -> str:
    """The image without its tag and digest, as kustomize's `images:` names it."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def set_image(text: str, file: str, target: str, image: str | None) -> Edited:
    """`WORKLOAD IMAGE`: that workload's image. `NAME=IMAGE`, or `IMAGE` alone: every
    workload whose image has that name (an old name with a tag or digest matches only
    that exact image)."""
    source = Source(text, file)
    workloads = _mappings(source, "workloads")
    if image is not None:
        chosen = [i for i, w in workloads if w.get("name") == target]
        if not chosen:
            raise UsageError(
                f"mlgitops: {file}: no workload named {target!r} (workloads: {_names(workloads)})"
            )
        new = image
    else:
        old, _, new = target.rpartition("=") if "=" in target else ("", "", target)
        old = old or image_name(new)
        exact = image_name(old) != old

        def matches(value: Any) -> bool:
            written = str(value)
            return written == old if exact else image_name(written) == old

        chosen = [i for i, w in workloads if matches(w.get("image", ""))]
        if not chosen:
            images = ", ".join(sorted({str(w.get("image")) for _, w in workloads}))
            raise UsageError(
                f"mlgitops: {file}: no workload's image is named {old!r} (images: {images})"
            )
    if not new:
        raise UsageError("mlgitops: the new image is empty (e.g. registry/name:1.0.0)")
    seq = source.tree["workloads"]
    expected = expected_copy(source)
    spans: list[Span] = []
    replacements: list[tuple[Span, list[str]]] = []
    changes: list[str] = []
    for index in chosen:
        node = seq[index]
        old_value = str(expected["workloads"][index].get("image"))
        if old_value == new:
            continue
        if "image" not in node.lc.data:
            raise UsageError(
                f"mlgitops: {file}: workloads[{index}].image comes from a merge key (<<); "
                "edit it by hand"
            )
        line, column = node.lc.value("image")
        span = Span(line, line + 1, 1)
        spans.append(span)
        scalar = source.scalar(line, column)
        if scalar is not None:
            replacements.append((span, [replace_scalar(source, scalar, new)]))
        expected["workloads"][index]["image"] = new
        changes.append(f"workloads[{index}].image: {old_value} -> {new}")
    if not changes:
        return Edited(text, [], "unchanged")

    def change_tree(tree: Any) -> None:
        for index in chosen:
            node = tree["workloads"][index]
            old_node = node["image"]
            node["image"] = type(old_node)(new) if isinstance(old_node, str) else new

    every_line_spliced = len(replacements) == len(spans)
    splice = (lambda: splice_lines(source, replacements)) if every_line_spliced else None
    result, method = choose(source, spans, expected, change_tree, splice, "set the image")
    return Edited(result, changes, method)


# -- add ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewWorkload:
    name: str
    framework: str
    image: str
    workers: int | None = None
    namespace: str | None = None
    command: tuple[str, ...] = ()
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = None
    runtime: str | None = None
    parameter_servers: int | None = None
    clusters: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewCluster:
    name: str
    cloud: str
    region: str | None = None
    account_id: str | None = None
    project: str | None = None
    location: str | None = None
    workers: int | None = None
    version: str | None = None
    instance_type: str | None = None
    machine_type: str | None = None
    given: dict[str, str] = field(default_factory=dict)  # option -> value, to check per cloud


CLOUD_OPTIONS = {
    "--region": "eks",
    "--account-id": "eks",
    "--project": "gke",
    "--location": "gke",
    "--workers": "local",
    "--instance-type": "eks",
    "--machine-type": "gke",
}
REQUIRED_OPTIONS = {"eks": ("--region",), "gke": ("--project", "--location"), "local": ()}


def _starter(cloud: str) -> dict[str, Any]:
    """What `mlgitops init` writes for one cloud, as plain values."""
    from generator.config.yaml_tree import parse
    from generator.starter import Answers, starter_config

    return dict(parse(starter_config(Answers(clouds=(cloud,))), "starter").value)


def workload_item(new: NewWorkload) -> dict[str, Any]:
    """The new workload: the starter's, with what was given."""
    item = {str(k): v for k, v in _starter("local")["workloads"][0].items()}
    resources = dict(item["resources"])
    if new.cpu is not None:
        resources["cpu"] = new.cpu
    if new.memory is not None:
        resources["memory"] = new.memory
    if new.gpu:
        resources["gpu"] = new.gpu
    item.update(
        name=new.name,
        namespace=new.namespace or item["namespace"],
        framework=new.framework,
        image=new.image,
        command=list(new.command) or item["command"],
        workers=new.workers if new.workers is not None else item["workers"],
    )
    if new.parameter_servers:
        item["parameterServers"] = new.parameter_servers
    item["resources"] = resources
    if new.runtime:
        item["runtime"] = new.runtime
    if new.clusters:
        item["clusters"] = list(new.clusters)
    return item


def cluster_item(new: NewCluster) -> dict[str, Any]:
    """The new cluster: the starter's for its cloud (its node groups or pools), with
    what was given."""
    for option in new.given:
        if CLOUD_OPTIONS[option] != new.cloud:
            raise UsageError(
                f"mlgitops: {option} is for {CLOUD_OPTIONS[option]} clusters, not {new.cloud}"
            )
    missing = [o for o in REQUIRED_OPTIONS[new.cloud] if o not in new.given]
    if missing:
        raise UsageError(f"mlgitops: a {new.cloud} cluster needs {' and '.join(missing)}")
    starter = dict(_starter(new.cloud)["clusters"][0])
    starter.pop("accountId", None)  # the starter's is a placeholder
    values = {
        "region": new.region,
        "accountId": new.account_id,
        "project": new.project,
        "location": new.location,
        "workers": new.workers,
        "version": new.version,
    }
    item: dict[str, Any] = {"name": new.name, "cloud": new.cloud}
    for key, value in starter.items():
        if key not in item:
            item[key] = values.get(key) if values.get(key) is not None else value
    if new.instance_type:  # the CPU group, for the system pods and CPU workloads
        for group in item["nodeGroups"]:
            if not cloud_facts.ec2_gpu(str(group["instanceTypes"][0])):
                group["instanceTypes"] = [new.instance_type]
    if new.machine_type:
        item["nodePools"][0]["machineType"] = new.machine_type
    pools = [k for k in ("nodeGroups", "nodePools") if k in item]
    rest = {k: v for k, v in values.items() if v is not None and k not in item}
    if pools:  # the node groups or pools stay last, as the starter has them
        groups = item.pop(pools[0])
        item.update(rest)
        item[pools[0]] = groups
    else:
        item.update(rest)
    return item


def add_workload(text: str, file: str, new: NewWorkload) -> Edited:
    """Append a workload; a duplicate name or an unknown cluster is the loader's to say."""
    source = Source(text, file)
    return _append(source, "workloads", workload_item(new), f"added workload {new.name!r}")


def add_cluster(text: str, file: str, new: NewCluster) -> Edited:
    source = Source(text, file)
    return _append(source, "clusters", cluster_item(new), f"added cluster {new.name!r}")


def _append(source: Source, key: str, item: dict[str, Any], change: str) -> Edited:
    items = source.items(key)
    last = items[-1]
    separated = len(items) > 1 and source.blank(last.lead - 1)
    lines = [source.newline] if separated else []
    lines += block_lines(
        item, last.dash_column, last.content_column, _offset(source), source.newline
    )
    at = last.end
    span = Span(at, at)
    replaced: list[str] = []
    if at == len(source.lines) and not source.lines[-1].endswith("\n"):
        span = Span(at - 1, at)  # the last line gets the newline it lacked
        replaced = [source.lines[-1] + source.newline]
    expected = expected_copy(source)
    expected[key].append(item)

    def change_tree(tree: Any) -> None:
        tree[key].append(round_trip_value(item))

    def splice() -> str:
        return splice_lines(source, [(span, replaced + lines)])

    text, method = choose(
        source, [span], expected, change_tree, splice, f"add to {key}", splice_first=True
    )
    return Edited(text, [f"{key}: {change}"], method)


def _offset(source: Source) -> int:
    return source.sequence_offset if source.sequence_offset is not None else 2


# -- remove ---------------------------------------------------------------------------


def remove(text: str, file: str, kind: str, name: str) -> Edited:
    """Drop a workload or cluster, with the comments right above it. A cluster that
    workloads name in their `clusters:` is kept: they would silently run elsewhere."""
    key = SECTIONS[kind]
    source = Source(text, file)
    found = _mappings(source, key)
    chosen = [i for i, value in found if value.get("name") == name]
    if not chosen:
        raise UsageError(f"mlgitops: {file}: no {kind} named {name!r} ({key}: {_names(found)})")
    if kind == "cluster":
        users = [
            (i, w)
            for i, w in _mappings(source, "workloads")
            if isinstance(w.get("clusters"), list) and name in w["clusters"]
        ]
        if users:
            named = ", ".join(f"{w.get('name')} (workloads[{i}].clusters)" for i, w in users)
            raise UsageError(
                f"mlgitops: {file}: cluster {name!r} is named in the clusters of {named}: "
                "take it out of those lists first (or remove those workloads)"
            )
    index = chosen[0]
    items = source.items(key)
    item = items[index]
    expected = expected_copy(source)
    del expected[key][index]
    if len(items) == 1:  # nothing left: the loader says a config needs one
        key_line = source.tree.lc.key(key)[0]
        span = Span(key_line, item.end)
        indent = source.lines[key_line][: source.tree.lc.key(key)[1]]
        new = [f"{indent}{key}: []{source.newline}"]
    elif index == 0:
        end = item.end
        while end < items[1].lead and source.blank(end):
            end += 1
        span, new = Span(item.lead, end), []
    else:
        start = item.lead
        while start > items[index - 1].end and source.blank(start - 1):
            start -= 1
        span, new = Span(start, item.end), []

    span = Span(span.start, span.end, len(new))  # exactly these lines go, nothing else

    def change_tree(tree: Any) -> None:
        del tree[key][index]

    def splice() -> str:
        return splice_lines(source, [(span, new)])

    result, method = choose(source, [span], expected, change_tree, splice, f"remove {kind}")
    return Edited(result, [f"{key}: removed {kind} {name!r}"], method)


def _mappings(source: Source, key: str) -> list[tuple[int, dict[str, Any]]]:
    values = source.plain.get(key) if isinstance(source.plain, dict) else None
    if not isinstance(values, list):
        load_config_text(source.text, source.file)  # its located message
        raise UsageError(f"mlgitops: {source.file}: {key}: expected a list")
    return list(indexed(values, "name"))


def _names(found: list[tuple[int, dict[str, Any]]]) -> str:
    return ", ".join(str(value.get("name")) for _, value in found) or "none"
