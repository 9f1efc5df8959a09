"""What keeps a training run going when its pods are evicted or preempted, per runtime.

A pod that the cluster takes away (a node drained or consolidated, a preemption, an
eviction through the API) gets the pod condition `DisruptionTarget` before it is
stopped (Kubernetes `pkg/apis/core/types.go`, `DisruptionTarget`; set by the eviction
API, the scheduler's preemption, the taint manager and graceful node shutdown). Its
container then gets SIGTERM and `terminationGracePeriodSeconds` to exit before SIGKILL.
What each controller makes of the failed pod is below (`RUNTIME_FACTS`); the rules all
follow from one split of what a failure means:

- a disruption is not the run's fault: restart without using up a restart;
- an exit code of `fail_on_exit_codes` is a bug no restart fixes: fail at once;
- anything else (a crash, an OOM kill) may be transient: restart while `maxRestarts`
  allows, else fail.

The default bug codes are those of a program that cannot start: 2 (Python's "can't open
file" and argparse's usage error; torchrun's own bad arguments), 126 (not executable)
and 127 (not found). Not 1: a process that loses a peer in a collective (NCCL, Gloo)
exits with an error, and torchrun reports every failure of its processes as 1
(`torch/distributed/run.py`, `main` is `@record`, which re-raises `ChildFailedError`),
so for a distributed run 1 is what a disruption of another pod looks like too.

Every pod also carries what a resuming program needs (`resume_env`), and the
annotations that keep the autoscalers from draining its node to save money
(`DO_NOT_DISRUPT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.config import model

DISRUPTION_CONDITION = "DisruptionTarget"
# Karpenter never voluntarily disrupts (consolidates, drifts, expires) a node running a
# pod with this annotation (karpenter.sh, pkg/apis/v1/labels.go `DoNotDisruptAnnotationKey`);
# the Cluster Autoscaler never scales down a node running a pod with this one
# (cluster-autoscaler FAQ, "What types of pods can prevent CA from removing a node?").
DO_NOT_DISRUPT: dict[str, str] = {
    "karpenter.sh/do-not-disrupt": "true",
    "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
}
CHECKPOINT_DIR_ENV = "MLGITOPS_CHECKPOINT_DIR"
RESTART_ATTEMPT_ENV = "MLGITOPS_RESTART_ATTEMPT"
RESUME_ENV = frozenset({CHECKPOINT_DIR_ENV, RESTART_ATTEMPT_ENV})
DEFAULT_FAIL_ON_EXIT_CODES: tuple[int, ...] = (2, 126, 127)

# The Job controller numbers the replacements of an index in pod annotations it writes
# only for a Job with `backoffLimitPerIndex` (pkg/controller/job/job_controller.go,
# `manageJob`: `if hasBackoffLimitPerIndex(job) { addIndexFailureCountAnnotation(...) }`;
# indexed_job_utils.go, `getNewIndexFailureCounts`: a failure the pod failure policy
# ignores adds one to `job-index-ignored-failure-count`, absent while it is 0).
JOB_IGNORED_FAILURES = "batch.kubernetes.io/job-index-ignored-failure-count"
# JobSet v0.12.0 labels every Job and pod of a run with the run's number, 0 first
# (pkg/controllers/jobset_controller.go, `labelAndAnnotateObject`: `RestartsKey` is
# `js.Status.Restarts`, which each restart of the set adds one to, failure_policy.go).
JOBSET_RESTART_ATTEMPT = "jobset.sigs.k8s.io/restart-attempt"


@dataclass(frozen=True)
class RuntimeFacts:
    """What one runtime's controller does, and what it exposes to a restarted pod."""

    on_disruption: str
    on_bug: str
    # The downward API field that counts restarts, if the controller writes one.
    restart_attempt_field: str | None
    source: str


RUNTIME_FACTS: dict[str, RuntimeFacts] = {
    "job": RuntimeFacts(
        on_disruption="the pod failure policy ignores it: the index gets a new pod, "
        "which a static rendezvous only takes in when every pod was replaced",
        on_bug="FailJob: the Job fails at once (reason PodFailurePolicy)",
        restart_attempt_field=f"metadata.annotations['{JOB_IGNORED_FAILURES}']",
        source="kubernetes pkg/controller/job/pod_failure_policy.go `matchPodFailurePolicy`: "
        "Ignore does not count towards backoffLimit, FailJob fails the Job",
    ),
    "jobset": RuntimeFacts(
        on_disruption="the child Job fails (FailJob, message 'Pod .. has condition "
        "DisruptionTarget matching FailJob rule'), and the JobSet recreates every Job "
        "without counting it against maxRestarts",
        on_bug="FailJob on the child Job, then FailJobSet",
        restart_attempt_field=f"metadata.labels['{JOBSET_RESTART_ATTEMPT}']",
        source="jobset v0.12.0 pkg/controllers/failure_policy.go: rules in order, each "
        "against every failed Job, matching onJobFailureReasons and "
        "onJobFailureMessagePatterns; no match means RestartJobSet",
    ),
    "trainjob": RuntimeFacts(
        on_disruption="as jobset: the ClusterTrainingRuntime's template is the JobSet",
        on_bug="as jobset",
        restart_attempt_field=f"metadata.labels['{JOBSET_RESTART_ATTEMPT}']",
        source="trainer v2.3.0 pkg/runtime/framework/plugins/jobset: the runtime's "
        "JobSet spec is the TrainJob's JobSet",
    ),
    "pytorchjob": RuntimeFacts(
        on_disruption="restartPolicy OnFailure: the failed pod is recreated (or its "
        "container restarted) and counts towards backoffLimit, like any failure; torchrun "
        "rejoins the c10d rendezvous",
        on_bug="as any failure: retried until backoffLimit",
        restart_attempt_field=None,
        source="training-operator v1.9.4 pkg/controller.v1/common/pod.go `ReconcilePods` "
        "(OnFailure: delete and recreate a failed pod), pkg/core/job.go `PastBackoffLimit`",
    ),
    "tfjob": RuntimeFacts(
        on_disruption="restartPolicy ExitCode: an exit code of 128 or more (SIGTERM "
        "143, SIGKILL 137) recreates the pod and counts towards backoffLimit; the API "
        "sees exit codes only, so it cannot tell a disruption from an OOM kill",
        on_bug="an exit code below 128 fails the job at once",
        restart_attempt_field=None,
        source="training-operator v1.9.4 pkg/controller.v1/common/pod.go `ReconcilePods`, "
        "pkg/util/train/train_util.go `IsRetryableExitCode` (exitCode >= 128)",
    ),
}


def fail_on_exit_codes(workload: model.Workload) -> list[int]:
    codes = workload.fail_on_exit_codes
    return sorted(set(DEFAULT_FAIL_ON_EXIT_CODES if codes is None else codes))


# torchrun, sent SIGTERM, passes it on to its processes and kills them 30 seconds later
# unless this says otherwise (torch/distributed/run.py `--shutdown-timeout`; the agent's
# `_shutdown(death_sig, timeout=...)`); a torch that predates it ignores it. The
# processes get the pod's grace period, less what torchrun needs to exit after them.
TORCHRUN_SHUTDOWN_ENV = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"
TORCHRUN_EXIT_SECONDS = 10


def torchrun_shutdown_seconds(workload: model.Workload) -> int:
    grace = workload.termination_grace_period_seconds
    return max(1, grace - TORCHRUN_EXIT_SECONDS)


def resume_env(workload: model.Workload) -> list[dict[str, Any]]:
    """Where the checkpoints are, which restart of the run this pod belongs to, and, for
    torchrun, the time its processes get to save once told to stop (unless the workload
    sets it itself)."""
    env: list[dict[str, Any]] = []
    if workload.framework == "pytorch" and TORCHRUN_SHUTDOWN_ENV not in workload.env:
        seconds = str(torchrun_shutdown_seconds(workload))
        env.append({"name": TORCHRUN_SHUTDOWN_ENV, "value": seconds})
    if workload.checkpoint:
        env.append({"name": CHECKPOINT_DIR_ENV, "value": workload.checkpoint.mount_path})
    field = RUNTIME_FACTS[workload.runtime].restart_attempt_field
    if field:
        env.append({"name": RESTART_ATTEMPT_ENV, "valueFrom": {"fieldRef": {"fieldPath": field}}})
    return env


def _on_disruption(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "onPodConditions": [{"type": DISRUPTION_CONDITION, "status": "True"}],
    }


def _on_bug(workload: model.Workload, container: str) -> list[dict[str, Any]]:
    codes = fail_on_exit_codes(workload)
    if not codes:
        return []
    return [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": container, "operator": "In", "values": codes},
        }
    ]


def job_pod_failure_policy(workload: model.Workload, container: str) -> dict[str, Any]:
    """A plain Indexed Job: a disrupted pod is replaced without counting (the first rule
    that matches a pod decides, so a disrupted pod is never taken for a bug whatever it
    exits with); a bug fails the Job; any other failure counts, and backoffLimit 0 fails
    the Job on it. Needs `restartPolicy: Never` on the pod (the API refuses it
    otherwise), which every generated pod has."""
    return {"rules": [_on_disruption("Ignore"), *_on_bug(workload, container)]}


def child_job_pod_failure_policy(workload: model.Workload, container: str) -> dict[str, Any]:
    """A JobSet's child Job fails on a disruption, so that the JobSet sees why (its
    failure message names the condition) and restarts the whole gang: a static
    rendezvous takes no single replacement in."""
    return {"rules": [_on_disruption("FailJob"), *_on_bug(workload, container)]}


# What the Job controller writes as the failure message for each kind of FailJob rule
# (pkg/controller/job/pod_failure_policy.go, `matchPodFailurePolicy`):
# "Pod <ns>/<name> has condition DisruptionTarget matching FailJob rule at index <i>" and
# "Container <c> for pod <ns>/<name> failed with exit code <n> matching FailJob rule ...".
DISRUPTION_MESSAGE = f"^Pod [^ ]+ has condition {DISRUPTION_CONDITION} matching FailJob rule"
BUG_MESSAGE = "^Container [^ ]+ for pod [^ ]+ failed with exit code [0-9]+ matching FailJob rule"
POD_FAILURE_POLICY_REASON = "PodFailurePolicy"  # batch/v1 JobReasonPodFailurePolicy


def jobset_failure_policy(workload: model.Workload) -> dict[str, Any]:
    """The rules are tried in order, each against every failed child Job, so a disruption
    anywhere in the set wins over what its peers did when they lost it."""
    rules: list[dict[str, Any]] = [
        {
            "name": "Disruption",
            "action": "RestartJobSetAndIgnoreMaxRestarts",
            "onJobFailureReasons": [POD_FAILURE_POLICY_REASON],
            "onJobFailureMessagePatterns": [DISRUPTION_MESSAGE],
        }
    ]
    if fail_on_exit_codes(workload):
        rules.append(
            {
                "name": "Bug",
                "action": "FailJobSet",
                "onJobFailureReasons": [POD_FAILURE_POLICY_REASON],
                "onJobFailureMessagePatterns": [BUG_MESSAGE],
            }
        )
    rules.append({"name": "OtherFailure", "action": "RestartJobSet"})
    return {"maxRestarts": workload.max_restarts, "rules": rules}


def kubeflow_restart_policy(workload: model.Workload) -> str:
    """The Training Operator's replica restart policy. Without restarts (`maxRestarts`
    0, not elastic) a failure ends the job: `Never`. Else:

    - TFJob: `ExitCode`, which retries what a signal ended (128 and above: a
      disruption's SIGTERM, a SIGKILL, an OOM kill) and fails the job at once on any
      other code; the pod itself then runs with `Never` (pkg/core/pod.go
      `SetRestartPolicy`).
    - PyTorchJob: `OnFailure`. Every pod runs torchrun, which exits 1 when it is sent
      SIGTERM (its agent re-raises the `SignalException` it turns the signal into,
      torch/distributed/elastic/agent/server/api.py `run`), so under `ExitCode` a
      disruption would fail the job as a bug would."""
    if not (workload.max_restarts or workload.elastic):
        return "Never"
    return "OnFailure" if workload.runtime == "pytorchjob" else "ExitCode"
