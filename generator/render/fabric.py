"""The fabric between the training pods: NCCL's defaults, EFA on EKS, gVNIC on GKE.

- **NCCL** (every training pod, PyTorch and TensorFlow alike: both all-reduce with
  NCCL on GPUs): the interface to use (`NCCL_SOCKET_IFNAME`, the pod's eth0 on every cloud),
  the debug level (`nccl.debug`, default WARN), and for PyTorch the teardown of a rank
  whose collective fails (`TORCH_NCCL_ASYNC_ERROR_HANDLING=1`), so the failure policy
  restarts the run rather than a rank waiting forever. A workload's own `env` replaces
  any of them. They are the same on every cloud, so they are in the base.
- **EFA** (EKS): node groups whose instance types all have EFA (GPU types by default,
  `efa: false` to turn it off) get a launch template with one EFA interface per network
  card (render/clusters/eks.py). A GPU pod on such a cluster asks for
  `vpc.amazonaws.com/efa`: all of a node's interfaces when it takes all its GPUs, else
  its share (interfaces x GPUs / node GPUs, at least one), and gets libfabric's EFA
  settings. That is per cluster, so it is a patch in the cluster's namespace entry
  point. The EFA device plugin mounts the devices; the pod stays Pod Security
  "restricted" (EKS user guide ml/node-efa.adoc: "does not require a Pod to run in
  privileged mode").
"""

from __future__ import annotations

import copy
from typing import Any

from generator import cloud_facts
from generator.config import model
from generator.render import json_patch
from generator.render.objects import Manifest, Patch

EnvVar = dict[str, Any]


def socket_ifname() -> str:
    """The interface NCCL uses: one value, as every cloud's pods have the same (a cloud
    whose pods differed would need it in its overlay instead; there is none)."""
    values = set(cloud_facts.NCCL_SOCKET_IFNAME.values())
    if len(values) != 1:
        raise ValueError(f"NCCL_SOCKET_IFNAME differs between clouds: {sorted(values)}")
    return values.pop()


def nccl_env(workload: model.Workload) -> list[EnvVar]:
    """NCCL's defaults for every training pod, less what the workload sets itself. On
    every pod, not only GPU ones: a pod spec stays the same on every cloud (local drops
    the GPUs, overrides change them per cloud), and without GPUs nothing reads them
    (PyTorch then uses Gloo, TensorFlow gRPC)."""
    found = [
        ("NCCL_SOCKET_IFNAME", socket_ifname()),
        ("NCCL_DEBUG", workload.nccl.debug),
    ]
    if workload.framework == "pytorch":
        found.append(
            ("TORCH_NCCL_ASYNC_ERROR_HANDLING", cloud_facts.TORCH_NCCL_ASYNC_ERROR_HANDLING)
        )
    return [{"name": k, "value": v} for k, v in found if k not in workload.env]


# --- EFA on EKS ---------------------------------------------------------------------


def group_efa_interfaces(group: model.EksNodeGroup) -> int:
    """EFA interfaces one node of the group gets: the fewest of its instance types (a
    launch template names one layout for all of them); 0 when EFA is off or any of its
    types has none."""
    counts = [cloud_facts.ec2_efa_interfaces(t) for t in group.instance_types]
    if group.efa is False or min(counts) == 0:
        return 0
    if group.efa is None and not cloud_facts.ec2_gpu(group.instance_types[0]):
        return 0  # on by default for GPU types only: CPU pods here do not use NCCL
    return min(counts)


def efa_groups(cluster: model.Cluster) -> list[model.EksNodeGroup]:
    if not isinstance(cluster, model.EksCluster):
        return []
    return [g for g in cluster.node_groups if group_efa_interfaces(g)]


def _node_gpus(group: model.EksNodeGroup) -> int:
    if group.capacity is not None:
        return group.capacity.gpus
    capacity = cloud_facts.ec2_capacity(group.instance_types[0])
    return capacity.gpus if capacity else 0


def _candidates(cluster: model.Cluster, gpus: int) -> list[model.EksNodeGroup]:
    return [g for g in efa_groups(cluster) if _node_gpus(g) >= gpus > 0]


def pod_efa(cluster: model.Cluster, workload: model.Workload) -> int:
    """EFA interfaces each GPU pod of the workload asks for on this cluster: its share
    of a node's, on the EFA groups whose nodes hold its GPUs (the fewest of those
    groups, so it fits any of them); 0 off EKS, without GPUs or EFA groups.

    A queued workload asks for it too: its ClusterQueue then covers the resource, with
    each flavor's quota what its nodes offer (render/queues.py `covers_efa`)."""
    gpus = workload.resources_on(cluster.cloud).gpu
    shares = [
        max(1, group_efa_interfaces(g) * gpus // _node_gpus(g)) for g in _candidates(cluster, gpus)
    ]
    return min(shares) if shares else 0


def efa_env(cluster: model.Cluster, workload: model.Workload) -> list[EnvVar]:
    """libfabric's EFA provider (and GPUDirect RDMA where every candidate group has it),
    less what the workload sets itself."""
    if not pod_efa(cluster, workload):
        return []
    found = list(cloud_facts.EFA_ENV)
    groups = _candidates(cluster, workload.resources_on(cluster.cloud).gpu)
    if all(cloud_facts.ec2_efa_rdma(t) for g in groups for t in g.instance_types):
        found += cloud_facts.EFA_RDMA_ENV
    return [{"name": k, "value": v} for k, v in found if k not in workload.env]


def efa_warnings(config: model.Config) -> list[str]:
    """EFA that the tree does not deliver: the device plugin under Flux
    (operator_facts.EFA_DEVICE_PLUGIN)."""
    found = []
    for cluster in config.clusters:
        if not efa_groups(cluster):
            continue
        if config.gitops == "flux":
            found.append(
                f"cluster {cluster.name!r}: its node groups have EFA, but Flux does not "
                "install the EFA device plugin here, so the pods ask for no EFA interfaces "
                "and NCCL talks over TCP (see README, Fabric)"
            )
    return found


def add_efa_to_container(container: dict[str, Any], interfaces: int, env: list[EnvVar]) -> None:
    """EFA requests equal limits (an extended resource must), and libfabric's settings
    before the workload's own variables."""
    resources = container.setdefault("resources", {})
    for key in ("requests", "limits"):
        resources.setdefault(key, {})[cloud_facts.EFA_RESOURCE] = interfaces
    if env:
        names = {e["name"] for e in env}
        kept = [e for e in container.get("env", []) if e["name"] not in names]
        container["env"] = kept + env


def efa_patch(
    config: model.Config, cluster: model.Cluster, workload: model.Workload
) -> Patch | None:
    """The cluster's EFA additions to a workload's training object, as JSON patch
    operations on the object the cloud's overlay yields (TrainJobs: the processes'
    resources; their environment is in the cluster's own ClusterTrainingRuntime)."""
    from generator.render.overlays import on_cloud_object
    from generator.render.runtimes import pod_specs

    interfaces = pod_efa(cluster, workload)
    if not interfaces or not plugin_installed(config):
        return None
    before = on_cloud_object(config, cluster.cloud, workload)
    after = copy.deepcopy(before)
    env = efa_env(cluster, workload)
    if after["kind"] == "TrainJob":
        resources = after["spec"]["trainer"]["resourcesPerNode"]
        for key in ("requests", "limits"):
            resources.setdefault(key, {})[cloud_facts.EFA_RESOURCE] = interfaces
    for spec in pod_specs(after):
        for container in spec["containers"]:
            add_efa_to_container(container, interfaces, env)
    kind = before["kind"]
    operations = [op for o in json_patch.diff(before, after) for op in _appended(before, o)]
    return Patch(f"efa-{workload.name}.yaml", {"kind": kind, "name": workload.name}, operations)


def _appended(before: Manifest, operation: dict[str, Any]) -> list[dict[str, Any]]:
    """A list replaced by itself plus items (the container's env) as `add .../-` of
    each item: the patch names only what EFA adds."""
    if operation["op"] != "replace" or not isinstance(operation["value"], list):
        return [operation]
    old: Any = before
    for part in operation["path"].split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        old = old[int(key)] if isinstance(old, list) else old[key]
    new = operation["value"]
    if not isinstance(old, list) or new[: len(old)] != old:
        return [operation]
    return [{"op": "add", "path": f"{operation['path']}/-", "value": v} for v in new[len(old) :]]


def plugin_installed(config: model.Config) -> bool:
    """The EFA device plugin is installed by Argo CD only (operator_facts)."""
    return config.gitops == "argocd"


def runtime_container_efa(
    config: model.Config,
    cluster: model.Cluster,
    workload: model.Workload,
    container: dict[str, Any],
) -> None:
    """A TrainJob's runtime (one per cluster): the same EFA requests and settings."""
    interfaces = pod_efa(cluster, workload)
    if interfaces and plugin_installed(config):
        add_efa_to_container(container, interfaces, efa_env(cluster, workload))
