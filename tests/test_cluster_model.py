"""`validate` knows what each cluster would do with the tree: every defect the review of
the real controllers found, put back into a generated tree by a hand edit or a custom
patch, is reported with what to change; clean trees stay clean, every pod placed.

Each case generates the runtimes tree (every runtime, queues, EKS + GKE + kind), breaks
one thing the way a person would, and runs the real `mlgitops validate` (real kustomize
builds) with the config, so the model places pods on the config's nodes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS, schema_args

from generator.cli import main

RUNTIMES = CONFIGS / "runtimes.yaml"
Edit = Callable[[Path], None]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runtimes") / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(RUNTIMES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def validate(tree: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(tree),
            "--config",
            str(RUNTIMES),
            *schema_args(),
            "--no-cache",
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def copy_of(pristine: Path, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    return tree


def edit_yaml(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    change(documents)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def custom_patch(tree: Path, cluster: str, target: dict[str, str], patch: Any) -> None:
    """A patch in the cluster's own custom/ Component, as the README shows."""
    folder = tree / f"clusters/{cluster}/custom"
    (folder / "patch.yaml").write_text(yaml.safe_dump(patch, sort_keys=False))
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    kustomization["patches"] = [{"path": "patch.yaml", "target": target}]
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))


def problems(stdout: str, rule: str) -> list[str]:
    return [
        line for line in stdout.splitlines() if f"[{rule}] " in line and "] waived: " not in line
    ]


def test_a_clean_tree_places_every_pod(pristine: Path) -> None:
    code, stdout, stderr = validate(pristine, "--output", "json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert report["problems"] == []
    clusters = report["clusters"]
    assert sorted(clusters) == ["eks-a", "gke-b", "laptop"]
    for cluster, landings in clusters.items():
        workloads = {(item["namespace"], item["workload"]) for item in landings}
        assert len(workloads) == 5, (cluster, workloads)  # every runtime of the config
        for item in landings:
            assert item["nodeGroup"], (cluster, item)
            assert item["whyNot"] is None
    eks = {(i["workload"], i["pods"]): i for i in clusters["eks-a"]}
    # GPU pods on the GPU group, CPU pods on the CPU group; Kueue's flavors say the same.
    assert eks[("PyTorchJob/torch-elastic", "worker")]["nodeGroup"] == "gpu"
    assert eks[("PyTorchJob/torch-elastic", "worker")]["flavor"] == "gpu"
    assert eks[("Job/plain-ddp", "pods")]["nodeGroup"] == "cpu"
    assert eks[("Job/plain-ddp", "pods")]["flavor"] == "cpu"
    assert eks[("TFJob/tf-ps", "ps")]["count"] == 2


def test_a_flavor_that_selects_no_node(pristine: Path, tmp_path: Path) -> None:
    """The review's GKE flavor: `l4`, while the pool was created as `gke-b-l4`."""
    tree = copy_of(pristine, tmp_path)

    def rename(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            if doc["kind"] == "ContainerNodePool":
                doc["spec"]["resourceID"] = "gke-b-l4"

    edit_yaml(tree / "clusters/gke-b/infrastructure/containernodepool.yaml", rename)
    code, stdout, _ = validate(tree)
    assert code == 1
    (found,) = problems(stdout, "MLG011")
    assert found.startswith("clusters/gke-b/platform: ResourceFlavor/l4: spec.nodeLabels:")
    assert "selects nodes labelled cloud.google.com/gke-nodepool=l4" in found
    # ...and the queued pods Kueue admits to it have nowhere to go.
    assert problems(stdout, "MLG010")


def test_a_taint_without_toleration(pristine: Path, tmp_path: Path) -> None:
    """The review's CPU job on tainted GPU nodes: the GPU flavor first, without the taint."""
    tree = copy_of(pristine, tmp_path)

    def gpu_first_untainted(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            if doc["kind"] == "ResourceFlavor":
                doc["spec"].pop("nodeTaints", None)
            if doc["kind"] == "ClusterQueue":
                doc["spec"]["resourceGroups"][0]["flavors"].reverse()

    for name in ("resourceflavor.yaml", "clusterqueue.yaml"):
        edit_yaml(tree / f"clusters/eks-a/platform/{name}", gpu_first_untainted)
    code, stdout, _ = validate(tree)
    assert code == 1
    (flavor,) = problems(stdout, "MLG012")
    assert (
        "ResourceFlavor/gpu: spec.nodeTaints: [MLG012] selects node group 'gpu', tainted" in flavor
    )
    (placement,) = [p for p in problems(stdout, "MLG010") if "plain-ddp" in p]
    assert placement.startswith("clusters/eks-a/workloads/namespaces/training: Job/plain-ddp:")
    assert "as Kueue admits them to flavor 'gpu'" in placement
    assert "does not tolerate their taint nvidia.com/gpu=true:NoSchedule" in placement


MEMORY = "/spec/tfReplicaSpecs/Worker/template/spec/containers/0/resources"
BIGGER_WORKERS = [
    {"op": "replace", "path": f"{MEMORY}/requests/memory", "value": "64Gi"},
    {"op": "replace", "path": f"{MEMORY}/limits/memory", "value": "64Gi"},
]


def test_a_pod_larger_than_any_node(pristine: Path, tmp_path: Path) -> None:
    tree = copy_of(pristine, tmp_path)
    custom_patch(tree, "eks-a", {"kind": "TFJob", "name": "tf-ps"}, BIGGER_WORKERS)
    code, stdout, _ = validate(tree)
    assert code == 1
    found = [p for p in problems(stdout, "MLG010") if "tf-ps" in p]
    assert len(found) == 1
    assert found[0].startswith(
        "clusters/eks-a/workloads/namespaces/research: TFJob/tf-ps: pods 'worker':"
    )
    assert "3 pod(s) fit no node of cluster 'eks-a'" in found[0]
    assert (
        "node group 'cpu': it asks for 2 CPU, 64Gi memory, more than a node gives pods "
        "(7775m CPU, 31Gi memory)"
    ) in found[0]


def test_no_node_for_system_pods(pristine: Path, tmp_path: Path) -> None:
    """The review's default cluster: only tainted nodes, so CoreDNS runs nowhere."""
    tree = copy_of(pristine, tmp_path)

    def taint_every_group(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            if doc["kind"] == "Nodegroup":
                doc["spec"]["taints"] = [
                    {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
                ]

    edit_yaml(tree / "clusters/eks-a/infrastructure/nodegroup.yaml", taint_every_group)
    code, stdout, _ = validate(tree)
    assert code == 1
    found = problems(stdout, "MLG013")
    assert any(
        p.startswith("clusters/eks-a/infrastructure: Cluster/eks-a: nodes:")
        and "no node can run kube-system/coredns (cluster DNS" in p
        for p in found
    ), found
    assert any("kueue-system/kueue-controller-manager" in p for p in found), found


def test_a_missing_storage_class_and_an_access_mode_it_cannot_give(
    pristine: Path, tmp_path: Path
) -> None:
    tree = copy_of(pristine, tmp_path)
    claim = {"kind": "PersistentVolumeClaim", "name": "torch-elastic-checkpoint"}
    custom_patch(
        tree,
        "gke-b",
        claim,
        [{"op": "replace", "path": "/spec/storageClassName", "value": "fast-ssd"}],
    )
    custom_patch(
        tree,
        "laptop",
        claim,
        [{"op": "replace", "path": "/spec/accessModes", "value": ["ReadWriteMany"]}],
    )
    code, stdout, _ = validate(tree)
    assert code == 1
    found = problems(stdout, "MLG014")
    gke = [p for p in found if p.startswith("clusters/gke-b/")]
    assert len(gke) == 1
    assert "asks for StorageClass 'fast-ssd', which this cluster does not have" in gke[0]
    laptop = [p for p in found if p.startswith("clusters/laptop/")]
    assert len(laptop) == 1
    assert (
        "asks for ReadWriteMany, which StorageClass 'standard' (rancher.io/local-path)" in laptop[0]
    )


def test_a_missing_queue_and_a_missing_runtime(pristine: Path, tmp_path: Path) -> None:
    tree = copy_of(pristine, tmp_path)
    custom_patch(
        tree,
        "eks-a",
        {"kind": "Job", "name": "plain-ddp"},
        [
            {
                "op": "replace",
                "path": "/metadata/labels/kueue.x-k8s.io~1queue-name",
                "value": "cpu-jobz",
            }
        ],
    )

    def drop_runtime(docs: list[dict[str, Any]]) -> None:
        docs[:] = [d for d in docs if d["kind"] != "ClusterTrainingRuntime"]

    edit_yaml(tree / "clusters/gke-b/platform/clustertrainingruntime.yaml", drop_runtime)
    code, stdout, _ = validate(tree)
    assert code == 1
    found = problems(stdout, "MLG015")
    assert any(
        "Job/plain-ddp: metadata.labels:" in p and "waits in LocalQueue 'cpu-jobz'" in p
        for p in found
    ), found
    assert any(
        p.startswith("clusters/gke-b/workloads/namespaces/llm: TrainJob/llm-sft:")
        and "names the training runtime 'ml-runtimes-llm-sft'" in p
        for p in found
    ), found


def test_quota_that_can_never_admit(pristine: Path, tmp_path: Path) -> None:
    tree = copy_of(pristine, tmp_path)

    def shrink(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            for flavor in doc["spec"]["resourceGroups"][0]["flavors"]:
                for resource in flavor["resources"]:
                    if resource["name"] == "nvidia.com/gpu":
                        resource["nominalQuota"] = 1

    edit_yaml(tree / "clusters/eks-a/platform/clusterqueue.yaml", shrink)
    code, stdout, _ = validate(tree)
    assert code == 1
    found = problems(stdout, "MLG016")
    assert any(
        "PyTorchJob/torch-elastic" in p
        and "no flavor of ClusterQueue 'ml-runtimes' can ever admit pod set 'worker'" in p
        and "its nvidia.com/gpu quota is 1, the pods ask for 3" in p
        for p in found
    ), found


def test_a_waiver_with_a_reason_silences_a_model_rule(pristine: Path, tmp_path: Path) -> None:
    tree = copy_of(pristine, tmp_path)
    waiver = {
        "op": "add",
        "path": "/metadata/annotations/mlgitops.io~1waive-mlg010",
        "value": "bigger nodes join before this runs",
    }
    custom_patch(tree, "eks-a", {"kind": "TFJob", "name": "tf-ps"}, [*BIGGER_WORKERS, waiver])
    _, stdout, _ = validate(tree)
    assert not [p for p in problems(stdout, "MLG010") if "tf-ps" in p], stdout
    assert "[MLG010] waived: bigger nodes join before this runs" in stdout


def test_the_seeds_tree_places_every_pod(tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    assert (
        CliRunner().invoke(main, ["generate", "--config", str(SEEDS), "--out", str(out)]).exit_code
        == 0
    )
    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(out),
            "--config",
            str(SEEDS),
            *schema_args(),
            "--no-cache",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    clusters = json.loads(result.stdout)["clusters"]
    eks = {(i["workload"], i["pods"]): i["nodeGroup"] for i in clusters["eks-training"]}
    assert eks[("Job/resnet-ddp", "pods")] == "gpu-workers"
    assert eks[("Job/bert-finetune", "pods")] == "system"


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_tree_places_every_pod(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    generated = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert generated.exit_code == 0, generated.output
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
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    configured = yaml.safe_load(config.read_text())
    assert sorted(report["clusters"]) == sorted(c["name"] for c in configured["clusters"])
    unplaced = [i for items in report["clusters"].values() for i in items if not i["nodeGroup"]]
    assert unplaced == []


def test_a_cached_run_reports_what_a_cold_run_does(pristine: Path, tmp_path: Path) -> None:
    """The model's facts are kept beside each build's result: a run that builds nothing
    still finds every defect."""
    tree = copy_of(pristine, tmp_path)
    custom_patch(tree, "eks-a", {"kind": "TFJob", "name": "tf-ps"}, BIGGER_WORKERS)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    command = ["validate", str(tree), "--config", str(RUNTIMES), *schema_args()]
    cold = CliRunner().invoke(main, [*command, *cache])
    warm = CliRunner().invoke(main, [*command, *cache])
    assert cold.exit_code == warm.exit_code == 1
    assert "0 from cache" in cold.stderr and "0 kustomize runs" in warm.stderr
    assert warm.stdout == cold.stdout
    assert problems(warm.stdout, "MLG010")


def test_generate_warns_of_what_the_model_finds(tmp_path: Path) -> None:
    """A queued run larger than the quota a cluster's nodes give: the config is right,
    and Kueue would never admit it. `generate` says so, and still writes the tree."""
    text = RUNTIMES.read_text()
    old = "{name: gpu, instanceTypes: [g6.2xlarge], minSize: 0, desiredSize: 4, maxSize: 4}"
    assert old in text
    config = tmp_path / "small.yaml"
    config.write_text(text.replace(old, old.replace("desiredSize: 4", "desiredSize: 2")))
    result = CliRunner().invoke(
        main, ["generate", "--config", str(config), "--out", str(tmp_path / "t")]
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "[MLG016]" in line]
    assert warnings == [
        "mlgitops: warning: clusters/eks-a/workloads/namespaces/training: "
        "PyTorchJob/torch-elastic: metadata.labels: [MLG016] no flavor of ClusterQueue "
        "'ml-runtimes' can ever admit pod set 'worker' (cpu: its nvidia.com/gpu quota is 0, "
        "the pods ask for 3; gpu: its nvidia.com/gpu quota is 2, the pods ask for 3)"
    ]
    assert (tmp_path / "t/base/torch-elastic").is_dir()


# Datasets: what the CSI drivers add to the pods and nodes of the seeds' clusters.


@pytest.fixture(scope="module")
def seeds_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(SEEDS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def validate_seeds(tree: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["validate", str(tree), "--config", str(SEEDS), *schema_args(), "--no-cache"]
    )
    return result.exit_code, result.stdout


def trainer_cpu(cpu: str) -> list[dict[str, Any]]:
    where = "/spec/template/spec/containers/0/resources"
    return [
        {"op": "replace", "path": f"{where}/requests/cpu", "value": cpu},
        {"op": "replace", "path": f"{where}/limits/cpu", "value": cpu},
    ]


RESNET = {"kind": "Job", "name": "resnet-ddp"}
WITHOUT_FUSE = {"op": "remove", "path": "/spec/template/metadata/annotations/gke-gcsfuse~1volumes"}


def test_the_gke_fuse_sidecar_counts_in_the_pods_size(seeds_tree: Path, tmp_path: Path) -> None:
    """7 CPU fit a workers node (7910m for pods); with the 1 CPU and 2Gi the pod's
    annotations give the sidecar GKE injects for the dataset, the pod does not."""
    tree = copy_of(seeds_tree, tmp_path)
    custom_patch(tree, "gke-training", RESNET, trainer_cpu("7"))
    code, stdout = validate_seeds(tree)
    assert code == 1
    (found,) = [p for p in problems(stdout, "MLG010") if "gke-training" in p]
    assert found == (
        "clusters/gke-training/workloads/namespaces/distributed-training: Job/resnet-ddp: "
        "pods 'pods': [MLG010] 3 pod(s) fit no node of cluster 'gke-training': "
        "node group 'system': its required node affinity matches none of these nodes' "
        "labels, it asks for 8 CPU, 18Gi memory, 1 GPU (1 CPU, 2Gi memory of it for the "
        "gke-gcsfuse-sidecar GKE injects), more than a node gives pods (7910m CPU, 28.3Gi "
        "memory); node group 'workers': it asks for 8 CPU, 18Gi memory, 1 GPU (1 CPU, 2Gi "
        "memory of it for the gke-gcsfuse-sidecar GKE injects), more than a node gives "
        "pods (7910m CPU, 26.5Gi memory, 1 GPU)"
    )
    # The same pod without the annotation the webhook injects on: no sidecar, it fits.
    custom_patch(tree, "gke-training", RESNET, [*trainer_cpu("7"), WITHOUT_FUSE])
    code, stdout = validate_seeds(tree)
    assert not [p for p in problems(stdout, "MLG010") if "gke-training" in p], stdout


def test_the_mountpoint_node_pods_count_on_every_eks_node(seeds_tree: Path, tmp_path: Path) -> None:
    """The S3 driver's node DaemonSet takes 30m CPU and 120Mi of every node of a cluster
    that installs its add-on: 7760m fit a g5.2xlarge's 7775m, not the 7745m left."""
    tree = copy_of(seeds_tree, tmp_path)
    custom_patch(tree, "eks-training", RESNET, trainer_cpu("7760m"))
    code, stdout = validate_seeds(tree)
    assert code == 1
    (found,) = [p for p in problems(stdout, "MLG010") if "eks-training" in p]
    assert (
        "node group 'gpu-workers': it asks for 7760m CPU, 16Gi memory, 1 GPU, more than a "
        "node gives pods (7745m CPU, 30.9Gi memory, 1 GPU)"
    ) in found

    def without_mountpoint(docs: list[dict[str, Any]]) -> None:
        docs[:] = [d for d in docs if d["spec"]["name"] != "aws-mountpoint-s3-csi-driver"]

    edit_yaml(tree / "clusters/eks-training/infrastructure/addon.yaml", without_mountpoint)
    code, stdout = validate_seeds(tree)
    assert not [p for p in problems(stdout, "MLG010") if "eks-training" in p], stdout


def test_the_mountpoint_controller_needs_an_untainted_node(
    seeds_tree: Path, tmp_path: Path
) -> None:
    tree = copy_of(seeds_tree, tmp_path)

    def taint_every_group(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            doc["spec"]["taints"] = [
                {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
            ]

    edit_yaml(tree / "clusters/eks-training/infrastructure/nodegroup.yaml", taint_every_group)
    code, stdout = validate_seeds(tree)
    assert code == 1
    found = [p for p in problems(stdout, "MLG013") if "kube-system/s3-csi-controller" in p]
    assert len(found) == 1, stdout
    assert found[0].startswith(
        "clusters/eks-training/infrastructure: Cluster/eks-training: nodes: [MLG013] no node "
        "can run kube-system/s3-csi-controller (the datasets' S3 volumes mount: it creates "
        "their Mountpoint Pods): "
    ), found
