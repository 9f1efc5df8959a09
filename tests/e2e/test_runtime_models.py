"""The models of the JobSet controller and of the Training Operator's PyTorchJob the
harness runs (the product's generator/cluster/controllers.py, through jobset.py and
kubeflow.py), checked against the rules they claim to follow.

The end-to-end runs of those runtimes are only as faithful as these models: these cases
pin the names, labels, Services and environment each controller gives its pods, and when
each says its workload has finished (the harness's status models).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import jobrun
import jobset
import kube
import kubeflow
import pytest


def pod_template(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "train"}, "annotations": {"note": "kept"}},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def replicated_job(name: str, completions: int, replicas: int = 1) -> dict[str, Any]:
    container = {"name": "trainer", "command": ["run", "--rank=$(JOB_COMPLETION_INDEX)"]}
    return {
        "name": name,
        "replicas": replicas,
        "template": {
            "metadata": {"labels": {"app": "train"}},
            "spec": {
                "completionMode": "Indexed",
                "completions": completions,
                "parallelism": completions,
                "backoffLimit": 0,
                "template": pod_template(container),
            },
        },
    }


JOBSET: dict[str, Any] = {
    "apiVersion": "jobset.x-k8s.io/v1alpha2",
    "kind": "JobSet",
    "metadata": {"name": "tf", "namespace": "ml"},
    "spec": {
        "network": {"enableDNSHostnames": True, "subdomain": "tf-net"},
        # A parameter-server run as the generator writes it: the chief ends it.
        "successPolicy": {"operator": "All", "targetReplicatedJobs": ["chief"]},
        "failurePolicy": {"maxRestarts": 0},
        "replicatedJobs": [
            replicated_job("chief", 1),
            replicated_job("worker", 2),
            replicated_job("ps", 1),
        ],
    },
}


def test_jobset_makes_one_indexed_job_per_replica_of_each_replicated_job() -> None:
    js = copy.deepcopy(JOBSET)
    js["spec"]["replicatedJobs"][1]["replicas"] = 2
    jobs = jobset.child_jobs(js)
    assert [j["metadata"]["name"] for j in jobs] == [
        "tf-chief-0",
        "tf-worker-0",
        "tf-worker-1",
        "tf-ps-0",
    ]
    labels = jobs[2]["metadata"]["labels"]
    assert labels == {
        "app": "train",
        "jobset.sigs.k8s.io/jobset-name": "tf",
        "jobset.sigs.k8s.io/replicatedjob-name": "worker",
        "jobset.sigs.k8s.io/restart-attempt": "0",
        "jobset.sigs.k8s.io/replicatedjob-replicas": "2",
        "jobset.sigs.k8s.io/global-replicas": "4",
        "jobset.sigs.k8s.io/job-index": "1",
        "jobset.sigs.k8s.io/job-key": hashlib.sha1(b"ml/tf-worker-1").hexdigest(),
        "jobset.sigs.k8s.io/job-global-index": "2",
        # v0.12.0: every replicated job is in a group, `default` unless it names one.
        "jobset.sigs.k8s.io/group-name": "default",
        "jobset.sigs.k8s.io/group-replicas": "4",
        "jobset.sigs.k8s.io/job-group-index": "2",
    }
    assert jobs[3]["metadata"]["labels"]["jobset.sigs.k8s.io/job-global-index"] == "3"
    # The same marks go on the pod template, as labels and as annotations.
    pod_meta = jobs[2]["spec"]["template"]["metadata"]
    assert pod_meta["labels"] == labels
    assert pod_meta["annotations"] == {
        "note": "kept",
        **{k: labels[k] for k in labels if k != "app"},
    }
    assert all(j["spec"]["template"]["spec"]["subdomain"] == "tf-net" for j in jobs)


def test_jobset_pods_are_named_by_replicated_job_job_index_and_completion_index() -> None:
    pods = jobset.pods(JOBSET)
    assert [(p.hostname, p.subdomain, p.index) for p in pods] == [
        ("tf-chief-0-0", "tf-net", 0),
        ("tf-worker-0-0", "tf-net", 0),
        ("tf-worker-0-1", "tf-net", 1),
        ("tf-ps-0-0", "tf-net", 0),
    ]
    assert pods[2].labels["jobset.sigs.k8s.io/jobset-name"] == "tf"
    assert pods[2].labels["batch.kubernetes.io/job-name"] == "tf-worker-0"
    process = kube.container_process(pods[2], "192.0.2.12", "node")
    assert process.argv == ["run", "--rank=1"]
    assert process.env["JOB_COMPLETION_INDEX"] == "1"


def test_jobset_service_gives_every_pod_a_name_under_the_subdomain() -> None:
    service = jobset.headless_service(JOBSET)
    assert service is not None
    assert service["metadata"] == {"name": "tf-net", "namespace": "ml"}
    assert service["spec"] == {
        "clusterIP": "None",
        "selector": {"jobset.sigs.k8s.io/jobset-name": "tf"},
        "publishNotReadyAddresses": True,
    }
    pods = jobset.pods(JOBSET)
    objects = [JOBSET, service]
    assert [kube.pod_fqdn(objects, p) for p in pods] == [
        "tf-chief-0-0.tf-net.ml.svc.cluster.local",
        "tf-worker-0-0.tf-net.ml.svc.cluster.local",
        "tf-worker-0-1.tf-net.ml.svc.cluster.local",
        "tf-ps-0-0.tf-net.ml.svc.cluster.local",
    ]
    # No Service of the old per-replicated-job name exists.
    assert "tf-worker.ml.svc.cluster.local" not in kube.service_fqdns(objects, pods)


def test_jobset_defaults_the_subdomain_to_its_name_and_dns_hostnames_to_on() -> None:
    js = copy.deepcopy(JOBSET)
    del js["spec"]["network"]
    del js["spec"]["successPolicy"]
    assert jobset.child_jobs(js)[0]["spec"]["template"]["spec"]["subdomain"] == "tf"
    service = jobset.headless_service(js)
    assert service is not None and service["metadata"]["name"] == "tf"
    assert jobset.defaulted(js)["spec"]["successPolicy"] == {"operator": "All"}
    js["spec"]["network"] = {"enableDNSHostnames": False}
    assert jobset.headless_service(js) is None
    assert "subdomain" not in jobset.child_jobs(js)[0]["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("exits", "status"),
    [
        # Pods: chief, worker 0, worker 1, ps.
        ([None, None, None, None], None),
        # Jobs that are not the target complete without ending the set ...
        ([None, 0, 0, None], None),
        # ... every Job of the target replicated job has: workers and ps still run.
        ([0, None, None, None], "Completed"),
        # backoffLimit 0 and maxRestarts 0: one failed pod fails its Job and the set,
        # before the success policy is looked at (the controller's order).
        ([0, 1, None, None], "Failed"),
        ([None, None, None, 1], "Failed"),
    ],
)
def test_jobset_status_follows_its_success_and_failure_policies(
    exits: list[int | None], status: str | None
) -> None:
    assert jobset.status(JOBSET, jobset.pods(JOBSET), exits) == status


def test_jobset_success_policy_any_and_restarts() -> None:
    js = copy.deepcopy(JOBSET)
    js["spec"]["successPolicy"] = {"operator": "Any"}
    assert jobset.status(js, jobset.pods(js), [None, None, None, 0]) == "Completed"
    js["spec"]["successPolicy"] = {"operator": "All"}
    assert jobset.status(js, jobset.pods(js), [0, 0, 0, None]) is None
    assert jobset.status(js, jobset.pods(js), [0, 0, 0, 0]) == "Completed"
    js["spec"]["failurePolicy"] = {"maxRestarts": 2}
    with pytest.raises(AssertionError, match="restarting the whole JobSet"):
        jobset.status(js, jobset.pods(js), [None, None, None, None])


PYTORCHJOB: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "metadata": {"name": "ddp", "namespace": "ml"},
    "spec": {
        "elasticPolicy": {
            "minReplicas": 3,
            "maxReplicas": 3,
            "rdzvBackend": "c10d",
            "rdzvPort": 29500,
            "maxRestarts": 0,
        },
        "nprocPerNode": "1",
        "pytorchReplicaSpecs": {
            "Worker": {
                "replicas": 3,
                "restartPolicy": "Never",
                "template": pod_template(
                    {
                        "name": "pytorch",
                        "command": ["torchrun"],
                        "args": ["train.py"],
                        "env": [{"name": "OWN", "value": "1"}],
                        "ports": [{"name": "pytorchjob-port", "containerPort": 29500}],
                    }
                ),
            }
        },
        "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 0},
    },
}


def test_operator_names_labels_and_restarts_each_worker_pod() -> None:
    pods = kubeflow.pods(PYTORCHJOB)
    assert [(p.name, p.hostname, p.subdomain) for p in pods] == [
        ("ddp-worker-0", "ddp-worker-0", None),
        ("ddp-worker-1", "ddp-worker-1", None),
        ("ddp-worker-2", "ddp-worker-2", None),
    ]
    operator = {
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "ddp",
        "training.kubeflow.org/replica-type": "worker",
    }
    # Without a Master, worker 0 has the master role.
    assert pods[0].labels == {
        "app": "train",
        **operator,
        "training.kubeflow.org/replica-index": "0",
        "training.kubeflow.org/job-role": "master",
    }
    assert pods[2].labels == {
        "app": "train",
        **operator,
        "training.kubeflow.org/replica-index": "2",
    }
    assert all(p.spec["restartPolicy"] == "Never" for p in pods)


def test_operator_appends_the_elastic_torchrun_environment_to_the_containers() -> None:
    pods = kubeflow.pods(PYTORCHJOB)
    assert pods[1].spec["containers"][0]["env"] == [
        {"name": "OWN", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PET_NPROC_PER_NODE", "value": "1"},
        {"name": "PET_RDZV_ENDPOINT", "value": "ddp-worker-0:29500"},
        {"name": "PET_RDZV_BACKEND", "value": "c10d"},
        {"name": "PET_NNODES", "value": "3:3"},
        {"name": "PET_MAX_RESTARTS", "value": "0"},
    ]
    process = kube.container_process(pods[1], "192.0.2.11", "node")
    assert process.argv == ["torchrun", "train.py"]
    # No rank, and no completion index: the rendezvous decides.
    assert not {"PET_NODE_RANK", "RANK", "JOB_COMPLETION_INDEX", "PET_RDZV_ID"} & set(process.env)


def test_operator_environment_follows_the_elastic_policy_and_its_defaults() -> None:
    job = copy.deepcopy(PYTORCHJOB)
    elastic = job["spec"]["elasticPolicy"]
    for key in ("minReplicas", "rdzvBackend", "rdzvPort", "maxRestarts"):
        del elastic[key]
    elastic.update(rdzvHost="rendezvous", rdzvId="run-1", standalone=True)
    elastic["rdzvConf"] = [{"key": "timeout", "value": "60"}, {"key": "is_host", "value": "0"}]
    del job["spec"]["nprocPerNode"]
    assert kubeflow.injected_env(job) == [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PET_NPROC_PER_NODE", "value": "auto"},
        # No rdzvPort: the Worker container's pytorchjob-port.
        {"name": "PET_RDZV_ENDPOINT", "value": "rendezvous:29500"},
        {"name": "PET_RDZV_BACKEND", "value": "c10d"},
        # One bound given: the other defaults to it.
        {"name": "PET_NNODES", "value": "3:3"},
        {"name": "PET_RDZV_ID", "value": "run-1"},
        {"name": "PET_RDZV_CONF", "value": "timeout=60,is_host=0"},
        {"name": "PET_STANDALONE", "value": ""},
    ]
    del job["spec"]["elasticPolicy"]
    worker = job["spec"]["pytorchReplicaSpecs"]["Worker"]
    worker["template"]["spec"]["containers"][0]["ports"] = []
    assert kubeflow.injected_env(job)[-1] == {"name": "PET_NNODES", "value": "3"}
    # Defaulting adds the operator's port when the container declares none.
    ports = kubeflow.defaulted(job)["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"][
        "containers"
    ][0]["ports"]
    assert ports == [{"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}]


def test_operator_with_a_master_ranks_the_workers_after_it_and_makes_them_wait() -> None:
    job = copy.deepcopy(PYTORCHJOB)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    replicas["Master"] = copy.deepcopy(replicas["Worker"]) | {"replicas": 1}
    del job["spec"]["elasticPolicy"]
    pods = kubeflow.pods(job)
    assert [p.name for p in pods] == [
        "ddp-worker-0",
        "ddp-worker-1",
        "ddp-worker-2",
        "ddp-master-0",
    ]
    # The Master has the master role, not Worker 0; each Worker ranks after the Master.
    assert pods[3].labels["training.kubeflow.org/job-role"] == "master"
    assert "training.kubeflow.org/job-role" not in pods[0].labels
    env = {e["name"]: e["value"] for e in pods[1].spec["containers"][0]["env"]}
    assert env == {
        "OWN": "1",
        "PYTHONUNBUFFERED": "1",
        "MASTER_PORT": "29500",
        "PET_MASTER_PORT": "29500",
        "MASTER_ADDR": "ddp-master-0",
        "PET_MASTER_ADDR": "ddp-master-0",
        "WORLD_SIZE": "4",
        "RANK": "2",
        "PET_NODE_RANK": "2",
        "PET_NPROC_PER_NODE": "1",
        "PET_NNODES": "4",
    }
    (init,) = pods[1].spec["initContainers"]
    assert init["name"] == "init-pytorch" and init["image"] == "alpine:3.10"
    assert "nslookup ddp-master-0;" in init["command"][2]
    assert "initContainers" not in pods[3].spec


def test_the_harness_refuses_what_its_status_does_not_model() -> None:
    job = copy.deepcopy(PYTORCHJOB)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    replicas["Master"] = copy.deepcopy(replicas["Worker"]) | {"replicas": 1}
    with pytest.raises(AssertionError, match="Master"):
        kubeflow.status(job, kubeflow.pods(job), [None] * 4)
    job = copy.deepcopy(PYTORCHJOB)
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "OnFailure"
    with pytest.raises(AssertionError, match="restarts"):
        kubeflow.status(job, kubeflow.pods(job), [None, None, None])


def test_operator_services_name_each_pod_in_its_namespace() -> None:
    services = kubeflow.services(PYTORCHJOB)
    assert [s["metadata"]["name"] for s in services] == [
        "ddp-worker-0",
        "ddp-worker-1",
        "ddp-worker-2",
    ]
    assert services[0]["spec"] == {
        "clusterIP": "None",
        "selector": kubeflow.operator_labels("ddp", "Worker", 0),
        "ports": [{"name": "pytorchjob-port", "port": 29500}],
    }
    pods = kubeflow.pods(PYTORCHJOB)
    names = kube.service_fqdns([PYTORCHJOB, *services], pods)
    assert {fqdn: [p.hostname for p in selected] for fqdn, selected in names.items()} == {
        f"ddp-worker-{i}.ml.svc.cluster.local": [f"ddp-worker-{i}"] for i in range(3)
    }
    # The rendezvous host the operator writes resolves through the search list.
    fqdn = "ddp-worker-0.ml.svc.cluster.local"
    assert "ddp-worker-0" in kube.names_resolving_to(fqdn, kube.search_list("ml"))
    # The pods themselves have no DNS name of their own: no subdomain.
    assert all(kube.pod_fqdn([PYTORCHJOB, *services], p) is None for p in pods)


@pytest.mark.parametrize(
    ("elastic", "exits", "status"),
    [
        (True, [None, None, None], None),
        # An elastic job succeeds with its first succeeded worker ...
        (True, [None, 0, None], "Succeeded"),
        # ... a failed pod that may not restart fails it ...
        (True, [1, None, None], "Failed"),
        (True, [0, 1, None], "Failed"),
        # ... and without an elastic policy every worker must succeed.
        (False, [None, 0, None], None),
        (False, [0, 0, 0], "Succeeded"),
    ],
)
def test_operator_status(elastic: bool, exits: list[int | None], status: str | None) -> None:
    job = copy.deepcopy(PYTORCHJOB)
    if not elastic:
        del job["spec"]["elasticPolicy"]
    assert kubeflow.status(job, kubeflow.pods(job), exits) == status


def test_hosts_file_puts_the_kubelets_line_first() -> None:
    pods = jobset.pods(JOBSET)
    own = pods[1]
    assert own.hostname == "tf-worker-0-0"
    records = {
        "tf-worker-0-0.tf-net.ml.svc.cluster.local": ["192.0.2.10"],
        "tf-net.ml.svc.cluster.local": ["192.0.2.10", "192.0.2.11"],
    }
    text = jobrun.hosts_file(
        own, "192.0.2.10", "tf-worker-0-0.tf-net.ml.svc.cluster.local", records
    )
    lines = text.splitlines()
    assert lines[3] == "192.0.2.10\ttf-worker-0-0.tf-net.ml.svc.cluster.local tf-worker-0-0"
    assert lines[4:] == [
        "192.0.2.10\ttf-worker-0-0.tf-net.ml.svc.cluster.local tf-worker-0-0.tf-net"
        " tf-worker-0-0.tf-net.ml tf-worker-0-0.tf-net.ml.svc",
        "192.0.2.10\ttf-net.ml.svc.cluster.local tf-net tf-net.ml tf-net.ml.svc",
        "192.0.2.11\ttf-net.ml.svc.cluster.local tf-net tf-net.ml tf-net.ml.svc",
    ]
