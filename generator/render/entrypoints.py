"""What each cluster runs: `clusters/<cluster>/workloads/`, thin kustomizations over the
bases and the cloud's overlay with only that cluster's own values.

    overlays/<cloud>/namespaces/<ns>/              one namespace and the workloads every
                                                   cluster of the cloud runs in it
    clusters/<cluster>/workloads/                  everything the cluster runs (one build)
    clusters/<cluster>/workloads/storage/          StorageClasses the workloads need
    clusters/<cluster>/workloads/namespaces/<ns>/  the cloud's namespace, the workloads only
                                                   this cluster runs, the cluster's values
    clusters/<cluster>/custom/                     people's own Component, never rewritten

Each namespace is its own small build (kustomize slows down sharply with resources per
build), and the GitOps engine syncs them one by one; the folder above them composes
them for a person who wants to see the whole cluster with one `kubectl kustomize`.
The list of a namespace's workloads is written once per cloud, not once per cluster,
so adding a workload to a fleet of thirty clusters changes three lists, not thirty.
The invariant: what a cluster runs is exactly `kustomize build` of these paths.
"""

from __future__ import annotations

from generator.config import model
from generator.render import datasets, fabric, secrets
from generator.render.objects import Patch, Unit
from generator.render.overlays import (
    custom_folder,
    custom_unit,
    identity_enabled,
    identity_folder,
    overlay_folder,
    render_efs_class,
    storage_folder,
    workload_differs_on,
    workload_overlay_folder,
)
from generator.render.workloads import namespace_folder, workload_folder


def cluster_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}"


def workloads_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/workloads"


def cluster_storage_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/workloads/storage"


def cluster_namespace_folder(cluster: model.Cluster, namespace: str) -> str:
    return f"clusters/{cluster.name}/workloads/namespaces/{namespace}"


def cluster_custom_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/custom"


def cloud_namespace_folder(cloud: str, namespace: str) -> str:
    return f"overlays/{cloud}/namespaces/{namespace}"


def namespaces_on(config: model.Config, cluster: model.Cluster) -> list[str]:
    return sorted({w.namespace for w in config.workloads_on(cluster)})


def sync_paths(config: model.Config, cluster: model.Cluster) -> list[str]:
    """The paths a GitOps engine syncs into the cluster, in the order they must apply."""
    storage = [cluster_storage_folder(cluster)] if has_storage(cluster) else []
    return storage + [
        cluster_namespace_folder(cluster, ns) for ns in namespaces_on(config, cluster)
    ]


def has_storage(cluster: model.Cluster) -> bool:
    return isinstance(cluster, model.EksCluster)


def render_entrypoint_units(config: model.Config) -> list[Unit]:
    shared = cloud_wide_workloads(config)
    units: list[Unit] = [
        render_cloud_namespace(config, cloud, namespace, workloads)
        for (cloud, namespace), workloads in shared.items()
    ]
    for cluster in config.clusters:
        units.append(Unit(workloads_folder(cluster), includes=sync_paths(config, cluster)))
        units.append(custom_unit(cluster_custom_folder(cluster), f"cluster {cluster.name}"))
        if isinstance(cluster, model.EksCluster):
            units.append(render_eks_storage(config, cluster))
        by_namespace: dict[str, list[model.Workload]] = {}
        for workload in config.workloads_on(cluster):
            by_namespace.setdefault(workload.namespace, []).append(workload)
        units.extend(
            render_namespace_entrypoint(
                config, cluster, namespace, workloads, shared.get((cluster.cloud, namespace), [])
            )
            for namespace, workloads in sorted(by_namespace.items())
        )
    return units


def render_eks_storage(config: model.Config, cluster: model.EksCluster) -> Unit:
    """gp3 for every EKS cluster; EFS for shared checkpoints where the cluster names a file
    system (a shared checkpoint on a cluster without one is a config error)."""
    objects = []
    if cluster.efs_file_system_id:
        objects.append(render_efs_class(config, cluster.efs_file_system_id))
    return Unit(cluster_storage_folder(cluster), objects, includes=[storage_folder("eks")])


def cloud_wide_workloads(config: model.Config) -> dict[tuple[str, str], list[model.Workload]]:
    """Per (cloud, namespace), the workloads that every cluster of the cloud runs."""
    found: dict[tuple[str, str], list[model.Workload]] = {}
    for cloud in config.clouds():
        names = [c.name for c in config.clusters if c.cloud == cloud]
        for workload in config.workloads:
            if all(workload.runs_on(name) for name in names):
                found.setdefault((cloud, workload.namespace), []).append(workload)
    return found


def workload_on_cloud(config: model.Config, cloud: str, workload: model.Workload) -> str:
    """The folder of a workload as a cloud runs it: its overlay where it differs there."""
    if workload_differs_on(config, cloud, workload):
        return workload_overlay_folder(cloud, workload)
    return workload_folder(workload)


def render_cloud_namespace(
    config: model.Config, cloud: str, namespace: str, workloads: list[model.Workload]
) -> Unit:
    """What every cluster of a cloud runs in a namespace; each cluster's entry point
    includes it and adds its own values on top."""
    includes = [namespace_folder(namespace)]
    includes += [workload_on_cloud(config, cloud, w) for w in workloads]
    return Unit(cloud_namespace_folder(cloud, namespace), includes=includes)


def render_namespace_entrypoint(
    config: model.Config,
    cluster: model.Cluster,
    namespace: str,
    workloads: list[model.Workload],
    shared: list[model.Workload],
) -> Unit:
    """One namespace of one cluster: `workloads` it runs there, of which `shared` come
    from the cloud's list of the namespace."""
    cloud = cluster.cloud
    shared_names = {w.name for w in shared}
    includes = [cloud_namespace_folder(cloud, namespace) if shared else namespace_folder(namespace)]
    includes += [
        workload_on_cloud(config, cloud, w) for w in workloads if w.name not in shared_names
    ]
    components = [overlay_folder(cloud)]
    if identity_enabled(cluster):
        components.append(identity_folder(cloud))
    components += [custom_folder(cloud), cluster_custom_folder(cluster)]
    comment = ""
    patches = _identity_patches(cluster)
    if isinstance(cluster, model.LocalCluster):
        commands = [
            line
            for line in secrets.local_commands(config, cluster)
            if line.startswith(f"kubectl -n {namespace} ")
        ]
        if commands:
            comment = "#\n# Secrets the pods need, made by hand once (values never in git):\n"
            comment += "".join(f"#   {line}\n" for line in commands)
            patches.append(secrets.hand_made_patch(config, cluster, namespace))
        claims = datasets.local_notes(config, cluster, namespace)
        if claims:
            comment += (
                '#\n# Dataset claims to fill once before the training runs (README "Datasets"):\n'
            )
            comment += "".join(f"#   {line}\n" for line in claims)
    existing = datasets.existing_claims(config, cluster, namespace)
    if existing:
        comment += (
            "#\n# Claims the pods mount that must already exist in the namespace (pvc: "
            "sources):\n#   " + ", ".join(existing) + "\n"
        )
        patches.append(datasets.existing_claims_patch(existing, namespace))
    return Unit(
        cluster_namespace_folder(cluster, namespace),
        objects=secrets.namespace_objects(config, cluster, namespace),
        includes=includes,
        components=components,
        patches=patches + _efa_patches(config, cluster, workloads),
        images=_image_rewrites(cluster, workloads),
        namespace=namespace,
        comment=comment,
    )


def _efa_patches(
    config: model.Config, cluster: model.Cluster, workloads: list[model.Workload]
) -> list[Patch]:
    """EFA interfaces and libfabric's settings for the GPU pods, where the cluster's
    node groups have EFA (render/fabric.py)."""
    found = [fabric.efa_patch(config, cluster, w) for w in workloads if w.dispatch is None]
    return [p for p in found if p is not None]


def _identity_patches(cluster: model.Cluster) -> list[Patch]:
    """GKE Workload Identity maps each training ServiceAccount to the cluster's Google
    service account by annotation. EKS Pod Identity needs none: its associations live
    with the cluster's infrastructure."""
    if not isinstance(cluster, model.GkeCluster) or cluster.workload_identity is None:
        return []
    email = f"{cluster.training_service_account()}@{cluster.project}.iam.gserviceaccount.com"
    body = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "training-service-accounts",
            "annotations": {"iam.gke.io/gcp-service-account": email},
        },
    }
    # Only the training ServiceAccounts: a namespace's secret store acts as its own
    # Google service account (render/secrets.py).
    target = {"kind": "ServiceAccount", "labelSelector": "app.kubernetes.io/component=training"}
    return [Patch("workload-identity.yaml", target, body)]


def image_repository(image: str) -> str:
    """`registry.example.com/ml/x:1.0` -> `registry.example.com/ml/x`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def image_path(repository: str) -> str:
    """The repository without its registry host: `registry.example.com/ml/x` -> `ml/x`."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repository


def _image_rewrites(
    cluster: model.Cluster, workloads: list[model.Workload]
) -> list[dict[str, str]]:
    """Pull from the cluster's registry (a mirror, ECR, Artifact Registry, a kind registry)
    with the same repository path, tag and digest."""
    if not cluster.image_registry:
        return []
    registry = cluster.image_registry.rstrip("/")
    # A dispatched run's image is the manager's object's, copied as it is (render/dispatch.py).
    repositories = sorted({image_repository(w.image) for w in workloads if w.dispatch is None})
    if not repositories:
        return []
    return [{"name": repo, "newName": f"{registry}/{image_path(repo)}"} for repo in repositories]


def warnings(config: model.Config) -> list[str]:
    """What generates but will not work until someone acts."""
    found = []
    engine = "Argo CD" if config.gitops == "argocd" else "Flux"
    for workload in config.workloads:
        if workload.ttl_seconds_after_finished is not None:
            found.append(
                f"workload {workload.name!r}: ttlSecondsAfterFinished deletes the finished "
                f"run, which {engine} then creates again from git, and it trains again"
            )
    return found + fabric.efa_warnings(config)
