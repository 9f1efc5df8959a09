"""Cluster manifests that need no Terraform: each cloud's clusters as resources a
management cluster's controllers reconcile (EKS: ACK; GKE: Config Connector), and a
kind config for local clusters.

    clusters/<cluster>/infrastructure/   synced to the management cluster
    clusters/<cluster>/kind-cluster.yaml  local only: `kind create cluster --config …`
"""

from __future__ import annotations

from generator import cloud_facts
from generator.config import model
from generator.render.clusters.eks import render_eks_infrastructure
from generator.render.clusters.gke import render_gke_infrastructure
from generator.render.clusters.local import kind_config_path, render_kind_config
from generator.render.objects import Document, Unit


def infrastructure_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/infrastructure"


def render_cluster_units(config: model.Config) -> list[Unit | Document]:
    units: list[Unit | Document] = []
    for cluster in config.clusters:
        if isinstance(cluster, model.EksCluster):
            units.append(
                Unit(infrastructure_folder(cluster), render_eks_infrastructure(config, cluster))
            )
        elif isinstance(cluster, model.GkeCluster):
            units.append(
                Unit(infrastructure_folder(cluster), render_gke_infrastructure(config, cluster))
            )
        else:
            path = kind_config_path(cluster)
            kind = cloud_facts.kind_release(config.cluster_version(cluster))
            comment = (
                f"# Create the cluster (kind {kind} or later): "
                f"kind create cluster --config {path}\n"
            )
            units.append(Document(path, [render_kind_config(config, cluster)], comment))
    return units
