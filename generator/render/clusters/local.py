"""A local cluster is a kind config: an input to `kind create cluster`, not an object any
API server serves, so it lives outside every synced kustomization."""

from __future__ import annotations

from generator import cloud_facts
from generator.config import model
from generator.render.objects import Manifest


def kind_config_path(cluster: model.LocalCluster) -> str:
    return f"clusters/{cluster.name}/kind-cluster.yaml"


def render_kind_config(config: model.Config, cluster: model.LocalCluster) -> Manifest:
    """kind v0.24+ enforces NetworkPolicy with kindnetd, so the default deny holds locally.
    Every node runs the pinned node image of the cluster's Kubernetes version: without
    one, kind would run its own default, whatever version that is."""
    image = cloud_facts.kind_node_image(config.cluster_version(cluster))
    nodes = [{"role": "control-plane", "image": image}]
    nodes += [{"role": "worker", "image": image} for _ in range(cluster.workers)]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": cluster.name,
        "nodes": nodes,
    }
