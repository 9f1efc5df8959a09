"""What each cluster runs: `clusters/<cluster>/workloads/`, thin kustomizations over the
bases and the cloud's overlay with only that cluster's own values.

    clusters/<cluster>/workloads/                  everything the cluster runs (one build)
    clusters/<cluster>/workloads/storage/          StorageClasses the workloads need
    clusters/<cluster>/workloads/namespaces/<ns>/  one namespace and its workloads
    clusters/<cluster>/custom/                     people's own Component, never rewritten

Each namespace is its own small build (kustomize slows down sharply with resources per
build), and the GitOps engine syncs them one by one; the folder above them composes
them for a person who wants to see the whole cluster with one `kubectl kustomize`.
The invariant: what a cluster runs is exactly `kustomize build` of these paths.
"""

from __future__ import annotations

from generator import cloud_facts
from generator.config import model
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
    units: list[Unit] = []
    for cluster in config.clusters:
        units.append(Unit(workloads_folder(cluster), includes=sync_paths(config, cluster)))
        units.append(custom_unit(cluster_custom_folder(cluster), f"cluster {cluster.name}"))
        if isinstance(cluster, model.EksCluster):
            units.append(render_eks_storage(config, cluster))
        units.extend(
            render_namespace_entrypoint(config, cluster, namespace)
            for namespace in namespaces_on(config, cluster)
        )
    return units


def render_eks_storage(config: model.Config, cluster: model.EksCluster) -> Unit:
    """gp3 for every EKS cluster; EFS for shared checkpoints where the cluster names a file
    system (without one, shared claims wait for an efs-sc class: see `warnings`)."""
    objects = []
    if cluster.efs_file_system_id:
        objects.append(render_efs_class(config, cluster.efs_file_system_id))
    return Unit(cluster_storage_folder(cluster), objects, includes=[storage_folder("eks")])


def render_namespace_entrypoint(
    config: model.Config, cluster: model.Cluster, namespace: str
) -> Unit:
    workloads = [w for w in config.workloads_on(cluster) if w.namespace == namespace]
    cloud = cluster.cloud
    includes = [namespace_folder(namespace)] + [
        workload_overlay_folder(cloud, w)
        if workload_differs_on(config, cloud, w)
        else workload_folder(w)
        for w in workloads
    ]
    components = [overlay_folder(cloud)]
    if identity_enabled(cluster):
        components.append(identity_folder(cloud))
    components += [custom_folder(cloud), cluster_custom_folder(cluster)]
    return Unit(
        cluster_namespace_folder(cluster, namespace),
        includes=includes,
        components=components,
        patches=_identity_patches(cluster),
        images=_image_rewrites(cluster, workloads),
        namespace=namespace,
    )


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
    return [Patch("workload-identity.yaml", {"kind": "ServiceAccount"}, body)]


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
    repositories = sorted({image_repository(w.image) for w in workloads})
    return [{"name": repo, "newName": f"{registry}/{image_path(repo)}"} for repo in repositories]


def warnings(config: model.Config) -> list[str]:
    """What generates but will not work until someone acts."""
    found = []
    for cluster in config.clusters:
        if isinstance(cluster, model.EksCluster) and not cluster.efs_file_system_id:
            shared = [
                w.name for w in config.workloads_on(cluster) if w.checkpoint and w.pod_count > 1
            ]
            if shared:
                shared_class = cloud_facts.CLOUD_PROFILES["eks"].shared_class
                names = ", ".join(shared[:3]) + (
                    f" and {len(shared) - 3} more" if len(shared) > 3 else ""
                )
                found.append(
                    f"cluster {cluster.name!r}: the shared checkpoints of {names} "
                    f"need the {shared_class} class: set efsFileSystemId on the cluster, "
                    "or their claims stay Pending"
                )
    return found
