"""Flux: a GitRepository for this repo and one Kustomization per sync path, ordered by
dependsOn, with a root Kustomization per scope.

    bootstrap/<scope>/             `kubectl apply -k` once (after `flux install`)
    bootstrap/<scope>/source/      the GitRepository
    bootstrap/<scope>/apps/        what the root Kustomization applies: the source and
                                   every cluster's clusters/<cluster>/gitops/
    clusters/<cluster>/gitops/     that cluster's Kustomizations

Workload clusters of the fleet are reached the way kustomize-controller supports for
cloud clusters without a kubeconfig: `kubeConfig.configMapRef` to a ConfigMap
`<cluster>-cluster` in flux-system that names the provider (`aws`, `gcp`) and the
cluster's resource name; the controller gets a token with its own workload identity
(kustomize-controller API, KubeConfigReference). A kubeconfig that `aws eks
update-kubeconfig` or `gcloud` writes runs an exec plugin, which kustomize-controller
refuses (`--insecure-kubeconfig-exec` is off by default), so it is not the way here.
No credential is in the ConfigMap: it is committed beside the Kustomizations.
"""

from __future__ import annotations

import re
from typing import Any

from generator.config import model
from generator.emit import dump_document
from generator.operator_facts import DCGM_EXPORTER, KUEUE, Operator
from generator.render.clusters.eks import partition
from generator.render.dispatch import manager_gitops_folder
from generator.render.gitops import Scope, SyncPath, gitops_folder
from generator.render.kueue_config import kueue_patches
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, Unit, metadata

KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
FLUX_NAMESPACE = "flux-system"


def source_name(config: model.Config) -> str:
    return config.name


def render_scope(
    config: model.Config,
    scope: Scope,
    paths: dict[str, list[SyncPath]],
    manager: list[SyncPath] | None = None,
) -> list[Unit]:
    """`manager`: the management cluster's own paths (render/dispatch.py), if any."""
    units = [
        Unit(
            gitops_folder(cluster),
            [
                *([remote_cluster(config, cluster)] if scope.remote else []),
                *(kustomization(config, scope, path) for path in paths[cluster.name]),
            ],
        )
        for cluster in scope.clusters
    ]
    folders = [gitops_folder(c) for c in scope.clusters]
    if manager:
        objects = [kustomization(config, scope, path) for path in manager]
        units.append(Unit(manager_gitops_folder(), objects))
        folders.append(manager_gitops_folder())
    source_folder = f"{scope.folder}/source"
    apps_folder = f"{scope.folder}/apps"
    every_path = [p for ps in paths.values() for p in ps] + list(manager or [])
    operators = {p.operator.name: p.operator for p in every_path if p.operator}
    sources = [git_repository(config)]
    sources += [operator_repository(config, operators[name]) for name in sorted(operators)]
    units.append(Unit(source_folder, sources))
    units.append(Unit(apps_folder, includes=[source_folder, *folders]))
    root = _kustomization_object(
        config, f"{config.name}-{scope.name}", apps_folder, wait=True, interval="10m"
    )
    units.append(Unit(scope.folder, [root], [source_folder]))
    return units


def flux_url(url: str) -> str:
    """Flux reads SSH remotes only as ssh:// URLs: git@host:org/repo -> ssh://git@host/org/repo."""
    if url.startswith("git@"):
        host, _, path = url.partition(":")
        return f"ssh://{host}/{path}"
    return url


def git_reference(revision: str) -> dict[str, str]:
    """A commit SHA, a full reference (`refs/tags/v1.2.0`), or else a branch name."""
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return {"commit": revision}
    if revision.startswith("refs/"):
        return {"name": revision}
    return {"branch": revision}


def git_repository(config: model.Config) -> Manifest:
    spec: dict[str, Any] = {
        "interval": "1m",
        "url": flux_url(config.repo.url),
        "ref": git_reference(config.repo.revision),
    }
    if not config.repo.url.startswith("https://"):
        # `flux create secret git <platform>-git --url=...`: the key stays out of git.
        spec["secretRef"] = {"name": f"{config.name}-git"}
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": metadata(source_name(config), platform_labels(config), FLUX_NAMESPACE),
        "spec": spec,
    }


def operator_repository(config: model.Config, operator: Operator) -> Manifest:
    """An operator's upstream repository at its release tag; where only one file of a
    folder is wanted, the source keeps that file alone (gitignore syntax: everything is
    left out, then the file and the folders above it are let back in)."""
    spec: dict[str, Any] = {"interval": "1h", "url": operator.repo, "ref": {"tag": operator.tag}}
    if operator.flux:
        spec["ignore"] = keep_only(operator.flux.keep)
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": metadata(operator.name, platform_labels(config), FLUX_NAMESPACE),
        "spec": spec,
    }


def keep_only(path: str) -> str:
    """`a/b/c.yml` -> ignore everything but a/b/c.yml."""
    lines = ["/*"]
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        lines += [f"!/{folder}/", f"/{folder}/*"]
    lines.append(f"!/{path}")
    return "\n".join(lines) + "\n"


def _kustomization_object(
    config: model.Config,
    name: str,
    path: str,
    *,
    wait: bool,
    interval: str,
    source: str | None = None,
) -> Manifest:
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": metadata(name, platform_labels(config), FLUX_NAMESPACE),
        "spec": {
            "interval": interval,
            "retryInterval": "2m",
            "timeout": "30m" if wait else "5m",
            "path": f"./{path}",
            "prune": True,
            "wait": wait,
            "sourceRef": {"kind": "GitRepository", "name": source or source_name(config)},
        },
    }


def kustomization(config: model.Config, scope: Scope, path: SyncPath) -> Manifest:
    """Infrastructure and storage wait until everything is ready before what depends on
    them starts. Training Jobs are not waited for (they run for hours); each is recreated
    when its immutable spec changes, by its own force annotation (runtimes.
    replace_when_changed), so nothing else in the path is ever force-replaced."""
    obj = _kustomization_object(
        config,
        path.name,
        path.path,
        wait=not path.holds_jobs,
        interval="10m",
        source=path.operator.name if path.operator else None,
    )
    spec = obj["spec"]
    if path.depends_on:
        spec["dependsOn"] = [{"name": name} for name in path.depends_on]
    operator = path.operator
    if operator and operator.images:
        spec["images"] = [
            {"name": i.name, "newName": i.new_name, "newTag": i.new_tag} for i in operator.images
        ]
    patches = list(operator.flux.patches) if operator and operator.flux else []
    if operator and operator.name == KUEUE.name:
        patches += kueue_patches(config)  # its Configuration (render/kueue_config.py)
    if patches:
        spec["patches"] = [
            {"target": p["target"], "patch": dump_document(p["patch"]).decode()} for p in patches
        ]
    if operator and operator.name == DCGM_EXPORTER.name:
        # Its static manifest names no namespace.
        spec["targetNamespace"] = operator.namespace
    if scope.remote and not path.on_management and path.cluster is not None:
        spec["kubeConfig"] = {"configMapRef": {"name": remote_cluster_name(path.cluster)}}
    return obj


def remote_cluster_name(cluster: model.Cluster) -> str:
    return f"{cluster.name}-cluster"


def remote_cluster(config: model.Config, cluster: model.Cluster) -> Manifest:
    """Where kustomize-controller finds a fleet cluster: its provider and resource name
    (an EKS cluster's ARN, a GKE cluster's `projects/…/locations/…/clusters/…`)."""
    if isinstance(cluster, model.EksCluster):
        assert cluster.account_id, "the config rules require accountId with Flux"
        arn = f"arn:{partition(cluster.region)}:eks:{cluster.region}:{cluster.account_id}"
        data = {"provider": "aws", "cluster": f"{arn}:cluster/{cluster.name}"}
    elif isinstance(cluster, model.GkeCluster):
        resource = f"projects/{cluster.project}/locations/{cluster.location}/clusters"
        data = {"provider": "gcp", "cluster": f"{resource}/{cluster.name}"}
    else:
        raise AssertionError("local clusters sync themselves")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(remote_cluster_name(cluster), platform_labels(config), FLUX_NAMESPACE),
        "data": data,
    }
