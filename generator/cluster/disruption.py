"""Does a training object survive a disruption? What its controller does, by the
product's model of it (controllers.py, `job_outcome` and `jobset_outcome`), when one of
its pods is taken away: the pod gets the condition `DisruptionTarget` (a drain, a
reclaimed spot node, a preemption, an eviction), then SIGTERM, and exits with 143.

A disruption must neither fail the run nor use up the restarts meant for failures of
the run itself. Where the runtime's API can say so:

- a Job: its `podFailurePolicy` ignores the pod (the index gets a new pod, not counted);
- a JobSet, and the JobSet template of a Kubeflow Trainer runtime (what its TrainJobs
  become): the child Job fails on the condition and the set restarts without counting it
  (`RestartJobSetAndIgnoreMaxRestarts`), or the child Job ignores the pod.

The Training Operator's jobs (PyTorchJob, TFJob) see exit codes only: their policies
cannot tell a disruption from a crash, so they are not held to this (README "Surviving
disruption").

An object the model cannot follow (odd shapes are the schema check's to report) is given
the benefit of the doubt.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.cluster import controllers

DISRUPTED = controllers.PodEnd(exit_code=143, disrupted=True)
HOW_TO = (
    "a drained node, a reclaimed spot node or a preemption then ends the run "
    "(add the rule, or waive with a reason)"
)

Finding = tuple[str, str]  # (field path, message)


def disruption_findings(obj: dict[str, Any]) -> Iterator[Finding]:
    """What is wrong with how the object's controller handles one disrupted pod."""
    kind = obj.get("kind")
    try:
        if kind == "Job":
            found = _job(obj)
            if found:
                yield "spec.podFailurePolicy", found
        elif kind == "JobSet":
            yield from _jobset(obj, "spec")
        elif kind in ("ClusterTrainingRuntime", "TrainingRuntime"):
            template = ((obj.get("spec") or {}).get("template")) or {}
            jobset = {
                "apiVersion": "jobset.x-k8s.io/v1alpha2",
                "kind": "JobSet",
                "metadata": {
                    "name": (obj.get("metadata") or {}).get("name", "runtime"),
                    "namespace": (obj.get("metadata") or {}).get("namespace", "default"),
                },
                "spec": template.get("spec") or {},
            }
            yield from _jobset(jobset, "spec.template.spec")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return


def _job(job: dict[str, Any]) -> str | None:
    """Why the Job fails or counts a disruption of its first pod, or None."""
    pods = controllers.job_pods(job)
    if not pods:
        return None
    ends = [DISRUPTED, *([None] * (len(pods) - 1))]
    try:
        outcome = controllers.job_outcome(job, ends)
    except controllers.ControllerRefuses as refused:
        return f"the Job controller refuses it ({refused}): {HOW_TO}"
    except controllers.NotModelled:
        return (
            "a disrupted pod counts towards backoffLimit like a failure: no rule "
            f"`Ignore` for the pod condition DisruptionTarget; {HOW_TO}"
        )
    if outcome.failed:
        return (
            f"a disrupted pod fails the Job ({outcome.failed}): no rule `Ignore` for the "
            f"pod condition DisruptionTarget comes first; {HOW_TO}"
        )
    return None


def _jobset(jobset: dict[str, Any], at: str) -> Iterator[Finding]:
    """A disruption of the first pod of each replicated job's first Job."""
    children = controllers.jobset_child_jobs(jobset)
    seen: set[str] = set()
    for child in children:
        replicated = child["metadata"]["labels"][controllers.REPLICATED_JOB_NAME_KEY]
        if replicated in seen:
            continue
        seen.add(replicated)
        pods = controllers.job_pods(child)
        if not pods:
            continue
        ends = [DISRUPTED, *([None] * (len(pods) - 1))]
        try:
            outcome = controllers.job_outcome(child, ends)
        except (controllers.ControllerRefuses, controllers.NotModelled):
            continue  # the Job's own retries: the set is not involved yet
        if not outcome.failed:
            continue  # the child Job replaced the pod without counting it
        restarts = controllers.JobSetRestarts(total=0, counted=0)
        try:
            decision = controllers.jobset_outcome(jobset, [(child, outcome)], restarts)
        except controllers.NotModelled:
            continue
        where = f"{at}.failurePolicy"
        if decision.failed:
            yield (
                where,
                f"a disrupted pod of replicated job {replicated!r} fails the JobSet "
                f"({decision.action}): no rule `RestartJobSetAndIgnoreMaxRestarts` matches "
                f"its Job's failure; {HOW_TO}",
            )
        elif decision.counted:
            yield (
                where,
                f"a disrupted pod of replicated job {replicated!r} uses up one of "
                f"maxRestarts ({decision.action}): no rule "
                "`RestartJobSetAndIgnoreMaxRestarts` matches its Job's failure; "
                "a few drains or reclaimed spot nodes then end the run (add the rule, "
                "or waive with a reason)",
            )
