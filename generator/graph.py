"""`mlgitops graph`: a picture of the fleet from the rendered model.

Four kinds of node: each cluster; its sync objects (Argo CD Applications or Flux
Kustomizations, named as generated, with the Argo CD sync wave); the path each one
syncs (in this repository, or an operator's repository at its pinned tag); the
workloads. A workload is one node however many clusters run it, so the picture shows
where each one runs. Edges: cluster → its sync objects → the path each syncs → the
workloads in that path, and a dashed `before` edge from every sync object to each
one that depends on it (`dependsOn` for Flux; for Argo CD the same order is kept by
the waves). With dispatched workloads (render/dispatch.py) the management cluster is a
cluster node too: its namespace paths hold the runs, and a dashed `dispatches` edge goes
from its queues' path (the ClusterQueue with the MultiKueue check) to every worker.

Node ids are numbered in the config's order (clusters, then their sync paths in sync
order; workloads in the config's order), so the same config gives the same bytes.
Rendering the model is pure; `to_svg` runs Graphviz's `dot`, the only edge.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from generator.config import model
from generator.errors import MlgitopsError, UsageError
from generator.render import dispatch
from generator.render.gitops import SyncPath, manager_sync_paths, scopes, sync_paths
from generator.render.objects import Document, Unit
from generator.render.runtimes import render_training_object

NodeKind = Literal["cluster", "sync", "path", "workload"]
EdgeKind = Literal["syncs", "path", "runs", "before", "dispatches"]
FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    lines: tuple[str, ...]  # the first names the node; the others describe it


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]


def _cluster_lines(cluster: model.Cluster, synced_from: str) -> tuple[str, ...]:
    return (cluster.name, f"{cluster.cloud} cluster, synced from {synced_from}")


def fleet_graph(config: model.Config, units: list[Unit | Document]) -> Graph:
    """Clusters, their sync objects, the paths they sync and the workloads in them."""
    by_folder = {unit.folder: unit for unit in units if isinstance(unit, Unit)}
    engine = "Application" if config.gitops == "argocd" else "Kustomization"
    scope_of = {c.name: scope.folder for scope in scopes(config) for c in scope.clusters}
    workload_ids = {w.name: f"w{i}" for i, w in enumerate(config.workloads)}
    nodes: list[Node] = []
    edges: list[Edge] = []
    path_ids: dict[tuple[str, ...], str] = {}
    sync_count = 0
    manager = manager_sync_paths(config, by_folder)
    targets: list[tuple[str, list[SyncPath], list[model.Workload]]] = []
    for cluster in config.clusters:
        held = [w for w in config.workloads_on(cluster) if w.dispatch is None]
        targets.append((cluster.name, sync_paths(config, cluster, by_folder), held))
    if manager:
        targets.append((dispatch.MANAGER, manager, dispatch.dispatched(config)))
    cluster_ids = {name: f"c{i}" for i, (name, _, _) in enumerate(targets)}
    for name, paths, held in targets:
        cluster_id = cluster_ids[name]
        named = next((c for c in config.clusters if c.name == name), None)
        described: tuple[str, ...]
        if named is None:
            described = (name, "the management cluster, synced from bootstrap/fleet")
        else:
            described = _cluster_lines(named, scope_of[named.name])
        nodes.append(Node(cluster_id, "cluster", described))
        sync_ids: dict[str, str] = {}
        for path in paths:
            sync_id = sync_ids[path.name] = f"s{sync_count}"
            sync_count += 1
            lines = [f"{engine} {path.name}"]
            if config.gitops == "argocd":
                lines.append(f"wave {path.order}")
            if path.on_management and path.cluster is not None:
                lines.append("applied to the management cluster")
            nodes.append(Node(sync_id, "sync", tuple(lines)))
            edges.append(Edge(cluster_id, sync_id, "syncs"))
            edges += [Edge(sync_ids[name], sync_id, "before") for name in path.depends_on]
            where: tuple[str, ...] = (path.path,)
            if path.operator:
                where = (path.path, f"{path.operator.repo} @ {path.operator.tag}")
            if where not in path_ids:
                path_ids[where] = f"p{len(path_ids)}"
                nodes.append(Node(path_ids[where], "path", where))
            edges.append(Edge(sync_id, path_ids[where], "path"))
            if path.holds_jobs:
                edges += [
                    Edge(path_ids[where], workload_ids[w.name], "runs")
                    for w in held
                    if w.namespace == path.namespace
                ]
            if path.path == dispatch.manager_platform_folder():
                edges += [
                    Edge(path_ids[where], cluster_ids[worker.name], "dispatches")
                    for worker in dispatch.workers(config)
                ]
    for workload in config.workloads:
        kind = render_training_object(config, workload)["kind"]
        described = (workload.name, f"{kind} in {workload.namespace}")
        nodes.append(Node(workload_ids[workload.name], "workload", described))
    return Graph(nodes, edges)


# Mermaid: one shape per kind of node.
_MERMAID_SHAPES = {
    "cluster": ("[", "]"),
    "sync": ("([", "])"),
    "path": ("[(", ")]"),
    "workload": ("[[", "]]"),
}
_MERMAID_ARROWS = {
    "syncs": "-->",
    "path": "-->",
    "runs": "-->",
    "before": "-.->|before|",
    "dispatches": "-.->|dispatches|",
}


def _mermaid_text(lines: tuple[str, ...]) -> str:
    escaped = [line.replace("&", "#amp;").replace('"', "#quot;") for line in lines]
    return '"' + "<br/>".join(escaped) + '"'


def to_mermaid(graph: Graph) -> str:
    """Mermaid `flowchart LR` text: GitHub and GitLab draw it in Markdown."""
    out = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        out.append(f"    {node.id}{opening}{_mermaid_text(node.lines)}{closing}")
    out += [f"    {e.source} {_MERMAID_ARROWS[e.kind]} {e.target}" for e in graph.edges]
    for kind in _MERMAID_SHAPES:
        members = [node.id for node in graph.nodes if node.kind == kind]
        if members:
            out.append(f"    class {','.join(members)} {kind}")
    out += [
        "    classDef cluster fill:#dbeafe,stroke:#1e40af",
        "    classDef sync fill:#fef3c7,stroke:#92400e",
        "    classDef path fill:#f3f4f6,stroke:#374151",
        "    classDef workload fill:#dcfce7,stroke:#166534",
    ]
    return "\n".join(out) + "\n"


_DOT_NODES = {
    "cluster": 'shape=box3d, style=filled, fillcolor="#dbeafe"',
    "sync": 'shape=box, style="rounded,filled", fillcolor="#fef3c7"',
    "path": 'shape=folder, style=filled, fillcolor="#f3f4f6"',
    "workload": 'shape=component, style=filled, fillcolor="#dcfce7"',
}
_DOT_EDGES = {
    "syncs": "",
    "path": "",
    "runs": "",
    "before": ' [style=dashed, label="before"]',
    "dispatches": ' [style=dashed, label="dispatches"]',
}


def _dot_string(lines: tuple[str, ...]) -> str:
    """A DOT string: JSON's escaping of quotes and backslashes is DOT's; `\\n` centers."""
    return "\\n".join(json.dumps(line, ensure_ascii=False)[1:-1] for line in lines)


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text: `dot -Tsvg` or `-Tpng` draws it."""
    out = [
        "digraph fleet {",
        "    rankdir=LR;",
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in graph.nodes:
        out.append(f'    {node.id} [label="{_dot_string(node.lines)}", {_DOT_NODES[node.kind]}];')
    out += [f"    {e.source} -> {e.target}{_DOT_EDGES[e.kind]};" for e in graph.edges]
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str) -> str:
    """SVG drawn by Graphviz's `dot` from DOT text."""
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            "--format svg needs Graphviz's `dot` on PATH (Debian/Ubuntu: apt-get install "
            "graphviz; macOS: brew install graphviz); --format dot or mermaid need nothing"
        )
    run = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True)
    if run.returncode != 0:
        raise MlgitopsError(f"dot -Tsvg failed: {run.stderr.strip() or run.returncode}")
    return run.stdout
