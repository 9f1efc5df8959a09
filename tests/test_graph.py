"""`mlgitops graph`: every cluster, sync object and workload once, edges that are the
rendered order, and DOT that Graphviz reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS

from generator.cli import main
from generator.config.load import load_config_file
from generator.config.model import Config
from generator.render import render
from generator.render.gitops import sync_paths
from generator.render.objects import Unit

# A node statement: id, opening bracket(s), "label", closing bracket(s).
MERMAID_NODE = re.compile(r'^    (\w+)(?:\[|\(\[|\[\(|\[\[)"([^"]*)"(?:\]|\]\)|\)\]|\]\])$')
MERMAID_EDGE = re.compile(r"^    (\w+) (-->|-\.->\|before\|) (\w+)$")


def graph(config: Path, output_format: str) -> str:
    result = CliRunner().invoke(main, ["graph", "--config", str(config), "--format", output_format])
    assert result.exit_code == 0, result.output
    return result.stdout


def mermaid_graph(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Node labels (as lines) by id, and edges (source, arrow, target); every other
    line must be the header or a style line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, list[str]] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        node, edge = MERMAID_NODE.match(line), MERMAID_EDGE.match(line)
        if node:
            assert node[1] not in nodes, f"node {node[1]} defined twice"
            nodes[node[1]] = node[2].split("<br/>")
        elif edge:
            edges.append((edge[1], edge[2], edge[3]))
        else:
            assert re.match(r"^    (class|classDef) ", line), line
    return nodes, edges


def rendered_sync_names(config: Config) -> dict[str, list[str]]:
    """The sync objects' names as generated: the objects in clusters/<c>/gitops."""
    units = {u.folder: u for u in render(config) if isinstance(u, Unit)}
    return {
        c.name: [
            obj["metadata"]["name"]
            for obj in units[f"clusters/{c.name}/gitops"].objects
            if obj["kind"] in ("Application", "Kustomization")
        ]
        for c in config.clusters
    }


def test_mermaid_shows_every_cluster_sync_object_and_workload_once() -> None:
    config = load_config_file(SEEDS)
    nodes, _ = mermaid_graph(graph(SEEDS, "mermaid"))
    names = [lines[0] for lines in nodes.values()]
    expected = [c.name for c in config.clusters]
    expected += [f"Application {n}" for ns in rendered_sync_names(config).values() for n in ns]
    expected += [w.name for w in config.workloads]
    for name in expected:
        assert names.count(name) == 1, f"{name!r} appears {names.count(name)} times"
    paths = [n for n in names if n.startswith("clusters/")]
    operator_paths = [lines for lines in nodes.values() if len(lines) == 2 and "@" in lines[1]]
    assert sorted(lines[0] for lines in operator_paths) == [
        "deploy/charts/external-secrets",
        "deployment",  # dcgm-exporter's chart
        "deployments/helm/nvidia-device-plugin",
    ]
    assert len(names) == len(expected) + len(paths) + len(operator_paths)
    assert sorted(paths) == sorted(
        p.path
        for c in config.clusters
        for p in sync_paths(config, c, _units(config))
        if p.operator is None
    )


def _units(config: Config) -> dict[str, Unit]:
    return {u.folder: u for u in render(config) if isinstance(u, Unit)}


def test_mermaid_edges_are_the_rendered_order_and_contents() -> None:
    config = load_config_file(SEEDS)
    nodes, edges = mermaid_graph(graph(SEEDS, "mermaid"))

    def name(node_id: str) -> str:
        return nodes[node_id][0].removeprefix("Application ")

    before = {(name(a), name(b)) for a, arrow, b in edges if arrow != "-->"}
    solid = {(name(a), name(b)) for a, arrow, b in edges if arrow == "-->"}
    units = _units(config)
    paths = {c.name: sync_paths(config, c, units) for c in config.clusters}
    assert before == {
        (dependency, path.name)
        for cluster_paths in paths.values()
        for path in cluster_paths
        for dependency in path.depends_on
    }
    assert before  # the seeds clusters do have an order
    expected = {(c, p.name) for c, ps in paths.items() for p in ps}
    expected |= {(p.name, p.path) for ps in paths.values() for p in ps}
    expected |= {
        (p.path, w.name)
        for c in config.clusters
        for p in paths[c.name]
        if p.holds_jobs
        for w in config.workloads_on(c)
        if w.namespace == p.namespace
    }
    assert solid == expected
    assert ("clusters/local/workloads/namespaces/ml-workloads", "bert-finetune") in solid


def test_argocd_sync_objects_show_their_wave_and_destination() -> None:
    nodes, _ = mermaid_graph(graph(SEEDS, "mermaid"))
    by_name = {lines[0]: lines[1:] for lines in nodes.values()}
    assert by_name["Application eks-training-infrastructure"] == [
        "wave 0",
        "applied to the management cluster",
    ]
    assert by_name["Application eks-training-storage"] == ["wave 1"]
    assert by_name["Application local-workloads-ml-workloads"] == ["wave 2"]
    assert by_name["resnet-ddp"] == ["Job in distributed-training"]
    assert by_name["local"] == ["local cluster, synced from bootstrap/local/local"]


def test_flux_kustomizations_and_operator_paths() -> None:
    config_path = CONFIGS / "runtimes.yaml"
    config = load_config_file(config_path)
    nodes, edges = mermaid_graph(graph(config_path, "mermaid"))
    names = [lines[0] for lines in nodes.values()]
    for cluster_names in rendered_sync_names(config).values():
        for sync_name in cluster_names:
            assert names.count(f"Kustomization {sync_name}") == 1
    operator_paths = [lines for lines in nodes.values() if len(lines) == 2 and "@" in lines[1]]
    assert operator_paths, "runtimes.yaml installs operators"
    assert len({tuple(lines) for lines in operator_paths}) == len(operator_paths)
    # a path shared by several clusters' operators is one node, synced by each of them
    shared = [
        node_id
        for node_id, lines in nodes.items()
        if lines in operator_paths
        and sum(1 for _, arrow, target in edges if target == node_id and arrow == "-->") > 1
    ]
    assert shared


def test_output_is_deterministic() -> None:
    for output_format in ("mermaid", "dot"):
        assert graph(SEEDS, output_format) == graph(SEEDS, output_format)


def test_dot_has_the_same_nodes_and_edges_as_mermaid() -> None:
    _, mermaid_edges = mermaid_graph(graph(SEEDS, "mermaid"))
    dot = graph(SEEDS, "dot")
    dot_edges = re.findall(r"^    (\w+) -> (\w+)( \[style=dashed)?", dot, re.MULTILINE)
    assert [(a, b, bool(dashed)) for a, b, dashed in dot_edges] == [
        (a, b, arrow != "-->") for a, arrow, b in mermaid_edges
    ]


@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` is not installed (Debian: apt-get install graphviz)",
)
def test_dot_parses_with_graphviz() -> None:
    for config in (SEEDS, CONFIGS / "runtimes.yaml", CONFIGS / "vision-flux.yaml"):
        run = subprocess.run(
            ["dot", "-Tsvg"], input=graph(config, "dot"), capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""
        assert "<svg" in run.stdout
    svg = graph(SEEDS, "svg")
    assert svg.startswith("<?xml")
    assert ">resnet&#45;ddp</text>" in svg  # Graphviz writes `-` as an entity


def test_svg_without_graphviz_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner(env={"PATH": str(tmp_path)}).invoke(
        main, ["graph", "--config", str(SEEDS), "--format", "svg"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("mlgitops: --format svg needs Graphviz's `dot` on PATH")


def test_labels_are_escaped() -> None:
    from generator.graph import Graph, Node, to_dot, to_mermaid

    picture = Graph([Node("c0", "cluster", ('a "quoted" name', "back\\slash"))], [])
    assert 'c0["a #quot;quoted#quot; name<br/>back\\slash"]' in to_mermaid(picture)
    assert 'c0 [label="a \\"quoted\\" name\\nback\\\\slash"' in to_dot(picture)
