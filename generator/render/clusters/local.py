"""A local cluster is a kind config: an input to `kind create cluster`, not an object any
API server serves, so it lives outside every synced kustomization."""

from __future__ import annotations

from generator.config import model
from generator.render.objects import Manifest


def kind_config_path(cluster: model.LocalCluster) -> str:
    return f"clusters/{cluster.name}/kind-cluster.yaml"


def render_kind_config(cluster: model.LocalCluster) -> Manifest:
    """kind v0.24+ enforces NetworkPolicy with kindnetd, so the default deny holds locally."""
    nodes = [{"role": "control-plane"}] + [{"role": "worker"} for _ in range(cluster.workers)]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": cluster.name,
        "nodes": nodes,
    }
