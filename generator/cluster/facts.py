"""What each cloud keeps of a node for itself, and what runs on every node, each fact with
its source. The node model (nodes.py) subtracts these from an instance's capacity to get
what pods can be given: the scheduler places pods on allocatable, never on capacity.

Not modelled (README, "What the cluster model knows"): GKE's own DaemonSets (logging,
metrics, Dataplane V2's agent), whose requests change with GKE releases; the few percent
of memory the kernel keeps below the instance's nominal size; other tenants' pods.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.render.datasets import MOUNTPOINT_ADDON

MIB = 2**20
GIB = 2**30

# CPU the kubelet reserves, as tiers of (cores in the tier, millicores per core), the same
# on EKS and GKE: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of
# every core above four. Sources: amazon-eks-ami nodeadm internal/kubelet/config.go
# (getCPUMillicoresToReserve); GKE "Plan for node sizes" (allocatable resources).
CPU_RESERVED_TIERS: tuple[tuple[int | None, float], ...] = (
    (1, 60.0),
    (1, 10.0),
    (2, 5.0),
    (None, 2.5),
)
# The kubelet's default hard eviction threshold (memory.available<100Mi), kept free of
# pods on both clouds (kubelet defaults; GKE "Plan for node sizes").
EVICTION_MEMORY = 100 * MIB


def reserved_millicores(vcpus: int) -> int:
    left, reserved = vcpus, 0.0
    for cores, per_core in CPU_RESERVED_TIERS:
        taken = left if cores is None else min(left, cores)
        reserved += taken * per_core
        left -= taken
    return int(reserved + 0.999)


# EKS (Amazon Linux 2023, nodeadm getMemoryMebibytesToReserve): 11 MiB per pod the node
# may hold, plus 255 MiB.
EKS_MEMORY_PER_POD = 11 * MIB
EKS_MEMORY_BASE = 255 * MIB
# Pods per node with the VPC CNI (one IP per pod): ENIs x (IPv4 per ENI - 1) + 2, from
# amazon-eks-ami templates/shared/runtime/eni-max-pods.txt. The EC2 network limits follow
# the instance size for the families mlgitops knows; the few types that differ there are
# listed.
EKS_MAX_PODS_BY_SIZE = {
    "large": 29,
    "xlarge": 58,
    "2xlarge": 58,
    "4xlarge": 234,
    "8xlarge": 234,
    "12xlarge": 234,
    "16xlarge": 737,
    "24xlarge": 737,
    "48xlarge": 737,
}
EKS_MAX_PODS_LISTED = {
    "g5.16xlarge": 234,
    "g5.48xlarge": 345,
    "p3.2xlarge": 58,
    "p3.8xlarge": 234,
    "p3.16xlarge": 234,
    "p4d.24xlarge": 737,
    "p5.48xlarge": 100,
}
EKS_DEFAULT_MAX_PODS = 110  # sizes the table does not know: the kubelet's own default


def eks_max_pods(instance_type: str) -> int:
    if instance_type in EKS_MAX_PODS_LISTED:
        return EKS_MAX_PODS_LISTED[instance_type]
    size = instance_type.partition(".")[2]
    return EKS_MAX_PODS_BY_SIZE.get(size, EKS_DEFAULT_MAX_PODS)


def eks_reserved_memory(instance_type: str) -> int:
    return EKS_MEMORY_PER_POD * eks_max_pods(instance_type) + EKS_MEMORY_BASE


# GKE memory reservation (GKE "Plan for node sizes"): 25% of the first 4 GiB, 20% of the
# next 4, 10% of the next 8, 6% of the next 112, 2% of the rest; 255 MiB under 1 GiB.
GKE_MEMORY_TIERS: tuple[tuple[int | None, float], ...] = (
    (4 * GIB, 0.25),
    (4 * GIB, 0.20),
    (8 * GIB, 0.10),
    (112 * GIB, 0.06),
    (None, 0.02),
)


def gke_reserved_memory(memory: int) -> int:
    if memory < GIB:
        return 255 * MIB
    left, reserved = memory, 0.0
    for size, share in GKE_MEMORY_TIERS:
        taken = left if size is None else min(left, size)
        reserved += taken * share
        left -= taken
    return int(reserved)


@dataclass(frozen=True)
class DaemonPod:
    """A system pod on every node of a cloud, and what it requests."""

    name: str
    millicores: int
    memory: int
    source: str


# Requests of the DaemonSets every EKS node runs with the add-ons mlgitops installs.
EKS_DAEMON_PODS = (
    DaemonPod("kube-proxy", 100, 0, "EKS kube-proxy add-on DaemonSet: requests cpu 100m"),
    DaemonPod("aws-node", 25, 0, "EKS vpc-cni add-on DaemonSet aws-node: requests cpu 25m"),
    DaemonPod(
        "ebs-csi-node",
        10,
        40 * MIB,
        "aws-ebs-csi-driver chart values node.resources: requests cpu 10m, memory 40Mi",
    ),
)
DAEMON_PODS = {"eks": EKS_DAEMON_PODS, "gke": (), "local": ()}
# On EKS nodes with EFA, the EFA device plugin's DaemonSet as well.
EFA_DAEMON_POD = DaemonPod(
    "aws-efa-k8s-device-plugin",
    10,
    20 * MIB,
    "aws/eks-charts stable/aws-efa-k8s-device-plugin values.yaml resources.requests: "
    "cpu 10m, memory 20Mi",
)


# EKS add-ons that run a DaemonSet on every node, installed only where the tree asks for
# them (an ACK Addon in the cluster's infrastructure), by the add-on's name. Mountpoint for
# Amazon S3's CSI driver (the datasets' S3 volumes): its `s3-csi-node` DaemonSet runs the
# `s3-plugin`, `node-driver-registrar` and `liveness-probe` containers, each requesting
# node.resources (cpu 10m, memory 40Mi; the sidecars' `resources: {}` default to it,
# templates/node.yaml `default .Values.node.resources ...`), tolerates every taint
# (`tolerateAllTaints: true`) and avoids only Fargate and hybrid nodes
# (awslabs/mountpoint-s3-csi-driver charts/aws-mountpoint-s3-csi-driver at v2.7.0,
# values.yaml and templates/node.yaml; the EKS add-on is built from that chart, its
# defaults not read here: `aws eks describe-addon-configuration` would show them).
ADDON_DAEMON_PODS = {
    MOUNTPOINT_ADDON: DaemonPod(
        "s3-csi-node",
        3 * 10,
        3 * 40 * MIB,
        "awslabs/mountpoint-s3-csi-driver@v2.7.0 charts/aws-mountpoint-s3-csi-driver "
        "values.yaml node.resources (10m, 40Mi) for each of its 3 containers "
        "(templates/node.yaml)",
    ),
}


@dataclass(frozen=True)
class SystemPod:
    """A pod that must run somewhere for the cluster to work, with the tolerations and
    node selection it really has."""

    name: str
    namespace: str
    replicas: int
    millicores: int
    memory: int
    tolerations: tuple[dict[str, str], ...]
    node_selector: dict[str, str]
    why: str  # what breaks without it
    source: str


CRITICAL_ADDONS = {"key": "CriticalAddonsOnly", "operator": "Exists"}
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
LINUX = {"kubernetes.io/os": "linux"}

COREDNS_EKS = SystemPod(
    "coredns",
    "kube-system",
    2,
    100,
    70 * MIB,
    (CRITICAL_ADDONS, CONTROL_PLANE),
    LINUX,
    "cluster DNS: pods find each other (rendezvous, TF_CONFIG) by name",
    "EKS coredns add-on defaults (`aws eks describe-addon-configuration --addon-name "
    "coredns`: tolerations CriticalAddonsOnly and the control-plane taint, requests 100m "
    "/ 70Mi, 2 replicas)",
)
KUBE_DNS_GKE = SystemPod(
    "kube-dns",
    "kube-system",
    2,
    260,
    110 * MIB,
    (CRITICAL_ADDONS, {"key": "components.gke.io/gke-managed-components", "operator": "Exists"}),
    LINUX,
    "cluster DNS: pods find each other by name",
    "GKE kube-dns Deployment (kubedns 100m/70Mi, dnsmasq 150m/20Mi, sidecar 10m/20Mi; "
    "kubernetes cluster/addons/dns/kube-dns, with GKE's managed-components toleration)",
)
COREDNS_KIND = SystemPod(
    "coredns",
    "kube-system",
    2,
    100,
    70 * MIB,
    (CRITICAL_ADDONS, CONTROL_PLANE),
    LINUX,
    "cluster DNS: pods find each other by name",
    "kubeadm's CoreDNS Deployment, which kind installs (cmd/kubeadm/app/phases/addons/dns)",
)
EBS_CSI_CONTROLLER = SystemPod(
    "ebs-csi-controller",
    "kube-system",
    2,
    10,
    40 * MIB,
    (CRITICAL_ADDONS, {"effect": "NoExecute", "operator": "Exists"}),
    LINUX,
    "gp3 claims are provisioned",
    "aws-ebs-csi-driver chart values controller.{replicaCount,resources,tolerations}",
)
EFS_CSI_CONTROLLER = SystemPod(
    "efs-csi-controller",
    "kube-system",
    2,
    0,
    0,
    (CRITICAL_ADDONS, {"key": "efs.csi.aws.com/agent-not-ready", "operator": "Exists"}),
    LINUX,
    "efs-sc claims are provisioned",
    "aws-efs-csi-driver chart values controller.{replicaCount,tolerations} (no requests)",
)


# The driver's controller (v2), which creates the Mountpoint Pods that serve each S3
# volume on the node of the pod that mounts it: without it no S3 volume mounts. One
# replica, no requests (`controller.resources` is unset), no tolerations (the chart's own
# "TODO: Should we add some default tolerations for controller?").
MOUNTPOINT_CONTROLLER = SystemPod(
    "s3-csi-controller",
    "kube-system",
    1,
    0,
    0,
    (),
    LINUX,
    "the datasets' S3 volumes mount: it creates their Mountpoint Pods",
    "awslabs/mountpoint-s3-csi-driver@v2.7.0 charts/aws-mountpoint-s3-csi-driver "
    "templates/controller.yaml",
)
ADDON_SYSTEM_PODS = {MOUNTPOINT_ADDON: MOUNTPOINT_CONTROLLER}


def operator_pod(name: str, namespace: str, millicores: int, memory: int, source: str) -> SystemPod:
    """An operator's controller: none of those mlgitops installs tolerates any taint."""
    return SystemPod(name, namespace, 1, millicores, memory, (), {}, "its runtime runs", source)


# The controllers of the operators mlgitops installs, by operator name (operator_facts),
# read off `kustomize build` of each path at its pinned tag.
OPERATOR_PODS = {
    "training-operator": operator_pod(
        "training-operator", "kubeflow", 0, 0, "kubeflow/trainer@v1.9.4 overlays/standalone"
    ),
    "jobset": operator_pod(
        "jobset-controller-manager",
        "jobset-system",
        500,
        128 * MIB,
        "kubernetes-sigs/jobset@v0.12.0 config/default",
    ),
    "trainer": operator_pod(
        "kubeflow-trainer-controller-manager",
        "kubeflow-system",
        0,
        0,
        "kubeflow/trainer@v2.3.0 manifests/base/manager",
    ),
    "kueue": operator_pod(
        "kueue-controller-manager",
        "kueue-system",
        500,
        512 * MIB,
        "kubernetes-sigs/kueue@v0.17.6 config/default",
    ),
    # Three Deployments (controller, webhook, cert-controller), one replica each, no
    # requests or tolerations by default; the controller stands for them.
    "external-secrets": operator_pod(
        "external-secrets",
        "external-secrets",
        0,
        0,
        "external-secrets/external-secrets@v2.6.0 deploy/charts/external-secrets values.yaml "
        "(resources: {}, replicaCount: 1)",
    ),
}
DNS_PODS = {"eks": COREDNS_EKS, "gke": KUBE_DNS_GKE, "local": COREDNS_KIND}


@dataclass(frozen=True)
class Provisioner:
    """What a CSI driver can give a claim."""

    access_modes: frozenset[str]
    minimum: int  # bytes; 0: no minimum
    source: str


PROVISIONERS = {
    "ebs.csi.aws.com": Provisioner(
        frozenset({"ReadWriteOnce", "ReadWriteOncePod"}),
        GIB,
        "aws-ebs-csi-driver: EBS volumes attach to one node (docs/parameters.md; gp3 1 GiB and up)",
    ),
    "efs.csi.aws.com": Provisioner(
        frozenset({"ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"}),
        0,
        "aws-efs-csi-driver: NFS, any access mode",
    ),
    "pd.csi.storage.gke.io": Provisioner(
        frozenset({"ReadWriteOnce", "ReadOnlyMany", "ReadWriteOncePod"}),
        GIB,
        "GKE persistent disks (Compute Engine PD CSI driver)",
    ),
    "filestore.csi.storage.gke.io": Provisioner(
        frozenset({"ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"}),
        1024 * GIB,
        "GKE Filestore CSI driver: standard-rwx is Basic HDD, 1 TiB at least",
    ),
    "rancher.io/local-path": Provisioner(
        frozenset({"ReadWriteOnce", "ReadWriteOncePod"}),
        0,
        "kind's local-path provisioner: a folder on one node",
    ),
}
# The StorageClasses each cloud's clusters have without the tree adding any.
BUILTIN_STORAGE_CLASSES = {
    "eks": {"gp2": "kubernetes.io/aws-ebs"},  # EKS ships gp2 (in-tree, migrated to EBS CSI)
    "gke": {
        "standard": "pd.csi.storage.gke.io",
        "standard-rwo": "pd.csi.storage.gke.io",
        "premium-rwo": "pd.csi.storage.gke.io",
        # Present once the Filestore CSI driver is enabled, as the cluster manifests do.
        "standard-rwx": "filestore.csi.storage.gke.io",
        "premium-rwx": "filestore.csi.storage.gke.io",
        "enterprise-rwx": "filestore.csi.storage.gke.io",
    },
    "local": {"standard": "rancher.io/local-path"},
}
PROVISIONERS["kubernetes.io/aws-ebs"] = PROVISIONERS["ebs.csi.aws.com"]
