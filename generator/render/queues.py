"""Kueue on the clusters that run queued workloads (`queue:` on a workload).

Per cluster: a ResourceFlavor per node group (EKS) or node pool (GKE), selecting its
nodes by the label the cloud puts on them (the name the cloud gives the group, which the
cluster manifests set) and declaring the group's taints, and one ClusterQueue named after
the platform whose nominal quota per flavor is what the nodes that exist offer pods:
allocatable (capacity less what the kubelet and system pods reserve) times the number of
nodes (cluster/nodes.py).

Kueue gives a workload the first flavor, in the ClusterQueue's order, with quota for
every resource it asks for and whose `nodeTaints` its pods tolerate
(kueue pkg/scheduler/flavorassigner), then adds the flavor's node labels to the pods'
node selector. So untainted flavors come first and tainted ones say so: a CPU job then
gets CPU nodes, never a GPU node's selector without the GPU toleration.

A kind cluster has no node groups: its one flavor's quota is the largest queued workload
as it runs there, so queued runs on a laptop go one at a time.

Per namespace: a LocalQueue for each queue its workloads name, pointing at the
ClusterQueue (same name on every cluster, so the namespace's base serves them all).
The objects use `kueue.x-k8s.io/v1beta2`, the version Kueue v0.17.6 stores
(its CRDs mark v1beta2 `storage: true`; v1beta1 is still served).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from generator import cloud_facts
from generator.cluster import nodes
from generator.config import model
from generator.quantities import cpu_quantity, memory_quantity
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, metadata
from generator.render.topology import (
    LOCAL_TAS_NODE_LABELS,
    render_topologies,
    topology_name,
    uses_tas,
)

KUEUE_API = "kueue.x-k8s.io/v1beta2"
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


def render_cluster_queue_objects(config: model.Config, cluster: model.Cluster) -> list[Manifest]:
    labels = platform_labels(config)
    flavors = _flavors(config, cluster)
    resources = ["cpu", "memory", cloud_facts.GPU_RESOURCE]
    if covers_efa(config, cluster):
        resources.append(cloud_facts.EFA_RESOURCE)
    objects: list[Manifest] = render_topologies(config, cluster)
    objects += [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": metadata(name, labels),
            "spec": spec,
        }
        for name, spec, _ in flavors
    ]
    running = {w.namespace for w in config.workloads_on(cluster)}
    namespaces = sorted(queued_namespaces(config) & running)
    objects.append(
        cluster_queue(
            cluster_queue_name(config),
            labels,
            namespaces,
            resources,
            [(name, quota) for name, _, quota in flavors],
        )
    )
    return objects


Flavor = tuple[str, dict[str, Any], dict[str, Any]]  # name, ResourceFlavor spec, quota


def cluster_queue(
    name: str,
    labels: dict[str, str],
    namespaces: Sequence[str],
    resources: Sequence[str],
    flavors: Sequence[tuple[str, Mapping[str, Any]]],
) -> Manifest:
    """A ClusterQueue for the pods of `namespaces`, one resource group covering
    `resources`, with each flavor's (name, quota by resource)."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "ClusterQueue",
        "metadata": metadata(name, labels),
        "spec": {
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": list(namespaces),
                    }
                ]
            },
            "resourceGroups": [
                {
                    "coveredResources": list(resources),
                    "flavors": [
                        {
                            "name": flavor,
                            "resources": [{"name": r, "nominalQuota": quota[r]} for r in resources],
                        }
                        for flavor, quota in flavors
                    ],
                }
            ],
        },
    }


def covers_efa(config: model.Config, cluster: model.Cluster) -> bool:
    """Whether the ClusterQueue covers `vpc.amazonaws.com/efa`: where some node group has
    EFA and the device plugin is installed, so that pods may ask for it. Kueue v0.17.6
    admits a pod set only if its ClusterQueue covers every resource it requests
    (pkg/scheduler/flavorassigner/flavorassigner.go: "resource %s unavailable in
    ClusterQueue"); the quota of a flavor is what its nodes offer (0 without EFA), and
    a pod set asking for none fits any flavor as before."""
    from generator.render import fabric

    return bool(fabric.efa_groups(cluster)) and fabric.plugin_installed(config)


def _flavors(config: model.Config, cluster: model.Cluster) -> list[Flavor]:
    """Untainted groups first, then tainted ones, each in config order. Where the
    ClusterQueue is topology-aware (render/topology.py), every flavor names the Topology
    of the levels its nodes carry."""
    tas = uses_tas(config, cluster)
    if isinstance(cluster, model.LocalCluster):
        local: dict[str, Any] = {}
        if tas:
            local = {
                "nodeLabels": dict(LOCAL_TAS_NODE_LABELS),
                "topologyName": topology_name(config, None),
            }
        return [(LOCAL_FLAVOR, local, _largest_local_run(config, cluster))]
    found: list[Flavor] = []
    groups = sorted(nodes.node_groups(cluster), key=lambda g: g.tainted)
    for group in groups:
        assert group.allocatable is not None, "the config rules require known node capacities"
        offered = group.allocatable.times(group.nodes)
        quota = {
            "cpu": cpu_quantity(offered.millicores),
            "memory": memory_quantity(offered.memory),
            cloud_facts.GPU_RESOURCE: offered.gpus,
            cloud_facts.EFA_RESOURCE: offered.efa,
        }
        spec: dict[str, Any] = {"nodeLabels": {nodes.NODE_GROUP_LABELS[cluster.cloud]: group.name}}
        if group.taints:
            spec["nodeTaints"] = [
                {"key": t.key, "value": t.value, "effect": t.effect} for t in group.taints
            ]
        if tas:
            spec["topologyName"] = topology_name(config, group)
        found.append((group.name, spec, quota))
    return found


def flavor_quotas(config: model.Config, cluster: model.Cluster) -> list[nodes.Amounts]:
    """What each flavor of a cloud cluster's ClusterQueue offers (as `_flavors` quotes it)."""
    found = []
    for group in nodes.node_groups(cluster):
        assert group.allocatable is not None, "the config rules require known node capacities"
        found.append(group.allocatable.times(group.nodes))
    return found


def _largest_local_run(config: model.Config, cluster: model.Cluster) -> dict[str, Any]:
    """A quota that admits any one queued workload as it runs on a laptop, not two."""
    cpu_millis, memory = 0, 0
    for workload in config.workloads_on(cluster):
        if workload.queue:
            run = nodes.pod_amounts(workload.resources_on("local")).times(workload.pod_count)
            cpu_millis = max(cpu_millis, run.millicores)
            memory = max(memory, run.memory)
    return {
        "cpu": f"{cpu_millis}m",
        "memory": f"{math.ceil(memory / 2**20)}Mi",
        cloud_facts.GPU_RESOURCE: 0,
        cloud_facts.EFA_RESOURCE: 0,
    }


# What a priority class becomes: Kueue orders (and preempts among) the workloads it
# admits by a WorkloadPriorityClass (kueue v0.17.6 apis/kueue/v1beta2
# workloadpriorityclass_types.go: `value`, `description`; v1beta2 is served and stored),
# named on the workload by the `kueue.x-k8s.io/priority-class` label; it leaves the pods'
# own priority alone. A workload no queue admits is ordered by the scheduler, through
# a PriorityClass and the pods' `priorityClassName`.
SCHEDULING_API = "scheduling.k8s.io/v1"


def render_priority_classes(config: model.Config, cluster: model.Cluster) -> list[Manifest]:
    """The classes the workloads on this cluster name, each as what orders them there."""
    on_cluster = [w for w in config.workloads_on(cluster) if w.priority]
    queued = {w.priority for w in on_cluster if w.queue}
    scheduled = {w.priority for w in on_cluster if not w.queue}
    labels = platform_labels(config)
    objects: list[Manifest] = []
    for priority in config.priority_classes:
        body: dict[str, Any] = {"value": priority.value}
        if priority.description:
            body["description"] = priority.description
        if priority.name in queued:
            objects.append(
                {
                    "apiVersion": KUEUE_API,
                    "kind": "WorkloadPriorityClass",
                    "metadata": metadata(priority.name, labels),
                    **body,
                }
            )
        if priority.name in scheduled:
            objects.append(
                {
                    "apiVersion": SCHEDULING_API,
                    "kind": "PriorityClass",
                    "metadata": metadata(priority.name, labels),
                    **body,
                }
            )
    return objects
