"""A ClusterTrainingRuntime for each TrainJob, per cluster: `clusters/<c>/training-runtimes/`.

Kubeflow Trainer builds a TrainJob's pods from the runtime it names. The runtimes it
ships have no security context, so Pod Security "restricted" (which every generated
namespace enforces) would refuse their pods; and a TrainJob itself can set neither the
security context nor affinity. So each TrainJob gets its own runtime, rendered for the
cluster's cloud: the restricted pod of every runtime, the service account, checkpoint
and shared-memory volumes, and the cloud's GPU scheduling. The TrainJob then carries
only what every Trainer release accepts: the runtime's name, image, command, node count
and resources.

Runtimes are cluster-scoped, so they live in their own path, applied after the Trainer
controller and before the workloads. A workload that names its own `trainingRuntime`
uses that one instead, which must then meet Pod Security "restricted" itself.
"""

from __future__ import annotations

from dataclasses import replace

from generator import cloud_facts
from generator.config import model
from generator.render import frameworks
from generator.render.labels import workload_labels
from generator.render.objects import Manifest, Unit, metadata
from generator.render.overlays import cloud_scheduling
from generator.render.pods import render_pod_spec, render_trainer_container
from generator.render.runtimes import TRAINER_API, add_to_pod_spec, training_runtime_name

# Trainer finds the replicated job to put the TrainJob's trainer into by this label.
ANCESTOR_LABEL = {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}


def training_runtimes_folder(cluster: model.Cluster) -> str:
    return f"clusters/{cluster.name}/training-runtimes"


def generates_runtime(workload: model.Workload) -> bool:
    return workload.runtime == "trainjob" and workload.training_runtime is None


def runs_generated_runtimes(config: model.Config, cluster: model.Cluster) -> bool:
    return any(generates_runtime(w) for w in config.workloads_on(cluster))


def render_training_runtime_units(config: model.Config) -> list[Unit]:
    return [
        Unit(
            training_runtimes_folder(cluster),
            [
                render_training_runtime(config, cluster, w)
                for w in config.workloads_on(cluster)
                if generates_runtime(w)
            ],
        )
        for cluster in config.clusters
        if runs_generated_runtimes(config, cluster)
    ]


def render_training_runtime(
    config: model.Config, cluster: model.Cluster, workload: model.Workload
) -> Manifest:
    on_cloud = replace(workload, resources=workload.resources_on(cluster.cloud))
    launch = frameworks.Launch(
        command=frameworks.trainjob_command(workload),
        args=[],
        env=[{"name": "PYTHONUNBUFFERED", "value": "1"}],
        port_name="rendezvous",
    )
    container = render_trainer_container(on_cloud, launch, frameworks.TRAINJOB_NODE)
    pod_spec = render_pod_spec(on_cloud, container)
    for addition in cloud_scheduling(cloud_facts.CLOUD_PROFILES[cluster.cloud], on_cloud):
        add_to_pod_spec(pod_spec, addition)
    labels = workload_labels(config, workload)
    return {
        "apiVersion": TRAINER_API,
        "kind": "ClusterTrainingRuntime",
        "metadata": metadata(training_runtime_name(config, workload), labels),
        "spec": {
            "mlPolicy": {
                "numNodes": workload.workers,
                "torch": {"numProcPerNode": workload.resources_on(cluster.cloud).gpu or 1},
            },
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": frameworks.TRAINJOB_NODE,
                            "template": {
                                "metadata": {"labels": labels | ANCESTOR_LABEL},
                                "spec": {
                                    "template": {"metadata": {"labels": labels}, "spec": pod_spec}
                                },
                            },
                        }
                    ]
                }
            },
        },
    }
