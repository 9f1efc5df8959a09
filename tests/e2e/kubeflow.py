"""The Kubeflow Training Operator (v1.9.4) for the end-to-end harness.

What the operator creates from a PyTorchJob or TFJob (its defaults, the pods with their
names, labels and injected environment, one headless Service per pod) is the product's
model, generator/cluster/controllers.py, re-exported here under the harness's names. What
stays here is when a PyTorchJob has finished, which only a run needs:

- status (pkg/controller.v1/pytorch/pytorchjob_controller.go, `UpdateJobStatus`): without
  a Master the job succeeds when every Worker has, or with an elastic policy as soon as
  one has; a failed pod whose replica may not restart (`Never`) fails it.

Restarts of failed pods (any restart policy but `Never`) and a Master replica are not
modelled by the status: a run refuses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import kube

from generator.cluster.controllers import (
    JOB_ROLE_LABEL,
    KUBEFLOW_JOB_NAME_LABEL,
    OPERATOR_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
)
from generator.cluster.controllers import kubeflow_defaulted as defaulted
from generator.cluster.controllers import kubeflow_operator_labels as operator_labels
from generator.cluster.controllers import kubeflow_pod_name as pod_name
from generator.cluster.controllers import kubeflow_pods as pods
from generator.cluster.controllers import kubeflow_services as services
from generator.cluster.controllers import pytorch_env as injected_env

JOB_NAME_LABEL = KUBEFLOW_JOB_NAME_LABEL

__all__ = [
    "JOB_NAME_LABEL",
    "JOB_ROLE_LABEL",
    "OPERATOR_NAME_LABEL",
    "REPLICA_INDEX_LABEL",
    "REPLICA_TYPE_LABEL",
    "defaulted",
    "injected_env",
    "operator_labels",
    "pod_name",
    "pods",
    "services",
    "status",
]


def status(
    pytorchjob: kube.Manifest, all_pods: Sequence[kube.Pod], exits: Sequence[int | None]
) -> str | None:
    """`Succeeded` or `Failed` once the pods have exited as `exits` say (None: running);
    None while the job runs."""
    job = defaulted(pytorchjob)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert "Master" not in replicas, "the status of a job with a Master is not modelled"
    workers = replicas["Worker"]
    assert workers["restartPolicy"] == "Never", "pod restarts are not modelled"
    succeeded = sum(1 for code in exits if code == 0)
    failed = sum(1 for code in exits if code not in (None, 0))
    running = sum(1 for code in exits if code is None)
    outcome = None
    if succeeded == int(workers["replicas"]) or (job["spec"].get("elasticPolicy") and succeeded):
        outcome = "Succeeded"
    if failed and int(workers["replicas"]) > succeeded + running:
        outcome = "Failed"  # set after the success check, as UpdateJobStatus does
    return outcome
