"""A GKE cluster as Config Connector resources, reconciled in a management cluster: the
cluster (VPC-native with Dataplane V2 so NetworkPolicies are enforced, Workload Identity,
Filestore CSI for ReadWriteMany checkpoints, default node pool removed), its node pools
with GPU drivers installed by GKE, and the training pods' Google service account.

Config Connector in namespaced mode manages only namespaces that hold a
ConfigConnectorContext naming the Google service account it acts as there
(configconnector.core.cnrm.cloud.google.com/v1beta1, `googleServiceAccount` required),
so each cluster's `infra-<cluster>` namespace gets one. Every Google Cloud resource is
abandoned, not deleted, when its object goes (a prune, a removed node pool)."""

from __future__ import annotations

from typing import Any

from generator import cloud_facts
from generator.config import model
from generator.render import datasets, secrets
from generator.render.clusters.common import (
    Wave,
    infra_metadata,
    protect_from_deletion,
    render_infra_namespace,
)
from generator.render.gpu_metrics import gke_monitoring_config
from generator.render.objects import Manifest

CONTAINER = "container.cnrm.cloud.google.com/v1beta1"
CORE = "core.cnrm.cloud.google.com/v1beta1"
IAM = "iam.cnrm.cloud.google.com/v1beta1"
PROJECT_ANNOTATION = "cnrm.cloud.google.com/project-id"
# Config Connector leaves the Google Cloud resource in place when its object is deleted.
DELETION_POLICY = {"cnrm.cloud.google.com/deletion-policy": "abandon"}


def render_gke_infrastructure(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    objects = [
        _cluster(config, cluster),
        *(_node_pool(config, cluster, pool) for pool in cluster.node_pools),
        *_workload_identity(config, cluster),
        *_secret_store_identity(config, cluster),
        *_dataset_readers(config, cluster),
    ]
    for obj in objects:
        protect_from_deletion(config, obj["metadata"], DELETION_POLICY)
        obj["metadata"]["annotations"][PROJECT_ANNOTATION] = cluster.project
    namespace = render_infra_namespace(config, cluster, {PROJECT_ANNOTATION: cluster.project})
    return [namespace, _config_connector_context(config, cluster), *objects]


def _config_connector_context(config: model.Config, cluster: model.GkeCluster) -> Manifest:
    """Config Connector's only name for a namespace's context is `configconnectorcontext.
    core.cnrm.cloud.google.com` (the operator reads no other)."""
    return {
        "apiVersion": CORE,
        "kind": "ConfigConnectorContext",
        "metadata": infra_metadata(
            config, cluster, "configconnectorcontext.core.cnrm.cloud.google.com", Wave.NAMESPACE
        ),
        "spec": {"googleServiceAccount": cluster.config_connector_account()},
    }


def workload_pool(cluster: model.GkeCluster) -> str:
    return f"{cluster.project}.svc.id.goog"


def _cluster(config: model.Config, cluster: model.GkeCluster) -> Manifest:
    meta = infra_metadata(config, cluster, cluster.name, Wave.CLUSTER)
    meta["annotations"]["cnrm.cloud.google.com/remove-default-node-pool"] = "true"
    manifest: Manifest = {
        "apiVersion": CONTAINER,
        "kind": "ContainerCluster",
        "metadata": meta,
        "spec": {
            "location": cluster.location,
            "initialNodeCount": 1,
            "minMasterVersion": config.cluster_version(cluster),
            "releaseChannel": {"channel": cluster.release_channel},
            # Dataplane V2 needs a VPC-native cluster: alias IPs, GKE's default range sizes.
            "networkingMode": "VPC_NATIVE",
            "ipAllocationPolicy": {
                "clusterIpv4CidrBlock": "/14",
                "servicesIpv4CidrBlock": "/20",
            },
            "datapathProvider": "ADVANCED_DATAPATH",
            "workloadIdentityConfig": {"workloadPool": workload_pool(cluster)},
            "addonsConfig": {
                "gcePersistentDiskCsiDriverConfig": {"enabled": True},
                "gcpFilestoreCsiDriverConfig": {"enabled": True},
                # Cloud Storage FUSE, for the datasets' buckets (render/datasets.py).
                **(
                    {"gcsFuseCsiDriverConfig": {"enabled": True}}
                    if datasets.needs_gcsfuse(config, cluster)
                    else {}
                ),
            },
        },
    }
    monitoring = gke_monitoring_config(config, cluster)  # GPU metrics: render/gpu_metrics.py
    if monitoring:
        manifest["spec"]["monitoringConfig"] = monitoring
    return manifest


def _node_pool(
    config: model.Config, cluster: model.GkeCluster, pool: model.GkeNodePool
) -> Manifest:
    node_config: dict[str, Any] = {
        "machineType": pool.machine_type,
        "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "workloadMetadataConfig": {"mode": "GKE_METADATA"},
    }
    if pool.accelerator:
        node_config["guestAccelerator"] = [
            {
                "type": pool.accelerator.type,
                "count": pool.accelerator.count,
                "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"},
            }
        ]
    if cloud_facts.gke_gvnic(pool.machine_type, pool.accelerator is not None):
        # gVNIC on GPU pools (cloud_facts.GCE_GVNIC_SERIES): more bandwidth between
        # the nodes, nothing asked of the pods. Tier_1 bandwidth would be
        # networkConfig.networkPerformanceConfig, which the pinned Config Connector
        # ContainerNodePool does not have.
        node_config["gvnic"] = {"enabled": True}
    # The pool is named as in the config (Config Connector would use metadata.name), so
    # its nodes' `cloud.google.com/gke-nodepool` label is what Kueue's flavor selects.
    spec: dict[str, Any] = {
        "resourceID": pool.name,
        "clusterRef": {"name": cluster.name},
        "location": cluster.location,
    }
    if pool.autoscaling:
        spec["initialNodeCount"] = pool.node_count
        spec["autoscaling"] = {
            "minNodeCount": pool.autoscaling.min_nodes,
            "maxNodeCount": pool.autoscaling.max_nodes,
        }
    else:
        spec["nodeCount"] = pool.node_count
    spec["management"] = {"autoRepair": True, "autoUpgrade": True}
    spec["nodeConfig"] = node_config
    return {
        "apiVersion": CONTAINER,
        "kind": "ContainerNodePool",
        "metadata": infra_metadata(config, cluster, f"{cluster.name}-{pool.name}", Wave.NODES),
        "spec": spec,
    }


def _workload_identity(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    """A Google service account for the training pods, the project roles it holds, and
    the right of each training ServiceAccount on the cluster to act as it. IAMPolicyMember
    adds one binding and leaves the others alone (IAMPolicy would replace them all)."""
    identity = cluster.workload_identity
    if identity is None:
        return []
    account = cluster.training_service_account()
    objects: list[Manifest] = [
        {
            "apiVersion": IAM,
            "kind": "IAMServiceAccount",
            "metadata": infra_metadata(config, cluster, account, Wave.IAM),
            "spec": {"displayName": f"training pods on {cluster.name}"},
        }
    ]
    for role in identity.roles:
        objects.append(
            {
                "apiVersion": IAM,
                "kind": "IAMPolicyMember",
                "metadata": infra_metadata(
                    config, cluster, f"{account}-{_role_slug(role)}", Wave.IAM
                ),
                "spec": {
                    "memberFrom": {"serviceAccountRef": {"name": account}},
                    "role": role,
                    "resourceRef": {"kind": "Project", "external": f"projects/{cluster.project}"},
                },
            }
        )
    for workload in config.workloads_on(cluster):
        member = f"serviceAccount:{workload_pool(cluster)}[{workload.namespace}/{workload.name}]"
        objects.append(
            {
                "apiVersion": IAM,
                "kind": "IAMPolicyMember",
                "metadata": infra_metadata(
                    config, cluster, f"{account}-{workload.namespace}-{workload.name}", Wave.IAM
                ),
                "spec": {
                    "member": member,
                    "role": "roles/iam.workloadIdentityUser",
                    "resourceRef": {"kind": "IAMServiceAccount", "name": account},
                },
            }
        )
    return objects


def _secret_store_identity(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    """The stores' Google service account, `roles/secretmanager.secretAccessor` on each
    declared secret alone and Workload Identity for each namespace's store account
    (render/secrets.py)."""
    if not secrets.needs_store(config, cluster):
        return []
    return [
        {
            "apiVersion": piece["apiVersion"],
            "kind": piece["kind"],
            "metadata": infra_metadata(config, cluster, piece["name"], Wave.IAM),
            "spec": piece["spec"],
        }
        for piece in secrets.gke_identity(config, cluster)
    ]


def _dataset_readers(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    """The training pods' Google service account may read (or write) each declared
    bucket alone (render/datasets.py)."""
    return [
        {
            "apiVersion": IAM,
            "kind": "IAMPolicyMember",
            "metadata": infra_metadata(config, cluster, piece["name"], Wave.IAM),
            "spec": piece["spec"],
        }
        for piece in datasets.gke_bucket_members(config, cluster)
    ]


def _role_slug(role: str) -> str:
    """`roles/storage.objectViewer` -> `storage-objectviewer`, for object names."""
    return role.rsplit("/", 1)[-1].replace(".", "-").replace("_", "-").lower()
