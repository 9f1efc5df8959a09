"""What the Kubeflow Training Operator (v1.9) does with a built PyTorchJob.

Modelled on the operator's code (github.com/kubeflow/training-operator, now
kubeflow/trainer, branch release-1.9), not on this project's generator:

- defaults (pkg/apis/kubeflow.org/v1/pytorch_defaults.go, `SetDefaults_PyTorchJob`):
  replicas 1, restart policy `OnFailure`, a port `pytorchjob-port` (23456) on the
  container `pytorch` when it has none; elastic bounds default to each other, or to the
  Worker replicas; `nprocPerNode` defaults to `auto` unless `elasticPolicy.nProcPerNode`
  is set;
- pods (pkg/controller.v1/common/pod.go, `createNewPod`): pod `i` of a replica type is
  named `<job>-<type>-<i>` (the kubelet makes that its hostname: no hostname, no
  subdomain is set), keeps the template's labels and gets the operator's:
  `training.kubeflow.org/operator-name: pytorchjob-controller`, `job-name`,
  `replica-type` (lower case), `replica-index`, and `job-role: master` on the master
  role, which without a Master replica is Worker 0 (pytorchjob_controller.go,
  `IsMasterRole`); the replica's restart policy becomes the pod's (`ExitCode`: `Never`);
- environment (pkg/controller.v1/pytorch/envvar.go `setPodEnv`, elastic.go), appended to
  every container after the template's own: `PYTHONUNBUFFERED=1`; with a Master replica
  the Master's address, `WORLD_SIZE`, `RANK`, `PET_NODE_RANK` (not modelled: a run
  refuses a Master); `PET_NPROC_PER_NODE` from `nprocPerNode`; then with an elastic
  policy `PET_RDZV_ENDPOINT=<rdzvHost or <job>-worker-0>:<rdzvPort or the Worker's
  pytorchjob-port>`, `PET_RDZV_BACKEND` (default c10d), `PET_NNODES=<min>:<max>`, and
  only when set `PET_MAX_RESTARTS`, `PET_NPROC_PER_NODE` (from the deprecated
  `elasticPolicy.nProcPerNode`), `PET_RDZV_ID`, `PET_RDZV_CONF`, `PET_STANDALONE`;
  without one `PET_NNODES=<all replicas>`. Nothing sets a node rank or a
  `JOB_COMPLETION_INDEX`: an elastic rendezvous hands out the ranks;
- services (common/service.go, `CreateNewService`): one headless Service per pod, named
  like it, selecting the operator's labels of that pod (type and index), with the ports
  of the container `pytorch`; it does not publish not-ready addresses;
- status (pytorchjob_controller.go, `UpdateJobStatus`): without a Master the job
  succeeds when every Worker has, or with an elastic policy as soon as one has; a
  failed pod whose replica may not restart (`Never`) fails it.

Restarts of failed pods (any restart policy but `Never`) are not modelled: a run refuses
them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import kube

CONTAINER = "pytorch"
PORT_NAME = "pytorchjob-port"
DEFAULT_PORT = 23456
DEFAULT_NPROC_PER_NODE = "auto"
CONTROLLER_NAME = "pytorchjob-controller"
PREFIX = "training.kubeflow.org/"
OPERATOR_NAME_LABEL = PREFIX + "operator-name"
JOB_NAME_LABEL = PREFIX + "job-name"
REPLICA_TYPE_LABEL = PREFIX + "replica-type"
REPLICA_INDEX_LABEL = PREFIX + "replica-index"
JOB_ROLE_LABEL = PREFIX + "job-role"
REPLICA_TYPES = ("Master", "Worker")


def defaulted(pytorchjob: kube.Manifest) -> kube.Manifest:
    """The PyTorchJob as the operator's defaulting leaves it."""
    job = copy.deepcopy(pytorchjob)
    spec = job["spec"]
    replicas = spec["pytorchReplicaSpecs"]
    for key in list(replicas):
        camel = next((t for t in REPLICA_TYPES if t.lower() == key.lower()), key)
        replicas[camel] = replicas.pop(key)
    for replica in replicas.values():
        replica.setdefault("replicas", 1)
        replica.setdefault("restartPolicy", "OnFailure")
        containers = replica["template"]["spec"]["containers"]
        container = next((c for c in containers if c["name"] == CONTAINER), containers[0])
        ports = container.setdefault("ports", [])
        if all(p.get("name") != PORT_NAME for p in ports):
            ports.append({"name": PORT_NAME, "containerPort": DEFAULT_PORT, "protocol": "TCP"})
    elastic = spec.get("elasticPolicy")
    if elastic is not None:
        low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
        if low is None and high is None:
            low = high = replicas["Worker"]["replicas"]
        elastic["minReplicas"] = high if low is None else low
        elastic["maxReplicas"] = low if high is None else high
    if elastic is None or elastic.get("nProcPerNode") is None:
        spec.setdefault("nprocPerNode", DEFAULT_NPROC_PER_NODE)
    spec.setdefault("runPolicy", {}).setdefault("cleanPodPolicy", "None")
    return job


def operator_labels(name: str, replica_type: str, index: int) -> dict[str, str]:
    return {
        OPERATOR_NAME_LABEL: CONTROLLER_NAME,
        JOB_NAME_LABEL: name.replace("/", "-"),
        REPLICA_TYPE_LABEL: replica_type.lower(),
        REPLICA_INDEX_LABEL: str(index),
    }


def pod_name(name: str, replica_type: str, index: int) -> str:
    return f"{name}-{replica_type.lower()}-{index}".replace("/", "-")


def injected_env(pytorchjob: kube.Manifest) -> list[dict[str, str]]:
    """What `setPodEnv` appends to every container of a Worker pod (no Master)."""
    job = defaulted(pytorchjob)
    spec = job["spec"]
    replicas = spec["pytorchReplicaSpecs"]
    assert "Master" not in replicas, "a Master replica is not modelled"
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    if spec.get("nprocPerNode") is not None:
        env.append({"name": "PET_NPROC_PER_NODE", "value": str(spec["nprocPerNode"])})
    elastic = spec.get("elasticPolicy")
    if elastic is None:
        total = sum(int(r["replicas"]) for r in replicas.values())
        return [*env, {"name": "PET_NNODES", "value": str(total)}]
    host = elastic.get("rdzvHost") or f"{job['metadata']['name']}-worker-0"
    port = elastic.get("rdzvPort")
    if port is None:
        port = _worker_port(replicas["Worker"])
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
    if elastic.get("rdzvConf"):
        conf = ",".join(f"{c['key']}={c['value']}" for c in elastic["rdzvConf"])
        env.append({"name": "PET_RDZV_CONF", "value": conf})
    if elastic.get("standalone"):
        env.append({"name": "PET_STANDALONE", "value": ""})
    return env


def _worker_port(worker: kube.Manifest) -> int:
    for container in worker["template"]["spec"]["containers"]:
        if container["name"] == CONTAINER:
            for port in container.get("ports", []):
                if port.get("name") == PORT_NAME:
                    return int(port["containerPort"])
    raise ValueError("port not found")  # the operator's error: the job gets no pods


def pods(pytorchjob: kube.Manifest) -> list[kube.Pod]:
    """Every pod the operator creates for the job, Worker 0 first."""
    job = defaulted(pytorchjob)
    name = job["metadata"]["name"]
    namespace = job["metadata"].get("namespace", "default")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    env = injected_env(job)
    created = []
    for replica_type, replica in replicas.items():
        template = replica["template"]
        for index in range(int(replica["replicas"])):
            labels = {
                **template.get("metadata", {}).get("labels", {}),
                **operator_labels(name, replica_type, index),
            }
            if replica_type == "Worker" and index == 0:
                labels[JOB_ROLE_LABEL] = "master"
            spec: dict[str, Any] = copy.deepcopy(template["spec"])
            spec["containers"] = [
                {**c, "env": [*c.get("env", []), *env]} for c in spec["containers"]
            ]
            policy = replica["restartPolicy"]
            spec["restartPolicy"] = "Never" if policy == "ExitCode" else policy
            created.append(
                kube.Pod(
                    job=name,
                    namespace=namespace,
                    index=index,
                    hostname=spec.get("hostname") or pod_name(name, replica_type, index),
                    subdomain=spec.get("subdomain"),
                    labels=labels,
                    annotations=dict(template.get("metadata", {}).get("annotations", {})),
                    spec=spec,
                    pod_name=pod_name(name, replica_type, index),
                )
            )
    return created


def services(pytorchjob: kube.Manifest) -> list[kube.Manifest]:
    """The headless Service the operator creates for each pod."""
    job = defaulted(pytorchjob)
    name = job["metadata"]["name"]
    namespace = job["metadata"].get("namespace", "default")
    created = []
    for replica_type, replica in job["spec"]["pytorchReplicaSpecs"].items():
        containers = replica["template"]["spec"]["containers"]
        ports = [
            {"name": p["name"], "port": int(p["containerPort"])}
            for c in containers
            if c["name"] == CONTAINER
            for p in c.get("ports", [])
            if p.get("name")
        ]
        for index in range(int(replica["replicas"])):
            labels = operator_labels(name, replica_type, index)
            created.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": pod_name(name, replica_type, index),
                        "namespace": namespace,
                        "labels": labels,
                    },
                    "spec": {"clusterIP": "None", "selector": labels, "ports": ports},
                }
            )
    return created


def status(
    pytorchjob: kube.Manifest, all_pods: Sequence[kube.Pod], exits: Sequence[int | None]
) -> str | None:
    """`Succeeded` or `Failed` once the pods have exited as `exits` say (None: running);
    None while the job runs."""
    job = defaulted(pytorchjob)
    workers = job["spec"]["pytorchReplicaSpecs"]["Worker"]
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
