"""Rules that relate several fields. Each problem is (field path, message); the loader
turns the path into the file position where that field was written."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from generator.config import model

# Folder names under base/ that are not workloads.
RESERVED_WORKLOAD_NAMES = frozenset({"namespaces"})
# Namespaces a training workload must not take over.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# Environment variables the generated pods set themselves.
GENERATED_ENV = frozenset({"JOB_COMPLETION_INDEX", "TF_CLUSTER", "TF_CONFIG", "PYTHONUNBUFFERED"})
MAX_HOSTNAME = 63

Found = tuple[str, str]


@dataclass(frozen=True)
class Loaded:
    """The parts of a config that loaded cleanly, each with its index in the file, so the
    rules can run even when other parts have problems of their own."""

    workloads: list[tuple[int, model.Workload]]
    clusters: list[tuple[int, model.Cluster]]
    kubernetes_version: str | None

    @classmethod
    def of(cls, config: model.Config) -> Loaded:
        return cls(
            list(enumerate(config.workloads)),
            list(enumerate(config.clusters)),
            config.kubernetes_version,
        )


def cross_field_problems(loaded: Loaded) -> list[Found]:
    return [
        *_duplicates(((i, w.name) for i, w in loaded.workloads), "workloads", "workload"),
        *_duplicates(((i, c.name) for i, c in loaded.clusters), "clusters", "cluster"),
        *(p for i, w in loaded.workloads for p in _workload(w, f"workloads[{i}]")),
        *(p for i, c in loaded.clusters for p in _cluster(c, f"clusters[{i}]")),
    ]


def _duplicates(
    names: Iterable[tuple[int, str]], path: str, what: str, suffix: str = ".name"
) -> Iterator[Found]:
    seen: dict[str, int] = {}
    for index, name in names:
        if name in seen:
            yield (
                f"{path}[{index}]{suffix}",
                f"duplicate {what} name {name!r} (also {path}[{seen[name]}])",
            )
        else:
            seen[name] = index


def _workload(workload: model.Workload, path: str) -> Iterator[Found]:
    if workload.name in RESERVED_WORKLOAD_NAMES:
        yield f"{path}.name", f"{workload.name!r} is reserved (base/{workload.name}/ is generated)"
    if workload.namespace in RESERVED_NAMESPACES:
        yield (
            f"{path}.namespace",
            f"{workload.namespace!r} is a system namespace: give the workload its own",
        )
    if workload.parameter_servers and workload.framework != "tensorflow":
        yield (
            f"{path}.parameterServers",
            f"parameter servers need framework tensorflow, not {workload.framework}",
        )
    last_hostname = f"{workload.name}-{workload.pod_count - 1}"
    if len(last_hostname) > MAX_HOSTNAME:
        room = MAX_HOSTNAME - len(f"-{workload.pod_count - 1}")
        yield (
            f"{path}.name",
            f"{workload.name!r} is too long: pod hostnames such as {last_hostname!r} must fit "
            f"in {MAX_HOSTNAME} characters (at most {room} characters here)",
        )
    for key in sorted(set(workload.env) & GENERATED_ENV):
        yield f"{path}.env.{key}", f"{key} is set by the generator and cannot be overridden"
    for i, source in enumerate(workload.network.ingress_from):
        yield from _duplicates_ports(source.ports, f"{path}.network.ingressFrom[{i}].ports")
    for i, destination in enumerate(workload.network.egress_to):
        yield from _duplicates_ports(destination.ports, f"{path}.network.egressTo[{i}].ports")


def _duplicates_ports(ports: tuple[int, ...], path: str) -> Iterator[Found]:
    seen: set[int] = set()
    for index, port in enumerate(ports):
        if port in seen:
            yield f"{path}[{index}]", f"port {port} is listed twice"
        seen.add(port)


def _cluster(cluster: model.Cluster, path: str) -> Iterator[Found]:
    if isinstance(cluster, model.EksCluster):
        yield from _duplicates(
            enumerate(g.name for g in cluster.node_groups), f"{path}.nodeGroups", "node group"
        )
        for i, group in enumerate(cluster.node_groups):
            if not group.min_size <= group.desired_size <= group.max_size:
                yield (
                    f"{path}.nodeGroups[{i}].desiredSize",
                    f"sizes must satisfy minSize <= desiredSize <= maxSize "
                    f"(got {group.min_size}, {group.desired_size}, {group.max_size})",
                )
        if len(cluster.subnets) == 1:
            yield f"{path}.subnets", "EKS needs subnets in at least two availability zones"
        yield from _duplicates(enumerate(cluster.subnets), f"{path}.subnets", "subnet", suffix="")
    elif isinstance(cluster, model.GkeCluster):
        yield from _duplicates(
            enumerate(p.name for p in cluster.node_pools), f"{path}.nodePools", "node pool"
        )
