"""Per-cloud overlays, all driven by one table (cloud_facts.CLOUD_PROFILES).

- `overlays/<cloud>/` is a kustomize Component whose patches select objects by label,
  so one file serves every workload: storage classes for checkpoint claims, GPU node
  affinity and tolerations for jobs that request GPUs, co-location where a cloud has
  no ReadWriteMany storage.
- `overlays/<cloud>/identity/` adds the egress that cloud credentials need.
- `overlays/<cloud>/workloads/<workload>/` exists only where a workload differs on that
  cloud (its overrides; on local, laptop-sized resources): a JSON patch computed as the
  difference between the Job as rendered for the cloud and the base Job.
- `overlays/eks/storage/` holds the StorageClass EKS does not ship.
- `overlays/<cloud>/custom/` is people's own Component, created once, never rewritten.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from generator import cloud_facts
from generator.cloud_facts import CloudProfile
from generator.config import model
from generator.quantities import memory_bytes
from generator.render import datasets, json_patch
from generator.render.labels import CHECKPOINT_LABEL, GPU_LABEL, platform_labels
from generator.render.objects import Manifest, Patch, Unit
from generator.render.pods import checkpoint_claim, checkpoint_sharing, shares_data_claims
from generator.render.runtimes import add_to_pods, render_training_object
from generator.render.workloads import workload_folder

CUSTOM_COMMENT = """\
# Your own changes for {scope}. mlgitops created this Component once and never
# changes or deletes it; every generated kustomization for {scope} includes it.
# Add patches or resources next to this file, for example:
#
# patches:
#   - path: more-memory.yaml
#     target: {{kind: Job, name: resnet-ddp}}
"""


def overlay_folder(cloud: str) -> str:
    return f"overlays/{cloud}"


def identity_folder(cloud: str) -> str:
    return f"overlays/{cloud}/identity"


def custom_folder(cloud: str) -> str:
    return f"overlays/{cloud}/custom"


def storage_folder(cloud: str) -> str:
    return f"overlays/{cloud}/storage"


def workload_overlay_folder(cloud: str, workload: model.Workload) -> str:
    return f"overlays/{cloud}/workloads/{workload.name}"


def render_overlay_units(config: model.Config) -> list[Unit]:
    units: list[Unit] = []
    for cloud in config.clouds():
        profile = cloud_facts.CLOUD_PROFILES[cloud]
        units.append(render_cloud_component(profile, data_claims_shared_on(config, cloud)))
        units.append(custom_unit(custom_folder(cloud), f"every workload on {cloud} clusters"))
        if any(identity_enabled(c) for c in config.clusters if c.cloud == cloud):
            units.append(render_identity_component(config, profile))
        if cloud == "eks":
            units.append(Unit(storage_folder(cloud), [render_gp3_class(config)]))
        units.extend(
            render_workload_overlay(config, cloud, w)
            for w in config.workloads
            if workload_differs_on(config, cloud, w)
        )
    return units


def identity_enabled(cluster: model.Cluster) -> bool:
    return not isinstance(cluster, model.LocalCluster) and cluster.workload_identity is not None


def custom_unit(folder: str, scope: str) -> Unit:
    return Unit(folder, is_component=True, seed=True, comment=CUSTOM_COMMENT.format(scope=scope))


def data_claims_shared_on(config: model.Config, cloud: str) -> bool:
    """Some workload of a cluster of the cloud has several pods on its data claims."""
    return any(
        shares_data_claims(w)
        for c in config.clusters
        if c.cloud == cloud
        for w in config.workloads_on(c)
    )


def render_cloud_component(profile: CloudProfile, data_claims_shared: bool = False) -> Unit:
    patches = [
        _claim_patch("checkpoint-single-writer.yaml", "single", profile.single_writer_class, None),
        _claim_patch(
            "checkpoint-shared.yaml", "shared", profile.shared_class, profile.shared_access_mode
        ),
    ]
    if profile.gpu_node_label:
        patches.append(_gpu_scheduling_patch(profile.gpu_node_label))
    if profile.shared_access_mode == "ReadWriteOnce":
        patches.append(_colocation_patch())
        if data_claims_shared:
            patches.append(
                _job_patch("data-colocation.yaml", f"{datasets.DATA_LABEL}=true", colocation())
            )
    return Unit(overlay_folder(profile.cloud), patches=patches, is_component=True)


def _claim_patch(file: str, sharing: str, storage_class: str, access_mode: str | None) -> Patch:
    operations: list[dict[str, Any]] = [
        {"op": "add", "path": "/spec/storageClassName", "value": storage_class}
    ]
    if access_mode:
        operations.append({"op": "replace", "path": "/spec/accessModes", "value": [access_mode]})
    target = {"kind": "PersistentVolumeClaim", "labelSelector": f"{CHECKPOINT_LABEL}={sharing}"}
    return Patch(file, target, operations)


def _job_patch(file: str, selector: str, pod_spec: dict[str, Any]) -> Patch:
    """A strategic-merge patch for every Job the label selector picks."""
    body: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "selected-jobs"},
        "spec": {"template": {"spec": pod_spec}},
    }
    return Patch(file, {"kind": "Job", "labelSelector": selector}, body)


def gpu_scheduling(node_label: str) -> dict[str, Any]:
    """GPU pods go to nodes that carry the cloud's accelerator label, and tolerate the
    taint that keeps other pods off them."""
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": node_label, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "tolerations": [
            {"key": cloud_facts.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
        ],
    }


def colocation() -> dict[str, Any]:
    """Without ReadWriteMany storage, the pods that share a checkpoint run on one node: a
    ReadWriteOnce volume can be mounted by every pod on the node that holds it."""
    return {
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchLabels": {"app.kubernetes.io/component": "training"}
                        },
                        "matchLabelKeys": ["app.kubernetes.io/name"],
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    }


def _gpu_scheduling_patch(node_label: str) -> Patch:
    return _job_patch("gpu-scheduling.yaml", f"{GPU_LABEL}=true", gpu_scheduling(node_label))


def _colocation_patch() -> Patch:
    return _job_patch("checkpoint-colocation.yaml", f"{CHECKPOINT_LABEL}=shared", colocation())


def render_identity_component(config: model.Config, profile: CloudProfile) -> Unit:
    """Egress to where pods get cloud credentials, and to the cloud's APIs those credentials
    open (public addresses on 443; see CloudProfile.api_port); the namespace comes from
    the cluster's kustomization that includes this Component."""
    rules: list[dict[str, Any]] = [
        {
            "to": [{"ipBlock": {"cidr": endpoint.cidr}}],
            "ports": [{"protocol": "TCP", "port": endpoint.port}],
        }
        for endpoint in profile.identity_endpoints
    ]
    if profile.api_port:
        rules.append(
            {
                "to": [
                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(cloud_facts.NON_PUBLIC_IPV4)}},
                    {"ipBlock": {"cidr": "::/0", "except": list(cloud_facts.NON_PUBLIC_IPV6)}},
                ],
                "ports": [{"protocol": "TCP", "port": profile.api_port}],
            }
        )
    policy: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-workload-identity", "labels": platform_labels(config)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }
    return Unit(identity_folder(profile.cloud), [policy], is_component=True)


def render_gp3_class(config: model.Config) -> Manifest:
    """EKS ships only gp2. Checkpoints are kept when their claim is deleted (Retain): a
    pruned claim must not take a week of training with it."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp3", "labels": platform_labels(config)},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def render_efs_class(config: model.Config, file_system_id: str) -> Manifest:
    """ReadWriteMany checkpoints on EKS: an EFS access point per claim."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "efs-sc", "labels": platform_labels(config)},
        "provisioner": "efs.csi.aws.com",
        "parameters": {
            "provisioningMode": "efs-ap",
            "fileSystemId": file_system_id,
            "directoryPerms": "700",
        },
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }


def cloud_scheduling(profile: CloudProfile, workload: model.Workload) -> list[dict[str, Any]]:
    """The pod spec additions a workload's pods need on a cloud: GPU scheduling, and
    co-location where shared checkpoints have only ReadWriteOnce volumes."""
    additions = []
    if profile.gpu_node_label and workload.resources_on(profile.cloud).gpu:
        additions.append(gpu_scheduling(profile.gpu_node_label))
    shared = workload.checkpoint and checkpoint_sharing(workload) == "shared"
    if (shared or shares_data_claims(workload)) and profile.shared_access_mode == "ReadWriteOnce":
        additions.append(colocation())
    return additions


def overlay_scheduling(profile: CloudProfile, workload: model.Workload) -> list[dict[str, Any]]:
    """What a workload's own overlay adds. A Job gets it from the cloud's Component, which
    selects Jobs by label, and a TrainJob from its runtime; the other runtimes nest their
    pod templates each their own way, so their overlay carries it."""
    if workload.runtime in ("job", "trainjob"):
        return []
    return cloud_scheduling(profile, workload)


def workload_differs_on(config: model.Config, cloud: str, workload: model.Workload) -> bool:
    profile = cloud_facts.CLOUD_PROFILES[cloud]
    changed = workload.resources_on(cloud) != workload.resources
    return (
        changed
        or bool(overlay_scheduling(profile, workload))
        or bool(claim_size_on(profile, workload))
        or bool(data_objects(config, cloud, workload))
        or data_differs_on(cloud, workload)
    )


def data_differs_on(cloud: str, workload: model.Workload) -> bool:
    """The cloud mounts the datasets differently than the base does (GKE's CSI volumes,
    a claim of its own)."""
    seen = replace(workload, data=datasets.on_cloud(workload, cloud))
    return datasets.pod_volumes(seen) != datasets.pod_volumes(workload) or (
        datasets.pod_annotations(seen) != datasets.pod_annotations(workload)
    )


def data_objects(config: model.Config, cloud: str, workload: model.Workload) -> list[Manifest]:
    """The claims (and on EKS the volumes) a workload's datasets need on a cloud."""
    seen = replace(workload, data=datasets.on_cloud(workload, cloud))
    if cloud == "eks":
        return datasets.eks_objects(config, seen)
    if cloud == "local":
        return datasets.local_objects(config, seen)
    return []


def claim_size_on(profile: CloudProfile, workload: model.Workload) -> str | None:
    """The size a shared checkpoint claim asks for on a cloud, when it is not the
    config's: the shared class's minimum, for claims below it (a 10Gi Filestore claim on
    GKE is a 1 TiB instance; the tree says so rather than the bill)."""
    minimum = profile.shared_minimum
    checkpoint = workload.checkpoint
    if not (minimum and checkpoint and checkpoint_sharing(workload) == "shared"):
        return None
    return minimum if memory_bytes(checkpoint.size) < memory_bytes(minimum) else None


def on_cloud_object(config: model.Config, cloud: str, workload: model.Workload) -> Manifest:
    """The training object as the cloud's overlay of the workload yields it."""
    on_cloud = render_training_object(
        config,
        replace(
            workload,
            resources=workload.resources_on(cloud),
            data=datasets.on_cloud(workload, cloud),
        ),
    )
    for addition in overlay_scheduling(cloud_facts.CLOUD_PROFILES[cloud], workload):
        add_to_pods(on_cloud, addition)
    return on_cloud


def render_workload_overlay(config: model.Config, cloud: str, workload: model.Workload) -> Unit:
    """A JSON patch: the training object as rendered for the cloud, minus the base one."""
    base = render_training_object(config, workload)
    on_cloud = on_cloud_object(config, cloud, workload)
    operations = json_patch.diff(base, on_cloud)
    kind = base["kind"]
    patches = []
    if operations:
        patches.append(
            Patch(f"{kind.lower()}.yaml", {"kind": kind, "name": workload.name}, operations)
        )
    size = claim_size_on(cloud_facts.CLOUD_PROFILES[cloud], workload)
    if size:
        resize = [{"op": "replace", "path": "/spec/resources/requests/storage", "value": size}]
        target = {"kind": "PersistentVolumeClaim", "name": checkpoint_claim(workload)}
        patches.append(Patch("checkpoint-size.yaml", target, resize))
    return Unit(
        workload_overlay_folder(cloud, workload),
        objects=data_objects(config, cloud, workload),
        includes=[workload_folder(workload)],
        patches=patches,
    )
