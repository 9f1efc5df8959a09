"""What the JobSet controller does with a built JobSet (jobset.x-k8s.io/v1alpha2).

Modelled on kubernetes-sigs/jobset, not on this project's generator:

- the admission webhook's defaults (api/jobset/v1alpha2 webhook `Default`): success policy
  `All`, `completionMode: Indexed`, pod `restartPolicy: OnFailure`, and in `network`
  `enableDNSHostnames: true` and `publishNotReadyAddresses: true`;
- `constructJob` and `labelAndAnnotateObject` (pkg/controllers/jobset_controller.go): one
  Job per replica of each replicated job, named `<jobset>-<replicated job>-<job index>`
  (placement.GenJobName); the Job and its pod template keep their template's labels and
  annotations and get the JobSet's (`jobset.sigs.k8s.io/jobset-name`, `replicatedjob-name`,
  `replicatedjob-replicas`, `global-replicas`, `job-index`, `job-global-index`, `job-key`,
  `restart-attempt`) as both labels and annotations; with DNS hostnames enabled the pod
  template's `subdomain` becomes `GetSubdomain`: `network.subdomain`, else the JobSet's name;
- `createHeadlessSvcIfNecessary`: one headless Service named like that subdomain, selecting
  `jobset.sigs.k8s.io/jobset-name: <jobset>`, publishing not-ready addresses as configured;
- the Job controller then creates the pods of each Indexed Job (kube.indexed_job_pods): pod
  `i` of Job `<jobset>-<rjob>-<j>` has the hostname `<jobset>-<rjob>-<j>-<i>`;
- success (`executeSuccessPolicy`, success_policy.go): `All` needs every Job of the target
  replicated jobs (all of them when none is named) to complete, `Any` one Job; failure
  (`executeFailurePolicy`): a failed Job fails the JobSet when it may not restart
  (`failurePolicy.maxRestarts` 0 or absent); a finished JobSet deletes its active Jobs,
  which stops their pods (a TensorFlow run's workers and parameter servers, for one,
  once its chief has succeeded).

Restarting the whole set (`maxRestarts` above 0) is not modelled: a run refuses it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import kube

PREFIX = "jobset.sigs.k8s.io/"
JOBSET_NAME_KEY = PREFIX + "jobset-name"
REPLICATED_JOB_NAME_KEY = PREFIX + "replicatedjob-name"
REPLICATED_JOB_REPLICAS_KEY = PREFIX + "replicatedjob-replicas"
GLOBAL_REPLICAS_KEY = PREFIX + "global-replicas"
JOB_INDEX_KEY = PREFIX + "job-index"
JOB_GLOBAL_INDEX_KEY = PREFIX + "job-global-index"
JOB_KEY = PREFIX + "job-key"
RESTARTS_KEY = PREFIX + "restart-attempt"


def defaulted(jobset: kube.Manifest) -> kube.Manifest:
    """The JobSet as the admission webhook stores it."""
    js = copy.deepcopy(jobset)
    spec = js["spec"]
    spec.setdefault("successPolicy", {"operator": "All"})
    for rjob in spec["replicatedJobs"]:
        job_spec = rjob["template"]["spec"]
        job_spec.setdefault("completionMode", "Indexed")
        pod_spec = job_spec["template"]["spec"]
        if not pod_spec.get("restartPolicy"):
            pod_spec["restartPolicy"] = "OnFailure"
    network = spec.setdefault("network", {})
    network.setdefault("enableDNSHostnames", True)
    network.setdefault("publishNotReadyAddresses", True)
    return js


def subdomain(jobset: kube.Manifest) -> str:
    return jobset["spec"].get("network", {}).get("subdomain") or jobset["metadata"]["name"]


def job_name(jobset: kube.Manifest, replicated_job: str, job_index: int) -> str:
    return f"{jobset['metadata']['name']}-{replicated_job}-{job_index}"


def child_jobs(jobset: kube.Manifest) -> list[kube.Manifest]:
    """The Jobs of the JobSet's first run, in the order of its replicated jobs."""
    js = defaulted(jobset)
    name = js["metadata"]["name"]
    namespace = js["metadata"].get("namespace", "default")
    replicated_jobs = js["spec"]["replicatedJobs"]
    global_replicas = sum(int(r.get("replicas", 1)) for r in replicated_jobs)
    dns_hostnames = js["spec"]["network"]["enableDNSHostnames"]
    jobs = []
    global_index = 0
    for rjob in replicated_jobs:
        replicas = int(rjob.get("replicas", 1))
        for job_index in range(replicas):
            child = job_name(js, rjob["name"], job_index)
            marks = {
                JOBSET_NAME_KEY: name,
                REPLICATED_JOB_NAME_KEY: rjob["name"],
                RESTARTS_KEY: "0",
                REPLICATED_JOB_REPLICAS_KEY: str(replicas),
                GLOBAL_REPLICAS_KEY: str(global_replicas),
                JOB_INDEX_KEY: str(job_index),
                JOB_KEY: hashlib.sha1(f"{namespace}/{child}".encode()).hexdigest(),
                JOB_GLOBAL_INDEX_KEY: str(global_index + job_index),
            }
            template = rjob["template"]
            spec = copy.deepcopy(template["spec"])
            pod_meta = spec["template"].setdefault("metadata", {})
            _mark(pod_meta, marks)
            if dns_hostnames:
                spec["template"]["spec"]["subdomain"] = subdomain(js)
            spec["suspend"] = bool(js["spec"].get("suspend", False))
            meta: dict[str, Any] = {
                "name": child,
                "namespace": namespace,
                "labels": dict(template.get("metadata", {}).get("labels", {})),
                "annotations": dict(template.get("metadata", {}).get("annotations", {})),
            }
            _mark(meta, marks)
            jobs.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec})
        global_index += replicas
    return jobs


def _mark(meta: dict[str, Any], marks: dict[str, str]) -> None:
    meta["labels"] = {**meta.get("labels", {}), **marks}
    meta["annotations"] = {**meta.get("annotations", {}), **marks}


def headless_service(jobset: kube.Manifest) -> kube.Manifest | None:
    """The Service the controller creates for pod DNS names, if hostnames are enabled."""
    js = defaulted(jobset)
    network = js["spec"]["network"]
    if not network["enableDNSHostnames"]:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": subdomain(js),
            "namespace": js["metadata"].get("namespace", "default"),
        },
        "spec": {
            "clusterIP": "None",
            "selector": {JOBSET_NAME_KEY: js["metadata"]["name"]},
            "publishNotReadyAddresses": network["publishNotReadyAddresses"],
        },
    }


def pods(jobset: kube.Manifest) -> list[kube.Pod]:
    """Every pod of the JobSet's Jobs, Job by Job."""
    return [pod for job in child_jobs(jobset) for pod in kube.indexed_job_pods(job)]


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
