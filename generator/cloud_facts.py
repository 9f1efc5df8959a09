"""Facts about the clouds that the config rules and the renderers share: which EC2
instances carry which GPUs, which Kubernetes versions EKS still supports, and one table
of per-cloud values that drives every overlay (no renderer is copied per cloud)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# EKS: standard support for 14 months after release, then 12 months of extended support
# (EKS user guide, kubernetes-versions). End of extended support per minor version; a
# version past it, or not yet released on EKS, cannot be created.
EKS_END_OF_EXTENDED_SUPPORT = {
    "1.32": "2027-03-23",
    "1.33": "2027-07-29",
    "1.34": "2027-12-02",
    "1.35": "2028-03-27",
    "1.36": "(about mid-2028)",
    "1.37": "(about late 2028)",
}
EKS_RETIRED = {"1.29": "2026-03-23", "1.30": "2026-07-23", "1.31": "2026-11-26"}
IAM_ROLE_NAME_LIMIT = 64
EKS_LONGEST_ROLE_SUFFIX = "training-pods"  # roles are <platform>-<cluster>-<suffix>


def eks_version_problem(version: str) -> str | None:
    """Why EKS cannot run a Kubernetes version, or None when it can."""
    supported = list(EKS_END_OF_EXTENDED_SUPPORT)
    if version in supported:
        return None
    if _minor(version) > _minor(supported[-1]):
        return f"EKS does not offer Kubernetes {version} yet"
    ended = EKS_RETIRED.get(version)
    return f"EKS ended support for Kubernetes {version}" + (f" on {ended}" if ended else "")


def eks_supported_versions() -> str:
    return ", ".join(EKS_END_OF_EXTENDED_SUPPORT)


def _minor(version: str) -> int:
    return int(version.split(".")[1])


# EC2 instance families with NVIDIA GPUs, and the accelerator name used for the node label
# `k8s.amazonaws.com/accelerator` (the label Cluster Autoscaler reads; EKS does not set it,
# so the node groups generated here do).
EKS_GPU_FAMILIES = {
    "p3": "nvidia-tesla-v100",
    "p3dn": "nvidia-tesla-v100",
    "p4d": "nvidia-a100",
    "p4de": "nvidia-a100",
    "p5": "nvidia-h100",
    "p5e": "nvidia-h200",
    "p5en": "nvidia-h200",
    "p6-b200": "nvidia-b200",
    "g4dn": "nvidia-tesla-t4",
    "g5": "nvidia-a10g",
    "g5g": "nvidia-t4g",
    "g6": "nvidia-l4",
    "g6e": "nvidia-l40s",
    "gr6": "nvidia-l4",
}


def ec2_family(instance_type: str) -> str:
    """`g5.xlarge` -> `g5`; `p6-b200.48xlarge` -> `p6-b200`."""
    return instance_type.split(".", 1)[0]


def ec2_gpu(instance_type: str) -> str | None:
    """The NVIDIA GPU an instance type carries, or None for CPU-only instances."""
    return EKS_GPU_FAMILIES.get(ec2_family(instance_type))


def ec2_is_arm(instance_type: str) -> bool:
    """Graviton families carry a `g` among the letters after the generation digit
    (m7g, c7gn, r8gd, g5g); x86 families do not (g5, m7i, p4d)."""
    family = ec2_family(instance_type)
    attributes = re.sub(r"^[a-z]+[0-9]+", "", family).split("-", 1)[0]
    return "g" in attributes


def eks_ami_type(instance_types: tuple[str, ...]) -> str:
    """Amazon Linux 2023, with the NVIDIA driver on GPU instances."""
    first = instance_types[0]
    arch = "ARM_64" if ec2_is_arm(first) else "x86_64"
    flavour = "NVIDIA" if ec2_gpu(first) else "STANDARD"
    return f"AL2023_{arch}_{flavour}"


GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
EKS_GPU_NODE_LABEL = "k8s.amazonaws.com/accelerator"
GKE_GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"


@dataclass(frozen=True)
class Endpoint:
    cidr: str
    port: int


@dataclass(frozen=True)
class CloudProfile:
    """What one cloud needs from the training workloads' manifests."""

    cloud: str
    single_writer_class: str  # StorageClass for a checkpoint one pod writes
    shared_class: str  # StorageClass for a checkpoint several pods write
    shared_access_mode: str  # the access mode shared checkpoints get on this cloud
    gpu_node_label: str | None  # label GPU nodes carry; pods require it to exist
    identity_endpoints: tuple[Endpoint, ...]  # what pods reach for cloud credentials
    # Where the cloud's APIs a workload identity opens (S3, GCS, STS...) answer: public
    # addresses on 443. NetworkPolicy cannot name hosts, so this is the public internet
    # on 443, never an address inside the cluster or the VPC.
    api_port: int | None = None
    # The smallest volume the shared class provisions: a smaller claim gets this much
    # (and is billed for it), so the overlay asks for it outright.
    shared_minimum: str | None = None


CLOUD_PROFILES = {
    "eks": CloudProfile(
        cloud="eks",
        single_writer_class="gp3",  # generated: EKS ships only gp2
        shared_class="efs-sc",  # generated from the cluster's efsFileSystemId
        shared_access_mode="ReadWriteMany",
        gpu_node_label=EKS_GPU_NODE_LABEL,
        # The EKS Pod Identity agent (EKS user guide, pod-id-how-it-works).
        identity_endpoints=(Endpoint("169.254.170.23/32", 80), Endpoint("fd00:ec2::23/128", 80)),
        api_port=443,
    ),
    "gke": CloudProfile(
        cloud="gke",
        single_writer_class="standard-rwo",  # shipped by GKE (pd-balanced)
        shared_class="standard-rwx",  # shipped once the Filestore CSI driver is enabled
        # standard-rwx is Filestore's Basic HDD tier: one instance per claim, 1 TiB at
        # least (GKE "Access Filestore instances with the Filestore CSI driver").
        shared_minimum="1Ti",
        shared_access_mode="ReadWriteMany",
        gpu_node_label=GKE_GPU_NODE_LABEL,
        # The GKE metadata server, and its Dataplane V2 endpoint (GKE Workload Identity docs).
        identity_endpoints=(
            Endpoint("169.254.169.254/32", 80),
            Endpoint("169.254.169.252/32", 988),
        ),
        api_port=443,
    ),
    "local": CloudProfile(
        cloud="local",
        single_writer_class="standard",  # kind's local-path provisioner
        # kind has no ReadWriteMany class; a ReadWriteOnce volume is shared by pods on one
        # node, so shared checkpoints stay ReadWriteOnce and the job's pods are co-located.
        shared_class="standard",
        shared_access_mode="ReadWriteOnce",
        gpu_node_label=None,
        identity_endpoints=(),
    ),
}


@dataclass(frozen=True)
class NodeCapacity:
    """What one node offers: vCPUs, memory (a Kubernetes quantity) and GPUs."""

    cpu: int
    memory: str
    gpus: int


# EC2: vCPUs follow the size (large 2, xlarge 4, Nxlarge 4N); memory per vCPU follows the
# family (EC2 instance type pages). P instances, which break the pattern, are listed.
EC2_MEMORY_GIB_PER_VCPU = {
    "c": 2,
    "m": 4,
    "t": 4,
    "r": 8,
    "g4dn": 4,
    "g5": 4,
    "g6": 4,
    "g6e": 8,
    "gr6": 8,
}
EC2_LISTED = {
    "p3.2xlarge": NodeCapacity(8, "61Gi", 1),
    "p3.8xlarge": NodeCapacity(32, "244Gi", 4),
    "p3.16xlarge": NodeCapacity(64, "488Gi", 8),
    "p3dn.24xlarge": NodeCapacity(96, "768Gi", 8),
    "p4d.24xlarge": NodeCapacity(96, "1152Gi", 8),
    "p4de.24xlarge": NodeCapacity(96, "1152Gi", 8),
    "p5.48xlarge": NodeCapacity(192, "2048Gi", 8),
    "p5e.48xlarge": NodeCapacity(192, "2048Gi", 8),
    "p5en.48xlarge": NodeCapacity(192, "2048Gi", 8),
}
# G instances: one GPU up to 16xlarge, four at 12xlarge and 24xlarge, eight at 48xlarge.
EC2_GPUS_BY_SIZE = {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}


def ec2_capacity(instance_type: str) -> NodeCapacity | None:
    """An EC2 instance type's capacity, or None when these tables do not know it."""
    if instance_type in EC2_LISTED:
        return EC2_LISTED[instance_type]
    family, _, size = instance_type.partition(".")
    sizes = re.fullmatch(r"([0-9]*)xlarge|large", size)
    if not sizes:
        return None
    vcpus = 4 * int(sizes.group(1) or 1) if sizes.group(0).endswith("xlarge") else 2
    per_vcpu = EC2_MEMORY_GIB_PER_VCPU.get(family) or EC2_MEMORY_GIB_PER_VCPU.get(family[0])
    if per_vcpu is None or family.startswith("p"):
        return None
    gpus = EC2_GPUS_BY_SIZE.get(size, 1) if ec2_gpu(instance_type) else 0
    return NodeCapacity(vcpus, f"{vcpus * per_vcpu}Gi", gpus)


# Compute Engine: `<series>-<kind>-<vCPUs>`; memory per vCPU by kind (N1 differs).
GCE_MEMORY_MB_PER_VCPU = {
    ("n1", "standard"): 3840,
    ("n1", "highmem"): 6656,
    ("n1", "highcpu"): 922,
    ("*", "standard"): 4096,
    ("*", "highmem"): 8192,
    ("*", "highcpu"): 1024,
}


def gce_capacity(machine_type: str, gpus: int) -> NodeCapacity | None:
    """A Compute Engine machine type's capacity (GPUs come from the node pool's
    accelerator), or None for machine types named otherwise."""
    parts = re.fullmatch(r"([a-z0-9]+)-(standard|highmem|highcpu)-([0-9]+)", machine_type)
    if not parts:
        return None
    series, kind, vcpus = parts.group(1), parts.group(2), int(parts.group(3))
    per_vcpu = GCE_MEMORY_MB_PER_VCPU.get((series, kind)) or GCE_MEMORY_MB_PER_VCPU[("*", kind)]
    return NodeCapacity(vcpus, f"{vcpus * per_vcpu}Mi", gpus)


# Compute Engine series on Arm: Tau T2A and Axion C4A (Compute Engine machine families).
GCE_ARM_SERIES = frozenset({"t2a", "c4a"})


def gce_is_arm(machine_type: str) -> bool:
    return machine_type.split("-", 1)[0] in GCE_ARM_SERIES


def gke_zones(location: str) -> int:
    """A regional cluster spreads each node pool over three zones; a zonal one has one."""
    return 1 if re.fullmatch(r".*-[a-z]", location) else 3


# kind node images per Kubernetes minor: the newest kind release's default image for that
# minor, with its digest, as kind pins it (kubernetes-sigs/kind, at each release tag,
# pkg/apis/config/defaults/image.go). kind supports an image with the kind release it was
# released with, best effort with later ones, so each minor names the kind it needs.
KIND_NODE_IMAGES = {
    "1.31": (
        "v0.25.0",
        "kindest/node:v1.31.2@sha256:"
        "18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
    ),
    "1.32": (
        "v0.27.0",
        "kindest/node:v1.32.2@sha256:"
        "f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
    ),
    "1.33": (
        "v0.29.0",
        "kindest/node:v1.33.1@sha256:"
        "050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
    ),
    "1.34": (
        "v0.30.0",
        "kindest/node:v1.34.0@sha256:"
        "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    ),
    "1.35": (
        "v0.31.0",
        "kindest/node:v1.35.0@sha256:"
        "452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    ),
    "1.36": (
        "v0.32.0",
        "kindest/node:v1.36.1@sha256:"
        "3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
    ),
}


def kind_node_image(version: str) -> str:
    return KIND_NODE_IMAGES[version][1]


def kind_release(version: str) -> str:
    """The kind release to create a cluster of this version with (or a later one)."""
    return KIND_NODE_IMAGES[version][0]


# Addresses that are never a cloud API's public endpoint: private, shared (carrier NAT),
# link-local and loopback ranges (RFC 1918, 6598, 3927, 4193, 4291).
NON_PUBLIC_IPV4 = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
)
NON_PUBLIC_IPV6 = ("fc00::/7", "fe80::/10", "::1/128")


# Regions, from the clouds' lists (AWS General Reference "Service endpoints" /
# "Regions"; Google Cloud "Regions and zones"), as of 2026-12. A region newer than these
# lists is refused unless the cluster says `allowUnlistedRegion: true`.
AWS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "af-south-1",
        "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ca-central-1", "ca-west-1",
        "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "eu-south-1", "eu-south-2", "eu-north-1",
        "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
        "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
    }
)  # fmt: skip
GCP_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
        "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
        "australia-southeast1", "australia-southeast2",
        "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
        "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6",
        "europe-west8", "europe-west9", "europe-west10", "europe-west12",
        "me-central1", "me-central2", "me-west1",
        "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
        "southamerica-east1", "southamerica-west1",
        "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
        "us-west1", "us-west2", "us-west3", "us-west4",
    }
)  # fmt: skip


def gcp_region(location: str) -> str:
    """`us-central1-a` -> `us-central1`; a region is its own."""
    parts = location.split("-")
    return "-".join(parts[:2])


# GKE: the minor versions it still creates clusters at, standard or extended support
# (GKE release schedule, 2026-12); older ones it no longer offers.
GKE_OFFERED = ("1.32", "1.33", "1.34", "1.35", "1.36", "1.37")

# Name limits of the clouds' own objects (GKE: "cluster name ... up to 40 characters";
# node pool names likewise; EC2 instance types `<family>.<size>`; Compute Engine machine
# types `<series>-<kind>[-<vCPUs>][-<suffix>]`, or custom types).
GKE_NAME_LIMIT = 40
EC2_INSTANCE_TYPE = re.compile(
    r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)",
    re.ASCII,
)
GCE_MACHINE_TYPE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", re.ASCII)


# --- Fabric: the network between the training pods ---------------------------------
#
# EFA (Elastic Fabric Adapter) interfaces an EC2 instance type takes: one per network
# card at most (AWS EC2 user guide, "Elastic Fabric Adapter", "Supported instance
# types", and the EKS user guide ml/node-efa.adoc: "You can assign up to one EFA per
# network card"). Only the GPU types mlgitops sizes (EC2_LISTED, the G families) are
# listed; every one is also in the instance-type list of the EFA device plugin's chart
# (aws/eks-charts stable/aws-efa-k8s-device-plugin values.yaml), which is where the
# plugin runs.
EC2_EFA_INTERFACES = {
    "p3dn.24xlarge": 1,
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
    "p6-b200.48xlarge": 8,
    "g4dn.8xlarge": 1,
    "g4dn.12xlarge": 1,
    "g4dn.16xlarge": 1,
    "g5.8xlarge": 1,
    "g5.12xlarge": 1,
    "g5.16xlarge": 1,
    "g5.24xlarge": 1,
    "g5.48xlarge": 1,
    "g6.8xlarge": 1,
    "g6.12xlarge": 1,
    "g6.16xlarge": 1,
    "g6.24xlarge": 1,
    "g6.48xlarge": 1,
    "g6e.8xlarge": 1,
    "g6e.12xlarge": 1,
    "g6e.16xlarge": 1,
    "g6e.24xlarge": 2,
    "g6e.48xlarge": 4,
}
# Families whose EFA does GPUDirect RDMA (Nitro v4 and later: RDMA read on all of them;
# AWS EC2 user guide "Elastic Fabric Adapter"): NCCL's OFI plugin moves GPU buffers
# without a copy through the host when FI_EFA_USE_DEVICE_RDMA=1 (aws-ofi-nccl docs).
EC2_EFA_RDMA_FAMILIES = frozenset({"p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"})
EFA_RESOURCE = "vpc.amazonaws.com/efa"  # what the EFA device plugin advertises
# Huge pages the EFA driver's installer preallocates on EFA instances: 5128 pages of
# 2 MiB (EKS user guide ml/node-efa.adoc). They are no longer memory pods can request.
EFA_HUGE_PAGES_BYTES = 5128 * 2 * 1024 * 1024


def ec2_efa_interfaces(instance_type: str) -> int:
    """EFA interfaces an instance type takes, 0 when it has none (or is not listed)."""
    return EC2_EFA_INTERFACES.get(instance_type, 0)


def ec2_efa_rdma(instance_type: str) -> bool:
    return ec2_family(instance_type) in EC2_EFA_RDMA_FAMILIES


# The interface pods' traffic leaves by, per cloud: the pod's own network namespace
# has one interface, eth0, on all three (EKS VPC CNI: the pod's ENI address on eth0;
# GKE: eth0 of the pod's veth pair, Dataplane V2 as well; kind's kindnet: eth0). NCCL
# would otherwise pick by its own order and may choose a loopback or docker bridge
# (NCCL docs, "Environment Variables": NCCL_SOCKET_IFNAME).
NCCL_SOCKET_IFNAME = {"eks": "eth0", "gke": "eth0", "local": "eth0"}
# NCCL_DEBUG levels (NCCL docs, "Environment Variables"): VERSION prints the version
# only, WARN an explanation of an error, INFO what NCCL chose (transports, interfaces),
# TRACE every call (a debug build of NCCL only).
NCCL_DEBUG_LEVELS = ("VERSION", "WARN", "INFO", "TRACE")
# PyTorch's ProcessGroupNCCL (torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp, 2.x)
# reads TORCH_NCCL_ASYNC_ERROR_HANDLING, then the deprecated NCCL_ASYNC_ERROR_HANDLING;
# its default is 3 (SkipCleanUp). 1 (TearDown) ends the process when a collective
# fails or times out, so the pod fails and the run's failure policy restarts it,
# instead of a rank hanging on a dead peer.
TORCH_NCCL_ASYNC_ERROR_HANDLING = "1"
# libfabric on EFA (libfabric fi_efa(7), AWS EFA docs): the provider, GPUDirect RDMA
# where the instance has it, and no huge pages (the pods request none: a huge-page
# request would have to be sized per pod, and libfabric falls back to normal pages).
EFA_ENV: tuple[tuple[str, str], ...] = (
    ("FI_PROVIDER", "efa"),
    ("FI_EFA_USE_HUGE_PAGE", "0"),
)
EFA_RDMA_ENV: tuple[tuple[str, str], ...] = (("FI_EFA_USE_DEVICE_RDMA", "1"),)

# GKE: Google Virtual NIC on the GPU machine series (GKE "Use Google Virtual NIC";
# A3 and later need it; A2, G2 and N1 with GPUs support it): higher bandwidth than
# virtio-net, a node-level setting that changes nothing in the pods.
GCE_GVNIC_SERIES = frozenset({"a2", "a3", "a4", "g2", "g4", "n1"})
# GPUDirect on GKE (GKE "Maximize GPU network bandwidth"): each needs what Pod Security
# "restricted" forbids, so mlgitops refuses it rather than weaken the namespaces.
GKE_GPU_DIRECT = {
    "tcpx": (
        "a3-highgpu-8g",
        "a privileged tcpx-daemon sidecar and hostPath volumes for the NCCL plugin and /run/tcpx",
    ),
    "tcpxo": (
        "a3-megagpu-8g",
        "a privileged tcpxo-daemon sidecar and hostPath volumes for the NCCL plugin "
        "(/home/kubernetes/bin/nvidia)",
    ),
    "rdma": (
        "a3-ultragpu-8g or a4-highgpu-8g",
        "hostPath volumes for the NCCL gIB plugin (/home/kubernetes/bin/gib) and "
        "unlimited locked memory (IPC_LOCK)",
    ),
}


def gce_series(machine_type: str) -> str:
    return machine_type.split("-", 1)[0]


def gke_gvnic(machine_type: str, has_accelerator: bool) -> bool:
    """gVNIC on GPU pools of the series that support it."""
    return has_accelerator and gce_series(machine_type) in GCE_GVNIC_SERIES


# Topology: where in the data-center network a node sits, as node labels the cloud sets,
# outermost level first and always ending at the node itself (`kubernetes.io/hostname`,
# which every node has). Kueue's Topology-Aware Scheduling and JobSet's exclusive
# placement read these labels (render/topology.py).
#
# EKS: nodes of the instance types EC2 describes a network topology for get
# `topology.k8s.aws/network-node-layer-1` (top) .. `-3` (the bottom layer for most types),
# and `-4` on the types whose topology has four layers (EKS user guide, "Place distributed
# AI/ML workloads with network topology labels", ml-workload-topology). Which types: EC2
# user guide, "Prerequisites for Amazon EC2 topology" (instance types; as of 2026-12):
# three network nodes for the g6e, g7e, hpc6a, hpc6id, hpc7a, hpc7g, hpc8a, p3dn, p4d,
# p4de, p5, p5e, p5en, p6e-gb200, trn1, trn1n, trn2, trn2u families, four for p6-b200 and
# p6-b300. Other instance types get none of these labels.
#
# GKE: nodes get `cloud.google.com/gce-topology-block`, `-subblock` and `-host` (the
# physical machine) on the AI Hypercomputer machine series whose placement Compute
# Engine reports, A4 and A3 Ultra (`a4-highgpu-*`, `a3-ultragpu-*`), where the capacity
# is densely placed, i.e. from a reservation (Google Cloud, "Schedule GKE workloads with
# Topology Aware Scheduling"; Compute Engine "View Compute Engine instance topology").
# The guide: TAS works best with densely placed capacity, from reservations; Spot and
# flex-start VMs are less likely to be close together.
#
# Who sets the EKS labels and since which EKS or AMI release is not stated in the pages
# these facts come from (the guide says EKS exposes them); mlgitops sets none of them.
HOSTNAME_LABEL = "kubernetes.io/hostname"
EKS_NETWORK_LAYERS = tuple(f"topology.k8s.aws/network-node-layer-{n}" for n in (1, 2, 3, 4))
EKS_THREE_LAYER_FAMILIES = frozenset(
    {
        "g6e", "g7e", "hpc6a", "hpc6id", "hpc7a", "hpc7g", "hpc8a",
        "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6e-gb200",
        "trn1", "trn1n", "trn2", "trn2u",
    }
)  # fmt: skip
EKS_FOUR_LAYER_FAMILIES = frozenset({"p6-b200", "p6-b300"})
GKE_TOPOLOGY_LABELS = (
    "cloud.google.com/gce-topology-block",
    "cloud.google.com/gce-topology-subblock",
    "cloud.google.com/gce-topology-host",
)
# Machine series -> the kind of it the guide names (other A3 kinds, e.g. a3-highgpu, are
# not assumed to publish them).
GKE_TOPOLOGY_KINDS = {"a4": "highgpu", "a3": "ultragpu"}

# The level names a workload's `topology` uses, per cloud, and the label each means.
# `node` is one node on every cloud.
TOPOLOGY_LEVELS: dict[str, dict[str, str]] = {
    "eks": {
        "layer-1": EKS_NETWORK_LAYERS[0],
        "layer-2": EKS_NETWORK_LAYERS[1],
        "layer-3": EKS_NETWORK_LAYERS[2],
        "layer-4": EKS_NETWORK_LAYERS[3],
        "node": HOSTNAME_LABEL,
    },
    "gke": {
        "block": GKE_TOPOLOGY_LABELS[0],
        "subblock": GKE_TOPOLOGY_LABELS[1],
        "host": GKE_TOPOLOGY_LABELS[2],
        "node": HOSTNAME_LABEL,
    },
    "local": {"node": HOSTNAME_LABEL},
}


def ec2_topology_labels(instance_type: str) -> tuple[str, ...]:
    """The network-layer labels EKS puts on nodes of this type, outermost first."""
    family = ec2_family(instance_type)
    if family in EKS_FOUR_LAYER_FAMILIES:
        return EKS_NETWORK_LAYERS
    if family in EKS_THREE_LAYER_FAMILIES:
        return EKS_NETWORK_LAYERS[:3]
    return ()


def gce_topology_labels(machine_type: str) -> tuple[str, ...]:
    """The block / subblock / host labels GKE puts on nodes of this machine type."""
    series, _, rest = machine_type.partition("-")
    kind = rest.split("-", 1)[0]
    if GKE_TOPOLOGY_KINDS.get(series) == kind:
        return GKE_TOPOLOGY_LABELS
    return ()


def topology_labels(cloud: str, machine: str) -> tuple[str, ...]:
    """The topology labels nodes of this type carry, outermost first, without the
    hostname (every node has that)."""
    if cloud == "eks":
        return ec2_topology_labels(machine)
    if cloud == "gke":
        return gce_topology_labels(machine)
    return ()
