"""A ClusterTrainingRuntime for each TrainJob, per cluster (in its platform path).

Kubeflow Trainer builds a TrainJob's pods from the runtime it names. The runtimes it
ships have no security context, so Pod Security "restricted" (which every generated
namespace enforces) would refuse their pods; and a TrainJob itself can set neither the
security context nor affinity. So each TrainJob gets its own runtime, rendered for the
cluster's cloud: the restricted pod of every runtime, the service account, checkpoint
and shared-memory volumes, and the cloud's GPU scheduling. The TrainJob then carries
only what every Trainer release accepts: the runtime's name, image, command, node count
and resources.

Runtimes are cluster-scoped, so they live in the cluster's platform path, applied after
the Trainer controller and before the workloads. A workload that names its own `trainingRuntime`
uses that one instead, which must then meet Pod Security "restricted" itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from generator import cloud_facts
from generator.config import model
from generator.operator_facts import GPU_TOLERATIONS
from generator.render import datasets, disruption, fabric, frameworks, topology
from generator.render.labels import workload_labels
from generator.render.objects import Manifest, metadata
from generator.render.overlays import cloud_scheduling
from generator.render.pods import (
    pod_metadata,
    policy_annotations,
    render_pod_spec,
    render_trainer_container,
)
from generator.render.runtimes import TRAINER_API, add_to_pod_spec, training_runtime_name

# Trainer finds the replicated job to put the TrainJob's trainer into by this label.
ANCESTOR_LABEL = {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}


def generates_runtime(workload: model.Workload) -> bool:
    return workload.runtime == "trainjob" and workload.training_runtime is None


def render_training_runtime(
    config: model.Config, cluster: model.Cluster | None, workload: model.Workload
) -> Manifest:
    """The runtime on `cluster`, or with `cluster` None the management cluster's
    cloud-neutral copy for a dispatched TrainJob (render/dispatch.py)."""
    if cluster is None:
        assert workload.dispatch is not None
        first = next(c for c in config.clusters if c.name in workload.dispatch.clusters)
        # One `pvc:` claim on every worker (config/dispatch_rules.py): the first's is theirs.
        on_cloud = replace(workload, data=datasets.on_cloud(workload, first.cloud))
    else:
        on_cloud = replace(
            workload,
            resources=workload.resources_on(cluster.cloud),
            data=datasets.on_cloud(workload, cluster.cloud),
        )
    launch = frameworks.Launch(
        command=frameworks.trainjob_command(workload),
        args=[],
        env=[{"name": "PYTHONUNBUFFERED", "value": "1"}],
        port_name="rendezvous",
    )
    container = render_trainer_container(on_cloud, launch, frameworks.TRAINJOB_NODE)
    if cluster is not None and workload.dispatch is None:
        # Not on a dispatched TrainJob's runtime: the worker's Kueue finishes the run as
        # "out of sync" unless the pod sets it builds from this runtime have the same
        # containers as the manager's Workload, built from the cloud-neutral copy
        # (kueue v0.17.6 pkg/controller/jobframework/reconciler.go EquivalentToWorkload,
        # pkg/util/equality/podset.go comparePodTemplate: containers and init containers
        # always, tolerations until admitted). Pod-level scheduling may differ.
        fabric.runtime_container_efa(config, cluster, workload, container)
    pod_spec = render_pod_spec(on_cloud, container)
    if cluster is not None:
        for addition in cloud_scheduling(cloud_facts.CLOUD_PROFILES[cluster.cloud], on_cloud):
            add_to_pod_spec(pod_spec, addition)
    elif workload.resources.gpu:
        # As the manager's other dispatched objects (render/dispatch.py): only the GPU
        # taint's toleration, the scheduling every worker shares.
        add_to_pod_spec(pod_spec, {"tolerations": [dict(t) for t in GPU_TOLERATIONS]})
    labels = workload_labels(config, workload)
    meta = metadata(training_runtime_name(config, workload), labels)
    annotations = policy_annotations(config, workload)
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": TRAINER_API,
        "kind": "ClusterTrainingRuntime",
        "metadata": meta,
        "spec": {
            # Processes per node are the TrainJob's (runtimes.render_trainjob): Trainer
            # v2.3.0's torch policy has no numProcPerNode.
            "mlPolicy": {"numNodes": workload.workers, "torch": {}},
            "template": {
                **_jobset_metadata(workload),
                "spec": {
                    **_run_limits(workload),
                    "replicatedJobs": [
                        {
                            "name": frameworks.TRAINJOB_NODE,
                            "template": {
                                "metadata": {"labels": labels | ANCESTOR_LABEL},
                                # As a JobSet's (runtimes.render_jobset): a
                                # replacement pod cannot join torchrun's static
                                # rendezvous, so the gang restarts as a whole.
                                "spec": {
                                    "backoffLimit": 0,
                                    "podFailurePolicy": disruption.child_job_pod_failure_policy(
                                        workload, frameworks.TRAINJOB_NODE
                                    ),
                                    "template": {
                                        "metadata": pod_metadata(labels, workload),
                                        "spec": pod_spec,
                                    },
                                },
                            },
                        }
                    ],
                },
            },
        },
    }


def _run_limits(workload: model.Workload) -> dict[str, Any]:
    """Restarts of the whole run and the TTL, on the JobSet the runtime describes."""
    limits: dict[str, Any] = {"failurePolicy": disruption.jobset_failure_policy(workload)}
    if workload.ttl_seconds_after_finished is not None:
        limits["ttlSecondsAfterFinished"] = workload.ttl_seconds_after_finished
    return limits


def _jobset_metadata(workload: model.Workload) -> dict[str, Any]:
    """What the runtime puts on the JobSet it makes: Trainer v2.3.0 copies the runtime's
    `spec.template.metadata` annotations to the JobSet (pkg/runtime/core/trainingruntime.go
    newRuntimeInfo; plugins/jobset/jobset.go), where JobSet reads exclusive placement."""
    annotations = topology.object_annotations(workload)
    return {"metadata": {"annotations": annotations}} if annotations else {}
