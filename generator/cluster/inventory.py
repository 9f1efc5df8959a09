"""What the cluster model needs to know of each object a cluster is given, as plain data
(kept with each build's result in validate's cache, so an unchanged build is never read
again): the pods a workload's controller creates, as pod sets of identical pods, and the
objects pods refer to (claims, storage classes, service accounts, queues, flavors,
priority classes, training runtimes).

A TrainJob's pods come from its runtime, which another path may hold: the TrainJob and
the runtimes are kept whole and combined when the cluster is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from generator.cluster import controllers
from generator.cluster.placement import shape_of
from generator.render.datasets import HAND_MADE_CLAIMS_ANNOTATION

Fact = dict[str, Any]
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
ACK_EKS_GROUP = "eks.services.k8s.aws/"  # ACK's Addon: an EKS add-on the cluster installs
WAIVER_PREFIX = "mlgitops.io/waive-"
# Kinds whose pod templates run pods, beside the training kinds, with where their
# template is and how many pods it makes.
POD_TEMPLATES = {
    "Deployment": "replicas",
    "StatefulSet": "replicas",
    "ReplicaSet": "replicas",
}


def facts_of(obj: Mapping[str, Any]) -> list[Fact]:
    kind = str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "default")
    spec = obj.get("spec") or {}
    if kind == "Namespace":  # the claims made outside the tree that it says it has
        listed = str((meta.get("annotations") or {}).get(HAND_MADE_CLAIMS_ANNOTATION, ""))
        return [
            {"type": "PersistentVolumeClaim", "name": claim, "namespace": name, "madeByHand": True}
            for claim in listed.split(",")
            if claim
        ]
    if kind == "StorageClass":  # its fields are at the top level
        return [{"type": kind, "name": name, "provisioner": obj.get("provisioner")}]
    if kind in ("Nodegroup", "ContainerNodePool"):
        return [node_group_fact(kind, spec)]
    if kind == "Addon" and str(obj.get("apiVersion", "")).startswith(ACK_EKS_GROUP):
        return [{"type": "Addon", "name": str(spec.get("name", ""))}]  # the EKS add-on's
    if kind in ("TrainJob", "ClusterTrainingRuntime", "TrainingRuntime"):
        return [{"type": kind, "name": name, "namespace": namespace, "object": dict(obj)}]
    if kind in controllers.TRAINING_KINDS:
        try:
            groups = controllers.pod_groups(dict(obj))
        except controllers.ControllerRefuses as refused:
            return [
                {
                    "type": "refused",
                    "kind": kind,
                    "name": name,
                    "namespace": namespace,
                    "message": str(refused),
                }
            ]
        return [workload_fact(obj, [(g.role, g.count, g.spec, g.annotations) for g in groups])]
    if kind in POD_TEMPLATES:
        template = spec.get("template") or {}
        replicas = int(spec.get("replicas", 1))
        own = (template.get("metadata") or {}).get("annotations") or {}
        return [workload_fact(obj, [("", replicas, template.get("spec") or {}, own)])]
    if kind == "Pod":
        return [workload_fact(obj, [("", 1, spec, meta.get("annotations") or {})])]
    simple = SIMPLE.get(kind)
    if simple is None:
        return []
    return [{"type": kind, "name": name, "namespace": namespace, **simple(spec)}]


PodSetSource = tuple[
    str, int, Mapping[str, Any], Mapping[str, Any]
]  # role, count, spec, annotations
# Kueue's topology requests on a pod template (kueue v0.17.6 apis/kueue/v1beta2
# topology_types.go; pkg/controller/jobframework/tas.go reads required, then preferred).
TOPOLOGY_ANNOTATIONS = (
    ("required", "kueue.x-k8s.io/podset-required-topology"),
    ("preferred", "kueue.x-k8s.io/podset-preferred-topology"),
)


def topology_request(annotations: Mapping[str, Any]) -> list[str] | None:
    """[mode, node label] of the pod set's topology request, or None."""
    for mode, key in TOPOLOGY_ANNOTATIONS:
        if key in annotations:
            return [mode, str(annotations[key])]
    return None


def workload_fact(obj: Mapping[str, Any], groups: list[PodSetSource]) -> Fact:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return {
        "type": "workload",
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "default",
        "queue": (meta.get("labels") or {}).get(QUEUE_LABEL),
        "waived": sorted(
            key.removeprefix(WAIVER_PREFIX).upper()
            for key, reason in annotations.items()
            if key.startswith(WAIVER_PREFIX) and str(reason).strip()
        ),
        "podSets": [
            {
                "name": role or "pods",
                "count": count,
                "shape": shape_of(spec, annotations).as_data(),
                "topology": topology_request(annotations),
            }
            for role, count, spec, annotations in groups
        ],
    }


# The EKS API's spelling of taint effects (ACK Nodegroup), in the Kubernetes API's.
EKS_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


def node_group_fact(kind: str, spec: Mapping[str, Any]) -> Fact:
    """A node group as the cluster manifests create it (ACK Nodegroup, Config Connector
    ContainerNodePool): what a hand edit there changes about the nodes."""
    if kind == "Nodegroup":
        scaling = spec.get("scalingConfig") or {}
        return {
            "type": "NodeGroup",
            "name": spec.get("name"),
            "labels": dict(spec.get("labels") or {}),
            "taints": _taints(spec.get("taints") or []),
            "nodes": scaling.get("desiredSize"),
            "machine": (spec.get("instanceTypes") or [None])[0],
            "accelerator": None,
        }
    config = spec.get("nodeConfig") or {}
    scaling = spec.get("autoscaling") or {}
    accelerators = config.get("guestAccelerator") or [{}]
    return {
        "type": "NodeGroup",
        "name": spec.get("resourceID"),
        "labels": dict(config.get("labels") or {}),
        "taints": _taints(config.get("taint") or []),
        "nodes": scaling.get("maxNodeCount", spec.get("nodeCount")),  # per zone
        "machine": config.get("machineType"),
        "accelerator": [accelerators[0].get("type"), accelerators[0].get("count", 0)]
        if accelerators[0]
        else None,
    }


def _taints(written: list[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [t.get("key"), t.get("value", ""), EKS_EFFECTS.get(str(t.get("effect")), t.get("effect"))]
        for t in written
    ]


def _claim(spec: Mapping[str, Any]) -> Fact:
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    return {
        "storageClass": spec.get("storageClassName"),
        "accessModes": list(spec.get("accessModes") or ()),
        "size": None if storage is None else str(storage),
    }


SIMPLE: dict[str, Callable[[Mapping[str, Any]], Fact]] = {
    "PersistentVolumeClaim": _claim,
    "ServiceAccount": lambda spec: {},
    "PriorityClass": lambda spec: {},
    "LocalQueue": lambda spec: {"clusterQueue": spec.get("clusterQueue")},
    "ClusterQueue": lambda spec: {"spec": dict(spec)},
    # MultiKueue on the management cluster (cluster/dispatched.py).
    "AdmissionCheck": lambda spec: {"spec": dict(spec)},
    "MultiKueueConfig": lambda spec: {"clusters": list(spec.get("clusters") or ())},
    "ResourceFlavor": lambda spec: {"spec": dict(spec)},
    "Topology": lambda spec: {
        "levels": [str(lv.get("nodeLabel")) for lv in spec.get("levels") or []]
    },
}
