"""Argo CD: an AppProject with no wildcards, one Application per sync path, and a root
app-of-apps per scope.

    bootstrap/<scope>/             `kubectl apply -k` once: the project and the root app
    bootstrap/<scope>/project/     the AppProject (the root app keeps it in sync after)
    bootstrap/<scope>/apps/        what the root app syncs: the project and every
                                   cluster's clusters/<cluster>/gitops/
    clusters/<cluster>/gitops/     that cluster's Applications

Plain Applications rather than an ApplicationSet: each is small, reviewable in the pull
request that adds it, and ordered by sync waves; an ApplicationSet's generator would hide
the per-cluster paths behind a template the reviewer cannot `kubectl kustomize`.
"""

from __future__ import annotations

from typing import Any

from generator.config import model
from generator.emit import dump_document
from generator.operator_facts import CONTROLLER_CLUSTER_KINDS, KUEUE, Operator
from generator.render.gitops import Scope, SyncPath, gitops_folder
from generator.render.kueue_config import kueue_patches
from generator.render.labels import QUEUE_LABEL, platform_labels
from generator.render.objects import Manifest, Unit, metadata

API = "argoproj.io/v1alpha1"
ARGOCD_NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
CLUSTER_SCOPED = {
    ("", "Namespace"),
    ("", "PersistentVolume"),  # the datasets' S3 volumes on EKS (render/datasets.py)
    ("storage.k8s.io", "StorageClass"),
    ("trainer.kubeflow.org", "ClusterTrainingRuntime"),
    ("kueue.x-k8s.io", "ClusterQueue"),
    ("kueue.x-k8s.io", "ResourceFlavor"),
    ("kueue.x-k8s.io", "Topology"),
    ("kueue.x-k8s.io", "WorkloadPriorityClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    *CONTROLLER_CLUSTER_KINDS,
    *KUEUE.more_cluster_kinds,
}
RETRY = {"limit": 10, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}}


def project_name(config: model.Config, scope: Scope) -> str:
    return config.name if scope.remote else f"{config.name}-{scope.name}"


def render_scope(
    config: model.Config, scope: Scope, paths: dict[str, list[SyncPath]]
) -> list[Unit]:
    project = project_name(config, scope)
    units = [
        Unit(
            gitops_folder(cluster),
            [application(config, scope, project, path) for path in paths[cluster.name]],
        )
        for cluster in scope.clusters
    ]
    every_path = [path for cluster_paths in paths.values() for path in cluster_paths]
    project_folder = f"{scope.folder}/project"
    apps_folder = f"{scope.folder}/apps"
    units.append(Unit(project_folder, [app_project(config, scope, project, every_path)]))
    units.append(
        Unit(apps_folder, includes=[project_folder, *(gitops_folder(c) for c in scope.clusters)])
    )
    units.append(
        Unit(scope.folder, [root_application(config, project, apps_folder)], [project_folder])
    )
    return units


def destination(scope: Scope, path: SyncPath) -> dict[str, str]:
    """Cloud resources go to the management cluster itself; workloads to their cluster,
    which Argo CD knows by name (`argocd cluster add <context> --name <cluster>`)."""
    if path.on_management or not scope.remote:
        return {"server": IN_CLUSTER, "namespace": path.namespace}
    return {"name": path.cluster.name, "namespace": path.namespace}


# Where Kueue flips `suspend` when it admits a workload, per kind.
SUSPEND_FIELDS = {
    ("batch", "Job"): "/spec/suspend",
    ("jobset.x-k8s.io", "JobSet"): "/spec/suspend",
    ("trainer.kubeflow.org", "TrainJob"): "/spec/suspend",
    ("kubeflow.org", "PyTorchJob"): "/spec/runPolicy/suspend",
    ("kubeflow.org", "TFJob"): "/spec/runPolicy/suspend",
}


def application(config: model.Config, scope: Scope, project: str, path: SyncPath) -> Manifest:
    operator = path.operator
    if operator:
        # An operator's CRDs are too large for client-side apply's annotation.
        source = operator_source(config, operator)
        options = ["ServerSideApply=true"]
        if operator.create_namespace:
            options.append("CreateNamespace=true")
    else:
        source = _source(config, path.path)
        options = ["PruneLast=true"]
    if path.holds_jobs:
        # Training objects are replaced when they change (Force=true,Replace=true on them),
        # and a sync applies every resource of the path unless told to skip the synced
        # ones (gitops-engine pkg/sync/sync_context.go: filterOutOfSyncTasks only under
        # applyOutOfSyncOnly): without this, editing one workload of a namespace would
        # delete and recreate every running Job beside it.
        options.append("ApplyOutOfSyncOnly=true")
    ignored = _kueue_suspend_fields(path)
    if ignored:
        options.append("RespectIgnoreDifferences=true")
    manifest = _application(config, path.name, project, source, destination(scope, path), options)
    manifest["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": str(path.order)}
    if not path.on_management:
        # Removing a cluster's namespace from the config removes what it ran; a cloud
        # cluster's infrastructure is never deleted along with its Application.
        manifest["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
    if ignored:
        manifest["spec"]["ignoreDifferences"] = ignored
    return manifest


def _kueue_suspend_fields(path: SyncPath) -> list[dict[str, Any]]:
    """Kueue admits a queued workload by setting `suspend: false`; self-heal must not
    suspend it again."""
    queued = {
        (_group(obj), obj["kind"])
        for obj in path.objects
        if QUEUE_LABEL in obj["metadata"].get("labels", {})
    }
    return [
        {"group": group, "kind": kind, "jsonPointers": [pointer]}
        for (group, kind), pointer in sorted(SUSPEND_FIELDS.items())
        if (group, kind) in queued
    ]


def operator_source(config: model.Config, operator: Operator) -> dict[str, Any]:
    """The operator's repository at its tag: its Helm chart where it has one Argo CD must
    render, else its kustomize path with the release images set (operator_facts) and,
    for Kueue, the Configuration patches (render/kueue_config.py; `patches` is a field
    of the pinned Application's `source.kustomize`, each patch an inline string)."""
    source: dict[str, Any] = {
        "repoURL": operator.repo,
        "targetRevision": operator.tag,
        "path": operator.source_path("argocd"),
    }
    if operator.helm_path:
        source["helm"] = {"releaseName": operator.name}
        if operator.helm_values:
            source["helm"]["valuesObject"] = operator.helm_values
        if operator.helm_parameters:
            source["helm"]["parameters"] = [
                {"name": name, "value": value} for name, value in operator.helm_parameters
            ]
        return source
    kustomize: dict[str, Any] = {}
    if operator.images:
        kustomize["images"] = [f"{image.name}={image.resolved}" for image in operator.images]
    patches = kueue_patches(config) if operator.name == KUEUE.name else []
    if patches:
        kustomize["patches"] = [
            {"target": p["target"], "patch": dump_document(p["patch"]).decode()} for p in patches
        ]
    if kustomize:
        source["kustomize"] = kustomize
    return source


def root_application(config: model.Config, project: str, apps_folder: str) -> Manifest:
    target = {"server": IN_CLUSTER, "namespace": ARGOCD_NAMESPACE}
    source = _source(config, apps_folder)
    return _application(config, f"{project}-root", project, source, target, [])


def _source(config: model.Config, path: str) -> dict[str, str]:
    return {"repoURL": config.repo.url, "targetRevision": config.repo.revision, "path": path}


def _application(
    config: model.Config,
    name: str,
    project: str,
    source: dict[str, Any],
    target: dict[str, str],
    sync_options: list[str],
) -> Manifest:
    """An automated Application (prune, self-heal, retries) of one path."""
    sync_policy: Manifest = {"automated": {"prune": True, "selfHeal": True}}
    if sync_options:
        sync_policy["syncOptions"] = sync_options
    sync_policy["retry"] = RETRY
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": metadata(name, platform_labels(config), ARGOCD_NAMESPACE),
        "spec": {
            "project": project,
            "source": source,
            "destination": target,
            "syncPolicy": sync_policy,
        },
    }


def _group(obj: Manifest) -> str:
    api: str = obj["apiVersion"]
    return api.rpartition("/")[0]


def app_project(
    config: model.Config, scope: Scope, project: str, paths: list[SyncPath]
) -> Manifest:
    """Only this repository; only the destinations and namespaces the paths deploy to;
    only the kinds they contain (plus the Applications and the project itself, which
    the root app keeps in sync in the argocd namespace)."""
    destinations = {(IN_CLUSTER, "", ARGOCD_NAMESPACE)}
    operator_repos = {p.operator.repo for p in paths if p.operator} - {config.repo.url}
    kinds = {(API.split("/")[0], "Application"), (API.split("/")[0], "AppProject")}
    for path in paths:
        target = destination(scope, path)
        namespaces = {target["namespace"]}
        namespaces |= {
            o["metadata"]["namespace"] for o in path.objects if "namespace" in o["metadata"]
        }
        for namespace in sorted(namespaces):
            destinations.add((target.get("server", ""), target.get("name", ""), namespace))
        kinds |= {(_group(obj), obj["kind"]) for obj in path.objects}
    return {
        "apiVersion": API,
        "kind": "AppProject",
        "metadata": metadata(project, platform_labels(config), ARGOCD_NAMESPACE),
        "spec": {
            "description": f"{config.name}: training platform generated by mlgitops",
            "sourceRepos": [config.repo.url, *sorted(operator_repos)],
            "destinations": [_destination_entry(*d) for d in sorted(destinations)],
            "clusterResourceWhitelist": _kind_list(kinds & CLUSTER_SCOPED),
            "namespaceResourceWhitelist": _kind_list(kinds - CLUSTER_SCOPED),
        },
    }


def _destination_entry(server: str, name: str, namespace: str) -> dict[str, Any]:
    entry = {"server": server} if server else {"name": name}
    entry["namespace"] = namespace
    return entry


def _kind_list(kinds: set[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"group": group, "kind": kind} for group, kind in sorted(kinds)]
