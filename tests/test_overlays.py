"""Per-cloud overlays and per-cluster entry points, proved on what kustomize builds.

Every test generates a tree with the real CLI and builds `clusters/<cluster>/workloads`
(or a part of it) with the real kustomize, then asserts on the built objects: GPU
scheduling, storage classes and access modes per cloud, laptop-sized resources and
co-location on local clusters, per-cloud overrides, image registry rewrites, cloud
identity (egress and GKE annotations), people's own `custom/` patches surviving
regeneration, and strict schema validation of every cluster's workloads; also that
strings YAML 1.2 reads as numbers (`2e-5`, `1e3`, `0o17`) reach the build as strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import CONFIGS, SEEDS, build_and_validate, kustomize_build

from generator.cli import main

RECSYS = CONFIGS / "recsys-tensorflow.yaml"
VISION = CONFIGS / "vision-flux.yaml"
GPU = "nvidia.com/gpu"
EFA = "vpc.amazonaws.com/efa"  # g5.12xlarge and g6.12xlarge have one per node
GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
# What a workload identity's credentials open (S3, GCS, the clouds' STS): their public
# endpoints on 443. Nothing private (the cluster, the VPC, link-local) is reachable by it.
CLOUD_APIS = {
    "to": [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": [
                    "10.0.0.0/8",
                    "100.64.0.0/10",
                    "127.0.0.0/8",
                    "169.254.0.0/16",
                    "172.16.0.0/12",
                    "192.168.0.0/16",
                ],
            }
        },
        {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10", "::1/128"]}},
    ],
    "ports": [{"protocol": "TCP", "port": 443}],
}

Obj = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------


def run_generate(config: Path, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        main, ["generate", "--config", str(config), "--out", str(out), *extra]
    )


def generate(config: Path, out: Path) -> Path:
    result = run_generate(config, out)
    assert result.exit_code == 0, result.output
    return out


def built(tree: Path, path: str) -> list[Obj]:
    """`kustomize build <tree>/<path>`, as objects."""
    return kustomize_build(tree / path)


def find_all(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    """The one object of that kind and name in a build."""
    found = [o for o in find_all(objs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} x {kind}/{name} in the build"
    return found[0]


def pod_spec(job: Obj) -> Obj:
    spec: Obj = job["spec"]["template"]["spec"]
    return spec


def trainer(job: Obj) -> Obj:
    containers = pod_spec(job)["containers"]
    assert [c["name"] for c in containers] == ["trainer"]
    container: Obj = containers[0]
    return container


def node_affinity(node_label: str) -> Obj:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": node_label, "operator": "Exists"}]}
                ]
            }
        }
    }


def cluster_workload_paths(config: Path) -> list[tuple[Path, str, str]]:
    """(config, cluster name, Kubernetes version) for every cluster of a config."""
    data = yaml.safe_load(config.read_text())
    default_version = str(data.get("kubernetesVersion", "1.33"))
    return [(config, c["name"], str(c.get("version", default_version))) for c in data["clusters"]]


# --- 1-3: the reference scenario on each cloud ----------------------------------------------


def test_eks_gpu_jobs_get_gpu_nodes_and_checkpoints_get_eks_classes(tmp_path: Path) -> None:
    objs = built(generate(SEEDS, tmp_path), "clusters/eks-training/workloads")

    resnet = find(objs, "Job", "resnet-ddp")
    assert trainer(resnet)["resources"]["limits"][GPU] == 1
    assert pod_spec(resnet)["tolerations"] == [GPU_TOLERATION]
    assert pod_spec(resnet)["affinity"] == node_affinity("k8s.amazonaws.com/accelerator")

    bert = find(objs, "Job", "bert-finetune")
    assert GPU not in trainer(bert)["resources"]["limits"]
    assert "tolerations" not in pod_spec(bert)
    assert "affinity" not in pod_spec(bert)

    claim = find(objs, "PersistentVolumeClaim", "bert-finetune-checkpoint")
    assert claim["spec"]["storageClassName"] == "efs-sc"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]

    gp3 = find(objs, "StorageClass", "gp3")
    assert gp3["provisioner"] == "ebs.csi.aws.com"
    assert gp3["parameters"]["type"] == "gp3"
    efs = find(objs, "StorageClass", "efs-sc")
    assert efs["parameters"]["fileSystemId"] == "fs-0a1b2c3d4e5f60001"
    assert sorted(o["metadata"]["name"] for o in find_all(objs, "StorageClass")) == [
        "efs-sc",
        "gp3",
    ]


def test_a_shared_filestore_claim_asks_for_what_gke_provisions(tmp_path: Path) -> None:
    """standard-rwx (Filestore Basic HDD) gives each claim a 1 TiB instance at least: the
    GKE tree asks for that rather than the 10Gi it would not get; other clouds keep it."""
    tree = generate(SEEDS, tmp_path)
    gke = find(
        built(tree, "clusters/gke-training/workloads"),
        "PersistentVolumeClaim",
        "bert-finetune-checkpoint",
    )
    assert gke["spec"]["storageClassName"] == "standard-rwx"
    assert gke["spec"]["resources"]["requests"]["storage"] == "1Ti"
    eks = find(
        built(tree, "clusters/eks-training/workloads"),
        "PersistentVolumeClaim",
        "bert-finetune-checkpoint",
    )
    assert eks["spec"]["resources"]["requests"]["storage"] == "10Gi"


def test_gke_gpu_jobs_need_the_gke_accelerator_label(tmp_path: Path) -> None:
    objs = built(generate(SEEDS, tmp_path), "clusters/gke-training/workloads")

    resnet = find(objs, "Job", "resnet-ddp")
    assert pod_spec(resnet)["affinity"] == node_affinity("cloud.google.com/gke-accelerator")
    assert pod_spec(resnet)["tolerations"] == [GPU_TOLERATION]
    assert "affinity" not in pod_spec(find(objs, "Job", "bert-finetune"))

    claim = find(objs, "PersistentVolumeClaim", "bert-finetune-checkpoint")
    assert claim["spec"]["storageClassName"] == "standard-rwx"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert find_all(objs, "StorageClass") == []


def test_local_runs_on_laptop_cpus_and_colocates_shared_checkpoints(tmp_path: Path) -> None:
    tree = generate(SEEDS, tmp_path)
    objs = built(tree, "clusters/local/workloads")

    serialized = yaml.safe_dump_all(objs)
    assert GPU not in serialized
    assert "mlgitops.io/gpu" not in serialized

    jobs = find_all(objs, "Job")
    assert sorted(j["metadata"]["name"] for j in jobs) == ["bert-finetune", "resnet-ddp"]
    laptop = {"cpu": "1", "memory": "2Gi"}
    for job in jobs:
        assert trainer(job)["resources"] == {"requests": laptop, "limits": laptop}
        assert "tolerations" not in pod_spec(job)

    claim = find(objs, "PersistentVolumeClaim", "bert-finetune-checkpoint")
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]

    colocated = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "training"}},
                    "matchLabelKeys": ["app.kubernetes.io/name"],
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    assert pod_spec(find(objs, "Job", "bert-finetune"))["affinity"] == colocated
    # resnet-ddp has no checkpoint, but its three pods share the ReadWriteOnce claim of
    # its dataset (imagenet, which you fill on a laptop): one node too
    data = find(objs, "PersistentVolumeClaim", "resnet-ddp-data-imagenet")
    assert data["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pod_spec(find(objs, "Job", "resnet-ddp"))["affinity"] == colocated
    # the base itself is untouched: the laptop sizes live in the local overlay only
    base = find(built(tree, "base/resnet-ddp"), "Job", "resnet-ddp")
    assert trainer(base)["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", GPU: 1}


# --- 4: overrides, image registries, EFS and identity (recsys) ------------------------------


def test_recsys_overrides_registries_efs_and_pod_identity(tmp_path: Path) -> None:
    tree = generate(RECSYS, tmp_path)

    eks = built(tree, "clusters/eks-recsys/workloads")
    wide = trainer(find(eks, "Job", "wide-deep"))
    # The g6.12xlarge group has an EFA interface per node: a pod with 2 of its 4 GPUs
    # takes its share, at least one (render/fabric.py).
    assert wide["resources"] == {
        "requests": {"cpu": "8", "memory": "48Gi", EFA: 1},
        "limits": {"cpu": "8", "memory": "48Gi", GPU: 2, EFA: 1},
    }
    assert (
        wide["image"] == "123456789012.dkr.ecr.eu-central-1.amazonaws.com/recsys/wide-deep:2024.11"
    )
    assert trainer(find(eks, "Job", "embeddings-ps"))["image"] == (
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/recsys/embeddings:1.0.0"
    )
    efs = find(eks, "StorageClass", "efs-sc")
    assert efs["provisioner"] == "efs.csi.aws.com"
    assert efs["parameters"]["fileSystemId"] == "fs-0123456789abcdef0"
    claim = find(eks, "PersistentVolumeClaim", "wide-deep-checkpoint")
    assert (claim["spec"]["storageClassName"], claim["spec"]["accessModes"]) == (
        "efs-sc",
        ["ReadWriteMany"],
    )

    base = trainer(find(built(tree, "base/wide-deep"), "Job", "wide-deep"))
    assert base["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", GPU: 1}
    assert base["image"] == "registry.internal:5000/recsys/wide-deep:2024.11"

    laptop = built(tree, "clusters/laptop/workloads")
    wide_local = find(laptop, "Job", "wide-deep")
    assert trainer(wide_local)["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert "tolerations" not in pod_spec(wide_local)
    assert GPU not in yaml.safe_dump_all(laptop)
    assert trainer(wide_local)["image"] == "localhost:5001/recsys/wide-deep:2024.11"
    assert trainer(find(laptop, "Job", "embeddings-ps"))["image"] == (
        "localhost:5001/recsys/embeddings:1.0.0"
    )
    assert find_all(laptop, "StorageClass") == []

    namespaces = sorted((tree / "clusters/eks-recsys/workloads/namespaces").iterdir())
    assert [n.name for n in namespaces] == ["recsys-train"]
    for folder in namespaces:
        policy = find(kustomize_build(folder), "NetworkPolicy", "allow-workload-identity")
        assert policy["metadata"]["namespace"] == folder.name
        assert policy["spec"] == {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "fd00:ec2::23/128"}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
                CLOUD_APIS,
            ],
        }
    names = [o["metadata"]["name"] for o in find_all(laptop, "NetworkPolicy")]
    assert "allow-workload-identity" not in names


# --- 5: GKE Workload Identity and Artifact Registry (vision) -------------------------------


def test_vision_gke_workload_identity_and_artifact_registry(tmp_path: Path) -> None:
    objs = built(generate(VISION, tmp_path), "clusters/gke-vision/workloads")

    accounts = find_all(objs, "ServiceAccount")
    assert sorted(a["metadata"]["name"] for a in accounts) == ["detr-train", "single-node-finetune"]
    for account in accounts:
        assert account["metadata"]["annotations"] == {
            "iam.gke.io/gcp-service-account": (
                "gke-vision-training@vision-lab-prod.iam.gserviceaccount.com"
            )
        }

    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    detr = find(objs, "Job", "detr-train")
    assert trainer(detr)["image"] == (
        f"europe-west4-docker.pkg.dev/vision-lab-prod/mirror/vision/detr@{digest}"
    )
    assert trainer(find(objs, "Job", "single-node-finetune"))["image"] == (
        "europe-west4-docker.pkg.dev/vision-lab-prod/mirror/vision/finetune:0.3.1"
    )

    policy = find(objs, "NetworkPolicy", "allow-workload-identity")
    assert policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        },
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
            "ports": [{"protocol": "TCP", "port": 988}],
        },
        CLOUD_APIS,
    ]

    claim = find(objs, "PersistentVolumeClaim", "single-node-finetune-checkpoint")
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


# --- 6: torchrun follows the GPUs a cloud gives a pod ---------------------------------------

GPU_CONFIG = """\
name: gpu-lab
repo:
  url: https://github.com/acme/gpu-lab-gitops.git
gitops: argocd
kubernetesVersion: "1.33"
workloads:
  - name: llama-sft
    namespace: llm-training
    framework: pytorch
    image: registry.example.com/llm/sft:0.9.0
    command: [python, sft.py, --epochs, "3"]
    workers: 2
    resources: {cpu: "8", memory: 64Gi, gpu: 4}
    overrides:
      local: {resources: {cpu: "2"}}
clusters:
  - name: eks-gpu
    cloud: eks
    region: us-west-2
    version: "1.33"
    nodeGroups:
      - name: gpu-workers
        instanceTypes: [g5.12xlarge]
        minSize: 0
        desiredSize: 2
        maxSize: 4
  - name: kind
    cloud: local
"""


def torchrun_args(nproc: int) -> list[str]:
    return [
        "--nnodes=2",
        f"--nproc-per-node={nproc}",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--master-addr=llama-sft-0.llama-sft",
        "--master-port=29500",
        "sft.py",
        "--epochs",
        "3",
    ]


def test_torchrun_processes_follow_the_gpus_on_each_cloud(tmp_path: Path) -> None:
    config = tmp_path / "mlgitops.yaml"
    config.write_text(GPU_CONFIG)
    tree = generate(config, tmp_path / "out")

    local = find(built(tree, "clusters/kind/workloads"), "Job", "llama-sft")
    assert trainer(local)["command"] == ["torchrun"]
    assert trainer(local)["args"] == torchrun_args(1)
    assert trainer(local)["resources"] == {
        "requests": {"cpu": "2", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }

    eks = find(built(tree, "clusters/eks-gpu/workloads"), "Job", "llama-sft")
    assert trainer(eks)["args"] == torchrun_args(4)
    assert trainer(eks)["resources"]["limits"] == {"cpu": "8", "memory": "64Gi", GPU: 4, EFA: 1}
    assert pod_spec(eks)["tolerations"] == [GPU_TOLERATION]


def test_strings_that_yaml_1_2_reads_as_numbers_stay_strings_in_the_build(
    tmp_path: Path,
) -> None:
    """kustomize reads YAML 1.2: unquoted, these would build as 2e-05, 1000 and 15."""
    config = tmp_path / "mlgitops.yaml"
    config.write_text(
        GPU_CONFIG.replace(
            'command: [python, sft.py, --epochs, "3"]',
            'command: [python, sft.py, --lr, "2e-5", --steps, "1e3"]\n'
            '    env: {WARMUP_STEPS: "1e3", UMASK: "0o17"}',
        )
    )
    tree = generate(config, tmp_path / "out")
    job = find(built(tree, "clusters/eks-gpu/workloads"), "Job", "llama-sft")
    assert trainer(job)["args"][-4:] == ["--lr", "2e-5", "--steps", "1e3"]
    env = {e["name"]: e.get("value") for e in trainer(job)["env"]}
    assert (env["WARMUP_STEPS"], env["UMASK"]) == ("1e3", "0o17")


# --- 7: people's own patches -----------------------------------------------------------------

CUSTOM_PATCH = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: resnet-ddp
  labels:
    team: {team}
spec:
  template:
    spec:
      containers:
        - name: trainer
          env:
            - name: NCCL_DEBUG
              value: {level}
"""


def add_custom_patch(folder: Path, team: str, level: str) -> dict[Path, bytes]:
    """Write a patch into a custom/ Component and reference it the way its comment shows;
    return the custom files' bytes."""
    (folder / "resnet-patch.yaml").write_text(CUSTOM_PATCH.format(team=team, level=level))
    kustomization = folder / "kustomization.yaml"
    text = kustomization.read_text()
    assert text.count("patches: []\n") == 1, text
    kustomization.write_text(
        text.replace(
            "patches: []\n",
            "patches:\n  - path: resnet-patch.yaml\n    target: {kind: Job, name: resnet-ddp}\n",
        )
    )
    return {p: p.read_bytes() for p in sorted(folder.iterdir())}


def custom_changes(objs: list[Obj]) -> tuple[str | None, str | None]:
    """(the team label, NCCL_DEBUG: WARN unless a patch changes it) of the resnet-ddp
    Job in a build."""
    job = find(objs, "Job", "resnet-ddp")
    env = {e["name"]: e.get("value") for e in trainer(job).get("env", [])}
    return job["metadata"]["labels"].get("team"), env.get("NCCL_DEBUG")


def test_cluster_custom_patches_survive_regeneration_and_reach_the_build(tmp_path: Path) -> None:
    tree = generate(SEEDS, tmp_path)
    assert custom_changes(built(tree, "clusters/local/workloads")) == (None, "WARN")

    custom = add_custom_patch(tree / "clusters/local/custom", "vision", "INFO")
    again = run_generate(SEEDS, tree)
    assert again.exit_code == 0, again.output
    assert {p: p.read_bytes() for p in sorted((tree / "clusters/local/custom").iterdir())} == (
        custom
    )

    local = built(tree, "clusters/local/workloads")
    assert custom_changes(local) == ("vision", "INFO")
    # the laptop overlay still applies underneath the person's patch
    assert trainer(find(local, "Job", "resnet-ddp"))["resources"]["limits"] == {
        "cpu": "1",
        "memory": "2Gi",
    }
    # a cluster's custom/ is that cluster's alone
    assert custom_changes(built(tree, "clusters/eks-training/workloads")) == (None, "WARN")

    check = run_generate(SEEDS, tree, "--check")
    assert check.exit_code == 0, check.output


def test_cloud_custom_patches_reach_every_cluster_of_that_cloud_only(tmp_path: Path) -> None:
    tree = generate(SEEDS, tmp_path)
    custom = add_custom_patch(tree / "overlays/eks/custom", "platform", "TRACE")

    again = run_generate(SEEDS, tree)
    assert again.exit_code == 0, again.output
    assert {p: p.read_bytes() for p in sorted((tree / "overlays/eks/custom").iterdir())} == custom

    assert custom_changes(built(tree, "clusters/eks-training/workloads")) == ("platform", "TRACE")
    assert custom_changes(built(tree, "clusters/gke-training/workloads")) == (None, "WARN")
    assert custom_changes(built(tree, "clusters/local/workloads")) == (None, "WARN")

    check = run_generate(SEEDS, tree, "--check")
    assert check.exit_code == 0, check.output


# --- 8: strict schemas for every cluster's workloads -----------------------------------------

CLUSTERS = [
    case
    for config in (SEEDS, *sorted(CONFIGS.glob("*.yaml")))
    for case in cluster_workload_paths(config)
]


@pytest.mark.parametrize(
    ("config", "cluster", "version"), CLUSTERS, ids=[f"{c.stem}-{n}" for c, n, _ in CLUSTERS]
)
def test_every_cluster_workloads_build_passes_strict_schemas(
    config: Path, cluster: str, version: str, tmp_path: Path
) -> None:
    tree = generate(config, tmp_path)
    folder = tree / "clusters" / cluster / "workloads"
    built_folders = build_and_validate(folder, version)
    assert folder in built_folders
    kinds = {o["kind"] for o in built_folders[folder]}
    assert {"Namespace", "Job", "Service", "ServiceAccount", "NetworkPolicy"} <= kinds
