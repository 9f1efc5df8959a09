"""Topology-aware placement: a workload's `topology` as the annotations its controller
reads, and per cluster the Kueue `Topology` objects its ResourceFlavors reference.

What the controllers do with it, at the pinned releases:

- Kueue v0.17.6 (apis/kueue/v1beta2/topology_types.go; pkg/controller/jobframework/tas.go
  `NewPodSetTopologyRequest`) reads `kueue.x-k8s.io/podset-required-topology` or
  `podset-preferred-topology`, whose value is a node label of the flavor's Topology,
  from the metadata of each pod set's pod template: a Job's template, each JobSet
  replicated job's, each Kubeflow replica's (pkg/controller/jobs/job, jobset,
  kubeflow/kubeflowjob), and a TrainJob's through the JobSet its runtime makes
  (pkg/controller/jobs/trainjob: the pod sets of the runtime's JobSet template). Its
  Topology-Aware Scheduling is Beta and on by default since v0.14
  (pkg/features/kube_features.go `TopologyAwareScheduling`). Required: every pod of the
  pod set in one domain of that level, or not admitted; preferred: the narrowest level
  that holds them, else spread.
- A flavor with `topologyName` is a TAS flavor (resourceflavor_types.go; it then needs
  at least one nodeLabel, by the CRD's validation). Kueue counts only the nodes that
  match its nodeLabels and carry every level's label (pkg/util/tas/node.go
  `NodeMatchesFlavor`), so each flavor's Topology is exactly the levels its group's nodes
  carry. `kubernetes.io/hostname` may only be the lowest level (the Topology CRD's rule).
- A pod set that asks for a topology is never given a flavor without one, and one that
  does not is never given a TAS flavor, unless every flavor of the ClusterQueue is a TAS
  flavor: then it is admitted with TAS implied, unconstrained
  (pkg/scheduler/flavorassigner/tas_flavorassigner.go `checkPodSetAndFlavorMatchForTAS`,
  pkg/cache/scheduler/clusterqueue.go `isTASOnly`). So on a cluster where some queued
  workload asks for a topology, every flavor gets a Topology, and the workloads that do
  not ask are still admitted everywhere they were.
- JobSet v0.12.0 (api/jobset/v1alpha2/jobset_types.go `ExclusiveKey`) reads
  `alpha.jobset.sigs.k8s.io/exclusive-topology: <node label>` on the JobSet and copies it
  to each child Job's pods; its pod webhook (pkg/webhooks/pod_webhook.go) gives each
  Job's first pod a required pod affinity to its own Job and anti-affinity to other
  Jobs (of the same priority) on that label, and the others a nodeSelector for the
  domain their leader landed in: one Job per domain. The `node-selector` variant needs
  nodes labelled by hand and is not generated.
"""

from __future__ import annotations

from generator import cloud_facts
from generator.cluster import nodes
from generator.config import model
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, metadata

KUEUE_API = "kueue.x-k8s.io/v1beta2"  # Topology: served and stored (+kubebuilder:storageversion)
REQUIRED_ANNOTATION = "kueue.x-k8s.io/podset-required-topology"
PREFERRED_ANNOTATION = "kueue.x-k8s.io/podset-preferred-topology"
EXCLUSIVE_ANNOTATION = "alpha.jobset.sigs.k8s.io/exclusive-topology"

# What a Topology is named after, by the levels above the hostname its nodes carry.
TOPOLOGY_SUFFIXES = {
    (): "nodes",
    cloud_facts.EKS_NETWORK_LAYERS[:3]: "ec2-3-layers",
    cloud_facts.EKS_NETWORK_LAYERS: "ec2-4-layers",
    cloud_facts.GKE_TOPOLOGY_LABELS: "gce-blocks",
}
# A kind flavor selects nothing by default; a TAS flavor must select by some label, and
# every kind node has this one (the kubelet's, k8s.io/api core/v1 well_known_labels.go).
LOCAL_TAS_NODE_LABELS = {"kubernetes.io/os": "linux"}


def level_label(level: str) -> str:
    """The node label a level name means (the config rules hold it to one label on all
    the clouds a workload runs on: only `node` is common to several)."""
    for levels in cloud_facts.TOPOLOGY_LEVELS.values():
        if level in levels:
            return levels[level]
    raise KeyError(level)


def pod_template_annotations(workload: model.Workload) -> dict[str, str]:
    """What every pod template of the workload carries for Kueue."""
    request = workload.topology
    if request is None:
        return {}
    if request.required:
        return {REQUIRED_ANNOTATION: level_label(request.required)}
    if request.preferred:
        return {PREFERRED_ANNOTATION: level_label(request.preferred)}
    return {}


def object_annotations(workload: model.Workload) -> dict[str, str]:
    """What the training object itself carries: JobSet's exclusive placement."""
    request = workload.topology
    if request is None or not request.exclusive:
        return {}
    return {EXCLUSIVE_ANNOTATION: level_label(request.exclusive)}


def asks_kueue(workload: model.Workload) -> bool:
    request = workload.topology
    return bool(workload.queue and request and (request.required or request.preferred))


def uses_tas(config: model.Config, cluster: model.Cluster) -> bool:
    """Whether the cluster's ClusterQueue is topology-aware: some queued workload it runs
    asks Kueue for a topology."""
    return any(asks_kueue(w) for w in config.workloads_on(cluster))


def levels_of(group: nodes.NodeGroup | None) -> tuple[str, ...]:
    """A flavor's Topology levels: what its nodes carry, then the hostname."""
    above = group.topology_labels if group is not None else ()
    return (*above, cloud_facts.HOSTNAME_LABEL)


def topology_name(config: model.Config, group: nodes.NodeGroup | None) -> str:
    above = group.topology_labels if group is not None else ()
    return f"{config.name}-{TOPOLOGY_SUFFIXES[above]}"


def render_topologies(config: model.Config, cluster: model.Cluster) -> list[Manifest]:
    """One Topology per level set the cluster's groups have (cluster-scoped objects)."""
    if not uses_tas(config, cluster):
        return []
    groups: list[nodes.NodeGroup | None] = (
        [None] if isinstance(cluster, model.LocalCluster) else list(nodes.node_groups(cluster))
    )
    found: dict[str, tuple[str, ...]] = {}
    for group in groups:
        found.setdefault(topology_name(config, group), levels_of(group))
    return [
        {
            "apiVersion": KUEUE_API,
            "kind": "Topology",
            "metadata": metadata(name, platform_labels(config)),
            "spec": {"levels": [{"nodeLabel": label} for label in levels]},
        }
        for name, levels in sorted(found.items())
    ]
