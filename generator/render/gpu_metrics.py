"""GPU metrics per pod and per job, where the cluster has GPUs (`metrics.gpu`, on by
default).

- EKS: NVIDIA dcgm-exporter (operator_facts.DCGM_EXPORTER) on the GPU nodes, in
  kube-system beside the other node agents (it runs as root with SYS_ADMIN and a hostPath,
  which only Pod Security "privileged" admits: a system component, not a training pod).
  This module renders `clusters/<cluster>/gpu-metrics/`, which the engine syncs before the
  exporter: network policies that select the exporter's pods alone (kube-system's other
  pods are left as the cluster has them) and deny them everything but the two ways the
  exporter talks (its metrics port in, the API server out), and, with Flux, whose static
  manifest has none, the service account and the pod-reading role the chart would create
  for pod labels.
- GKE: the cluster's own DCGM metrics (GKE doc "Collect and view DCGM metrics": GKE
  installs DCGM-Exporter and a ClusterPodMonitoring for Google Cloud Managed Service for
  Prometheus when the `DCGM` monitoring component is enabled; it needs GKE-managed GPU
  drivers, which the node pools install, and managed collection on). Nothing is
  installed by mlgitops there.
- local (kind): no GPUs, nothing.
"""

from __future__ import annotations

from typing import Any

from generator.cluster import nodes
from generator.config import model
from generator.operator_facts import (
    DCGM_EXPORTER_NAME,
    DCGM_EXPORTER_POD_LABELS,
    GPU_METRICS_NAMESPACE,
)
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, Unit, metadata

METRICS_PORT = 9400  # DCGM_EXPORTER_LISTEN ":9400" (dcgm-exporter.yaml, values service.port)
API_SERVER_PORT = 443  # the EKS API endpoint the pod informer reaches

# GKE monitoring components (Config Connector ContainerCluster
# spec.monitoringConfig.enableComponents, passed to the GKE API's MonitoringComponentConfig):
# the list replaces GKE's default, so it names the defaults of a new cluster (system
# components and the kube-state-metrics packages, GKE doc "Configure metrics collection")
# and adds DCGM.
GKE_MONITORING_COMPONENTS = (
    "SYSTEM_COMPONENTS",
    "STORAGE",
    "HPA",
    "POD",
    "DAEMONSET",
    "DEPLOYMENT",
    "STATEFULSET",
    "DCGM",
)


def has_gpus(cluster: model.Cluster) -> bool:
    return any(g.gpu_type for g in nodes.node_groups(cluster))


def runs_dcgm_exporter(config: model.Config, cluster: model.Cluster) -> bool:
    """EKS GPU clusters get dcgm-exporter; GKE has its own (gke_monitoring_config)."""
    return config.metrics.gpu and isinstance(cluster, model.EksCluster) and has_gpus(cluster)


def gpu_metrics_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/gpu-metrics"


def gke_monitoring_config(config: model.Config, cluster: model.GkeCluster) -> Manifest | None:
    if not (config.metrics.gpu and has_gpus(cluster)):
        return None
    return {
        "enableComponents": list(GKE_MONITORING_COMPONENTS),
        "managedPrometheus": {"enabled": True},
    }


def render_gpu_metrics_units(config: model.Config) -> list[Unit]:
    return [
        Unit(gpu_metrics_folder(cluster), render_gpu_metrics_objects(config))
        for cluster in config.clusters
        if runs_dcgm_exporter(config, cluster)
    ]


def render_gpu_metrics_objects(config: model.Config) -> list[Manifest]:
    """The exporter's network policies (and, with Flux, its pod reader). NetworkPolicies
    add up: the first denies the exporter's pods every connection, the other two open
    exactly the two it makes."""
    objects: list[Manifest] = [
        _policy(config, "default-deny", {"policyTypes": ["Ingress", "Egress"]}),
        _policy(
            config,
            "allow-metrics-scrape",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {}}],
                        "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                    }
                ],
            },
        ),
        _policy(
            config,
            "allow-api-server",
            {
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": API_SERVER_PORT}]}],
            },
        ),
    ]
    if config.gitops == "flux":
        objects += _pod_reader(config)
    return objects


def _policy(config: model.Config, name: str, spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            f"{DCGM_EXPORTER_NAME}-{name}", platform_labels(config), GPU_METRICS_NAMESPACE
        ),
        "spec": {"podSelector": {"matchLabels": dict(DCGM_EXPORTER_POD_LABELS)}, **spec},
    }


def _pod_reader(config: model.Config) -> list[Manifest]:
    """The service account the patched static manifest runs as, allowed to read pods
    (what the chart's clusterrole.yaml grants: get, list, watch on pods)."""
    labels = platform_labels(config)
    role = f"{DCGM_EXPORTER_NAME}-read-pods"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(DCGM_EXPORTER_NAME, labels, GPU_METRICS_NAMESPACE),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(role, labels),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(role, labels),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": DCGM_EXPORTER_NAME,
                    "namespace": GPU_METRICS_NAMESPACE,
                }
            ],
        },
    ]
