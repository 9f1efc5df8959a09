"""The JobSet controller (v0.12.0) for the end-to-end harness.

What the controller creates from a JobSet (the webhook's defaults, one Job per replica
of each replicated job with JobSet's labels and annotations, the subdomain, the headless
Service, and the pods of each Job) is the product's model,
generator/cluster/controllers.py, re-exported here under the harness's names. What stays
here is when a JobSet has finished, which only a run needs:

- success (`executeSuccessPolicy`, pkg/controllers/success_policy.go): `All` needs every
  Job of the target replicated jobs (all of them when none is named) to complete, `Any`
  one Job; failure (`executeFailurePolicy`, failure_policy.go): a failed Job fails the
  JobSet when it may not restart (`failurePolicy.maxRestarts` 0 or absent); a finished
  JobSet deletes its active Jobs, which stops their pods (a TensorFlow run's workers and
  parameter servers, for one, once its chief has succeeded).

Restarting the whole set (`maxRestarts` above 0) is not modelled here: a run refuses
it. Runs that restart are restarts.py's, which applies the failure policy through the
product's model (`controllers.jobset_outcome`).
"""

from __future__ import annotations

from collections.abc import Sequence

import kube

from generator.cluster.controllers import (
    GLOBAL_REPLICAS_KEY,
    JOB_GLOBAL_INDEX_KEY,
    JOB_INDEX_KEY,
    JOB_KEY,
    JOBSET_NAME_KEY,
    REPLICATED_JOB_NAME_KEY,
    REPLICATED_JOB_REPLICAS_KEY,
    RESTARTS_KEY,
)
from generator.cluster.controllers import jobset_child_jobs as child_jobs
from generator.cluster.controllers import jobset_defaulted as defaulted
from generator.cluster.controllers import jobset_headless_service as headless_service
from generator.cluster.controllers import jobset_job_name as job_name
from generator.cluster.controllers import jobset_pods as pods
from generator.cluster.controllers import jobset_subdomain as subdomain

__all__ = [
    "GLOBAL_REPLICAS_KEY",
    "JOBSET_NAME_KEY",
    "JOB_GLOBAL_INDEX_KEY",
    "JOB_INDEX_KEY",
    "JOB_KEY",
    "REPLICATED_JOB_NAME_KEY",
    "REPLICATED_JOB_REPLICAS_KEY",
    "RESTARTS_KEY",
    "child_jobs",
    "defaulted",
    "headless_service",
    "job_name",
    "pods",
    "status",
    "subdomain",
]


def status(
    jobset: kube.Manifest, all_pods: Sequence[kube.Pod], exits: Sequence[int | None]
) -> str | None:
    """`Completed` or `Failed` once the pods have exited as `exits` say (None: running);
    None while the JobSet runs."""
    js = defaulted(jobset)
    restarts = int(js["spec"].get("failurePolicy", {}).get("maxRestarts", 0))
    assert restarts == 0, "restarting the whole JobSet is not modelled"
    code_of = {id(pod): code for pod, code in zip(all_pods, exits, strict=True)}
    finished: dict[str, list[str]] = {"Complete": [], "Failed": []}
    for job in child_jobs(js):
        job_pods = [p for p in all_pods if p.job == job["metadata"]["name"]]
        condition = kube.job_status(job, job_pods, [code_of[id(p)] for p in job_pods])
        if condition == "Failed":
            finished["Failed"].append(job["metadata"]["labels"][REPLICATED_JOB_NAME_KEY])
        elif condition is not None:
            finished["Complete"].append(job["metadata"]["labels"][REPLICATED_JOB_NAME_KEY])
    if finished["Failed"]:
        return "Failed"
    policy = js["spec"]["successPolicy"]
    targets = policy.get("targetReplicatedJobs") or [
        r["name"] for r in js["spec"]["replicatedJobs"]
    ]
    succeeded = sum(1 for rjob in finished["Complete"] if rjob in targets)
    if policy["operator"] == "Any":
        needed = 1
    else:
        needed = sum(
            int(r.get("replicas", 1)) for r in js["spec"]["replicatedJobs"] if r["name"] in targets
        )
    return "Completed" if succeeded >= needed else None
