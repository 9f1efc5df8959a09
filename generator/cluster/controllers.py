"""What each controller makes of a training object mlgitops syncs: the pods it creates
and the Services it adds, before anything is scheduled. Pure: no I/O, no clock, no
randomness, and the objects passed in are never changed.

- `pod_groups(obj, runtimes)`: what placement needs. One `PodGroup` per pod template, with
  how many of its pods run at once and the pod spec they get (after the webhooks'
  defaults, with the environment the controller injects): pods of one group differ only
  in what the controller sets per pod (name, hostname, index, per-pod environment
  values), never in scheduling fields.
- `pods(obj, runtimes)`: every pod, one by one, with what is set per pod; the end-to-end
  harness (tests/e2e) runs each as a process.
- `services(obj, runtimes)`: the Services the controller creates (cluster DNS for pods).

Each controller is modelled on its source at the version the project installs
(generator/operator_facts.py), not on this project's generator.

**Job controller** (kubernetes/kubernetes, batch/v1, Kubernetes 1.31 to 1.36):

- the API server labels the pod template of every Job it stores `job-name` and
  `batch.kubernetes.io/job-name: <job>` (and the controller UIDs)
  (pkg/registry/batch/job/strategy.go, `generateSelector`);
- `parallelism` defaults to 1; the controller keeps `min(parallelism, completions)` pods
  running (all `parallelism` when `completions` is unset) (pkg/controller/job/
  job_controller.go, `manageJob`);
- an Indexed Job's pod for index `i` gets the annotation and (PodIndexLabel, on since
  1.28) the label `batch.kubernetes.io/job-completion-index: i`, the hostname
  `<job>-<i>`, the name `<job>-<i>-<5 random characters>`, and `JOB_COMPLETION_INDEX`,
  a downward-API reference to that annotation, appended to every init container and
  container that does not already define it (pkg/controller/job/indexed_job_utils.go,
  `addCompletionIndexEnvVariables`, `addCompletionIndexAnnotation`,
  `addCompletionIndexLabel`); the lowest pending indexes run first;
- a NonIndexed Job's pods are named `<job>-<5 random characters>` (generateName), which
  the kubelet makes their hostname;
- a Job whose `spec.managedBy` names another controller gets no pods from this one.

**JobSet v0.12.0** (kubernetes-sigs/jobset):

- the webhook's defaults (pkg/webhooks/jobset_webhook.go, `Default`): success policy
  `All`, `completionMode: Indexed`, pod `restartPolicy: OnFailure`, in `network`
  `enableDNSHostnames: true` and `publishNotReadyAddresses: true`; the CRD's defaults
  `replicas: 1` and `groupName: default` (api/jobset/v1alpha2/jobset_types.go);
- `constructJob` and `labelAndAnnotateObject` (pkg/controllers/jobset_controller.go): one
  Job per replica of each replicated job, named `<jobset>-<replicated job>-<job index>`
  (placement.GenJobName); the Job and its pod template keep their template's labels and
  annotations and get, as labels and as annotations, `jobset.sigs.k8s.io/jobset-name`,
  `replicatedjob-name`, `restart-attempt` (0: the first run), `replicatedjob-replicas`,
  `global-replicas`, `job-index`, `job-key` (SHA-1 of `<namespace>/<job>`),
  `job-global-index`, `group-name`, `group-replicas`, `job-group-index`, and
  `coordinator` when the JobSet names one (`job-restart-attempt` only with the
  RestartJob feature gate, off by default: pkg/features/features.go); the exclusive
  placement annotations go on as annotations; with DNS hostnames the pod template's
  `subdomain` becomes `GetSubdomain` (`network.subdomain`, else the JobSet's name); the
  Jobs are suspended with the JobSet; the nodeSelector strategy of exclusive placement
  adds a node selector `alpha.jobset.sigs.k8s.io/namespaced-job: <ns>_<job>` and a
  toleration of `alpha.jobset.sigs.k8s.io/no-schedule`; `volumeClaimPolicies` add a
  PVC volume `<template>-<jobset>` to each Job that mounts it (volume_claim_policy.go);
- `createHeadlessSvcIfNecessary`: one headless Service named like that subdomain,
  selecting `jobset.sigs.k8s.io/jobset-name: <jobset>`, publishing not-ready addresses as
  configured;
- the pod webhook (pkg/webhooks/pod_webhook.go, `Default`; every pod labelled with a
  JobSet's name): the label `jobset.sigs.k8s.io/priority` with the pod's priority, and for
  exclusive placement (`alpha.jobset.sigs.k8s.io/exclusive-topology`) a required pod
  affinity to its own Job's pods and anti-affinity to other Jobs' pods of that priority
  on the topology (`setExclusiveAffinities`);
- the Job controller then creates the pods of each Job (above): pod `i` of Job
  `<jobset>-<rjob>-<j>` has the hostname `<jobset>-<rjob>-<j>-<i>`;
- a JobSet whose `spec.managedBy` names another controller gets no Jobs.

**Training Operator v1.9.4** (kubeflow/trainer at tag v1.9.4), PyTorchJob and TFJob:

- defaults (pkg/apis/kubeflow.org/v1/pytorch_defaults.go `SetDefaults_PyTorchJob`,
  tensorflow_defaults.go `SetDefaults_TFJob`, defaulting_utils.go): replica types in
  camel case, `replicas: 1`, restart policy `OnFailure` (PyTorch) or `Never` (TF), and a
  port on the container named `pytorch`/`tensorflow` (else the first container) when it
  has none of that name: `pytorchjob-port` 23456, `tfjob-port` 2222; the PyTorchJob's
  elastic bounds default to each other, or to the Worker replicas, and `nprocPerNode` to
  `auto` unless `elasticPolicy.nProcPerNode` is set;
- pods (pkg/controller.v1/common/pod.go, `ReconcilePods` and `createNewPod`): pod `i` of
  a replica type is named `<job>-<type lower case>-<i>` (common/util.go,
  `GenGeneralName`; the kubelet makes that its hostname), keeps the template's labels and
  gets `training.kubeflow.org/operator-name` (`pytorchjob-controller`, `tfjob-controller`),
  `job-name`, `replica-type` (lower case), `replica-index`, and `job-role: master` on the
  master role (`IsMasterRole`: the Master (PyTorch) or Chief/Master (TF) replica, else
  Worker 0); the replica's restart policy becomes the pod's (`ExitCode`: `Never`,
  pkg/core/pod.go `SetRestartPolicy`);
- PyTorch environment (pkg/controller.v1/pytorch/envvar.go `setPodEnv`, master.go,
  elastic.go), appended to every container: `PYTHONUNBUFFERED=1`; with a Master replica
  `MASTER_PORT`, `PET_MASTER_PORT`, `MASTER_ADDR`, `PET_MASTER_ADDR` (`<job>-master-0`),
  `WORLD_SIZE` (all replicas x nprocPerNode, 1 unless a number), `RANK` and
  `PET_NODE_RANK` (the index, plus 1 on Workers); `PET_NPROC_PER_NODE` from
  `nprocPerNode`; with an elastic policy `PET_RDZV_ENDPOINT=<rdzvHost or
  <job>-worker-0>:<rdzvPort or the Worker's pytorchjob-port>`, `PET_RDZV_BACKEND`
  (default c10d), `PET_NNODES=<min>:<max>`, then, only when set, `PET_MAX_RESTARTS`,
  `PET_NPROC_PER_NODE`, `PET_RDZV_ID`, `PET_RDZV_CONF`, `PET_STANDALONE`; without one
  `PET_NNODES=<all replicas>`. With a Master, every Worker gets the init container
  `init-pytorch` (alpine:3.10, 50m CPU/10Mi requested, 100m/20Mi limits) that waits for
  the Master's name (initcontainer.go, pkg/config/config.go defaults);
- TF environment (pkg/controller.v1/tensorflow/tfjob_controller.go `SetClusterSpec`,
  tensorflow.go `genTFConfigJSONStr`, util.go `isDistributed`): unless the job has one
  pod in all, `TF_CONFIG` appended to the first container named `tensorflow`: JSON
  (Go's `encoding/json`: compact, map keys sorted) `{"cluster": {<type>:
  ["<job>-<type>-<i>.<ns>.svc:<port>", ...]}, "task": {"type", "index"}, "environment":
  "cloud"}`, or with `enableDynamicWorker` the sparse form `{"cluster": {"worker":
  {"<i>": ...}, "ps": [...]}, "task": ...}`; the port is the type's `tfjob-port` on the
  `tensorflow` container, else 2222;
- Services (common/service.go `CreateNewService`, pkg/core/service.go
  `GetPortsFromJob`): one headless Service per pod, named like it, selecting the
  operator's labels of that pod (type and index), with the ports of the default
  container; it does not publish not-ready addresses;
- a job whose `runPolicy.managedBy` is not `kubeflow.org/training-operator` (e.g.
  MultiKueue) gets no pods.

**Trainer v2.3.0 TrainJob** (kubeflow/trainer at tag v2.3.0): the TrainJob's runtime
(`runtimeRef`: kind `ClusterTrainingRuntime` by default, or a `TrainingRuntime` of the
TrainJob's namespace) is turned into a JobSet named after the TrainJob, which JobSet then
runs as above (`trainjob_jobset`):

- pkg/runtime/core/trainingruntime.go `newRuntimeInfo`: the runtime's
  `spec.template.metadata` labels and annotations (and those of `runtimePatches`) become
  the JobSet's, not the pods'; the TrainJob's own labels are not copied; each
  `runtimePatches[].trainingRuntimeSpec.template.spec` is strategically merged into the
  runtime's JobSet spec (replicated jobs by name, containers, init containers, volumes,
  env, image pull secrets and scheduling gates by name, volume mounts by mount path,
  maps merged, tolerations and other lists replaced); each replicated job's pod count is
  its `parallelism` (1), the trainer's (label `trainer.kubeflow.org/trainjob-ancestor-
  step: trainer`) `mlPolicy.numNodes` (1); `trainer.resourcesPerNode` is merged key by
  key into the `node` container's resources (pkg/util/trainingruntime,
  `MergeResourceRequirements`);
- the torch plugin (pkg/runtime/framework/plugins/torch/torch.go `EnforceMLPolicy`) or,
  without an ML policy framework, plainml (plugins/plainml): `trainer.numNodes` sets the
  trainer's count; `trainer.env` is upserted (by name, in place, else appended) into the
  `node` container; torch then upserts `PET_NNODES` (the count), `PET_NPROC_PER_NODE`
  (`numProcPerNode`, else `auto`, which without GPUs is the node's CPU count, at least
  1), `PET_NODE_RANK` (the completion index), `PET_MASTER_ADDR`
  (`<trainjob>-node-0-0.<trainjob>`) and `PET_MASTER_PORT` (29500), upserts the
  container port 29500 (replacing a port of that number or name), and writes the same
  variables into `envInjection` targets;
- the JobSet plugin (plugins/jobset/jobset.go `SyncParallelCount`, `Build`; builder.go
  `Initializer`, `Trainer`): every replicated job's `parallelism` and `completions` become
  its count; the initializer and trainer replicated jobs get `replicas: 1`; the `node`
  container gets `trainer.image`, `command`, `args`; initializer containers get
  `STORAGE_URI`, their env and secret; the JobSet is suspended with the TrainJob;
- a TrainJob whose `spec.managedBy` is not `trainer.kubeflow.org/trainjob-controller`
  gets no JobSet.

Not modelled, on purpose:

- values only the API server or the scheduler knows: UIDs (`controller-uid`,
  `jobset-uid` labels are left out: no selector mlgitops writes can name them), the random
  suffix of a Job's pod names (a fixed `e2e00`-style one stands for it), the priority of a
  pod with a `priorityClassName` (its JobSet priority label is then left out; without
  one it is 0, as when the cluster has no global default PriorityClass);
- time: suspended objects are modelled as resumed (Kueue's admission is the cluster
  model's admission module), elastic scaling, startup order (`dependsOn`,
  `startupPolicy`), and when a run finishes (the end-to-end harness keeps those status
  models: they are about runs, not about the objects a controller creates);
  what the controllers decide when pods fail is modelled as decisions on given pod
  ends (`job_outcome`, `jobset_outcome`, below), which the harness applies over time;
- what no installed controller is configured to do: gang scheduling (Training Operator
  flags, Trainer `podGroupPolicy`), Trainer's MPI, JAX, XGBoost and Flux policies and
  torchtune: those raise `NotModelled`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from generator.quantities import value

Manifest = dict[str, Any]

TRAINING_KINDS: frozenset[str] = frozenset({"Job", "JobSet", "PyTorchJob", "TFJob", "TrainJob"})
# The API group each training kind must have (an object without apiVersion is taken by kind).
_GROUPS = {
    "Job": "batch",
    "JobSet": "jobset.x-k8s.io",
    "PyTorchJob": "kubeflow.org",
    "TFJob": "kubeflow.org",
    "TrainJob": "trainer.kubeflow.org",
}


class MissingRuntime(Exception):
    """A TrainJob names a training runtime the cluster is not given: Trainer creates no
    JobSet, so no pods. `args[0]` (and `name`) is the runtime's name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class NotModelled(ValueError):
    """The object asks for controller behaviour this model does not follow (see the module
    docstring), so it cannot say which pods there would be."""


class ControllerRefuses(ValueError):
    """The controller itself would fail on this object and create no pods (e.g. a
    PyTorchJob whose `pytorch` container lacks the operator's port with a Master)."""


@dataclass(frozen=True)
class PodGroup:
    """Pods of one training object that share one pod template: they differ only in what
    the controller sets per pod (index, hostname, name), never in scheduling."""

    owner_kind: str  # "Job", "JobSet", "PyTorchJob", "TFJob", "TrainJob"
    owner: str  # the object's metadata.name
    namespace: str
    # replicated job name (JobSet/TrainJob), replica type lowercased (Kubeflow), "" for a Job
    role: str
    count: int  # how many pods of this template run at once
    # the labels every pod of the group carries (template's + the controller's own,
    # without per-pod ones such as the completion index)
    labels: dict[str, str]
    # the pod spec the controller creates (after webhook defaults, with the env it
    # injects; per-pod values, such as a rank, are the group's first pod's); scheduling
    # fields exactly as the pods get them
    spec: dict[str, Any]
    # the pod template's annotations (Kueue reads its topology request there)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    """One pod as its controller creates it, before it is scheduled."""

    job: str  # the Job that owns it (Job, JobSet, TrainJob), else the Kubeflow job
    namespace: str
    index: int  # completion index (Indexed Job), replica index (Kubeflow), else ordinal
    hostname: str
    subdomain: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    # A controller that names its pods itself (the Training Operator) sets this.
    pod_name: str | None = None
    role: str = ""  # as PodGroup.role
    owner_kind: str = "Job"  # the training object's kind
    owner: str = ""  # the training object's name (empty: the same as `job`)

    @property
    def name(self) -> str:
        """The Job controller's `<job>-<index>-<random suffix>` (a fixed suffix keeps runs
        comparable), unless the pod's controller chose the name."""
        return self.pod_name or f"{self.hostname}-e2e00"


def pod_groups(obj: Manifest, runtimes: Mapping[str, Manifest] | None = None) -> list[PodGroup]:
    """Every group of pods the controller of `obj` creates; [] for a kind that creates
    none. A TrainJob needs its (Cluster)TrainingRuntime, looked up in `runtimes` by name;
    a missing runtime raises MissingRuntime(name)."""
    kind = _training_kind(obj)
    if kind == "Job":
        group = _job_group(obj, "Job", _name(obj), "")
        return [group] if group else []
    if kind == "JobSet":
        return _jobset_groups(obj, "JobSet", _name(obj))
    if kind in _FRAMEWORKS:
        return _kubeflow_groups(obj)
    if kind == "TrainJob":
        jobset = _trainjob_jobset_or_none(obj, runtimes)
        return _jobset_groups(jobset, "TrainJob", _name(obj)) if jobset else []
    return []


def pods(obj: Manifest, runtimes: Mapping[str, Manifest] | None = None) -> list[Pod]:
    """Every pod, one by one, as the e2e harness needs them (names, hostnames, subdomain,
    per-pod labels/annotations and env), in the controller's order: Job by Job, index by
    index; Kubeflow replica type by replica type as the object lists them."""
    kind = _training_kind(obj)
    if kind == "Job":
        return job_pods(obj)
    if kind == "JobSet":
        return jobset_pods(obj)
    if kind in _FRAMEWORKS:
        return kubeflow_pods(obj)
    if kind == "TrainJob":
        jobset = _trainjob_jobset_or_none(obj, runtimes)
        if jobset is None:
            return []
        return [replace(p, owner_kind="TrainJob", owner=_name(obj)) for p in jobset_pods(jobset)]
    return []


def services(obj: Manifest, runtimes: Mapping[str, Manifest] | None = None) -> list[Manifest]:
    """The Services the controller of `obj` creates (a Job's: none)."""
    kind = _training_kind(obj)
    if kind == "JobSet":
        service = jobset_headless_service(obj)
        return [service] if service else []
    if kind in _FRAMEWORKS:
        return kubeflow_services(obj)
    if kind == "TrainJob":
        jobset = _trainjob_jobset_or_none(obj, runtimes)
        return services(jobset) if jobset else []
    return []


def _training_kind(obj: Manifest) -> str | None:
    kind = obj.get("kind")
    if kind not in TRAINING_KINDS:
        return None
    api_version = obj.get("apiVersion")
    if api_version is not None:
        group = str(api_version).rpartition("/")[0]
        if group != _GROUPS[str(kind)]:
            return None
    return str(kind)


def _name(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def _labels(meta: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((meta or {}).get("labels") or {}).items()}


def _annotations(meta: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((meta or {}).get("annotations") or {}).items()}


def _common_labels(label_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The labels all of `label_sets` carry with the same value."""
    common: dict[str, str] | None = None
    for labels in label_sets:
        if common is None:
            common = dict(labels)
        else:
            common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common or {}


def _upsert(items: list[Manifest], item: Manifest, same: Callable[[Manifest], bool]) -> None:
    """Trainer's `apply.upsert`: replace the first item `same` matches, else append."""
    for i, existing in enumerate(items):
        if same(existing):
            items[i] = item
            return
    items.append(item)


def _upsert_env(env: list[Manifest], variables: Iterable[Manifest]) -> None:
    """`apply.UpsertEnvVars`: by name, in place, else appended."""
    for variable in variables:
        names = [e.get("name") for e in env]
        if variable["name"] in names:
            env[names.index(variable["name"])] = copy.deepcopy(variable)
        else:
            env.append(copy.deepcopy(variable))


# --- batch/v1 Job ------------------------------------------------------------------------

JOB_CONTROLLER = "kubernetes.io/job-controller"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
COMPLETION_INDEX_FIELD = f"metadata.annotations['{COMPLETION_INDEX_KEY}']"
# The suffix standing for the random one of generateName (five characters).
POD_NAME_SUFFIX = "e2e00"


def job_is_indexed(job: Manifest) -> bool:
    return bool((job.get("spec") or {}).get("completionMode") == "Indexed")


def job_active_pods(job: Manifest) -> int:
    """How many pods the Job controller keeps running at once, from the start."""
    spec = job.get("spec") or {}
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    return parallelism if completions is None else min(parallelism, int(completions))


def _job_managed_here(job: Manifest) -> bool:
    return bool((job.get("spec") or {}).get("managedBy", JOB_CONTROLLER) == JOB_CONTROLLER)


def _job_pod_labels(job: Manifest) -> dict[str, str]:
    name = _name(job)
    template = (job.get("spec") or {}).get("template") or {}
    return {
        **_labels(template.get("metadata")),
        LEGACY_JOB_NAME_LABEL: name,
        JOB_NAME_LABEL: name,
    }


def _job_pod_spec(job: Manifest) -> dict[str, Any]:
    """The pod spec every pod of the Job gets (the completion index variable included)."""
    spec: dict[str, Any] = copy.deepcopy(((job.get("spec") or {}).get("template") or {})["spec"])
    if job_is_indexed(job):
        for key in ("initContainers", "containers"):
            if key in spec:
                spec[key] = [_with_completion_index(c) for c in spec[key]]
    return spec


def _with_completion_index(container: Manifest) -> Manifest:
    """The controller appends the variable unless the container already defines it."""
    env = list(container.get("env") or [])
    if all(e.get("name") != COMPLETION_INDEX_ENV for e in env):
        source = {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}
        env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": source})
    return {**container, "env": env}


def _job_group(job: Manifest, owner_kind: str, owner: str, role: str) -> PodGroup | None:
    count = job_active_pods(job)
    if count <= 0 or not _job_managed_here(job):
        return None
    labels = _job_pod_labels(job)
    annotations = _annotations(((job.get("spec") or {}).get("template") or {}).get("metadata"))
    spec = _job_pod_spec(job)
    labels, spec = _jobset_pod_webhook(labels, annotations, spec)
    return PodGroup(owner_kind, owner, _namespace(job), role, count, labels, spec, annotations)


def job_pods(job: Manifest, role: str = "", owner_kind: str = "Job", owner: str = "") -> list[Pod]:
    """The pods the Job controller starts: every index an Indexed Job runs at once (the
    lowest first), or `parallelism` pods of a NonIndexed one."""
    if not _job_managed_here(job):
        return []
    name, namespace = _name(job), _namespace(job)
    template_meta = ((job.get("spec") or {}).get("template") or {}).get("metadata")
    base_labels = _job_pod_labels(job)
    base_annotations = _annotations(template_meta)
    spec = _job_pod_spec(job)
    indexed = job_is_indexed(job)
    created = []
    per_index = (job.get("spec") or {}).get("backoffLimitPerIndex") is not None
    for index in range(job_active_pods(job)):
        marks = {COMPLETION_INDEX_KEY: str(index)} if indexed else {}
        labels = {**base_labels, **marks}
        annotations = {**base_annotations, **marks}
        if indexed and per_index:  # `addIndexFailureCountAnnotation`: always the count
            annotations[INDEX_FAILURES_KEY] = "0"
        labels, pod_spec = _jobset_pod_webhook(labels, annotations, copy.deepcopy(spec))
        pod_name = None if indexed else f"{name}-e2e{index:02d}"
        created.append(
            Pod(
                job=name,
                namespace=namespace,
                index=index,
                hostname=f"{name}-{index}" if indexed else str(pod_name),
                subdomain=pod_spec.get("subdomain"),
                labels=labels,
                annotations=annotations,
                spec=pod_spec,
                pod_name=pod_name,
                role=role,
                owner_kind=owner_kind,
                owner=owner or name,
            )
        )
    return created


def job_replacement_pod(job: Manifest, index: int, ignored_failures: int) -> Pod:
    """The pod the Job controller creates for `index` once its pod failed and the pod
    failure policy ignored that (`manageJob` with `podReplacementPolicy: Failed`, the
    default with a pod failure policy: the new pod comes only after the old one has
    failed). With `backoffLimitPerIndex` it counts the ignored failures of the index in
    an annotation (indexed_job_utils.go, `addIndexFailureCountAnnotation`: set only
    when above 0)."""
    pods = job_pods(job)
    assert job_is_indexed(job) and 0 <= index < len(pods), "an index the Job runs"
    pod = pods[index]
    if (job.get("spec") or {}).get("backoffLimitPerIndex") is None or not ignored_failures:
        return pod
    annotations = {**pod.annotations, INDEX_IGNORED_FAILURES_KEY: str(ignored_failures)}
    return replace(pod, annotations=annotations)


# The Job controller's decisions on failed pods (pkg/controller/job/job_controller.go,
# `trackJobStatusAndRemoveFinalizers`, and pod_failure_policy.go `matchPodFailurePolicy`):
# - a pod failure policy's rules are tried in order on each failed pod, the first that
#   matches decides: `Ignore` (not counted: the index gets a new pod), `FailJob` (the Job
#   fails, reason `PodFailurePolicy`, with a message naming the pod and the rule),
#   `Count`; no match counts. The controller looks for a FailJob match among all the
#   failed pods before it counts (`getFailJobMessage`), so the order pods failed in does
#   not matter to that;
# - counted failures beyond `backoffLimit` (default 6; the largest int32 with
#   `backoffLimitPerIndex`) fail the Job, reason `BackoffLimitExceeded`; with
#   `backoffLimitPerIndex`, more failed indexes than `maxFailedIndexes` fail it
#   (`MaxFailedIndexesExceeded`);
# - a pod failure policy needs the pods' `restartPolicy: Never` (the API refuses the
#   Job otherwise, pkg/apis/batch/validation);
# - onExitCodes match the first terminated container (of `containerName`, if named)
#   with a nonzero code In / NotIn the values; onPodConditions a condition of that type
#   and status (`DisruptionTarget`: the pod was evicted or preempted).
INDEX_FAILURES_KEY = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURES_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
DISRUPTION_TARGET = "DisruptionTarget"
DEFAULT_BACKOFF_LIMIT = 6
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class PodEnd:
    """How a pod ended: its (only) container's exit code, and whether the pod had the
    `DisruptionTarget` condition (evicted, preempted, its node drained)."""

    exit_code: int
    disrupted: bool = False


@dataclass(frozen=True)
class JobOutcome:
    """What the Job controller makes of its pods' ends: the failure reason if the Job
    fails (None: it runs on), the indexes whose failed pod it replaces, and the failure
    message (what a JobSet's failure policy matches)."""

    failed: str | None
    replace: tuple[int, ...] = ()
    message: str | None = None


def job_outcome(job: Manifest, ends: Sequence[PodEnd | None]) -> JobOutcome:
    """The Job's decision once its pods (`job_pods`, in index order) ended as `ends`
    say: None for a pod still running, exit code 0 for one that succeeded."""
    spec = job.get("spec") or {}
    pods = job_pods(job)
    assert len(ends) == len(pods), "one end (or None) per pod"
    policy = spec.get("podFailurePolicy")
    if policy is not None and spec["template"]["spec"].get("restartPolicy") != "Never":
        raise ControllerRefuses("a pod failure policy needs the pods' restartPolicy Never")
    failed = [(pod, end) for pod, end in zip(pods, ends, strict=True) if end and end.exit_code]
    matched = [(pod, end, _matching_rule(policy, pod, end)) for pod, end in failed]
    for pod, end, (index, rule) in matched:
        if rule and rule["action"] == "FailJob":
            return JobOutcome("PodFailurePolicy", message=_fail_job_message(pod, end, rule, index))
    ignored = tuple(
        pod.index for pod, _, (_, rule) in matched if rule and rule["action"] == "Ignore"
    )
    counted = [pod for pod, _, (_, rule) in matched if not rule or rule["action"] != "Ignore"]
    per_index = spec.get("backoffLimitPerIndex")
    default_limit = DEFAULT_BACKOFF_LIMIT if per_index is None else MAX_INT32
    if len(counted) > int(spec.get("backoffLimit", default_limit)):
        return JobOutcome(
            "BackoffLimitExceeded", message="Job has reached the specified backoff limit"
        )
    if per_index is not None:
        if int(per_index) != 0:
            raise NotModelled("retries of an index (backoffLimitPerIndex above 0)")
        most = spec.get("maxFailedIndexes")
        if most is not None and len(counted) > int(most):
            return JobOutcome(
                "MaxFailedIndexesExceeded",
                message="Job has exceeded the specified maximal number of failed indexes",
            )
    if counted:
        raise NotModelled("retries of failed pods within backoffLimit")
    return JobOutcome(None, replace=ignored)


def _matching_rule(policy: Manifest | None, pod: Pod, end: PodEnd) -> tuple[int, Manifest | None]:
    for index, rule in enumerate((policy or {}).get("rules") or []):
        if rule["action"] not in ("Ignore", "FailJob", "Count"):
            raise NotModelled(f"pod failure policy action {rule['action']}")
        codes = rule.get("onExitCodes")
        if codes is not None:
            container = pod.spec["containers"][0]["name"]
            named = codes.get("containerName")
            if named is None or named == container:
                inside = end.exit_code in codes["values"]
                if inside == (codes["operator"] == "In"):
                    return index, rule
            continue
        for pattern in rule.get("onPodConditions") or []:
            status = pattern.get("status", "True")
            if pattern["type"] == DISRUPTION_TARGET and status == "True" and end.disrupted:
                return index, rule
    return -1, None


def _fail_job_message(pod: Pod, end: PodEnd, rule: Manifest, index: int) -> str:
    """The failure message the Job controller writes for a FailJob match."""
    where = f"{pod.namespace}/{pod.name}"
    if rule.get("onExitCodes") is not None:
        container = pod.spec["containers"][0]["name"]
        return (
            f"Container {container} for pod {where} failed with exit code {end.exit_code} "
            f"matching FailJob rule at index {index}"
        )
    return f"Pod {where} has condition {DISRUPTION_TARGET} matching FailJob rule at index {index}"


# --- JobSet v0.12.0 ----------------------------------------------------------------------

JOBSET_CONTROLLER = "jobset.sigs.k8s.io/jobset-controller"
JOBSET_PREFIX = "jobset.sigs.k8s.io/"
JOBSET_NAME_KEY = JOBSET_PREFIX + "jobset-name"
REPLICATED_JOB_NAME_KEY = JOBSET_PREFIX + "replicatedjob-name"
REPLICATED_JOB_REPLICAS_KEY = JOBSET_PREFIX + "replicatedjob-replicas"
GLOBAL_REPLICAS_KEY = JOBSET_PREFIX + "global-replicas"
JOB_INDEX_KEY = JOBSET_PREFIX + "job-index"
JOB_GLOBAL_INDEX_KEY = JOBSET_PREFIX + "job-global-index"
JOB_KEY = JOBSET_PREFIX + "job-key"
RESTARTS_KEY = JOBSET_PREFIX + "restart-attempt"
GROUP_NAME_KEY = JOBSET_PREFIX + "group-name"
GROUP_REPLICAS_KEY = JOBSET_PREFIX + "group-replicas"
JOB_GROUP_INDEX_KEY = JOBSET_PREFIX + "job-group-index"
COORDINATOR_KEY = JOBSET_PREFIX + "coordinator"
PRIORITY_KEY = JOBSET_PREFIX + "priority"
EXCLUSIVE_KEY = "alpha.jobset.sigs.k8s.io/exclusive-topology"
NODE_SELECTOR_STRATEGY_KEY = "alpha.jobset.sigs.k8s.io/node-selector"
NAMESPACED_JOB_KEY = "alpha.jobset.sigs.k8s.io/namespaced-job"
NO_SCHEDULE_TAINT_KEY = "alpha.jobset.sigs.k8s.io/no-schedule"
DEFAULT_GROUP = "default"


def jobset_defaulted(jobset: Manifest) -> Manifest:
    """The JobSet as the API server stores it: the CRD's and the webhook's defaults."""
    js = copy.deepcopy(jobset)
    spec = js.setdefault("spec", {})
    spec.setdefault("successPolicy", {"operator": "All"})
    spec.setdefault("startupPolicy", {"startupPolicyOrder": "AnyOrder"})
    for rjob in spec.get("replicatedJobs") or []:
        rjob.setdefault("replicas", 1)
        rjob.setdefault("groupName", DEFAULT_GROUP)
        job_spec = rjob["template"].setdefault("spec", {})
        job_spec.setdefault("completionMode", "Indexed")
        pod_spec = job_spec["template"].setdefault("spec", {})
        if not pod_spec.get("restartPolicy"):
            pod_spec["restartPolicy"] = "OnFailure"
    network = spec.get("network") or {}
    network.setdefault("enableDNSHostnames", True)
    network.setdefault("publishNotReadyAddresses", True)
    spec["network"] = network
    return js


def jobset_subdomain(jobset: Manifest) -> str:
    network = (jobset.get("spec") or {}).get("network") or {}
    return str(network.get("subdomain") or _name(jobset))


def jobset_job_name(jobset: Manifest, replicated_job: str, job_index: int) -> str:
    return f"{_name(jobset)}-{replicated_job}-{job_index}"


def _jobset_managed_here(jobset: Manifest) -> bool:
    managed_by = (jobset.get("spec") or {}).get("managedBy", JOBSET_CONTROLLER)
    return bool(managed_by == JOBSET_CONTROLLER)


def jobset_child_jobs(jobset: Manifest, restarts: int = 0) -> list[Manifest]:
    """The Jobs of the JobSet's run number `restarts` (0: the first), in the order of its
    replicated jobs. A restart recreates every Job under the same name, labelled with
    the new number (`js.Status.Restarts`)."""
    if not _jobset_managed_here(jobset):
        return []
    js = jobset_defaulted(jobset)
    name, namespace = _name(js), _namespace(js)
    spec = js["spec"]
    rjobs = spec.get("replicatedJobs") or []
    global_replicas = sum(int(r["replicas"]) for r in rjobs)
    group_replicas: dict[str, int] = {}
    for rjob in rjobs:
        group_replicas[rjob["groupName"]] = group_replicas.get(rjob["groupName"], 0) + int(
            rjob["replicas"]
        )
    coordinator = spec.get("coordinator")
    js_annotations = _annotations(js.get("metadata"))
    jobs = []
    global_index = 0
    group_index: dict[str, int] = {}
    for rjob in rjobs:
        replicas, group = int(rjob["replicas"]), rjob["groupName"]
        template = rjob["template"]
        first_in_group = group_index.get(group, 0)
        for job_index in range(replicas):
            child = jobset_job_name(js, rjob["name"], job_index)
            marks = {
                JOBSET_NAME_KEY: name,
                REPLICATED_JOB_NAME_KEY: rjob["name"],
                RESTARTS_KEY: str(restarts),
                REPLICATED_JOB_REPLICAS_KEY: str(replicas),
                GLOBAL_REPLICAS_KEY: str(global_replicas),
                JOB_INDEX_KEY: str(job_index),
                JOB_KEY: hashlib.sha1(f"{namespace}/{child}".encode()).hexdigest(),
                JOB_GLOBAL_INDEX_KEY: str(global_index + job_index),
                GROUP_NAME_KEY: group,
                GROUP_REPLICAS_KEY: str(group_replicas[group]),
                JOB_GROUP_INDEX_KEY: str(first_in_group + job_index),
            }
            if coordinator:
                marks[COORDINATOR_KEY] = (
                    f"{name}-{coordinator['replicatedJob']}-{coordinator.get('jobIndex', 0)}"
                    f"-{coordinator.get('podIndex', 0)}.{jobset_subdomain(js)}"
                )
            exclusive = _exclusive_annotations(
                js_annotations, _annotations(template.get("metadata"))
            )
            job_spec = copy.deepcopy(template["spec"])
            meta: dict[str, Any] = {
                "name": child,
                "namespace": namespace,
                "labels": _labels(template.get("metadata")),
                "annotations": _annotations(template.get("metadata")),
            }
            _mark(meta, marks, exclusive)
            _mark(job_spec["template"].setdefault("metadata", {}), marks, exclusive)
            pod_spec = job_spec["template"]["spec"]
            if spec["network"]["enableDNSHostnames"]:
                pod_spec["subdomain"] = jobset_subdomain(js)
            if (
                EXCLUSIVE_KEY in meta["annotations"]
                and NODE_SELECTOR_STRATEGY_KEY in (meta["annotations"])
            ):
                selector = pod_spec.setdefault("nodeSelector", {})
                selector[NAMESPACED_JOB_KEY] = f"{namespace}_{child}"
                pod_spec.setdefault("tolerations", []).append(
                    {"key": NO_SCHEDULE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
                )
            job_spec["suspend"] = bool(spec.get("suspend", False))
            _add_claim_volumes(job_spec, js)
            jobs.append(
                {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}
            )
        global_index += replicas
        group_index[group] = first_in_group + replicas
    return jobs


def _exclusive_annotations(
    jobset_annotations: Mapping[str, str], rjob_annotations: Mapping[str, str]
) -> dict[str, str]:
    """Exclusive placement, from the JobSet, then overridden by the replicated job."""
    found: dict[str, str] = {}
    for source in (jobset_annotations, rjob_annotations):
        if EXCLUSIVE_KEY in source:
            found[EXCLUSIVE_KEY] = source[EXCLUSIVE_KEY]
            if NODE_SELECTOR_STRATEGY_KEY in source:
                found[NODE_SELECTOR_STRATEGY_KEY] = source[NODE_SELECTOR_STRATEGY_KEY]
    return found


def _mark(meta: dict[str, Any], marks: Mapping[str, str], exclusive: Mapping[str, str]) -> None:
    meta["labels"] = {**_labels(meta), **marks}
    meta["annotations"] = {**_annotations(meta), **marks, **exclusive}


def _add_claim_volumes(job_spec: dict[str, Any], jobset: Manifest) -> None:
    """`volumeClaimPolicies`: a PVC volume for each template a container mounts."""
    pod_spec = job_spec["template"]["spec"]
    mounted = {
        m.get("name")
        for key in ("containers", "initContainers")
        for c in pod_spec.get(key) or []
        for m in c.get("volumeMounts") or []
    }
    for policy in jobset["spec"].get("volumeClaimPolicies") or []:
        for template in policy.get("templates") or []:
            claim_name = (template.get("metadata") or {}).get("name", "")
            if claim_name in mounted:
                pod_spec.setdefault("volumes", []).append(
                    {
                        "name": claim_name,
                        "persistentVolumeClaim": {"claimName": f"{claim_name}-{_name(jobset)}"},
                    }
                )


def _jobset_pod_webhook(
    labels: dict[str, str], annotations: Mapping[str, str], spec: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """JobSet's pod webhook, for a pod annotated with its JobSet's name."""
    if JOBSET_NAME_KEY not in annotations or NODE_SELECTOR_STRATEGY_KEY in annotations:
        return labels, spec
    priority = None if spec.get("priorityClassName") else "0"
    if priority is not None:
        labels = {**labels, PRIORITY_KEY: priority}
    topology = annotations.get(EXCLUSIVE_KEY)
    if topology is None:
        return labels, spec
    if priority is None:
        raise NotModelled(
            "JobSet exclusive placement with a priorityClassName: the anti-affinity names "
            "the pod's priority, which only the cluster knows"
        )
    job_key = labels.get(JOB_KEY, "")
    affinity = spec.setdefault("affinity", {})
    same_job = {
        "labelSelector": {
            "matchExpressions": [{"key": JOB_KEY, "operator": "In", "values": [job_key]}]
        },
        "topologyKey": topology,
        "namespaceSelector": {},
    }
    other_jobs = {
        "labelSelector": {
            "matchExpressions": [
                {"key": JOB_KEY, "operator": "Exists"},
                {"key": JOB_KEY, "operator": "NotIn", "values": [job_key]},
                {"key": PRIORITY_KEY, "operator": "In", "values": [priority]},
            ]
        },
        "topologyKey": topology,
        "namespaceSelector": {},
    }
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    affinity.setdefault("podAffinity", {}).setdefault(required, []).append(same_job)
    affinity.setdefault("podAntiAffinity", {}).setdefault(required, []).append(other_jobs)
    return labels, spec


def jobset_headless_service(jobset: Manifest) -> Manifest | None:
    """The Service the controller creates for pod DNS names, if hostnames are enabled."""
    if not _jobset_managed_here(jobset):
        return None
    js = jobset_defaulted(jobset)
    network = js["spec"]["network"]
    if not network["enableDNSHostnames"]:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": jobset_subdomain(js), "namespace": _namespace(js)},
        "spec": {
            "clusterIP": "None",
            "selector": {JOBSET_NAME_KEY: _name(js)},
            "publishNotReadyAddresses": network["publishNotReadyAddresses"],
        },
    }


def jobset_pods(jobset: Manifest, restarts: int = 0) -> list[Pod]:
    """Every pod of the JobSet's Jobs (of its run number `restarts`), Job by Job."""
    name = _name(jobset)
    return [
        pod
        for job in jobset_child_jobs(jobset, restarts)
        for pod in job_pods(
            job,
            role=job["metadata"]["labels"][REPLICATED_JOB_NAME_KEY],
            owner_kind="JobSet",
            owner=name,
        )
    ]


# What the JobSet controller does when a child Job has failed (pkg/controllers/
# failure_policy.go, `executeFailurePolicy`):
# - without a failure policy the JobSet fails (reason `FailedJobs`);
# - else the rules are tried in order; a rule applies to a failed Job whose failure
#   reason is one of `onJobFailureReasons` and whose message matches one of
#   `onJobFailureMessagePatterns` (RE2; empty lists match anything), of one of the
#   `targetReplicatedJobs` (empty: all); the first rule that applies to any failed Job
#   (the earliest failed of those) decides, and no rule means `RestartJobSet`;
# - `FailJobSet` fails the set; `RestartJobSet` recreates every Job if the restarts that
#   count (`restartsCountTowardsMax`) are below `maxRestarts`, adding one to both counts,
#   else fails the set (`ReachedMaxRestarts`); `RestartJobSetAndIgnoreMaxRestarts`
#   recreates every Job and adds one to the restarts only (the restart-attempt label).
#   `RestartJob` and its variant need a feature gate that is off by default: not
#   modelled.


@dataclass(frozen=True)
class JobSetRestarts:
    """The JobSet's `status.restarts` (`total`: the run number) and
    `status.restartsCountTowardsMax` (`counted`)."""

    total: int
    counted: int


@dataclass(frozen=True)
class JobSetDecision:
    """The action the failure policy took and the restart counts after it. The set has
    failed when `action` is `FailJobSet`, `ReachedMaxRestarts` or `FailedJobs`."""

    action: str
    total: int
    counted: int

    @property
    def failed(self) -> bool:
        return self.action in ("FailJobSet", "ReachedMaxRestarts", "FailedJobs")


def jobset_outcome(
    jobset: Manifest,
    failed_jobs: Sequence[tuple[Manifest, JobOutcome]],
    restarts: JobSetRestarts,
) -> JobSetDecision:
    """What the JobSet does about its failed child Jobs (each with the Job controller's
    outcome, in the order they failed)."""
    failed = [(job, outcome) for job, outcome in failed_jobs if outcome.failed]
    assert failed, "the failure policy runs only once a child Job has failed"
    policy = (jobset.get("spec") or {}).get("failurePolicy")
    if policy is None:
        return JobSetDecision("FailedJobs", restarts.total, restarts.counted)
    action = "RestartJobSet"
    for rule in policy.get("rules") or []:
        if any(_rule_applies(rule, job, outcome) for job, outcome in failed):
            action = rule["action"]
            break
    if action in ("RestartJob", "RestartJobAndIgnoreMaxRestarts"):
        raise NotModelled(f"JobSet failure policy action {action} (a feature gate)")
    if action == "FailJobSet":
        return JobSetDecision(action, restarts.total, restarts.counted)
    if action == "RestartJobSetAndIgnoreMaxRestarts":
        return JobSetDecision(action, restarts.total + 1, restarts.counted)
    if restarts.counted >= int(policy.get("maxRestarts", 0)):
        return JobSetDecision("ReachedMaxRestarts", restarts.total, restarts.counted)
    return JobSetDecision(action, restarts.total + 1, restarts.counted + 1)


def _rule_applies(rule: Manifest, job: Manifest, outcome: JobOutcome) -> bool:
    reasons = rule.get("onJobFailureReasons") or []
    if reasons and outcome.failed not in reasons:
        return False
    patterns = rule.get("onJobFailureMessagePatterns") or []
    message = outcome.message or ""
    if patterns and not any(re.search(p, message) for p in patterns):
        return False
    targets = rule.get("targetReplicatedJobs") or []
    return not targets or _labels(job.get("metadata")).get(REPLICATED_JOB_NAME_KEY) in targets


def _jobset_groups(jobset: Manifest, owner_kind: str, owner: str) -> list[PodGroup]:
    """One group per replicated job; its Jobs' pods differ in scheduling only with
    exclusive placement, which then gives a group per Job."""
    groups: list[PodGroup] = []
    for job in jobset_child_jobs(jobset):
        role = job["metadata"]["labels"][REPLICATED_JOB_NAME_KEY]
        group = _job_group(job, owner_kind, owner, role)
        if group is None:
            continue
        same = next(
            (i for i, g in enumerate(groups) if g.role == role and g.spec == group.spec), None
        )
        if same is None:
            groups.append(group)
        else:
            groups[same] = replace(
                groups[same],
                count=groups[same].count + group.count,
                labels=_common_labels([groups[same].labels, group.labels]),
            )
    return groups


# --- Training Operator v1.9.4: PyTorchJob, TFJob ----------------------------------------

KUBEFLOW_CONTROLLER = "kubeflow.org/training-operator"
KUBEFLOW_PREFIX = "training.kubeflow.org/"
OPERATOR_NAME_LABEL = KUBEFLOW_PREFIX + "operator-name"
KUBEFLOW_JOB_NAME_LABEL = KUBEFLOW_PREFIX + "job-name"
REPLICA_TYPE_LABEL = KUBEFLOW_PREFIX + "replica-type"
REPLICA_INDEX_LABEL = KUBEFLOW_PREFIX + "replica-index"
JOB_ROLE_LABEL = KUBEFLOW_PREFIX + "job-role"
PYTORCH_INIT_IMAGE = "alpine:3.10"
PYTORCH_INIT_MAX_TRIES = 100


@dataclass(frozen=True)
class _Framework:
    replica_specs: str  # the spec field holding the replica specs
    replica_types: tuple[str, ...]  # camel case, as the defaulting spells them
    master_types: tuple[str, ...]  # replica types that have the master role when present
    container: str
    port_name: str
    default_port: int
    restart_policy: str
    controller: str


_FRAMEWORKS = {
    "PyTorchJob": _Framework(
        "pytorchReplicaSpecs",
        ("Master", "Worker"),
        ("Master",),
        "pytorch",
        "pytorchjob-port",
        23456,
        "OnFailure",
        "pytorchjob-controller",
    ),
    "TFJob": _Framework(
        "tfReplicaSpecs",
        ("PS", "Worker", "Chief", "Master", "Evaluator"),
        ("Chief", "Master"),
        "tensorflow",
        "tfjob-port",
        2222,
        "Never",
        "tfjob-controller",
    ),
}
PYTORCH = _FRAMEWORKS["PyTorchJob"]
TENSORFLOW = _FRAMEWORKS["TFJob"]


def _framework(job: Manifest) -> _Framework:
    return _FRAMEWORKS[str(job["kind"])]


def kubeflow_defaulted(job: Manifest) -> Manifest:
    """The PyTorchJob or TFJob as the operator's defaulting leaves it."""
    framework = _framework(job)
    defaulted = copy.deepcopy(job)
    spec = defaulted.setdefault("spec", {})
    replicas = spec.setdefault(framework.replica_specs, {})
    for key in list(replicas):
        camel = next((t for t in framework.replica_types if t.lower() == key.lower()), key)
        replicas[camel] = replicas.pop(key)
    for replica in replicas.values():
        replica.setdefault("replicas", 1)
        if not replica.get("restartPolicy"):
            replica["restartPolicy"] = framework.restart_policy
        containers = replica["template"]["spec"]["containers"]
        container = next((c for c in containers if c["name"] == framework.container), containers[0])
        ports = container.setdefault("ports", [])
        if all(p.get("name") != framework.port_name for p in ports):
            ports.append(
                {
                    "name": framework.port_name,
                    "containerPort": framework.default_port,
                    "protocol": "TCP",
                }
            )
    run_policy = spec.setdefault("runPolicy", {})
    run_policy.setdefault("cleanPodPolicy", "None")
    if framework is TENSORFLOW:
        spec.setdefault("successPolicy", "")
        return defaulted
    elastic = spec.get("elasticPolicy")
    if elastic is not None:
        low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
        if low is None and high is None:
            low = high = replicas["Worker"]["replicas"]
        elastic["minReplicas"] = high if low is None else low
        elastic["maxReplicas"] = low if high is None else high
    if elastic is None or elastic.get("nProcPerNode") is None:
        spec.setdefault("nprocPerNode", "auto")
    return defaulted


def kubeflow_pod_name(name: str, replica_type: str, index: int) -> str:
    return f"{name}-{replica_type.lower()}-{index}".replace("/", "-")


def kubeflow_operator_labels(
    name: str, replica_type: str, index: int, controller: str = PYTORCH.controller
) -> dict[str, str]:
    """The operator's labels of pod `index` of a replica type (its Service's selector)."""
    return {
        OPERATOR_NAME_LABEL: controller,
        KUBEFLOW_JOB_NAME_LABEL: name.replace("/", "-"),
        REPLICA_TYPE_LABEL: replica_type.lower(),
        REPLICA_INDEX_LABEL: str(index),
    }


def _is_master_role(
    framework: _Framework, replicas: Mapping[str, Any], rtype: str, index: int
) -> bool:
    if any(t in replicas for t in framework.master_types):
        return rtype in framework.master_types
    return rtype == "Worker" and index == 0


def _default_container_port(framework: _Framework, replica: Manifest) -> int | None:
    for container in replica["template"]["spec"]["containers"]:
        if container["name"] == framework.container:
            for port in container.get("ports") or []:
                if port.get("name") == framework.port_name:
                    return int(port["containerPort"])
    return None


def pytorch_env(
    pytorchjob: Manifest, replica_type: str = "Worker", index: int = 0
) -> list[Manifest]:
    """What `setPodEnv` appends to every container of pod `index` of `replica_type`."""
    job = kubeflow_defaulted(pytorchjob)
    spec = job["spec"]
    replicas = spec[PYTORCH.replica_specs]
    env: list[Manifest] = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    total = sum(int(r["replicas"]) for r in replicas.values())
    nproc = spec.get("nprocPerNode")
    if "Master" in replicas:
        port = _default_container_port(PYTORCH, replicas["Master"])
        if port is None:
            raise ControllerRefuses("the Master's pytorch container has no pytorchjob-port")
        address = kubeflow_pod_name(_name(job), "Master", 0)
        rank = index + 1 if replica_type == "Worker" else index
        written = str(nproc) if nproc is not None else ""
        per_node = int(written) if written.isascii() and written.isdigit() else 1
        env += [
            {"name": "MASTER_PORT", "value": str(port)},
            {"name": "PET_MASTER_PORT", "value": str(port)},
            {"name": "MASTER_ADDR", "value": address},
            {"name": "PET_MASTER_ADDR", "value": address},
            {"name": "WORLD_SIZE", "value": str(total * per_node)},
            {"name": "RANK", "value": str(rank)},
            {"name": "PET_NODE_RANK", "value": str(rank)},
        ]
    if nproc is not None:
        env.append({"name": "PET_NPROC_PER_NODE", "value": str(nproc)})
    elastic = spec.get("elasticPolicy")
    if elastic is None:
        return [*env, {"name": "PET_NNODES", "value": str(total)}]
    host = elastic.get("rdzvHost") or f"{_name(job)}-worker-0"
    port = elastic.get("rdzvPort")
    if port is None:
        port = (
            _default_container_port(PYTORCH, replicas["Worker"]) if "Worker" in replicas else None
        )
        if port is None:
            raise ControllerRefuses("port not found")  # the operator's error: no pods
    env += [
        {"name": "PET_RDZV_ENDPOINT", "value": f"{host}:{port}"},
        {"name": "PET_RDZV_BACKEND", "value": elastic.get("rdzvBackend") or "c10d"},
        {"name": "PET_NNODES", "value": f"{elastic['minReplicas']}:{elastic['maxReplicas']}"},
    ]
    optional = [
        ("PET_MAX_RESTARTS", elastic.get("maxRestarts")),
        ("PET_NPROC_PER_NODE", elastic.get("nProcPerNode")),
        ("PET_RDZV_ID", elastic.get("rdzvId")),
    ]
    env += [{"name": name, "value": str(value)} for name, value in optional if value is not None]
    if elastic.get("rdzvConf") is not None:
        conf = ",".join(f"{c['key']}={c['value']}" for c in elastic["rdzvConf"])
        env.append({"name": "PET_RDZV_CONF", "value": conf})
    if elastic.get("standalone"):
        env.append({"name": "PET_STANDALONE", "value": ""})
    return env


def tf_config(tfjob: Manifest, replica_type: str, index: int) -> str | None:
    """The TF_CONFIG the operator gives pod `index` of `replica_type`; None for a job of
    one pod, which is not distributed."""
    job = kubeflow_defaulted(tfjob)
    replicas = job["spec"][TENSORFLOW.replica_specs]
    counted = ("Chief", "Evaluator", "Master", "PS", "Worker")
    if sum(int(r["replicas"]) for t, r in replicas.items() if t in counted) == 1:
        return None
    name, namespace = _name(job), _namespace(job)
    cluster: dict[str, list[str]] = {}
    for rtype, replica in replicas.items():
        port = _default_container_port(TENSORFLOW, replica) or TENSORFLOW.default_port
        cluster[rtype.lower()] = [
            f"{kubeflow_pod_name(name, rtype, i)}.{namespace}.svc:{port}"
            for i in range(int(replica["replicas"]))
        ]
    task = {"type": replica_type.lower(), "index": index}
    if not job["spec"].get("enableDynamicWorker"):
        config: dict[str, Any] = {
            "cluster": dict(sorted(cluster.items())),
            "task": task,
            "environment": "cloud",
        }
        return json.dumps(config, separators=(",", ":"))
    rtype = replica_type.lower()
    workers: dict[str, str] = {}
    ps: list[str] | None = []
    if rtype == "ps":
        ps = [cluster["ps"][index]]
    elif rtype == "worker":
        ps = cluster.get("ps")  # Go's nil slice: null
        workers[str(index)] = cluster["worker"][index]
    return json.dumps(
        {"cluster": {"worker": workers, "ps": ps}, "task": task}, separators=(",", ":")
    )


def _kubeflow_pod(job: Manifest, rtype: str, index: int) -> Pod:
    """Pod `index` of `rtype` of a defaulted job, as `createNewPod` makes it."""
    framework = _framework(job)
    name, namespace = _name(job), _namespace(job)
    replicas = job["spec"][framework.replica_specs]
    replica = replicas[rtype]
    template = replica["template"]
    labels = {
        **_labels(template.get("metadata")),
        **kubeflow_operator_labels(name, rtype, index, framework.controller),
    }
    if _is_master_role(framework, replicas, rtype, index):
        labels[JOB_ROLE_LABEL] = "master"
    spec: dict[str, Any] = copy.deepcopy(template["spec"])
    if framework is PYTORCH:
        env = pytorch_env(job, rtype, index)
        spec["containers"] = [
            {**c, "env": [*(c.get("env") or []), *env]} for c in spec["containers"]
        ]
        if rtype == "Worker" and "Master" in replicas:
            spec["initContainers"] = [*(spec.get("initContainers") or []), _pytorch_init(name)]
    else:
        config = tf_config(job, rtype, index)
        containers = spec["containers"]
        target = next(
            (i for i, c in enumerate(containers) if c["name"] == framework.container), None
        )
        if config is not None and target is not None:
            container = containers[target]
            env = [*(container.get("env") or []), {"name": "TF_CONFIG", "value": config}]
            containers[target] = {**container, "env": env}
    policy = replica["restartPolicy"]
    spec["restartPolicy"] = "Never" if policy == "ExitCode" else policy
    pod_name = kubeflow_pod_name(name, rtype, index)
    return Pod(
        job=name,
        namespace=namespace,
        index=index,
        hostname=spec.get("hostname") or pod_name,
        subdomain=spec.get("subdomain"),
        labels=labels,
        annotations=_annotations(template.get("metadata")),
        spec=spec,
        pod_name=pod_name,
        role=rtype.lower(),
        owner_kind=str(job["kind"]),
        owner=name,
    )


def _pytorch_init(name: str) -> Manifest:
    address = kubeflow_pod_name(name, "Master", 0)
    script = (
        f"err=1;for i in $(seq {PYTORCH_INIT_MAX_TRIES}); do if nslookup {address}; then "
        "err=0 && break; fi;echo waiting for master; sleep 2; done; exit $err"
    )
    return {
        "name": "init-pytorch",
        "image": PYTORCH_INIT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "limits": {"cpu": "100m", "memory": "20Mi"},
            "requests": {"cpu": "50m", "memory": "10Mi"},
        },
        "command": ["sh", "-c", script],
    }


def _kubeflow_managed_here(job: Manifest) -> bool:
    run_policy = (job.get("spec") or {}).get("runPolicy") or {}
    return bool(run_policy.get("managedBy", KUBEFLOW_CONTROLLER) == KUBEFLOW_CONTROLLER)


def kubeflow_pods(job: Manifest) -> list[Pod]:
    """Every pod the operator creates for a PyTorchJob or TFJob, replica type by replica
    type in the order the job lists them."""
    if not _kubeflow_managed_here(job):
        return []
    defaulted = kubeflow_defaulted(job)
    replicas = defaulted["spec"][_framework(job).replica_specs]
    return [
        _kubeflow_pod(defaulted, rtype, index)
        for rtype, replica in replicas.items()
        for index in range(int(replica["replicas"]))
    ]


def _kubeflow_groups(job: Manifest) -> list[PodGroup]:
    if not _kubeflow_managed_here(job):
        return []
    defaulted = kubeflow_defaulted(job)
    framework = _framework(job)
    replicas = defaulted["spec"][framework.replica_specs]
    groups = []
    for rtype, replica in replicas.items():
        count = int(replica["replicas"])
        if count <= 0:
            continue
        first = _kubeflow_pod(defaulted, rtype, 0)
        labels = {k: v for k, v in first.labels.items() if k != REPLICA_INDEX_LABEL}
        if not all(_is_master_role(framework, replicas, rtype, i) for i in range(count)):
            labels.pop(JOB_ROLE_LABEL, None)
        groups.append(
            PodGroup(
                str(job["kind"]),
                _name(job),
                _namespace(job),
                rtype.lower(),
                count,
                labels,
                first.spec,
                dict(first.annotations),
            )
        )
    return groups


def kubeflow_services(job: Manifest) -> list[Manifest]:
    """The headless Service the operator creates for each pod."""
    if not _kubeflow_managed_here(job):
        return []
    framework = _framework(job)
    defaulted = kubeflow_defaulted(job)
    name, namespace = _name(defaulted), _namespace(defaulted)
    created = []
    for rtype, replica in defaulted["spec"][framework.replica_specs].items():
        containers = replica["template"]["spec"]["containers"]
        ports = [
            {"name": p["name"], "port": int(p["containerPort"])}
            for c in containers
            if c["name"] == framework.container
            for p in c.get("ports") or []
            if p.get("name")
        ]
        for index in range(int(replica["replicas"])):
            labels = kubeflow_operator_labels(name, rtype, index, framework.controller)
            created.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": kubeflow_pod_name(name, rtype, index),
                        "namespace": namespace,
                        "labels": labels,
                    },
                    "spec": {"clusterIP": "None", "selector": labels, "ports": ports},
                }
            )
    return created


# --- Trainer v2.3.0 TrainJob -------------------------------------------------------------

TRAINJOB_CONTROLLER = "trainer.kubeflow.org/trainjob-controller"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
ANCESTOR_TRAINER = "trainer"
DATASET_INITIALIZER = "dataset-initializer"
MODEL_INITIALIZER = "model-initializer"
NODE = "node"  # the trainer's container (and the torch runtimes' replicated job)
TRAINER_PORT = 29500
TORCHTUNE_ENTRYPOINT = ["tune", "run"]
_UNMODELLED_POLICIES = ("mpi", "jax", "xgboost", "flux")
# Strategic merge keys of the lists a runtime patch may hold (the JobSet and core/v1
# types' patchMergeKey); any other list is replaced.
_MERGE_KEYS = {
    "replicatedJobs": "name",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "schedulingGates": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def find_runtime(trainjob: Manifest, runtimes: Mapping[str, Manifest] | None) -> Manifest:
    """The runtime the TrainJob names, from `runtimes` by name: of the kind its
    `runtimeRef` says (ClusterTrainingRuntime unless `TrainingRuntime`) and, for a
    TrainingRuntime, of the TrainJob's namespace. Raises MissingRuntime."""
    ref = (trainjob.get("spec") or {}).get("runtimeRef") or {}
    name = str(ref.get("name", ""))
    kind = ref.get("kind") or "ClusterTrainingRuntime"
    runtime = (runtimes or {}).get(name)
    if runtime is None or runtime.get("kind", kind) != kind:
        raise MissingRuntime(name)
    if kind == "TrainingRuntime" and _namespace(runtime) != _namespace(trainjob):
        raise MissingRuntime(name)
    return runtime


def _trainjob_jobset_or_none(
    trainjob: Manifest, runtimes: Mapping[str, Manifest] | None
) -> Manifest | None:
    spec = trainjob.get("spec") or {}
    if spec.get("managedBy", TRAINJOB_CONTROLLER) != TRAINJOB_CONTROLLER:
        return None
    return trainjob_jobset(trainjob, find_runtime(trainjob, runtimes))


def trainjob_jobset(trainjob: Manifest, runtime: Manifest) -> Manifest:
    """The JobSet Trainer creates for the TrainJob from its runtime (before JobSet's
    webhook defaults it)."""
    runtime_spec = runtime.get("spec") or {}
    ml_policy = runtime_spec.get("mlPolicy")
    if runtime_spec.get("podGroupPolicy"):
        raise NotModelled("Trainer podGroupPolicy (gang scheduling) is not modelled")
    unmodelled = [p for p in _UNMODELLED_POLICIES if (ml_policy or {}).get(p) is not None]
    if unmodelled:
        raise NotModelled(f"Trainer's {unmodelled[0]} ML policy is not modelled")
    spec = trainjob.get("spec") or {}
    trainer = spec.get("trainer")
    if trainer is not None and trainer.get("command") == TORCHTUNE_ENTRYPOINT:
        raise NotModelled("torchtune TrainJobs are not modelled")
    template = copy.deepcopy(runtime_spec.get("template") or {})
    labels, annotations = _labels(template.get("metadata")), _annotations(template.get("metadata"))
    js_spec: dict[str, Any] = template.get("spec") or {}
    for patch in spec.get("runtimePatches") or []:
        patch_template = ((patch.get("trainingRuntimeSpec") or {}).get("template")) or {}
        labels.update(_labels(patch_template.get("metadata")))
        annotations.update(_annotations(patch_template.get("metadata")))
        if patch_template.get("spec"):
            known = {r["name"] for r in js_spec.get("replicatedJobs") or []}
            for rjob in patch_template["spec"].get("replicatedJobs") or []:
                if rjob.get("name") not in known:
                    raise NotModelled(
                        f"a runtime patch names no replicated job: {rjob.get('name')}"
                    )
            js_spec = _strategic_merge(js_spec, patch_template["spec"])
    rjobs: list[Manifest] = js_spec.get("replicatedJobs") or []
    counts = _pod_set_counts(rjobs, ml_policy, trainer)
    trainer_rjob = next((r for r in rjobs if _ancestor(r) == ANCESTOR_TRAINER), None)
    node = _node_container(trainer_rjob) if trainer_rjob is not None else None
    if trainer is not None and node is not None:
        _upsert_env(node.setdefault("env", []), trainer.get("env") or [])
    torch = ml_policy is not None and ml_policy.get("torch") is not None
    if torch and trainer is not None and node is not None and trainer_rjob is not None:
        pet = _torch_env(trainjob, counts[trainer_rjob["name"]], node)
        _upsert_env(node["env"], pet)
        # `byContainerPortOrName`: the same number, or the same name, and the port
        # upserted has none, so it also replaces a port without a name.
        port = {"containerPort": TRAINER_PORT, "protocol": "TCP"}
        _upsert(
            node.setdefault("ports", []),
            port,
            lambda p: p.get("containerPort") == TRAINER_PORT or p.get("name") is None,
        )
    if torch:
        injection = (ml_policy or {}).get("torch", {}).get("envInjection") or {}
        for target in injection.get("targets") or []:
            _inject_torch_env(trainjob, rjobs, counts, trainer_rjob, target)
    for rjob in rjobs:  # SyncParallelCount
        job_spec = rjob["template"].setdefault("spec", {})
        job_spec["parallelism"] = job_spec["completions"] = counts[rjob["name"]]
    _apply_initializers(trainjob, rjobs)
    if trainer_rjob is not None:
        trainer_rjob["replicas"] = 1
        if trainer is not None and node is not None:
            for key in ("image", "command", "args"):
                if trainer.get(key) is not None:
                    node[key] = copy.deepcopy(trainer[key])
    if spec.get("suspend") is not None:
        js_spec["suspend"] = spec["suspend"]
    metadata: dict[str, Any] = {"name": _name(trainjob), "namespace": _namespace(trainjob)}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": metadata,
        "spec": js_spec,
    }


def _ancestor(rjob: Manifest) -> str | None:
    return _labels((rjob.get("template") or {}).get("metadata")).get(ANCESTOR_LABEL)


def _node_container(rjob: Manifest) -> Manifest | None:
    pod_spec = ((rjob["template"].get("spec") or {}).get("template") or {}).get("spec") or {}
    return next((c for c in pod_spec.get("containers") or [] if c.get("name") == NODE), None)


def _pod_set_counts(
    rjobs: Sequence[Manifest], ml_policy: Manifest | None, trainer: Manifest | None
) -> dict[str, int]:
    """Each replicated job's pod count (`newRuntimeInfo`, then the ML policy plugin),
    merging the TrainJob's resources into the trainer's `node` container on the way."""
    counts = {}
    for rjob in rjobs:
        job_spec = rjob["template"].get("spec") or {}
        count = int(job_spec.get("parallelism", 1))
        is_trainer = _ancestor(rjob) == ANCESTOR_TRAINER and ml_policy is not None
        if is_trainer:
            count = int((ml_policy or {}).get("numNodes", 1))
            node = _node_container(rjob)
            wanted = (trainer or {}).get("resourcesPerNode")
            if node is not None and wanted is not None:
                node["resources"] = _merge_resources(node.get("resources") or {}, wanted)
        counts[rjob["name"]] = max(count, 1)
    trainer_rjob = next((r for r in rjobs if _ancestor(r) == ANCESTOR_TRAINER), None)
    if trainer_rjob is not None and trainer is not None and trainer.get("numNodes") is not None:
        counts[trainer_rjob["name"]] = int(trainer["numNodes"])  # torch or plainml
    return counts


def _merge_resources(base: Manifest, override: Manifest) -> Manifest:
    merged = copy.deepcopy(base)
    for key, amounts in override.items():
        if isinstance(amounts, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **amounts}
        else:
            merged[key] = copy.deepcopy(amounts)
    return merged


def _torch_env(trainjob: Manifest, count: int, node: Manifest) -> list[Manifest]:
    """The PET_* variables the torch plugin upserts (`EnforceMLPolicy`)."""
    trainer = (trainjob.get("spec") or {}).get("trainer") or {}
    nproc: str = "auto"
    if trainer.get("numProcPerNode") is not None:
        nproc = str(int(trainer["numProcPerNode"]))
    resources = trainer.get("resourcesPerNode") or node.get("resources") or {}
    if nproc == "auto" and _gpus(resources) == 0:
        nproc = str(max(1, _cpus(resources)))
    name = _name(trainjob)
    return [
        {"name": "PET_NNODES", "value": str(count)},
        {"name": "PET_NPROC_PER_NODE", "value": nproc},
        {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}},
        {"name": "PET_MASTER_ADDR", "value": f"{name}-{NODE}-0-0.{name}"},
        {"name": "PET_MASTER_PORT", "value": str(TRAINER_PORT)},
    ]


def _inject_torch_env(
    trainjob: Manifest,
    rjobs: Sequence[Manifest],
    counts: Mapping[str, int],
    trainer_rjob: Manifest | None,
    target: Manifest,
) -> None:
    rjob = next((r for r in rjobs if r["name"] == target.get("jobName")), None)
    count = counts[trainer_rjob["name"]] if trainer_rjob is not None else 1
    for container_name in target.get("containerNames") or []:
        pod_spec = (
            (rjob or {}).get("template", {}).get("spec", {}).get("template", {}).get("spec", {})
        )
        container = next(
            (
                c
                for key in ("initContainers", "containers")
                for c in pod_spec.get(key) or []
                if c.get("name") == container_name
            ),
            None,
        )
        if container is None:
            raise ControllerRefuses(f"envInjection target {container_name!r} not found")
        _upsert_env(container.setdefault("env", []), _torch_env(trainjob, count, container))


def _resource_value(resources: Manifest, key: str, name_has: str) -> int:
    """`Quantity.Value()` (rounded up) of the first resource whose name contains
    `name_has` under `key` (requests or limits)."""
    for resource, amount in sorted((resources.get(key) or {}).items()):
        if name_has in str(resource).lower():
            return math.ceil(value(amount))
    return 0


def _gpus(resources: Manifest) -> int:
    """runtime.GetNumGPUPerNode: requests first, else limits (any resource named *gpu*)."""
    return _resource_value(resources, "requests", "gpu") or _resource_value(
        resources, "limits", "gpu"
    )


def _cpus(resources: Manifest) -> int:
    requested = (resources.get("requests") or {}).get("cpu")
    if requested is not None and value(requested) != 0:
        return math.ceil(value(requested))
    limit = (resources.get("limits") or {}).get("cpu")
    return math.ceil(value(limit)) if limit is not None else 0


def _apply_initializers(trainjob: Manifest, rjobs: Sequence[Manifest]) -> None:
    """Builder.Initializer: one replica each, and the TrainJob's settings."""
    initializer = (trainjob.get("spec") or {}).get("initializer") or {}
    for step, key in ((DATASET_INITIALIZER, "dataset"), (MODEL_INITIALIZER, "model")):
        for rjob in rjobs:
            if _ancestor(rjob) != step:
                continue
            rjob["replicas"] = 1
            settings = initializer.get(key)
            pod_spec = rjob["template"]["spec"]["template"]["spec"]
            for container in pod_spec.get("containers") or []:
                if container.get("name") != step or settings is None:
                    continue
                env = container.setdefault("env", [])
                if settings.get("storageUri") is not None:
                    _upsert_env(env, [{"name": "STORAGE_URI", "value": settings["storageUri"]}])
                _upsert_env(env, settings.get("env") or [])
                if settings.get("secretRef") is not None:
                    secret = {"secretRef": {"name": settings["secretRef"]["name"]}}
                    container.setdefault("envFrom", []).append(secret)


def _strategic_merge(original: Any, patch: Any, field: str = "") -> Any:
    """A strategic merge patch of `patch` into `original`, for the fields a runtime patch
    may hold: maps merge, keyed lists merge item by item (volumes keep only the patch's
    keys: `retainKeys`), other lists and values are replaced."""
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = dict(original)
        for key, value_ in patch.items():
            merged[key] = (
                _strategic_merge(original.get(key), value_, key)
                if key in original
                else copy.deepcopy(value_)
            )
        return merged
    key = _MERGE_KEYS.get(field)
    if key is None or not isinstance(original, list) or not isinstance(patch, list):
        return copy.deepcopy(patch)
    merged_list = [copy.deepcopy(item) for item in original]
    for item in patch:
        index = next((i for i, o in enumerate(merged_list) if o.get(key) == item.get(key)), None)
        if index is None:
            merged_list.append(copy.deepcopy(item))
        elif field == "volumes":
            base = merged_list[index]
            merged_list[index] = {
                k: _strategic_merge(base[k], v, k) if k in base else copy.deepcopy(v)
                for k, v in item.items()
            }
        else:
            merged_list[index] = _strategic_merge(merged_list[index], item, "")
    return merged_list
