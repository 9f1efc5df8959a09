"""The object that runs a workload's pods, for each runtime a workload can choose.

- `job`: an Indexed Job (workloads.render_job), with the headless Service we render.
- `jobset`: a JobSet of one replicated job per role (workers; for TensorFlow with
  parameter servers a chief, the workers and the parameter servers), each an Indexed
  Job; JobSet creates the headless Service itself (`network.subdomain`), so pods are
  `<name>-<role>-0-<index>.<name>`.
- `pytorchjob`, `tfjob`: the Kubeflow Training Operator's jobs. The operator creates a
  Service per pod and sets the wiring itself (PET_* for torchrun, TF_CONFIG),
  in the container it expects by name (`pytorch`, `tensorflow`) on the port it looks for
  by name (`pytorchjob-port`, `tfjob-port`).
- `trainjob`: a Kubeflow Trainer TrainJob that names a ClusterTrainingRuntime (its own,
  see training_runtimes); the runtime's JobSet starts the pods.

Every pod keeps what the base guarantees: Pod Security "restricted", requests equal to
limits, the checkpoint and shared-memory volumes. `pod_selector` gives the labels the
runtime's controller puts on every pod of the workload; the NetworkPolicies select on
them, because that is what still holds whatever the operator does with template labels.
"""

from __future__ import annotations

from typing import Any

from generator.config import model
from generator.render import disruption, frameworks, topology
from generator.render.labels import QUEUE_LABEL, workload_labels, workload_selector
from generator.render.objects import Manifest, metadata
from generator.render.pods import (
    CONTAINER_NAME,
    pod_metadata,
    policy_annotations,
    render_pod_spec,
    render_resources,
    render_trainer_container,
    selection_labels,
    user_env,
)

KUBEFLOW_API = "kubeflow.org/v1"
# Kueue orders a queued workload by the WorkloadPriorityClass this label names on the
# object it admits (kueue v0.17.6 pkg/constants `WorkloadPriorityClassLabel`).
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
# Pods deleted when a Kubeflow job ends. An elastic PyTorchJob succeeds as soon as one
# worker does, so deleting the running ones could cut off ranks still writing a
# checkpoint: none are deleted. A TFJob ends with its chief; its parameter servers
# never exit on their own, so the running pods go.
DEFAULT_CLEAN_POD_POLICY = {"pytorchjob": "None", "tfjob": "Running"}

# The label each controller puts on every pod it creates, naming the workload:
# - Training Operator v1: `training.kubeflow.org/job-name`;
# - JobSet (and TrainJob, which runs as a JobSet of the same name):
#   `jobset.sigs.k8s.io/jobset-name`.
# The Job controller copies the template's labels, so a plain Job's pods are selected by
# the workload's own name label.
POD_NAME_LABELS = {
    "pytorchjob": "training.kubeflow.org/job-name",
    "tfjob": "training.kubeflow.org/job-name",
    "jobset": "jobset.sigs.k8s.io/jobset-name",
    "trainjob": "jobset.sigs.k8s.io/jobset-name",
}


def pod_selector(workload: model.Workload) -> dict[str, str]:
    """Labels on every pod of this workload, whichever controller created it."""
    if workload.runtime == "job":
        return workload_selector(workload)
    return {POD_NAME_LABELS[workload.runtime]: workload.name}


def has_own_service(workload: model.Workload) -> bool:
    """Only a plain Job needs our headless Service; the others create their own."""
    return workload.runtime == "job"


def render_training_object(config: model.Config, workload: model.Workload) -> Manifest:
    renderers = {
        "job": render_job,
        "jobset": render_jobset,
        "pytorchjob": render_pytorchjob,
        "tfjob": render_tfjob,
        "trainjob": render_trainjob,
    }
    return renderers[workload.runtime](config, workload)


def _object_metadata(config: model.Config, workload: model.Workload) -> dict[str, Any]:
    labels = {**workload_labels(config, workload), **selection_labels(workload)}
    if workload.queue:
        labels[QUEUE_LABEL] = workload.queue
        if workload.priority:
            labels[PRIORITY_LABEL] = workload.priority
    meta = metadata(workload.name, labels, workload.namespace)
    meta["annotations"] = (
        replace_when_changed(config, workload)
        | policy_annotations(config, workload)
        | topology.object_annotations(workload)
    )
    return meta


def replace_when_changed(config: model.Config, workload: model.Workload) -> dict[str, str]:
    """A started run cannot take a new pod template (a Job's is immutable): a changed spec
    means a new run, so the engine deletes and recreates the object, and only this one.

    - Argo CD: `Force=true,Replace=true` on the object; its Application syncs only what is
      out of sync (`ApplyOutOfSyncOnly=true`, see gitops.argocd), so an unchanged run is
      never replaced.
    - Flux: `kustomize.toolkit.fluxcd.io/force: enabled` on the object alone (Flux
      recreates it only when applying it fails on an immutable field; an unchanged object
      applies as a no-op), never the Kustomization's `force`, which would also recreate
      a checkpoint claim whose immutable spec changed, deleting the checkpoints.
    - A queued workload on Flux is created once and left alone
      (`kustomize.toolkit.fluxcd.io/ssa: IfNotPresent`): Kueue admits it by setting
      `suspend: false`, which the next apply must not undo.
    """
    if config.gitops == "argocd":
        return {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}
    if workload.queue:
        return {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    return {"kustomize.toolkit.fluxcd.io/force": "enabled"}


def _training_object(
    config: model.Config, workload: model.Workload, api: str, kind: str, spec: Any
) -> Manifest:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": _object_metadata(config, workload),
        "spec": spec,
    }


def _pod_template(config: model.Config, workload: model.Workload, container: Any) -> Manifest:
    return {
        "metadata": pod_metadata(workload_labels(config, workload), workload),
        "spec": render_pod_spec(workload, container),
    }


def render_job(config: model.Config, workload: model.Workload) -> Manifest:
    """An Indexed Job: pod i is rank i. One failed pod fails the job (backoffLimit 0), since
    a static rendezvous cannot take a replacement in, unless it was disrupted or its exit
    code means a bug (disruption.job_pod_failure_policy). The per-index limit is the same
    0; it is there because only with it does the Job controller count the replacements
    of an index in the pod's annotations (disruption.JOB_IGNORED_FAILURES), which the
    pods read as their restart number.

    With parameter servers, index 0 is the chief (frameworks.pod_roles), the coordinator
    that runs the training and exits when it is done; workers and parameter servers only
    serve and never exit. So the success policy ends the Job when index 0 has succeeded,
    and the Job controller then stops the other pods (successPolicy: on by default since
    Kubernetes 1.31, GA in 1.33)."""
    labels = workload_labels(config, workload)
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": workload.pod_count,
        "parallelism": workload.pod_count,
        "backoffLimit": 0,
        "backoffLimitPerIndex": 0,
        "podFailurePolicy": disruption.job_pod_failure_policy(workload, CONTAINER_NAME),
    }
    if workload.parameter_servers:
        chief = frameworks.first_index(workload, "chief")
        spec["successPolicy"] = {"rules": [{"succeededIndexes": str(chief)}]}
    if workload.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = workload.ttl_seconds_after_finished
    if workload.queue:
        spec["suspend"] = True  # Kueue admits it by setting this to false
    spec["template"] = {
        "metadata": pod_metadata(labels, workload),
        "spec": render_pod_spec(workload, render_trainer_container(workload), workload.name),
    }
    return _training_object(config, workload, "batch/v1", "Job", spec)


def render_jobset(config: model.Config, workload: model.Workload) -> Manifest:
    """One replicated job per role (frameworks.pod_roles), restarted as a whole: after a
    disruption always, after another failure up to maxRestarts, after a bug never
    (disruption.jobset_failure_policy). The run succeeds when the pods that finish
    have: every worker, or with parameter servers the chief alone, since the workers
    and parameter servers it drives only serve and never exit; JobSet then deletes
    their Jobs."""
    roles = frameworks.pod_roles(workload)
    replicated_jobs = []
    for role, count in roles:
        container = render_trainer_container(workload, frameworks.launch(workload, role))
        replicated_jobs.append(
            {
                "name": role,
                "replicas": 1,
                "template": {
                    "metadata": {"labels": workload_labels(config, workload)},
                    "spec": {
                        "completionMode": "Indexed",
                        "completions": count,
                        "parallelism": count,
                        "backoffLimit": 0,
                        "podFailurePolicy": disruption.child_job_pod_failure_policy(
                            workload, CONTAINER_NAME
                        ),
                        "template": _pod_template(config, workload, container),
                    },
                },
            }
        )
    spec: dict[str, Any] = {
        "network": {
            "enableDNSHostnames": True,
            "subdomain": workload.name,
            "publishNotReadyAddresses": True,
        },
        "successPolicy": {"operator": "All", "targetReplicatedJobs": [_finishing_role(workload)]},
        "failurePolicy": disruption.jobset_failure_policy(workload),
    }
    if workload.queue:
        spec["suspend"] = True
    if workload.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = workload.ttl_seconds_after_finished
    spec["replicatedJobs"] = replicated_jobs
    return _training_object(config, workload, JOBSET_API, "JobSet", spec)


def _finishing_role(workload: model.Workload) -> frameworks.Role:
    """The role whose pods exit when the training is done: the chief, if there is one."""
    return "chief" if workload.parameter_servers else "worker"


def _run_policy(workload: model.Workload) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "cleanPodPolicy": workload.clean_pod_policy or DEFAULT_CLEAN_POD_POLICY[workload.runtime],
        "backoffLimit": workload.max_restarts,
    }
    if workload.ttl_seconds_after_finished is not None:
        policy["ttlSecondsAfterFinished"] = workload.ttl_seconds_after_finished
    if workload.queue:
        policy["suspend"] = True
    return policy


def _replica(
    config: model.Config, workload: model.Workload, count: int, container: Any
) -> Manifest:
    """A replica spec: failed pods are recreated only when the job may restart at all
    (disruption.kubeflow_restart_policy). The pod template says what the operator gives
    the pods: the replica's policy, `Never` for `ExitCode` (pkg/core/pod.go
    `SetRestartPolicy`)."""
    restart_policy = disruption.kubeflow_restart_policy(workload)
    template = _pod_template(config, workload, container)
    template["spec"]["restartPolicy"] = "Never" if restart_policy == "ExitCode" else restart_policy
    return {"replicas": count, "restartPolicy": restart_policy, "template": template}


def render_pytorchjob(config: model.Config, workload: model.Workload) -> Manifest:
    """Workers only, with a c10d rendezvous on worker 0 between the elastic bounds (both
    equal to `workers` unless the config lets them vary). With a Master replica the
    operator would add an `init-pytorch` container without a security context to every
    worker, which Pod Security "restricted" refuses; without one it sets PET_NNODES,
    PET_NPROC_PER_NODE and PET_RDZV_* for torchrun to read."""
    container = render_trainer_container(
        workload, frameworks.kubeflow_torchrun(workload), frameworks.PYTORCHJOB_CONTAINER
    )
    elastic = workload.elastic or model.ElasticPolicy(workload.workers, workload.workers)
    spec: dict[str, Any] = {
        "runPolicy": _run_policy(workload),
        "elasticPolicy": {
            "minReplicas": elastic.min_replicas,
            "maxReplicas": elastic.max_replicas,
            "rdzvBackend": "c10d",
            "rdzvPort": workload.rendezvous_port,
            "maxRestarts": workload.max_restarts,
        },
        "nprocPerNode": str(frameworks.processes_per_node(workload)),
        "pytorchReplicaSpecs": {"Worker": _replica(config, workload, workload.workers, container)},
    }
    return _training_object(config, workload, KUBEFLOW_API, "PyTorchJob", spec)


def render_tfjob(config: model.Config, workload: model.Workload) -> Manifest:
    """A Chief, Workers and parameter servers; the operator writes TF_CONFIG for each pod,
    so the container runs the program as it is, and the TFJob succeeds when its Chief
    has (Training Operator v1.9 tensorflow controller, `UpdateJobStatus`).

    With parameter servers the pods are those of the other runtimes (pod_roles): the
    Chief is the coordinator, one pod more than the `workers` that compute. Without them
    every pod trains (MultiWorkerMirroredStrategy) and the Chief is worker 0 of
    `workers`, as TensorFlow counts a chief among the workers there."""
    container = render_trainer_container(
        workload, frameworks.kubeflow_tensorflow(workload), frameworks.TFJOB_CONTAINER
    )
    replicas = {"Chief": _replica(config, workload, 1, container)}
    workers = workload.workers if workload.parameter_servers else workload.workers - 1
    if workers:
        replicas["Worker"] = _replica(config, workload, workers, container)
    if workload.parameter_servers:
        replicas["PS"] = _replica(config, workload, workload.parameter_servers, container)
    return _training_object(
        config,
        workload,
        KUBEFLOW_API,
        "TFJob",
        {"runPolicy": _run_policy(workload), "tfReplicaSpecs": replicas},
    )


def render_trainjob(config: model.Config, workload: model.Workload) -> Manifest:
    """The runtime by name (the workload's own, see training_runtimes), the image, the
    program, the nodes, processes per node and their resources.

    Processes per node belong on the TrainJob: Trainer v2.3.0 removed
    `mlPolicy.torch.numProcPerNode` from the runtime (kubeflow/trainer#3239), and its
    torch plugin (pkg/runtime/framework/plugins/torch/torch.go) takes
    `spec.trainer.numProcPerNode`, else "auto", which on CPU nodes means one process per
    CPU. One process per GPU, or one on CPU, is what the other runtimes run too."""
    trainer: dict[str, Any] = {
        "image": workload.image,
        "command": frameworks.trainjob_command(workload),
        "numNodes": workload.workers,
        "numProcPerNode": frameworks.processes_per_node(workload),
        "resourcesPerNode": render_resources(workload.resources),
    }
    if workload.env:
        trainer["env"] = user_env(workload)
    spec: dict[str, Any] = {"runtimeRef": {"name": training_runtime_name(config, workload)}}
    if workload.queue:
        spec["suspend"] = True
    spec["trainer"] = trainer
    return _training_object(config, workload, TRAINER_API, "TrainJob", spec)


def training_runtime_name(config: model.Config, workload: model.Workload) -> str:
    """The ClusterTrainingRuntime a TrainJob names: the one given, or its own
    (cluster-wide, hence the platform prefix)."""
    return workload.training_runtime or f"{config.name}-{workload.name}"


# Where each runtime keeps its pod specs (a TrainJob's are in its runtime).
POD_SPEC_PATHS: dict[str, list[tuple[str, ...]]] = {
    "Job": [("spec", "template", "spec")],
    "JobSet": [("spec", "replicatedJobs", "*", "template", "spec", "template", "spec")],
    "PyTorchJob": [("spec", "pytorchReplicaSpecs", "*", "template", "spec")],
    "TFJob": [("spec", "tfReplicaSpecs", "*", "template", "spec")],
    "TrainJob": [],
}


def pod_specs(obj: Manifest) -> list[dict[str, Any]]:
    """Every pod spec inside a training object, in document order."""
    found: list[dict[str, Any]] = []
    for path in POD_SPEC_PATHS[obj["kind"]]:
        nodes: list[Any] = [obj]
        for key in path:
            if key == "*":
                nodes = [v for n in nodes for v in (n.values() if isinstance(n, dict) else n)]
            else:
                nodes = [n[key] for n in nodes if key in n]
        found += nodes
    return found


def add_to_pods(obj: Manifest, addition: dict[str, Any]) -> None:
    """Merge pod spec fields (affinity, tolerations) into every pod of a training object."""
    for spec in pod_specs(obj):
        add_to_pod_spec(spec, addition)


def add_to_pod_spec(spec: dict[str, Any], addition: dict[str, Any]) -> None:
    for key, value in addition.items():
        if isinstance(value, dict):
            spec[key] = _merged(spec.get(key, {}), value)
        elif isinstance(value, list):
            spec[key] = [*spec.get(key, []), *value]
        else:
            spec[key] = value


def _merged(into: dict[str, Any], addition: dict[str, Any]) -> dict[str, Any]:
    result = dict(into)
    for key, value in addition.items():
        both_maps = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = _merged(result[key], value) if both_maps else value
    return result
