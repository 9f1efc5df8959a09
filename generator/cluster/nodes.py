"""The nodes a configured cluster can have: per EKS node group or GKE node pool, the
labels the cloud and mlgitops put on its nodes, its taints, one node's capacity and
allocatable, and how many nodes exist.

One rule decides the GPU taint on both clouds: GPU nodes are tainted `nvidia.com/gpu`
only when the cluster has other nodes for everything else. GKE does exactly this itself
(it taints GPU pools `nvidia.com/gpu=present:NoSchedule` when the cluster also has pools
without GPUs; GKE "Run GPUs in Standard node pools"); on EKS mlgitops sets the taint on
the node group. A cluster of GPU nodes only keeps them untainted, so CoreDNS, the
operators and CPU pods, which do not tolerate the taint, still have somewhere to run.

How many nodes exist: an EKS node group has `desiredSize` nodes (no autoscaler is
installed, and one would fight ACK over `desiredSize`); a GKE pool has `nodeCount` per
zone, or up to `maxNodes` per zone when GKE's own autoscaler scales it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from generator import cloud_facts
from generator.cluster import facts
from generator.config import model
from generator.quantities import memory_bytes, millicores

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"  # selects GPU nodes for the NVIDIA device plugin
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NODE_GROUP_LABELS = {
    "eks": "eks.amazonaws.com/nodegroup",  # EKS managed node groups (managed-node-groups.adoc)
    "gke": "cloud.google.com/gke-nodepool",  # GKE node pools
}


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # as the Kubernetes API writes it: NoSchedule


@dataclass(frozen=True)
class Amounts:
    """CPU in millicores, memory in bytes, whole GPUs, EFA interfaces
    (`vpc.amazonaws.com/efa`, which the EFA device plugin advertises)."""

    millicores: int
    memory: int
    gpus: int
    efa: int = 0

    def holds(self, other: Amounts) -> bool:
        return (
            self.millicores >= other.millicores
            and self.memory >= other.memory
            and self.gpus >= other.gpus
            and self.efa >= other.efa
        )

    def times(self, factor: int) -> Amounts:
        return Amounts(
            self.millicores * factor, self.memory * factor, self.gpus * factor, self.efa * factor
        )


@dataclass(frozen=True)
class NodeGroup:
    """Identical nodes: an EKS node group, a GKE node pool, or a kind cluster's nodes."""

    name: str  # as the cloud names it, which is what its node label carries
    machine: str  # instance or machine type ("kind" locally)
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    capacity: Amounts | None  # None: no figures for this type (and none in the config)
    allocatable: Amounts | None
    nodes: int  # nodes that exist
    gpu_type: str | None
    # The topology labels the cloud puts on these nodes, outermost first, without the
    # hostname every node has (cloud_facts.topology_labels); their values are the cloud's.
    topology_labels: tuple[str, ...] = ()

    @property
    def tainted(self) -> bool:
        return bool(self.taints)


GPU_TAINT = Taint(cloud_facts.GPU_TAINT_KEY, "true", "NoSchedule")
GKE_GPU_TAINT = Taint(cloud_facts.GPU_TAINT_KEY, "present", "NoSchedule")


@functools.cache
def _node_groups(cluster: model.Cluster) -> tuple[NodeGroup, ...]:
    if isinstance(cluster, model.EksCluster):
        return tuple(_eks_groups(cluster))
    if isinstance(cluster, model.GkeCluster):
        return tuple(_gke_pools(cluster))
    return tuple(_kind_nodes(cluster))


def node_groups(cluster: model.Cluster) -> list[NodeGroup]:
    """Computed once per cluster (the config rules ask for every workload)."""
    return list(_node_groups(cluster))


def _eks_groups(cluster: model.EksCluster) -> list[NodeGroup]:
    has_cpu_group = any(not cloud_facts.ec2_gpu(g.instance_types[0]) for g in cluster.node_groups)
    groups = []
    for group in cluster.node_groups:
        instance = group.instance_types[0]
        gpu = cloud_facts.ec2_gpu(instance)
        labels = {
            NODE_GROUP_LABELS["eks"]: group.name,
            "eks.amazonaws.com/capacityType": group.capacity_type,
            INSTANCE_TYPE_LABEL: instance,
            **_platform_labels(cloud_facts.ec2_is_arm(instance)),
            **eks_gpu_labels(group),
        }
        capacity = _capacity(group.capacity, cloud_facts.ec2_capacity(instance))
        allocatable = capacity and _eks_allocatable(instance, capacity)
        efa = group_efa_interfaces(group)
        if allocatable and efa:
            # The EFA interfaces of the launch template, advertised by the EFA device
            # plugin (whose DaemonSet takes its requests); the huge pages the EFA
            # installer preallocates are not memory pods get.
            plugin = facts.EFA_DAEMON_POD
            allocatable = Amounts(
                allocatable.millicores - plugin.millicores,
                allocatable.memory - cloud_facts.EFA_HUGE_PAGES_BYTES - plugin.memory,
                allocatable.gpus,
                efa,
            )
        groups.append(
            NodeGroup(
                name=group.name,
                machine=instance,
                labels=labels,
                taints=(GPU_TAINT,) if gpu and has_cpu_group else (),
                capacity=capacity,
                allocatable=allocatable,
                nodes=group.desired_size,
                gpu_type=gpu,
                topology_labels=cloud_facts.ec2_topology_labels(instance),
            )
        )
    return groups


def group_efa_interfaces(group: model.EksNodeGroup) -> int:
    from generator.render.fabric import group_efa_interfaces as interfaces

    return interfaces(group)


def eks_gpu_labels(group: model.EksNodeGroup) -> dict[str, str]:
    """What mlgitops labels GPU node groups with: the accelerator (the label the EKS
    overlay's affinity requires; EKS itself sets none) and `nvidia.com/gpu.present`, which
    the NVIDIA device plugin's chart selects its nodes by."""
    gpu = cloud_facts.ec2_gpu(group.instance_types[0])
    if not gpu:
        return {}
    return {cloud_facts.EKS_GPU_NODE_LABEL: gpu, GPU_PRESENT_LABEL: "true"}


def eks_taints(cluster: model.EksCluster, group: model.EksNodeGroup) -> tuple[Taint, ...]:
    (found,) = [g for g in node_groups(cluster) if g.name == group.name]
    return found.taints


def _gke_pools(cluster: model.GkeCluster) -> list[NodeGroup]:
    has_cpu_pool = any(pool.accelerator is None for pool in cluster.node_pools)
    zones = cloud_facts.gke_zones(cluster.location)
    pools = []
    for pool in cluster.node_pools:
        accelerator = pool.accelerator
        gpus = accelerator.count if accelerator else 0
        labels = {
            NODE_GROUP_LABELS["gke"]: pool.name,
            INSTANCE_TYPE_LABEL: pool.machine_type,
            **_platform_labels(cloud_facts.gce_is_arm(pool.machine_type)),
        }
        if accelerator:
            labels[cloud_facts.GKE_GPU_NODE_LABEL] = accelerator.type
        capacity = _capacity(pool.capacity, cloud_facts.gce_capacity(pool.machine_type, gpus))
        per_zone = pool.autoscaling.max_nodes if pool.autoscaling else pool.node_count
        pools.append(
            NodeGroup(
                name=pool.name,
                machine=pool.machine_type,
                labels=labels,
                taints=(GKE_GPU_TAINT,) if accelerator and has_cpu_pool else (),
                capacity=capacity,
                allocatable=capacity and _gke_allocatable(capacity),
                nodes=zones * per_zone,
                gpu_type=accelerator.type if accelerator else None,
                topology_labels=cloud_facts.gce_topology_labels(pool.machine_type),
            )
        )
    return pools


def _kind_nodes(cluster: model.LocalCluster) -> list[NodeGroup]:
    """kind's nodes are containers sharing the laptop: their size is the laptop's, which
    the config does not know. kind leaves kubeadm's control-plane taint on when the
    cluster has workers, and removes it when the control plane is the only node."""
    control_plane = NodeGroup(
        name="control-plane",
        machine="kind",
        labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
        taints=(CONTROL_PLANE_TAINT,) if cluster.workers else (),
        capacity=None,
        allocatable=None,
        nodes=1,
        gpu_type=None,
    )
    if not cluster.workers:
        return [control_plane]
    workers = NodeGroup(
        name="worker",
        machine="kind",
        labels={"kubernetes.io/os": "linux"},
        taints=(),
        capacity=None,
        allocatable=None,
        nodes=cluster.workers,
        gpu_type=None,
    )
    return [workers, control_plane]


CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")


def _platform_labels(arm: bool) -> dict[str, str]:
    """The kubelet's own labels (k8s.io/api core/v1 well_known_labels.go)."""
    return {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64" if arm else "amd64"}


def _capacity(
    given: model.NodeCapacity | None, known: cloud_facts.NodeCapacity | None
) -> Amounts | None:
    chosen = given or known
    if chosen is None:
        return None
    return Amounts(chosen.cpu * 1000, memory_bytes(chosen.memory), chosen.gpus)


def _eks_allocatable(instance_type: str, capacity: Amounts) -> Amounts:
    daemons = facts.DAEMON_PODS["eks"]
    cpu = facts.reserved_millicores(capacity.millicores // 1000)
    cpu += sum(pod.millicores for pod in daemons)
    memory = facts.eks_reserved_memory(instance_type) + facts.EVICTION_MEMORY
    memory += sum(pod.memory for pod in daemons)
    return Amounts(capacity.millicores - cpu, capacity.memory - memory, capacity.gpus)


def _gke_allocatable(capacity: Amounts) -> Amounts:
    cpu = facts.reserved_millicores(capacity.millicores // 1000)
    memory = facts.gke_reserved_memory(capacity.memory) + facts.EVICTION_MEMORY
    return Amounts(capacity.millicores - cpu, capacity.memory - memory, capacity.gpus)


def pod_amounts(resources: model.Resources) -> Amounts:
    return Amounts(millicores(resources.cpu), memory_bytes(resources.memory), resources.gpu)


# Labels mlgitops sets on node groups (the rest are the cloud's and the kubelet's own).
GENERATED_LABELS = frozenset({cloud_facts.EKS_GPU_NODE_LABEL, GPU_PRESENT_LABEL})


def as_built(
    cluster: model.Cluster, groups: list[NodeGroup], built: list[dict[str, object]]
) -> list[NodeGroup]:
    """The node groups as the cluster manifests in the tree create them (a hand edit or
    a patch there changes names, labels, taints and sizes): `built` holds the Nodegroup
    and ContainerNodePool facts of the cluster's infrastructure path (inventory.py). A
    group of the config the tree no longer creates does not exist; one the config does
    not know is sized from its machine type. Without such facts, the config's groups."""
    facts = [fact for fact in built if fact.get("type") == "NodeGroup"]
    daemons = addon_daemon_pods(built)
    if not facts:
        return [_less_daemons(g, daemons) for g in groups]
    by_name = {g.name: g for g in groups}
    zones = cloud_facts.gke_zones(cluster.location) if isinstance(cluster, model.GkeCluster) else 1
    found = [_as_written(cluster, by_name.get(str(fact["name"])), fact, zones) for fact in facts]
    if isinstance(cluster, model.GkeCluster):
        # GKE taints GPU pools itself when the cluster also has pools without GPUs.
        has_cpu = any(g.gpu_type is None for g in found)
        found = [
            NodeGroup(
                g.name,
                g.machine,
                g.labels,
                tuple(dict.fromkeys((*g.taints, GKE_GPU_TAINT)))
                if g.gpu_type and has_cpu
                else tuple(t for t in g.taints if t != GKE_GPU_TAINT),
                g.capacity,
                g.allocatable,
                g.nodes,
                g.gpu_type,
                g.topology_labels,
            )
            for g in found
        ]
    return [_less_daemons(g, daemons) for g in found]


def addon_daemon_pods(built: list[dict[str, object]]) -> list[facts.DaemonPod]:
    """The DaemonSets of the add-ons the cluster's infrastructure installs (its ACK
    Addon facts), which run on every node (facts.ADDON_DAEMON_PODS)."""
    names = sorted({str(f["name"]) for f in built if f.get("type") == "Addon"})
    return [facts.ADDON_DAEMON_PODS[n] for n in names if n in facts.ADDON_DAEMON_PODS]


def _less_daemons(group: NodeGroup, daemons: list[facts.DaemonPod]) -> NodeGroup:
    room = group.allocatable
    if room is None or not daemons:
        return group
    less = Amounts(
        room.millicores - sum(d.millicores for d in daemons),
        room.memory - sum(d.memory for d in daemons),
        room.gpus,
        room.efa,
    )
    return dataclasses.replace(group, allocatable=less)


def _as_written(
    cluster: model.Cluster, known: NodeGroup | None, fact: dict[str, object], zones: int
) -> NodeGroup:
    name, machine = str(fact["name"]), str(fact.get("machine") or "")
    written = [Taint(str(k), str(v), str(e)) for k, v, e in fact.get("taints") or []]  # type: ignore[attr-defined]
    size = fact.get("nodes")
    own = fact.get("labels")
    labels = dict(own) if isinstance(own, dict) else {}
    if known is not None and machine in ("", known.machine):
        base = {k: v for k, v in known.labels.items() if k not in GENERATED_LABELS}
        nodes = size * zones if isinstance(size, int) else known.nodes
        taints = tuple(written) if cluster.cloud == "eks" else known.taints + tuple(written)
        return NodeGroup(
            name,
            known.machine,
            {**base, **labels},
            tuple(dict.fromkeys(taints)),
            known.capacity,
            known.allocatable,
            nodes,
            known.gpu_type,
            known.topology_labels,
        )
    accelerator = fact.get("accelerator")
    if cluster.cloud == "eks":
        gpu = cloud_facts.ec2_gpu(machine)
        table = cloud_facts.ec2_capacity(machine)
        arm = cloud_facts.ec2_is_arm(machine)
    else:
        gpu_type, count = accelerator if isinstance(accelerator, list) else (None, 0)
        gpu = str(gpu_type) if gpu_type else None
        table = cloud_facts.gce_capacity(machine, int(count or 0))
        arm = cloud_facts.gce_is_arm(machine)
        if gpu:
            labels.setdefault(cloud_facts.GKE_GPU_NODE_LABEL, gpu)
    capacity = _capacity(None, table)
    allocatable = capacity and (
        _eks_allocatable(machine, capacity)
        if cluster.cloud == "eks"
        else _gke_allocatable(capacity)
    )
    base = {
        NODE_GROUP_LABELS[cluster.cloud]: name,
        INSTANCE_TYPE_LABEL: machine,
        **_platform_labels(arm),
    }
    return NodeGroup(
        name,
        machine,
        {**base, **labels},
        tuple(written),
        capacity,
        allocatable,
        (size * zones if isinstance(size, int) else 0),
        gpu,
        cloud_facts.topology_labels(cluster.cloud, machine),
    )
