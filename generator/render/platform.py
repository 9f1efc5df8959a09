"""Cluster-wide objects the workloads rely on, per cluster: `clusters/<cluster>/platform/`.

The ClusterTrainingRuntimes of its TrainJobs, its Kueue ResourceFlavors and
ClusterQueue, and the priority classes its workloads name. They are cluster-scoped and
need the CRDs of the operators installed just before them, and the workloads need them
in turn, so they are one path between the two.
"""

from __future__ import annotations

from generator.config import model
from generator.render.dispatch import is_worker, render_worker_access
from generator.render.objects import Unit
from generator.render.queues import (
    render_cluster_queue_objects,
    render_priority_classes,
    runs_queues,
)
from generator.render.training_runtimes import generates_runtime, render_training_runtime


def platform_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/platform"


def has_platform(config: model.Config, cluster: model.Cluster) -> bool:
    runtimes = any(generates_runtime(w) for w in config.workloads_on(cluster))
    priorities = any(w.priority for w in config.workloads_on(cluster))
    return runtimes or priorities or runs_queues(config, cluster)


def render_platform_units(config: model.Config) -> list[Unit]:
    units = []
    for cluster in config.clusters:
        if not has_platform(config, cluster):
            continue
        objects = [
            render_training_runtime(config, cluster, w)
            for w in config.workloads_on(cluster)
            if generates_runtime(w)
        ]
        if runs_queues(config, cluster):
            objects += render_cluster_queue_objects(config, cluster)
        objects += render_priority_classes(config, cluster)
        if is_worker(config, cluster):
            objects += render_worker_access(config, cluster)
        units.append(Unit(platform_folder(cluster), objects))
    return units
