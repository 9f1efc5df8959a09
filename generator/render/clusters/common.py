"""What every cloud's cluster manifests share: the management-cluster namespace they live
in, their metadata, the order the GitOps engine applies them in, and protection of the
clusters themselves from an accidental prune."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from generator.config import model
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, metadata

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"


class Wave(IntEnum):
    """Apply order: IAM and network before the cluster, the cluster before its nodes,
    nodes before add-ons."""

    NAMESPACE = 0
    IAM = 1
    NETWORK = 2
    CLUSTER = 3
    NODES = 4
    ADDONS = 5


def infra_namespace(cluster: model.Cluster) -> str:
    """The management-cluster namespace that holds one cluster's cloud resources."""
    return f"infra-{cluster.name}"


def infra_metadata(
    config: model.Config, cluster: model.Cluster, name: str, wave: Wave
) -> dict[str, Any]:
    meta = metadata(name, platform_labels(config), infra_namespace(cluster))
    meta["annotations"] = gitops_annotations(config, wave)
    return meta


def gitops_annotations(config: model.Config, wave: Wave) -> dict[str, str]:
    """Argo CD applies waves in order and must not dry-run custom resources whose CRDs it
    has not seen yet; Flux orders by dependsOn between Kustomizations instead."""
    if config.gitops != "argocd":
        return {}
    return {SYNC_WAVE: str(int(wave)), SYNC_OPTIONS: "SkipDryRunOnMissingResource=true"}


def protect_from_deletion(
    config: model.Config, meta: dict[str, Any], controller_policy: dict[str, str]
) -> None:
    """A cluster is never deleted by a prune: the engine leaves the object alone when it
    disappears from git, and the controller keeps the cloud resource if it is deleted."""
    annotations = meta.setdefault("annotations", {})
    annotations.update(controller_policy)
    if config.gitops == "argocd":
        annotations[SYNC_OPTIONS] = "Prune=false,SkipDryRunOnMissingResource=true"
    else:
        annotations[FLUX_PRUNE] = "disabled"


def render_infra_namespace(
    config: model.Config, cluster: model.Cluster, annotations: dict[str, str]
) -> Manifest:
    """No pods run here, but it is labelled like every namespace: Pod Security restricted."""
    labels = {
        **platform_labels(config),
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    meta = metadata(infra_namespace(cluster), labels)
    meta["annotations"] = {**gitops_annotations(config, Wave.NAMESPACE), **annotations}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
