"""Topology-aware placement, read back from generated trees built with kustomize and
checked against the strict schemas of the pinned releases: Kueue's Topology objects and
the flavors that name them, the podset annotations on every pod template Kueue reads,
JobSet's exclusive placement as its webhook turns it into pod affinity, the cluster
model's verdicts (MLG024) and what the config refuses."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import build_and_validate, refused, schema_args

from generator import cloud_facts
from generator.cli import main
from generator.cluster import admission, controllers
from generator.cluster.nodes import Amounts
from generator.cluster.placement import PodShape
from generator.render import topology

Objects = list[dict[str, Any]]
LAYERS = [f"topology.k8s.aws/network-node-layer-{n}" for n in (1, 2, 3)]
GCE = [f"cloud.google.com/gce-topology-{level}" for level in ("block", "subblock", "host")]
HOST = "kubernetes.io/hostname"
REQUIRED = "kueue.x-k8s.io/podset-required-topology"
PREFERRED = "kueue.x-k8s.io/podset-preferred-topology"
EXCLUSIVE = "alpha.jobset.sigs.k8s.io/exclusive-topology"


def _workload(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "training",
        "framework": "pytorch",
        "image": "registry.example.com/ml/llm:1.0.0",
        "command": ["python", "train.py"],
        "workers": 2,
        "resources": {"cpu": "2", "memory": "8Gi"},
        **fields,
    }


GPU8 = {"cpu": "32", "memory": "256Gi", "gpu": 8}
CONFIG: dict[str, Any] = {
    "name": "fabric",
    "repo": {"url": "https://github.com/acme/fabric-gitops.git"},
    "gitops": "argocd",
    "kubernetesVersion": "1.34",
    "workloads": [
        _workload(
            "pretrain",
            runtime="jobset",
            queue="gpu-jobs",
            resources=GPU8,
            topology={"required": "layer-3"},
            clusters=["eks-p5"],
        ),
        _workload(
            "finetune",
            runtime="pytorchjob",
            queue="gpu-jobs",
            resources=GPU8,
            topology={"preferred": "layer-1"},
            clusters=["eks-p5"],
        ),
        _workload(
            "sft",
            runtime="trainjob",
            queue="gpu-jobs",
            resources=GPU8,
            topology={"preferred": "block"},
            clusters=["gke-a4"],
        ),
        _workload("packed", queue="cpu-jobs", topology={"required": "node"}),
        _workload("plain", queue="cpu-jobs"),
        _workload(
            "exclusive",
            runtime="jobset",
            resources=GPU8,
            topology={"exclusive": "layer-3"},
            clusters=["eks-p5"],
        ),
    ],
    "clusters": [
        {
            "name": "eks-p5",
            "cloud": "eks",
            "region": "us-east-1",
            "subnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
            "nodeGroups": [
                {
                    "name": "p5",
                    "instanceTypes": ["p5.48xlarge"],
                    "minSize": 0,
                    "desiredSize": 4,
                    "maxSize": 4,
                },
                {
                    "name": "cpu",
                    "instanceTypes": ["m6i.2xlarge"],
                    "minSize": 1,
                    "desiredSize": 2,
                    "maxSize": 4,
                },
            ],
        },
        {
            "name": "gke-a4",
            "cloud": "gke",
            "project": "acme-ml",
            "location": "us-central1-b",
            "nodePools": [
                {
                    "name": "a4",
                    "machineType": "a4-highgpu-8g",
                    "nodeCount": 2,
                    "accelerator": {"type": "nvidia-b200", "count": 8},
                    "capacity": {"cpu": 224, "memory": "3968Gi", "gpus": 8},
                },
                {"name": "cpu", "machineType": "n2-standard-8", "nodeCount": 2},
            ],
        },
        {"name": "laptop", "cloud": "local", "workers": 2},
    ],
}


def generate(folder: Path, config: dict[str, Any]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "mlgitops.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    out = folder / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return config_file, out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate(tmp_path_factory.mktemp("topology"), CONFIG)


@pytest.fixture(scope="module")
def built(tree: tuple[Path, Path]) -> dict[str, Objects]:
    _, out = tree
    return {
        path.relative_to(out).as_posix(): objects
        for path, objects in build_and_validate(out, "1.34").items()
    }


def kinds(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def training(built: dict[str, Objects], cluster: str, name: str) -> dict[str, Any]:
    prefix = f"clusters/{cluster}/workloads/namespaces/"
    (found,) = [
        o
        for path, objects in built.items()
        if path.startswith(prefix)
        for o in objects
        if o["metadata"]["name"] == name and o["kind"] in controllers.TRAINING_KINDS
    ]
    return found


# --- Kueue's Topology objects and the flavors that name them --------------------------


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        (
            "eks-p5",
            {
                "p5": ("fabric-ec2-3-layers", [*LAYERS, HOST]),
                "cpu": ("fabric-nodes", [HOST]),
            },
        ),
        (
            "gke-a4",
            {"a4": ("fabric-gce-blocks", [*GCE, HOST]), "cpu": ("fabric-nodes", [HOST])},
        ),
        ("laptop", {"kind-nodes": ("fabric-nodes", [HOST])}),
    ],
)
def test_each_flavor_names_the_topology_its_nodes_carry(
    built: dict[str, Objects], cluster: str, expected: dict[str, tuple[str, list[str]]]
) -> None:
    platform = built[f"clusters/{cluster}/platform"]
    topologies = kinds(platform, "Topology")
    flavors = kinds(platform, "ResourceFlavor")
    assert set(flavors) == set(expected)
    for flavor, (name, levels) in expected.items():
        spec = flavors[flavor]["spec"]
        assert spec["topologyName"] == name
        assert spec["nodeLabels"], "a TAS flavor needs a nodeLabel (the CRD's rule)"
        assert [lv["nodeLabel"] for lv in topologies[name]["spec"]["levels"]] == levels
    assert set(topologies) == {name for name, _ in expected.values()}
    assert all(t["apiVersion"] == "kueue.x-k8s.io/v1beta2" for t in topologies.values())


def test_the_levels_come_from_the_instance_type_tables() -> None:
    assert cloud_facts.ec2_topology_labels("p5.48xlarge") == tuple(LAYERS)
    assert cloud_facts.ec2_topology_labels("p6-b200.48xlarge")[-1].endswith("layer-4")
    assert cloud_facts.ec2_topology_labels("g6e.xlarge") == tuple(LAYERS)
    assert cloud_facts.ec2_topology_labels("g5.2xlarge") == ()
    assert cloud_facts.ec2_topology_labels("m6i.2xlarge") == ()
    assert cloud_facts.gce_topology_labels("a3-ultragpu-8g") == tuple(GCE)
    assert cloud_facts.gce_topology_labels("a4-highgpu-8g") == tuple(GCE)
    assert cloud_facts.gce_topology_labels("a3-highgpu-8g") == ()
    assert cloud_facts.gce_topology_labels("n2-standard-8") == ()


def test_without_a_topology_request_no_cluster_gets_tas(tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    for workload in config["workloads"]:
        workload.pop("topology", None)
    _, out = generate(tmp_path, config)
    platform = out / "clusters/eks-p5/platform"
    assert not (platform / "topology.yaml").exists()
    flavors = list(yaml.safe_load_all((platform / "resourceflavor.yaml").read_text()))
    assert not any("topologyName" in f["spec"] for f in flavors)


def test_the_argocd_project_allows_topologies(built: dict[str, Objects]) -> None:
    projects = [o for objects in built.values() for o in objects if o["kind"] == "AppProject"]
    allowed = {
        (k["group"], k["kind"]) for p in projects for k in p["spec"]["clusterResourceWhitelist"]
    }
    assert ("kueue.x-k8s.io", "Topology") in allowed


# --- the annotation on every pod template Kueue reads ---------------------------------


@pytest.mark.parametrize(
    ("cluster", "name", "annotation", "label", "roles"),
    [
        ("eks-p5", "pretrain", REQUIRED, LAYERS[2], {"worker"}),
        ("eks-p5", "finetune", PREFERRED, LAYERS[0], {"worker"}),
        ("laptop", "packed", REQUIRED, HOST, {""}),
        ("eks-p5", "packed", REQUIRED, HOST, {""}),
    ],
)
def test_every_pod_template_carries_the_request(
    built: dict[str, Objects],
    cluster: str,
    name: str,
    annotation: str,
    label: str,
    roles: set[str],
) -> None:
    obj = training(built, cluster, name)
    groups = controllers.pod_groups(obj)
    assert {g.role for g in groups} == roles
    assert all(g.annotations[annotation] == label for g in groups)
    assert all(a not in g.annotations for g in groups for a in {REQUIRED, PREFERRED} - {annotation})


def test_a_trainjob_gets_it_through_its_runtime(built: dict[str, Objects]) -> None:
    trainjob = training(built, "gke-a4", "sft")
    runtimes = kinds(built["clusters/gke-a4/platform"], "ClusterTrainingRuntime")
    groups = controllers.pod_groups(trainjob, runtimes)
    assert groups and all(g.annotations[PREFERRED] == GCE[0] for g in groups)


def test_exclusive_placement_becomes_pod_affinity_per_domain(built: dict[str, Objects]) -> None:
    jobset = training(built, "eks-p5", "exclusive")
    assert jobset["metadata"]["annotations"][EXCLUSIVE] == LAYERS[2]
    for group in controllers.pod_groups(jobset):
        affinity = group.spec["affinity"]
        same = affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        other = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert [t["topologyKey"] for t in same + other] == [LAYERS[2], LAYERS[2]]


def test_a_trainjob_gets_exclusive_placement_through_its_runtime(tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    sft = config["workloads"][2]
    sft.pop("queue")
    sft["topology"] = {"exclusive": "block"}
    _, out = generate(tmp_path, config)
    built = {
        path.relative_to(out).as_posix(): objects
        for path, objects in build_and_validate(out, "1.34").items()
    }
    runtimes = kinds(built["clusters/gke-a4/platform"], "ClusterTrainingRuntime")
    (runtime,) = runtimes.values()
    assert runtime["spec"]["template"]["metadata"]["annotations"] == {EXCLUSIVE: GCE[0]}
    trainjob = training(built, "gke-a4", "sft")
    groups = controllers.pod_groups(trainjob, runtimes)
    assert groups
    for group in groups:
        terms = group.spec["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert [t["topologyKey"] for t in terms] == [GCE[0]]


# --- the cluster model --------------------------------------------------------------


def validate(config: Path, out: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(out),
            "--config",
            str(config),
            *schema_args(),
            "--no-cache",
            "--output",
            "json",
        ],
    )
    return result.exit_code, json.loads(result.stdout)


def test_validate_places_every_topology_request(tree: tuple[Path, Path]) -> None:
    code, report = validate(*tree)
    assert code == 0, report["problems"]
    landings = {
        (cluster, landing["workload"]): landing
        for cluster, found in report["clusters"].items()
        for landing in found
    }
    assert landings[("eks-p5", "JobSet/pretrain")]["nodeGroup"] == "p5"
    assert landings[("eks-p5", "JobSet/exclusive")]["nodeGroup"] == "p5"
    assert landings[("gke-a4", "TrainJob/sft")]["flavor"] == "a4"
    # TAS is implied for a workload that asks for none: the queue has only TAS flavors
    assert landings[("eks-p5", "Job/plain")]["flavor"] == "cpu"


def _model_problems(tree: tuple[Path, Path], tmp_path: Path, edit: Any) -> list[str]:
    config, pristine = tree
    out = tmp_path / "tree"
    shutil.copytree(pristine, out)
    edit(out)
    code, report = validate(config, out)
    assert code == 1
    return [f"{p['object']}: {p['message']}" for p in report["problems"] if p["rule"] == "MLG024"]


def _edit(path: Path, change: Any) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        change(document)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_a_level_the_nodes_lack_hides_them_from_kueue(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    def layer_four(obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "fabric-ec2-3-layers":
            obj["spec"]["levels"].insert(3, {"nodeLabel": cloud_facts.EKS_NETWORK_LAYERS[3]})

    found = _model_problems(
        tree,
        tmp_path,
        lambda out: _edit(out / "clusters/eks-p5/platform/topology.yaml", layer_four),
    )
    assert any(
        p.startswith("ResourceFlavor/p5: ") and "network-node-layer-4" in p for p in found
    ), found


def test_a_flavor_without_the_level_never_admits_the_request(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    def hosts_only(obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "p5":
            obj["spec"]["topologyName"] = "fabric-nodes"

    found = _model_problems(
        tree,
        tmp_path,
        lambda out: _edit(out / "clusters/eks-p5/platform/resourceflavor.yaml", hosts_only),
    )
    assert any(
        p.startswith("JobSet/pretrain: ") and f"has no level {LAYERS[2]}" in p for p in found
    ), found


def test_a_flavor_without_a_topology_breaks_both_kinds_of_workload(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    """One flavor without topologyName: the queue is no longer TAS-only, so requests get
    only TAS flavors and workloads without one get none of them."""

    def untopologied(obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "p5":
            del obj["spec"]["topologyName"]

    config, pristine = tree
    out = tmp_path / "tree"
    shutil.copytree(pristine, out)
    _edit(out / "clusters/eks-p5/platform/resourceflavor.yaml", untopologied)
    code, report = validate(config, out)
    assert code == 1
    by_rule: dict[str, list[str]] = {}
    for p in report["problems"]:
        by_rule.setdefault(p["rule"], []).append(f"{p['object']}: {p['message']}")
    assert any(
        p.startswith("JobSet/pretrain: ") and "p5: it has no topologyName" in p
        for p in by_rule["MLG024"]
    ), by_rule
    assert any(
        p.startswith("Job/plain: ") and "takes only pods that ask for one" in p
        for p in by_rule["MLG016"]
    ), by_rule


def test_a_pod_set_that_requires_one_node_must_fit_one(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    def larger(obj: dict[str, Any]) -> None:
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container["resources"] = {"requests": {"cpu": "5", "memory": "8Gi"}}
            container["resources"]["limits"] = dict(container["resources"]["requests"])

    found = _model_problems(
        tree, tmp_path, lambda out: _edit(out / "base/packed/job.yaml", larger)
    )  # 2 pods x 5 CPU: each fits an m6i.2xlarge or n2-standard-8, both together do not
    assert found and all(p.startswith("Job/packed: ") for p in found), found
    assert all("only onto one node" in p for p in found), found


def test_co_located_pods_in_a_tas_queue_must_ask_for_one_node(tmp_path: Path) -> None:
    """kind shares a checkpoint only on one node (pod affinity), which Kueue's TAS does
    not read: with two workers it may split the pods."""
    config = copy.deepcopy(CONFIG)
    plain = config["workloads"][4]
    plain.update(clusters=["laptop"], checkpoint={"size": "1Gi", "mountPath": "/ckpt"})
    config_file, out = generate(tmp_path / "split", config)
    code, report = validate(config_file, out)
    assert code == 1
    found = [p for p in report["problems"] if p["rule"] == "MLG024"]
    assert [p["object"] for p in found] == ["Job/plain"], found
    assert "topology: {required: node}" in found[0]["message"]
    plain["topology"] = {"required": "node"}
    config_file, out = generate(tmp_path / "asked", config)
    code, report = validate(config_file, out)
    assert code == 0, report["problems"]


# --- Kueue's admission rules for TAS, case by case -----------------------------------


def _pod_set(topology: tuple[str, str] | None) -> admission.PodSet:
    return admission.PodSet("pods", 2, PodShape(Amounts(1000, 2**30, 0)), topology)


def _queue(*flavors: str) -> admission.ClusterQueue:
    quota = Amounts(64000, 64 * 2**30, 0)
    return admission.ClusterQueue(
        "q", None, ((frozenset({"cpu", "memory"}), tuple((f, quota) for f in flavors)),)
    )


def _flavor(name: str, topology_name: str | None) -> admission.Flavor:
    return admission.Flavor(name, {"pool": name}, (), (), topology_name)


TOPOLOGIES = {"net": [LAYERS[0], HOST], "hosts": [HOST]}


@pytest.mark.parametrize(
    ("flavors", "asks", "admitted"),
    [
        # a mixed queue: a request takes only a TAS flavor, no request only the other
        ([("plain", None), ("tas", "net")], ("required", LAYERS[0]), "tas"),
        ([("tas", "net"), ("plain", None)], None, "plain"),
        # only TAS flavors: a pod set that asks for nothing is admitted, TAS implied
        ([("tas", "net")], None, "tas"),
        # the level must be one of the flavor's Topology
        ([("hosts", "hosts"), ("tas", "net")], ("preferred", LAYERS[0]), "tas"),
        ([("hosts", "hosts")], ("required", LAYERS[0]), None),
        ([("gone", "missing")], ("required", HOST), None),
    ],
)
def test_kueue_matches_pod_sets_and_flavors_for_tas(
    flavors: list[tuple[str, str | None]], asks: tuple[str, str] | None, admitted: str | None
) -> None:
    known = {name: _flavor(name, topology_name) for name, topology_name in flavors}
    result = admission.admit([_pod_set(asks)], _queue(*known), known, TOPOLOGIES)
    assert result.flavors.get("pods") == admitted, result.problem
    assert (result.problem is None) == (admitted is not None)


def test_level_names_mean_one_label_each() -> None:
    labels: dict[str, set[str]] = {}
    for levels in cloud_facts.TOPOLOGY_LEVELS.values():
        for name, label in levels.items():
            labels.setdefault(name, set()).add(label)
    assert all(len(found) == 1 for found in labels.values()), labels
    assert topology.level_label("node") == HOST


# --- what the config refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["workloads"][4].update(topology={}),
            "workloads[4].topology: give exactly one of required, preferred or exclusive",
        ),
        (
            lambda c: c["workloads"][4].update(topology={"required": "node", "preferred": "node"}),
            "exactly one of required, preferred or exclusive (got required, preferred)",
        ),
        (
            lambda c: c["workloads"][5].update(topology={"required": "layer-3"}),
            "workloads[5].topology.required: required topology is Kueue's Topology-Aware "
            "Scheduling, which places only what it admits: give the workload a queue",
        ),
        (
            lambda c: c["workloads"][4].update(topology={"exclusive": "node"}),
            "workloads[4].topology.exclusive: exclusive placement is JobSet's "
            "(alpha.jobset.sigs.k8s.io/exclusive-topology): use runtime jobset or trainjob, "
            "not job",
        ),
        (
            lambda c: c["workloads"][0].update(topology={"required": "block"}),
            "workloads[0].topology.required: 'block' is not a topology level of eks (cluster "
            "'eks-p5' runs the workload): eks has layer-1, layer-2, layer-3, layer-4, node",
        ),
        (
            lambda c: c["workloads"][0].update(topology={"required": "layer-4"}),
            "no node group of cluster 'eks-p5' has nodes labelled "
            "topology.k8s.aws/network-node-layer-4 (p5: p5.48xlarge, cpu: m6i.2xlarge)",
        ),
        (
            lambda c: c["workloads"][4].update(topology={"preferred": "layer-1"}),
            "'layer-1' is not a topology level of gke",
        ),
        (
            lambda c: c["workloads"][2].update(
                trainingRuntime="mine", topology={"preferred": "block"}
            ),
            "workloads[2].topology.preferred: a trainjob's pod templates are its runtime's",
        ),
        (
            lambda c: c["workloads"][5].update(queue="gpu-jobs"),
            "workloads[5].topology.exclusive: cluster 'eks-p5' queues with Topology-Aware "
            "Scheduling",
        ),
        (
            lambda c: c["workloads"].append(
                _workload(
                    "three-jobs",
                    runtime="jobset",
                    framework="tensorflow",
                    parameterServers=1,
                    topology={"exclusive": "node"},
                    clusters=["laptop"],
                )
            ),
            "workloads[6].topology.exclusive: exclusive per node gives each of the 3 Jobs of "
            "the set (chief, worker, ps) a node of its own, and cluster 'laptop' has 2",
        ),
        (
            lambda c: c["workloads"][3].update(resources={"cpu": "5", "memory": "8Gi"}),
            "workloads[3].topology.required: Kueue admits the 2 pods of a role only onto one "
            "node, and no node of cluster 'eks-p5' can give them 10 CPU and 16Gi memory",
        ),
        (
            lambda c: c["workloads"][4].update(topology={"required": "rack"}),
            "workloads[4].topology.required",
        ),
    ],
    ids=[
        "none",
        "two",
        "no-queue",
        "exclusive-job",
        "other-cloud",
        "no-such-layer",
        "eks-level-on-gke",
        "own-runtime",
        "exclusive-in-tas-queue",
        "too-few-nodes",
        "too-large-for-one-node",
        "unknown-level",
    ],
)
def test_what_the_config_refuses(tmp_path: Path, edit: Any, expected: str) -> None:
    config = copy.deepcopy(CONFIG)
    edit(config)
    output = refused(tmp_path, config)
    assert expected in output, output
    assert "mlgitops.yaml:" in output, output  # names the file, line and column
