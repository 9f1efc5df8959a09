"""Kueue on the clusters that run queued workloads (`queue:` on a workload).

Per cluster: a ResourceFlavor per node group (EKS) or node pool (GKE), selecting its
nodes by the label the cloud puts on them, and one ClusterQueue named after the platform
whose nominal quota per flavor is the group's capacity at its largest: node capacity
(cloud_facts) times the most nodes it may have. Kubernetes reserves part of each node
for itself, so the quota admits slightly more than fits; the scheduler still places
pods on real capacity. A kind cluster has no node groups: its one flavor's quota is the
largest queued workload as it runs there, so queued runs on a laptop go one at a time.

Per namespace: a LocalQueue for each queue its workloads name, pointing at the
ClusterQueue (same name on every cluster, so the namespace's base serves them all).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from generator import cloud_facts
from generator.cloud_facts import NodeCapacity
from generator.config import model
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, metadata
from generator.render.pods import render_resources

KUEUE_API = "kueue.x-k8s.io/v1beta1"
NODE_GROUP_LABELS = {
    "eks": "eks.amazonaws.com/nodegroup",
    "gke": "cloud.google.com/gke-nodepool",
}
LOCAL_FLAVOR = "kind-nodes"


def queued_namespaces(config: model.Config) -> set[str]:
    return {w.namespace for w in config.workloads if w.queue}


def runs_queues(config: model.Config, cluster: model.Cluster) -> bool:
    """Kueue goes wherever a namespace with queued workloads runs: the namespace's
    LocalQueues come with it."""
    queued = queued_namespaces(config)
    return any(w.namespace in queued for w in config.workloads_on(cluster))


def cluster_queue_name(config: model.Config) -> str:
    return config.name


def render_local_queues(config: model.Config, namespace: str) -> list[Manifest]:
    queues = sorted({w.queue for w in config.workloads if w.namespace == namespace and w.queue})
    return [
        {
            "apiVersion": KUEUE_API,
            "kind": "LocalQueue",
            "metadata": metadata(queue, platform_labels(config), namespace),
            "spec": {"clusterQueue": cluster_queue_name(config)},
        }
        for queue in queues
    ]


def node_groups(cluster: model.Cluster) -> list[tuple[str, NodeCapacity | None, int]]:
    """(name, one node's capacity, most nodes) for each group of nodes of a cloud cluster;
    a capacity given in the config wins over the tables'."""
    if isinstance(cluster, model.EksCluster):
        return [
            (
                g.name,
                _given(g.capacity) or cloud_facts.ec2_capacity(g.instance_types[0]),
                g.max_size,
            )
            for g in cluster.node_groups
        ]
    if isinstance(cluster, model.GkeCluster):
        zones = cloud_facts.gke_zones(cluster.location)
        return [
            (
                pool.name,
                _given(pool.capacity)
                or cloud_facts.gce_capacity(
                    pool.machine_type, pool.accelerator.count if pool.accelerator else 0
                ),
                zones * (pool.autoscaling.max_nodes if pool.autoscaling else pool.node_count),
            )
            for pool in cluster.node_pools
        ]
    return []


def _ec2(group: model.EksNodeGroup) -> NodeCapacity | None:
    return cloud_facts.ec2_capacity(group.instance_types[0])


def _given(capacity: model.NodeCapacity | None) -> NodeCapacity | None:
    if capacity is None:
        return None
    return NodeCapacity(capacity.cpu, capacity.memory, capacity.gpus)


def render_cluster_queue_objects(config: model.Config, cluster: model.Cluster) -> list[Manifest]:
    labels = platform_labels(config)
    flavors: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    if isinstance(cluster, model.LocalCluster):
        flavors.append((LOCAL_FLAVOR, {}, _largest_local_run(config, cluster)))
    else:
        for name, capacity, most in node_groups(cluster):
            assert capacity is not None, "the config rules require known node capacities"
            quota = {
                "cpu": capacity.cpu * most,
                "memory": _times(capacity.memory, most),
                cloud_facts.GPU_RESOURCE: capacity.gpus * most,
            }
            flavors.append((name, {NODE_GROUP_LABELS[cluster.cloud]: name}, quota))
    resources = ["cpu", "memory", cloud_facts.GPU_RESOURCE]
    objects: list[Manifest] = [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": metadata(name, labels),
            "spec": {"nodeLabels": node_labels} if node_labels else {},
        }
        for name, node_labels, _ in flavors
    ]
    running = {w.namespace for w in config.workloads_on(cluster)}
    namespaces = sorted(queued_namespaces(config) & running)
    objects.append(
        {
            "apiVersion": KUEUE_API,
            "kind": "ClusterQueue",
            "metadata": metadata(cluster_queue_name(config), labels),
            "spec": {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": namespaces,
                        }
                    ]
                },
                "resourceGroups": [
                    {
                        "coveredResources": resources,
                        "flavors": [
                            {
                                "name": name,
                                "resources": [
                                    {"name": r, "nominalQuota": quota[r]} for r in resources
                                ],
                            }
                            for name, _, quota in flavors
                        ],
                    }
                ],
            },
        }
    )
    return objects


def _times(quantity: str, factor: int) -> str:
    """A quantity times a whole number, in the quantity's own unit: 64Gi x 3 = 192Gi."""
    written = re.fullmatch(r"\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", quantity)
    assert written, f"not a quantity: {quantity}"
    number = Decimal(written.group(1)) * factor
    return f"{number.normalize():f}{written.group(2)}"


def _largest_local_run(config: model.Config, cluster: model.Cluster) -> dict[str, Any]:
    """A quota that admits any one queued workload as it runs on a laptop, not two."""
    cpu_millis, mebibytes = 0, 0.0
    for workload in config.workloads_on(cluster):
        if workload.queue:
            requests = render_resources(workload.resources_on("local"))["requests"]
            cpu_millis = max(cpu_millis, _millicores(requests["cpu"]) * workload.pod_count)
            mebibytes = max(mebibytes, _mebibytes(requests["memory"]) * workload.pod_count)
    return {
        "cpu": f"{cpu_millis}m",
        "memory": f"{math.ceil(mebibytes)}Mi",
        cloud_facts.GPU_RESOURCE: 0,
    }


def _millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
MEBIBYTES = {suffix: factor / 2**20 for suffix, factor in (BINARY | DECIMAL).items()}


def _mebibytes(quantity: str) -> float:
    for suffix in sorted(MEBIBYTES, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * MEBIBYTES[suffix]
    return float(quantity) / 2**20
