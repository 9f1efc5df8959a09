"""The cluster manifests hold the source scenario: read from the real `kustomize build`
of each cluster's infrastructure path, validated against the strict CRD schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS, build_and_validate, kustomize_build

from generator.cli import main

Objects = list[dict[str, Any]]


def generate(config: Path, out: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def seeds_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    generate(SEEDS, out)
    build_and_validate(out)
    return out


@pytest.fixture(scope="module")
def recsys_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recsys")
    generate(CONFIGS / "recsys-tensorflow.yaml", out)
    return out


def infrastructure(tree: Path, cluster: str) -> Objects:
    return kustomize_build(tree / "clusters" / cluster / "infrastructure")


def one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def trust(role: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(role["spec"]["assumeRolePolicyDocument"])
    return document["Statement"][0]


def test_eks_roles_carry_the_policies_and_trust_of_their_principals(seeds_tree: Path) -> None:
    objects = infrastructure(seeds_tree, "eks-training")
    cluster_role = one(objects, "Role", "eks-training-cluster")
    node_role = one(objects, "Role", "eks-training-node")
    assert cluster_role["spec"]["name"] == "ml-platform-eks-training-cluster"
    assert cluster_role["spec"]["policies"] == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
    assert trust(cluster_role) == {
        "Effect": "Allow",
        "Principal": {"Service": "eks.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert node_role["spec"]["policies"] == [
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
        "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy",
    ]
    assert trust(node_role)["Principal"] == {"Service": "ec2.amazonaws.com"}
    # the secret stores' role (tests/test_secrets.py) and the training pods' role, whose
    # only grants are the dataset's (tests/test_datasets.py)
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Role") == [
        "eks-training-cluster",
        "eks-training-node",
        "eks-training-secrets",
        "eks-training-training-pods",
    ]
    training = one(objects, "Role", "eks-training-training-pods")["spec"]
    assert "policies" not in training
    assert list(training["inlinePolicies"]) == ["read-declared-datasets"]


def test_eks_cluster_and_node_group_follow_the_scenario(seeds_tree: Path) -> None:
    objects = infrastructure(seeds_tree, "eks-training")
    cluster = one(objects, "Cluster", "eks-training")["spec"]
    assert cluster["version"] == "1.33"
    assert cluster["roleRef"] == {"from": {"name": "eks-training-cluster"}}
    subnets = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
    assert cluster["resourcesVPCConfig"]["subnetIDs"] == subnets
    group = one(objects, "Nodegroup", "eks-training-gpu-workers")["spec"]
    assert group["scalingConfig"] == {"minSize": 1, "desiredSize": 3, "maxSize": 3}
    assert group["instanceTypes"] == ["g5.2xlarge"]
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group["subnets"] == subnets
    assert group["clusterRef"] == {"from": {"name": "eks-training"}}
    assert group["nodeRoleRef"] == {"from": {"name": "eks-training-node"}}
    assert group["labels"] == {
        "k8s.amazonaws.com/accelerator": "nvidia-a10g",
        "nvidia.com/gpu.present": "true",
    }
    # Tainted because the cluster has CPU nodes for everything else.
    assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    system = one(objects, "Nodegroup", "eks-training-system")["spec"]
    assert system["amiType"] == "AL2023_x86_64_STANDARD"
    assert "taints" not in system and "labels" not in system
    assert not [o for o in objects if o["kind"] in ("VPC", "Subnet")]


def test_eks_vpc_cni_enforces_network_policy(seeds_tree: Path) -> None:
    objects = infrastructure(seeds_tree, "eks-training")
    cni = one(objects, "Addon", "eks-training-vpc-cni")["spec"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}
    addons = sorted(o["spec"]["name"] for o in objects if o["kind"] == "Addon")
    # the Pod Identity agent for the secret stores' and training pods' credentials, and
    # Mountpoint for the dataset in S3
    assert addons == [
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
        "aws-mountpoint-s3-csi-driver",
        "eks-pod-identity-agent",
        "vpc-cni",
    ]


def test_eks_objects_carry_region_and_apply_in_order(seeds_tree: Path) -> None:
    objects = infrastructure(seeds_tree, "eks-training")
    waves = {}
    for obj in objects:
        annotations = obj["metadata"]["annotations"]
        if obj["kind"] == "Namespace":
            assert annotations["services.k8s.aws/default-region"] == "us-west-2"
        else:
            assert annotations["services.k8s.aws/region"] == "us-west-2"
        waves[obj["kind"]] = int(annotations["argocd.argoproj.io/sync-wave"])
    assert (
        waves["Namespace"] < waves["Role"] < waves["Cluster"] < waves["Nodegroup"] < waves["Addon"]
    )
    cluster = one(objects, "Cluster", "eks-training")["metadata"]["annotations"]
    assert (
        cluster["argocd.argoproj.io/sync-options"] == "Prune=false,SkipDryRunOnMissingResource=true"
    )
    assert cluster["services.k8s.aws/deletion-policy"] == "retain"


def test_gke_cluster_and_node_pool_follow_the_scenario(seeds_tree: Path) -> None:
    objects = infrastructure(seeds_tree, "gke-training")
    cluster = one(objects, "ContainerCluster", "gke-training")
    spec = cluster["spec"]
    assert spec["location"] == "us-central1"
    assert spec["datapathProvider"] == "ADVANCED_DATAPATH"
    assert spec["workloadIdentityConfig"] == {"workloadPool": "acme-ml.svc.id.goog"}
    assert spec["releaseChannel"] == {"channel": "REGULAR"}
    assert spec["addonsConfig"]["gcpFilestoreCsiDriverConfig"] == {"enabled": True}
    annotations = cluster["metadata"]["annotations"]
    assert annotations["cnrm.cloud.google.com/remove-default-node-pool"] == "true"
    assert annotations["cnrm.cloud.google.com/project-id"] == "acme-ml"
    assert spec["networkingMode"] == "VPC_NATIVE"  # Dataplane V2 needs alias IPs
    assert set(spec["ipAllocationPolicy"]) == {"clusterIpv4CidrBlock", "servicesIpv4CidrBlock"}
    pool = one(objects, "ContainerNodePool", "gke-training-workers")["spec"]
    # Named as in the config, the name Kueue's flavor selects by.
    assert pool["resourceID"] == "workers"
    assert pool["clusterRef"] == {"name": "gke-training"}
    assert pool["nodeCount"] == 1
    assert pool["nodeConfig"]["machineType"] == "n1-standard-8"
    assert pool["nodeConfig"]["guestAccelerator"] == [
        {
            "type": "nvidia-tesla-t4",
            "count": 1,
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"},
        }
    ]
    assert pool["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


# kind v0.29.0's node image for Kubernetes 1.33 (kubernetes-sigs/kind@v0.29.0,
# pkg/apis/config/defaults/image.go).
KIND_1_33 = (
    "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
)


def test_local_cluster_is_a_kind_config_outside_every_synced_path(seeds_tree: Path) -> None:
    kind_config = seeds_tree / "clusters" / "local" / "kind-cluster.yaml"
    assert yaml.safe_load(kind_config.read_text()) == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "local",
        "nodes": [
            {"role": role, "image": KIND_1_33} for role in ("control-plane", "worker", "worker")
        ],
    }
    assert kind_config.read_text().splitlines()[2] == (
        "# Create the cluster (kind v0.29.0 or later): "
        "kind create cluster --config clusters/local/kind-cluster.yaml"
    )
    listed = {
        entry
        for kustomization in seeds_tree.rglob("kustomization.yaml")
        for entry in yaml.safe_load(kustomization.read_text()).get("resources", [])
    }
    assert not [entry for entry in listed if "kind-cluster" in entry]
    assert not (seeds_tree / "clusters" / "local" / "infrastructure").exists()


def test_eks_without_subnets_gets_a_network_wired_by_references(recsys_tree: Path) -> None:
    objects = infrastructure(recsys_tree, "eks-recsys")
    assert one(objects, "VPC", "eks-recsys-vpc")["spec"]["cidrBlocks"] == ["10.0.0.0/16"]
    subnets = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Subnet"}
    assert {name: (s["availabilityZone"], s["cidrBlock"]) for name, s in subnets.items()} == {
        "eks-recsys-public-eu-central-1a": ("eu-central-1a", "10.0.0.0/18"),
        "eks-recsys-public-eu-central-1b": ("eu-central-1b", "10.0.64.0/18"),
        "eks-recsys-private-eu-central-1a": ("eu-central-1a", "10.0.128.0/18"),
        "eks-recsys-private-eu-central-1b": ("eu-central-1b", "10.0.192.0/18"),
    }
    private = [{"from": {"name": f"eks-recsys-private-eu-central-1{z}"}} for z in "ab"]
    cluster = one(objects, "Cluster", "eks-recsys")["spec"]
    assert cluster["resourcesVPCConfig"]["subnetRefs"] == private
    assert cluster["version"] == "1.32"
    # The GPU group has EFA (g6.12xlarge): one zone, so its first private subnet only
    # (EFA traffic does not cross zones; render/clusters/eks.py).
    assert one(objects, "Nodegroup", "eks-recsys-gpu")["spec"]["subnetRefs"] == private[:1]
    routes = one(objects, "RouteTable", "eks-recsys-private")["spec"]["routes"]
    assert routes == [
        {"destinationCIDRBlock": "0.0.0.0/0", "natGatewayRef": {"from": {"name": "eks-recsys-nat"}}}
    ]


def references(node: Any) -> Iterator[str]:
    """Names that ACK (`{from: {name}}`) and Config Connector (`*Ref: {name}`) resolve."""
    if isinstance(node, dict):
        for key, value in node.items():
            is_reference = key == "from" or key.endswith("Ref")
            if is_reference and isinstance(value, dict) and "name" in value:
                yield value["name"]
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


@pytest.mark.parametrize(
    ("config", "cluster"),
    [
        (SEEDS, "eks-training"),
        (SEEDS, "gke-training"),
        (CONFIGS / "recsys-tensorflow.yaml", "eks-recsys"),
        (CONFIGS / "vision-flux.yaml", "gke-vision"),
    ],
)
def test_every_reference_names_an_object_of_the_same_build(
    config: Path, cluster: str, tmp_path: Path
) -> None:
    generate(config, tmp_path)
    objects = infrastructure(tmp_path, cluster)
    names = {o["metadata"]["name"] for o in objects}
    dangling = {
        ref for obj in objects for ref in references(obj.get("spec", {})) if ref not in names
    }
    assert not dangling


def test_pod_identity_gives_each_training_service_account_the_training_role(
    recsys_tree: Path,
) -> None:
    objects = infrastructure(recsys_tree, "eks-recsys")
    role = one(objects, "Role", "eks-recsys-training-pods")
    assert trust(role) == {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }
    assert role["spec"]["policies"] == ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    associations = sorted(
        (o["spec"]["namespace"], o["spec"]["serviceAccount"])
        for o in objects
        if o["kind"] == "PodIdentityAssociation"
    )
    # and the External Secrets Operator's controller, with the secret stores' role
    assert associations == [
        ("external-secrets", "external-secrets"),
        ("recsys-train", "embeddings-ps"),
        ("recsys-train", "wide-deep"),
    ]
    addons = sorted(o["spec"]["name"] for o in objects if o["kind"] == "Addon")
    assert addons == [
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
        "eks-pod-identity-agent",
        "vpc-cni",
    ]


def test_gke_workload_identity_binds_each_training_service_account(tmp_path: Path) -> None:
    generate(CONFIGS / "vision-flux.yaml", tmp_path)
    objects = infrastructure(tmp_path, "gke-vision")
    assert one(objects, "IAMServiceAccount", "gke-vision-training")
    members = sorted(
        (o["spec"].get("member", ""), o["spec"]["role"])
        for o in objects
        if o["kind"] == "IAMPolicyMember"
    )
    assert members == [
        ("", "roles/storage.objectCreator"),
        ("", "roles/storage.objectViewer"),
        (
            "serviceAccount:vision-lab-prod.svc.id.goog[vision/detr-train]",
            "roles/iam.workloadIdentityUser",
        ),
        (
            "serviceAccount:vision-lab-prod.svc.id.goog[vision/single-node-finetune]",
            "roles/iam.workloadIdentityUser",
        ),
    ]
    cluster = one(objects, "ContainerCluster", "gke-vision")["metadata"]["annotations"]
    assert cluster["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    assert not [k for o in objects for k in o["metadata"].get("annotations", {}) if "argocd" in k]


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            '"1.31"',
            "kubernetesVersion: EKS ended support for Kubernetes 1.31 on 2026-11-26 "
            "(cluster 'eks' uses it); supported: 1.32, 1.33, 1.34, 1.35, 1.36, 1.37",
        ),
        ('"1.28"', "kubernetesVersion: EKS ended support for Kubernetes 1.28"),
    ],
)
def test_a_version_eks_no_longer_supports_is_a_config_error(
    version: str, message: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: p\nrepo: {url: https://example.com/r.git}\n"
        f"kubernetesVersion: {version}\n"
        "workloads:\n- {name: w, namespace: n, framework: pytorch, image: 'r/i:1', "
        "command: [python, t.py], workers: 1, resources: {cpu: 1, memory: 1Gi}}\n"
        "clusters:\n- {name: eks, cloud: eks, region: us-east-1, nodeGroups: "
        "[{name: g, instanceTypes: [m7i.large], minSize: 1, desiredSize: 1, maxSize: 1}]}\n"
    )
    result = CliRunner().invoke(
        main, ["generate", "--config", str(config), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert f"{config}:3:20: {message}" in result.stderr


# Config Connector and ACK keep the cloud resource when its object is deleted with these.
KEEP_CLOUD_RESOURCE = {
    "eks": ("services.k8s.aws/deletion-policy", "retain"),
    "gke": ("cnrm.cloud.google.com/deletion-policy", "abandon"),
}


@pytest.mark.parametrize(
    ("config", "cluster", "cloud"),
    [
        (SEEDS, "eks-training", "eks"),
        (SEEDS, "gke-training", "gke"),
        (CONFIGS / "recsys-tensorflow.yaml", "eks-recsys", "eks"),  # its own VPC, NAT
        (CONFIGS / "vision-flux.yaml", "gke-vision", "gke"),  # Flux
    ],
)
def test_no_prune_deletes_a_cloud_resource(
    config: Path, cluster: str, cloud: str, tmp_path: Path
) -> None:
    """Node groups, node pools, networks and roles outlive their objects like the clusters:
    removing one from git (or a prune) leaves the cloud resource, and the engine leaves
    the object."""
    generate(config, tmp_path)
    objects = infrastructure(tmp_path, cluster)
    key, value = KEEP_CLOUD_RESOURCE[cloud]
    cloud_objects = [o for o in objects if o["kind"] not in ("Namespace", "ConfigConnectorContext")]
    assert {o["kind"] for o in cloud_objects} >= (
        {"Cluster", "Nodegroup", "Role", "Addon"}
        if cloud == "eks"
        else {"ContainerCluster", "ContainerNodePool"}
    )
    for obj in cloud_objects:
        annotations = obj["metadata"]["annotations"]
        assert annotations[key] == value, (obj["kind"], obj["metadata"]["name"])
        if "argocd.argoproj.io/sync-wave" in annotations:
            assert annotations["argocd.argoproj.io/sync-options"].startswith("Prune=false")
        else:
            assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


def test_config_connector_manages_each_clusters_namespace(seeds_tree: Path) -> None:
    """Namespaced Config Connector ignores a namespace without its context object."""
    objects = infrastructure(seeds_tree, "gke-training")
    context = one(
        objects, "ConfigConnectorContext", "configconnectorcontext.core.cnrm.cloud.google.com"
    )
    assert context["metadata"]["namespace"] == "infra-gke-training"
    assert context["spec"] == {
        "googleServiceAccount": "config-connector@acme-ml.iam.gserviceaccount.com"
    }
    waves = {
        o["kind"]: int(o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for o in objects
    }
    assert waves["ConfigConnectorContext"] < waves["ContainerCluster"]


def test_admin_principals_get_access_entries(seeds_tree: Path) -> None:
    """With `authenticationMode: API`, only access entries let anyone but the creator in."""
    objects = infrastructure(seeds_tree, "eks-training")
    cluster = one(objects, "Cluster", "eks-training")["spec"]
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    entry = one(objects, "AccessEntry", "eks-training-admin-0")["spec"]
    assert entry == {
        "clusterRef": {"from": {"name": "eks-training"}},
        "principalARN": "arn:aws:iam::123456789012:role/platform-admins",
        "type": "STANDARD",
        "accessPolicies": [
            {
                "policyARN": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                "accessScope": {"type": "cluster"},
            }
        ],
    }


def test_gpu_nodes_are_tainted_only_when_other_nodes_exist(tmp_path: Path) -> None:
    """CoreDNS, the operators and CPU pods tolerate no GPU taint: a cluster of GPU nodes
    alone keeps them untainted (as GKE does for its pools), so the cluster still has DNS;
    beside CPU nodes they are tainted, so only GPU pods land there."""
    only_gpus = SEEDS.read_text()
    system_group = (
        "      - name: system\n"
        "        instanceTypes: [m6i.2xlarge]\n"
        "        minSize: 1\n"
        "        desiredSize: 2\n"
        "        maxSize: 3\n"
    )
    assert only_gpus.count(system_group) == 1
    config = tmp_path / "gpus-only.yaml"
    config.write_text(only_gpus.replace(system_group, ""))
    generate(config, tmp_path / "tree")
    objects = infrastructure(tmp_path / "tree", "eks-training")
    (group,) = [o["spec"] for o in objects if o["kind"] == "Nodegroup"]
    assert group["instanceTypes"] == ["g5.2xlarge"]
    assert "taints" not in group
    # The GPU pods still go to GPU nodes by affinity, and still tolerate the taint.
    assert group["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-a10g"
