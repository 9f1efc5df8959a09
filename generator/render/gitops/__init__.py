"""GitOps wiring: what each engine syncs, where, and in which order.

Two kinds of scope, each bootstrapped by one `kubectl apply -k bootstrap/<scope>`:

- `fleet`: the management cluster, where the engine, ACK and Config Connector run. It
  applies every EKS and GKE cluster's infrastructure to itself, and each cluster's
  workloads to that cluster (registered with the engine by name, credentials kept out
  of git).
- `local/<cluster>`: a kind cluster that runs its own engine and syncs its own workloads.

Per cluster, the sync objects live in `clusters/<cluster>/gitops/`, so adding a cluster
adds a folder and one line in its scope. The engine-neutral description here (SyncPath)
carries the objects each path builds, so permissions are derived from what is really
deployed, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from generator.cluster import nodes
from generator.config import model
from generator.operator_facts import (
    CONTROLLER_CLUSTER_KINDS,
    CONTROLLER_NAMESPACED_KINDS,
    DCGM_EXPORTER,
    GPU_METRICS_NAMESPACE,
    KUEUE,
    Operator,
    manager_operators_for,
    operators_for,
)
from generator.render import dispatch, fabric, secrets
from generator.render.clusters import infrastructure_folder
from generator.render.clusters.common import infra_namespace
from generator.render.entrypoints import (
    cluster_namespace_folder,
    cluster_storage_folder,
    has_storage,
    namespaces_on,
)
from generator.render.gpu_metrics import gpu_metrics_folder, runs_dcgm_exporter
from generator.render.objects import Document, Manifest, Unit
from generator.render.platform import has_platform, platform_folder
from generator.render.queues import runs_queues

STORAGE_NAMESPACE = "default"  # destination of the cluster-scoped storage path


@dataclass(frozen=True)
class SyncPath:
    """One path of the repo, applied as a unit to one cluster."""

    name: str
    path: str
    cluster: model.Cluster | None  # None: the management cluster's own (render/dispatch.py)
    on_management: bool  # applied to the management cluster rather than the cluster itself
    namespace: str
    order: int  # 0 infrastructure, 1 operators and storage, 2 runtimes, then workloads
    depends_on: list[str] = field(default_factory=list)
    objects: list[Manifest] = field(default_factory=list)
    holds_jobs: bool = False
    operator: Operator | None = None  # set when the path is in an operator's repository


@dataclass(frozen=True)
class Scope:
    name: str
    folder: str
    clusters: Sequence[model.Cluster]
    remote: bool  # workload clusters are reached from a management cluster


def gitops_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/gitops"


def scopes(config: model.Config) -> list[Scope]:
    cloud = [c for c in config.clusters if not isinstance(c, model.LocalCluster)]
    found = [Scope("fleet", "bootstrap/fleet", cloud, remote=True)] if cloud else []
    found += [
        Scope(c.name, f"bootstrap/local/{c.name}", [c], remote=False)
        for c in config.clusters
        if isinstance(c, model.LocalCluster)
    ]
    return found


@dataclass(frozen=True)
class _Layer:
    name: str
    folder: str  # in this repository, or in the operator's repository
    namespace: str
    order: int
    holds_jobs: bool = False
    operator: Operator | None = None
    waited_for: bool = True  # later layers depend on it


def sync_paths(
    config: model.Config, cluster: model.Cluster, units: dict[str, Unit]
) -> list[SyncPath]:
    """Infrastructure (on the management cluster); then the operators the workloads need,
    the storage classes and the GPU metrics namespace; then the platform (training
    runtimes, Kueue queues) and the GPU metrics exporter; then one path per namespace.
    Each layer depends on every earlier one, but for the exporter, which nothing waits for."""
    layers = []
    if not isinstance(cluster, model.LocalCluster):
        layers.append(
            _Layer("infrastructure", infrastructure_folder(cluster), infra_namespace(cluster), 0)
        )
    operators = operators_for(
        config.workloads_on(cluster),
        runs_queues(config, cluster),
        needs_device_plugin(cluster),
        efa_plugin=needs_efa_plugin(config, cluster),
        secrets=secrets.needs_store(config, cluster),
    )
    layers += [
        _Layer(op.name, op.source_path(config.gitops), op.namespace, 1, operator=op)
        for op in operators
    ]
    if has_storage(cluster):
        layers.append(_Layer("storage", cluster_storage_folder(cluster), STORAGE_NAMESPACE, 1))
    if runs_dcgm_exporter(config, cluster):
        # Its network policies and (Flux) service account first, then the exporter.
        folder = gpu_metrics_folder(cluster)
        layers.append(_Layer("gpu-metrics", folder, GPU_METRICS_NAMESPACE, 1))
        exporter = DCGM_EXPORTER
        layers.append(
            # Nothing waits for metrics: training syncs even while the exporter is down.
            _Layer(
                exporter.name,
                exporter.source_path(config.gitops),
                exporter.namespace,
                2,
                operator=exporter,
                waited_for=False,
            )
        )
    workloads_order = 2
    if has_platform(config, cluster):
        layers.append(_Layer("platform", platform_folder(cluster), STORAGE_NAMESPACE, 2))
        workloads_order = 3
    layers += [
        _Layer(f"workloads-{ns}", cluster_namespace_folder(cluster, ns), ns, workloads_order, True)
        for ns in namespaces_on(config, cluster)
    ]
    paths: list[SyncPath] = []
    waited_for: list[tuple[int, str]] = []  # (order, name) of the paths later ones wait for
    for layer in layers:
        paths.append(
            SyncPath(
                f"{cluster.name}-{layer.name}",
                layer.folder,
                cluster,
                on_management=layer.order == 0,
                namespace=layer.namespace,
                order=layer.order,
                depends_on=[name for order, name in waited_for if order < layer.order],
                objects=(
                    operator_objects(layer.operator)
                    if layer.operator
                    else built_objects(units, layer.folder)
                ),
                holds_jobs=layer.holds_jobs,
                operator=layer.operator,
            )
        )
        if layer.waited_for:
            waited_for.append((layer.order, paths[-1].name))
    return paths


def needs_device_plugin(cluster: model.Cluster) -> bool:
    """EKS GPU nodes need the NVIDIA device plugin installed; GKE installs its own."""
    return isinstance(cluster, model.EksCluster) and any(
        g.gpu_type for g in nodes.node_groups(cluster)
    )


def needs_efa_plugin(config: model.Config, cluster: model.Cluster) -> bool:
    """Where node groups have EFA, and the engine can render the plugin's chart (Argo
    CD; see operator_facts.EFA_DEVICE_PLUGIN)."""
    return fabric.plugin_installed(config) and bool(fabric.efa_groups(cluster))


def operator_objects(operator: Operator) -> list[Manifest]:
    """Stand-ins for what an operator's manifests create: their kinds and namespace."""
    if operator.kinds is not None:
        cluster_kinds = [k for k in operator.kinds if k in CONTROLLER_CLUSTER_KINDS]
        namespaced_kinds = [k for k in operator.kinds if k not in CONTROLLER_CLUSTER_KINDS]
    else:
        cluster_kinds = [*CONTROLLER_CLUSTER_KINDS, *operator.more_cluster_kinds]
        namespaced_kinds = list(CONTROLLER_NAMESPACED_KINDS)
    kinds: list[tuple[tuple[str, str], str | None]] = [(kind, None) for kind in cluster_kinds]
    for namespace in (operator.namespace, *operator.more_namespaces):
        kinds += [(kind, namespace) for kind in namespaced_kinds]
    return [
        {
            "apiVersion": f"{group}/v1" if group else "v1",
            "kind": kind,
            "metadata": {"name": operator.name} | ({"namespace": namespace} if namespace else {}),
        }
        for (group, kind), namespace in kinds
    ]


def built_objects(units: dict[str, Unit], folder: str) -> list[Manifest]:
    """The objects `kustomize build folder` yields, found by following the units'
    includes and components (patches change fields, never kinds or namespaces)."""
    unit = units[folder]
    objects = list(unit.objects)
    for included in [*unit.includes, *unit.components]:
        objects += built_objects(units, included)
    if unit.namespace:
        objects = [_in_namespace(obj, unit.namespace) for obj in objects]
    return objects


def _in_namespace(obj: Manifest, namespace: str) -> Manifest:
    if obj["kind"] == "Namespace" or obj["metadata"].get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}


def manager_sync_paths(config: model.Config, units: dict[str, Unit]) -> list[SyncPath]:
    """What the management cluster holds for dispatched workloads (render/dispatch.py):
    Kueue and the CRDs of the runtimes it dispatches (no controller: it runs no pods),
    then its queues and MultiKueue objects, then one path per namespace. Kueue and the
    CRDs share a layer: Kueue v0.17.6 sets up an integration whose CRD is not there yet
    once it appears (pkg/controller/jobframework/setup.go waitForAPI)."""
    workloads = dispatch.dispatched(config)
    if not workloads:
        return []
    layers = [
        _Layer(KUEUE.name, KUEUE.source_path(config.gitops), KUEUE.namespace, 1, operator=KUEUE)
    ]
    layers += [
        _Layer(op.name, op.source_path(config.gitops), op.namespace, 1, operator=op)
        for op in manager_operators_for(workloads)
    ]
    layers.append(_Layer("platform", dispatch.manager_platform_folder(), STORAGE_NAMESPACE, 2))
    layers += [
        _Layer(f"workloads-{ns}", dispatch.manager_namespace_folder(ns), ns, 3, True)
        for ns in dispatch.manager_namespaces(config)
    ]
    paths: list[SyncPath] = []
    for layer in layers:
        paths.append(
            SyncPath(
                f"{dispatch.MANAGER}-{layer.name}",
                layer.folder,
                None,
                on_management=True,
                namespace=layer.namespace,
                order=layer.order,
                depends_on=[p.name for p in paths if p.order < layer.order],
                objects=(
                    operator_objects(layer.operator)
                    if layer.operator
                    else built_objects(units, layer.folder)
                ),
                holds_jobs=layer.holds_jobs,
                operator=layer.operator,
            )
        )
    return paths


def render_gitops_units(config: model.Config, rendered: list[Unit | Document]) -> list[Unit]:
    from generator.render.gitops import argocd, flux

    units = {u.folder: u for u in rendered if isinstance(u, Unit)}
    engine = argocd if config.gitops == "argocd" else flux
    result: list[Unit] = []
    for scope in scopes(config):
        paths = {c.name: sync_paths(config, c, units) for c in scope.clusters}
        manager = manager_sync_paths(config, units) if scope.remote else []
        result += engine.render_scope(config, scope, paths, manager)
    if engine is argocd:
        from generator.render.health import render_health_units

        result += render_health_units(config)
    return result
