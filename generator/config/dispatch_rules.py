"""Rules of `dispatch:` (render/dispatch.py): what MultiKueue can dispatch, and where to.

Each problem is (field path, message), as in rules.py; placement on the workers (a run
no worker could ever admit) is there, beside the rule it relaxes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from generator.config import model
from generator.render.dispatch import MANAGER

Found = tuple[str, str]


def dispatch_problems(
    workloads: list[tuple[int, model.Workload]], clusters: list[tuple[int, model.Cluster]]
) -> Iterator[Found]:
    dispatched = [(i, w) for i, w in workloads if w.dispatch is not None]
    for i, workload in dispatched:
        yield from _workload(workload, f"workloads[{i}]", [c for _, c in clusters])
    yield from _shared_queues(dispatched)
    if dispatched:
        for i, cluster in clusters:
            if cluster.name == MANAGER:
                yield (
                    f"clusters[{i}].name",
                    f"{MANAGER!r} is the management cluster's own folder (clusters/{MANAGER}/) "
                    "when workloads are dispatched: give this cluster another name",
                )


def _shared_queues(dispatched: list[tuple[int, model.Workload]]) -> Iterator[Found]:
    """The manager's LocalQueue points at one ClusterQueue, whose MultiKueueConfig lists
    the workers: the runs of one LocalQueue all go to the same workers."""
    first: dict[tuple[str, str], model.Workload] = {}
    for i, workload in dispatched:
        if workload.queue is None or workload.dispatch is None:
            continue
        key = (workload.namespace, workload.queue)
        earlier = first.setdefault(key, workload)
        assert earlier.dispatch is not None
        if set(earlier.dispatch.clusters) != set(workload.dispatch.clusters):
            yield (
                f"workloads[{i}].dispatch.clusters",
                f"its queue {workload.queue!r} in namespace {workload.namespace!r} also "
                f"holds {earlier.name!r}, dispatched to {', '.join(earlier.dispatch.clusters)}: "
                "the runs of one queue go to the same clusters (name the same ones, or use "
                "another queue)",
            )


def _workload(
    workload: model.Workload, path: str, clusters: list[model.Cluster]
) -> Iterator[Found]:
    dispatch = workload.dispatch
    assert dispatch is not None
    if workload.training_runtime is not None:
        # The manager's Kueue builds a TrainJob's pod sets from the runtime it names
        # (kueue v0.17.6 pkg/controller/jobs/trainjob/trainjob_controller.go
        # getRuntimeSpec): mlgitops copies there only the runtimes it generates.
        yield (
            f"{path}.trainingRuntime",
            "not with dispatch: the management cluster's Kueue builds a TrainJob's pods "
            "from the runtime it names, and mlgitops does not install "
            f"{workload.training_runtime!r} there; leave trainingRuntime out (mlgitops then "
            "generates the runtime on the management cluster and every worker), or run on "
            "fixed clusters",
        )
    if workload.queue is None:
        yield (
            f"{path}.dispatch",
            "a dispatched workload needs a queue: MultiKueue dispatches only what the "
            "management cluster's Kueue admits from a queue (set queue)",
        )
    if workload.clusters:
        yield (
            f"{path}.clusters",
            "a dispatched workload runs on one of dispatch.clusters, decided when it is "
            "admitted: leave clusters out (or drop dispatch to run on every one of them)",
        )
    for field, value in (
        ("overrides", any(workload.overrides.for_cloud(c) for c in model.CLUSTER_KINDS)),
        ("topology", workload.topology is not None),
        ("priority", workload.priority is not None),
    ):
        if value:
            yield (
                f"{path}.{field}",
                f"not with dispatch: MultiKueue copies the one object of the management "
                f"cluster to whichever worker admits it, and mlgitops does not carry {field} "
                "across clusters yet",
            )
    names = {c.name: c for c in clusters}
    workers = [names[n] for n in dispatch.clusters if n in names]
    for k, dataset in enumerate(workload.data):
        # MultiKueue copies the one object of the management cluster to whichever worker
        # admits it: its pods must mount the same volume on every worker.
        on_workers = {dataset.source_on(c.cloud) or "" for c in workers}
        if any(not source.startswith("pvc:") for source in on_workers):
            yield (
                f"{path}.data[{k}]",
                "a dataset from a bucket is not with dispatch yet: its volume differs per "
                "cloud (a Mountpoint PersistentVolume on EKS, a Cloud Storage FUSE volume on "
                "GKE) and MultiKueue copies the one object of the management cluster to "
                "whichever worker admits it; use source: pvc:CLAIM with a claim each worker "
                "has, or run on fixed clusters",
            )
        elif len(on_workers) > 1:
            yield (
                f"{path}.data[{k}].sources",
                "the workers would mount different claims, but MultiKueue copies the one "
                "object of the management cluster to whichever worker admits it: name one "
                "claim every worker has (source: pvc:CLAIM)",
            )
    for j, name in enumerate(dispatch.clusters):
        where = f"{path}.dispatch.clusters[{j}]"
        if dispatch.clusters.index(name) != j:
            yield where, f"{name!r} is listed twice"
        elif name == MANAGER and name not in names:
            yield (
                where,
                f"{name!r} is the management cluster, which dispatches the run: name the "
                "worker clusters it may run on",
            )
        elif name not in names:
            guess = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
            hint = f"did you mean '{guess[0]}'?" if guess else f"clusters: {', '.join(names)}"
            yield where, f"no cluster named {name!r} ({hint})"
        elif isinstance(names[name], model.LocalCluster):
            yield (
                where,
                f"{name!r} is a local cluster, which syncs itself: the management cluster "
                "reaches only the fleet's EKS and GKE clusters, so dispatch to those",
            )
