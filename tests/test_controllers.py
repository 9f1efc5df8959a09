"""The controller model (generator/cluster/controllers.py) on the real objects of every
runtime: tests/configs/runtimes.yaml generated with the CLI and built with the real
kustomize for each cluster (`clusters/<cluster>/workloads/namespaces/<ns>` and, for the
ClusterTrainingRuntimes, `clusters/<cluster>/platform`), as a GitOps engine builds them.

Every count, role and name below follows from that config (`WORKLOADS`) and from what
each controller does at the pinned version, so a model that loses a replica, a label
or a scheduling field the overlays add fails here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, kustomize_build

from generator.cli import main
from generator.cluster import controllers
from generator.cluster.controllers import MissingRuntime, NotModelled, PodGroup
from generator.render.pods import WRITABLE_ENV

Objects = list[dict[str, Any]]
RUNTIMES_CONFIG = CONFIGS / "runtimes.yaml"
CONFIG = yaml.safe_load(RUNTIMES_CONFIG.read_text())
WORKLOADS = {w["name"]: w for w in CONFIG["workloads"]}
CLUSTERS = {"eks-a": "eks", "gke-b": "gke", "laptop": "local"}
NAMESPACES = ("training", "research", "llm")
# The node label each cloud's overlay requires of GPU pods (README, "Per cloud").
ACCELERATOR_LABEL = {
    "eks": "k8s.amazonaws.com/accelerator",
    "gke": "cloud.google.com/gke-accelerator",
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
COMPLETION_INDEX_REF = {
    "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
}
RESTART_ATTEMPT_REF = {
    "fieldRef": {"fieldPath": "metadata.labels['jobset.sigs.k8s.io/restart-attempt']"}
}
# What placement reads of a pod spec: the same for every pod of a group.
SCHEDULING = (
    "nodeSelector",
    "affinity",
    "tolerations",
    "volumes",
    "serviceAccountName",
    "priorityClassName",
)

# The fabric defaults every PyTorch pod gets (render/fabric.py nccl_env).
PYTORCH_NCCL_ENV = {
    "NCCL_SOCKET_IFNAME": "eth0",
    "NCCL_DEBUG": "WARN",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Objects]:
    out = tmp_path_factory.mktemp("controllers")
    result = CliRunner().invoke(
        main, ["generate", "--config", str(RUNTIMES_CONFIG), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    built = {}
    for cluster in CLUSTERS:
        folder = out / "clusters" / cluster
        # Exactly the per-namespace paths the cluster syncs.
        assert {p.name for p in (folder / "workloads/namespaces").iterdir()} == set(NAMESPACES)
        built[cluster, "platform"] = kustomize_build(folder / "platform")
        for namespace in NAMESPACES:
            built[cluster, namespace] = kustomize_build(folder / "workloads/namespaces" / namespace)
    return built


def runtimes_of(builds: dict[tuple[str, str], Objects], cluster: str) -> dict[str, Any]:
    platform = builds[cluster, "platform"]
    return {o["metadata"]["name"]: o for o in platform if o["kind"] == "ClusterTrainingRuntime"}


def workload(builds: dict[tuple[str, str], Objects], cluster: str, name: str) -> dict[str, Any]:
    namespace = WORKLOADS[name]["namespace"]
    (found,) = [
        o
        for o in builds[cluster, namespace]
        if o["kind"] in controllers.TRAINING_KINDS and o["metadata"]["name"] == name
    ]
    return found


def container(group: PodGroup | controllers.Pod) -> dict[str, Any]:
    (only,) = group.spec["containers"]
    return dict(only)


def env(spec_container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec_container.get("env", [])}


def resources(cluster: str, name: str) -> dict[str, Any]:
    """The pod's resources on the cluster: the config's, or kind's laptop sizing."""
    wanted = WORKLOADS[name]["resources"]
    if CLUSTERS[cluster] == "local":
        return {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}
    limits: dict[str, Any] = {"cpu": wanted["cpu"], "memory": wanted["memory"]}
    if wanted.get("gpu"):
        limits["nvidia.com/gpu"] = wanted["gpu"]
    return {"limits": limits, "requests": {"cpu": wanted["cpu"], "memory": wanted["memory"]}}


def assert_gpu_scheduling(group: PodGroup, cluster: str) -> None:
    """GPU pods: the cloud's accelerator affinity and the GPU toleration; none on kind."""
    cloud = CLUSTERS[cluster]
    if cloud == "local":
        assert GPU_TOLERATION not in group.spec.get("tolerations", [])
        assert "nodeAffinity" not in group.spec.get("affinity", {})
        return
    assert GPU_TOLERATION in group.spec["tolerations"]
    terms = group.spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": ACCELERATOR_LABEL[cloud], "operator": "Exists"}]}
    ]


def assert_restricted(spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (only,) = spec["containers"]
    assert only["securityContext"]["allowPrivilegeEscalation"] is False
    assert only["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# --- each runtime, on each cluster ------------------------------------------------------


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_an_indexed_job_is_one_group_of_one_pod_per_index(
    builds: dict[tuple[str, str], Objects], cluster: str
) -> None:
    job = workload(builds, cluster, "plain-ddp")
    workers = WORKLOADS["plain-ddp"]["workers"]
    (group,) = controllers.pod_groups(job)
    assert (group.owner_kind, group.owner, group.namespace, group.role, group.count) == (
        "Job",
        "plain-ddp",
        "training",
        "",
        workers,
    )
    template_labels = job["spec"]["template"]["metadata"]["labels"]
    assert group.labels == {
        **template_labels,
        "job-name": "plain-ddp",
        "batch.kubernetes.io/job-name": "plain-ddp",
    }
    trainer = container(group)
    assert trainer["resources"] == resources(cluster, "plain-ddp")
    assert list(env(trainer))[-1] == "JOB_COMPLETION_INDEX"
    assert env(trainer)["JOB_COMPLETION_INDEX"] == COMPLETION_INDEX_REF
    assert "tolerations" not in group.spec and "affinity" not in group.spec
    pods = controllers.pods(job)
    assert [(p.hostname, p.subdomain, p.index) for p in pods] == [
        (f"plain-ddp-{i}", "plain-ddp", i) for i in range(workers)
    ]
    assert [p.labels["batch.kubernetes.io/job-completion-index"] for p in pods] == [
        str(i) for i in range(workers)
    ]
    assert controllers.services(job) == []


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_pytorchjob_runs_its_worker_replicas_with_the_operators_environment(
    builds: dict[tuple[str, str], Objects], cluster: str
) -> None:
    job = workload(builds, cluster, "torch-elastic")
    config = WORKLOADS["torch-elastic"]
    (group,) = controllers.pod_groups(job)
    # The replicas, not the elastic bounds, are the pods the operator creates.
    assert (group.owner_kind, group.role, group.count) == (
        "PyTorchJob",
        "worker",
        config["workers"],
    )
    assert group.labels == {
        **job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"]["labels"],
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "torch-elastic",
        "training.kubeflow.org/replica-type": "worker",
    }
    pytorch = container(group)
    assert pytorch["resources"] == resources(cluster, "torch-elastic")
    assert_gpu_scheduling(group, cluster)
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in group.spec["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["torch-elastic-checkpoint"]
    elastic = config["elastic"]
    assert env(pytorch) == {
        "PYTHONUNBUFFERED": "1",
        **dict(WRITABLE_ENV),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "110",
        "MLGITOPS_CHECKPOINT_DIR": config["checkpoint"]["mountPath"],
        **PYTORCH_NCCL_ENV,
        "PET_NPROC_PER_NODE": "1",
        "PET_RDZV_ENDPOINT": f"torch-elastic-worker-0:{job['spec']['elasticPolicy']['rdzvPort']}",
        "PET_RDZV_BACKEND": "c10d",
        "PET_NNODES": f"{elastic['minReplicas']}:{elastic['maxReplicas']}",
        "PET_MAX_RESTARTS": str(config["maxRestarts"]),
    }
    assert (
        group.spec["restartPolicy"] == job["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"]
    )
    pods = controllers.pods(job)
    assert [p.name for p in pods] == [f"torch-elastic-worker-{i}" for i in range(config["workers"])]
    # Without a Master, Worker 0 has the master role: a per-pod label, not the group's.
    assert [p.labels.get("training.kubeflow.org/job-role") for p in pods] == ["master", None, None]
    assert [s["metadata"]["name"] for s in controllers.services(job)] == [p.name for p in pods]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_tfjob_runs_a_chief_its_workers_and_parameter_servers_with_tf_config(
    builds: dict[tuple[str, str], Objects], cluster: str
) -> None:
    job = workload(builds, cluster, "tf-ps")
    config = WORKLOADS["tf-ps"]
    groups = controllers.pod_groups(job)
    counts = {g.role: g.count for g in groups}
    assert counts == {"chief": 1, "ps": config["parameterServers"], "worker": config["workers"]}
    labels = {g.role: g.labels for g in groups}
    assert labels["chief"]["training.kubeflow.org/job-role"] == "master"  # with a Chief
    assert "training.kubeflow.org/job-role" not in labels["worker"]
    assert {g.labels["training.kubeflow.org/operator-name"] for g in groups} == {"tfjob-controller"}
    for group in groups:
        assert group.labels["training.kubeflow.org/replica-type"] == group.role
        assert container(group)["resources"] == resources(cluster, "tf-ps")
        assert group.spec["restartPolicy"] == "Never"
    pods = controllers.pods(job)
    assert len(pods) == 1 + config["workers"] + config["parameterServers"]
    cluster_spec = {
        role: [f"tf-ps-{role}-{i}.research.svc:2222" for i in range(count)]
        for role, count in sorted(counts.items())
    }
    for pod in pods:
        tf_config = env(container(pod))["TF_CONFIG"]
        assert json.loads(tf_config) == {
            "cluster": cluster_spec,
            "task": {"type": pod.role, "index": pod.index},
            "environment": "cloud",
        }
        # Go's encoding/json: compact, the cluster's keys sorted.
        assert tf_config.startswith('{"cluster":{"chief":["tf-ps-chief-0.research.svc:2222"],"ps":')
    # Each address in TF_CONFIG is a Service the operator creates for that pod.
    services = {f"{s['metadata']['name']}.research.svc" for s in controllers.services(job)}
    assert services == {
        a.rpartition(":")[0] for addresses in cluster_spec.values() for a in addresses
    }


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_jobset_runs_a_group_per_replicated_job_named_as_the_generator_addresses_them(
    builds: dict[tuple[str, str], Objects], cluster: str
) -> None:
    jobset = workload(builds, cluster, "jobset-tf")
    config = WORKLOADS["jobset-tf"]
    groups = controllers.pod_groups(jobset)
    assert [(g.role, g.count) for g in groups] == [
        ("chief", 1),
        ("worker", config["workers"]),
        ("ps", config["parameterServers"]),
    ]
    for group in groups:
        assert group.owner_kind == "JobSet"
        assert group.labels["jobset.sigs.k8s.io/jobset-name"] == "jobset-tf"
        assert group.labels["jobset.sigs.k8s.io/replicatedjob-name"] == group.role
        assert group.labels["jobset.sigs.k8s.io/global-replicas"] == "3"
        # One Job per replicated job: its Job's labels are every pod's.
        assert group.labels["batch.kubernetes.io/job-name"] == f"jobset-tf-{group.role}-0"
        assert group.labels["jobset.sigs.k8s.io/priority"] == "0"  # JobSet's pod webhook
        assert group.spec["subdomain"] == "jobset-tf"
        assert group.spec["restartPolicy"] == "Never"
        assert container(group)["resources"] == resources(cluster, "jobset-tf")
        assert any(v.get("persistentVolumeClaim") for v in group.spec["volumes"])
    # The generator's TF_CLUSTER names exactly the pods' DNS names under the subdomain.
    pods = controllers.pods(jobset)
    tf_cluster = json.loads(env(container(pods[0]))["TF_CLUSTER"])
    addresses = {a.rpartition(":")[0] for group in tf_cluster.values() for a in group}
    assert addresses == {f"{p.hostname}.{p.subdomain}" for p in pods}
    (service,) = controllers.services(jobset)
    assert service["metadata"]["name"] == "jobset-tf"
    assert service["spec"]["selector"] == {"jobset.sigs.k8s.io/jobset-name": "jobset-tf"}


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_trainjob_runs_its_runtimes_pods_with_the_trainjobs_trainer(
    builds: dict[tuple[str, str], Objects], cluster: str
) -> None:
    trainjob = workload(builds, cluster, "llm-sft")
    runtimes = runtimes_of(builds, cluster)
    trainer = trainjob["spec"]["trainer"]
    (group,) = controllers.pod_groups(trainjob, runtimes)
    assert (group.owner_kind, group.owner, group.namespace, group.role) == (
        "TrainJob",
        "llm-sft",
        "llm",
        "node",
    )
    assert group.count == WORKLOADS["llm-sft"]["workers"] == trainer["numNodes"]
    runtime = runtimes[trainjob["spec"]["runtimeRef"]["name"]]
    (rjob,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    pod_template = rjob["template"]["spec"]["template"]
    # The runtime's pod labels and JobSet's; neither the TrainJob's nor the Job template's.
    assert group.labels["jobset.sigs.k8s.io/jobset-name"] == "llm-sft"
    assert pod_template["metadata"]["labels"].items() <= group.labels.items()
    assert "kueue.x-k8s.io/queue-name" not in group.labels
    assert "trainer.kubeflow.org/trainjob-ancestor-step" not in group.labels
    # The runtime's restricted pod, the TrainJob's image, command and resources.
    assert_restricted(group.spec)
    assert group.spec["securityContext"] == pod_template["spec"]["securityContext"]
    node = container(group)
    assert node["name"] == "node"
    assert node["image"] == trainer["image"] and node["command"] == trainer["command"]
    assert node["resources"] == trainer["resourcesPerNode"] == resources(cluster, "llm-sft")
    assert_gpu_scheduling(group, cluster)
    assert env(node) == {
        "PYTHONUNBUFFERED": "1",
        **dict(WRITABLE_ENV),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "110",
        "MLGITOPS_RESTART_ATTEMPT": RESTART_ATTEMPT_REF,
        **PYTORCH_NCCL_ENV,
        **{e["name"]: e["value"] for e in trainer["env"]},
        "PET_NNODES": str(trainer["numNodes"]),
        "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
        "PET_NODE_RANK": COMPLETION_INDEX_REF,
        "PET_MASTER_ADDR": "llm-sft-node-0-0.llm-sft",
        "PET_MASTER_PORT": "29500",
        "JOB_COMPLETION_INDEX": COMPLETION_INDEX_REF,
    }
    # Trainer's port replaces the runtime's port of that number.
    assert node["ports"] == [{"containerPort": 29500, "protocol": "TCP"}]
    pods = controllers.pods(trainjob, runtimes)
    assert [p.hostname for p in pods] == [f"llm-sft-node-0-{i}" for i in range(group.count)]
    assert {(p.owner_kind, p.owner) for p in pods} == {("TrainJob", "llm-sft")}
    # The master address is pod 0's name under the Service of the JobSet's subdomain.
    (service,) = controllers.services(trainjob, runtimes)
    assert f"{pods[0].hostname}.{service['metadata']['name']}" == env(node)["PET_MASTER_ADDR"]


def test_the_trainjob_sets_nodes_processes_image_and_resources_over_the_runtime(
    builds: dict[tuple[str, str], Objects],
) -> None:
    trainjob = copy.deepcopy(workload(builds, "eks-a", "llm-sft"))
    runtimes = copy.deepcopy(runtimes_of(builds, "eks-a"))
    trainer = trainjob["spec"]["trainer"]
    trainer.update(image="registry.example.com/ml/sft:9.9.9", numNodes=5, numProcPerNode=3)
    trainer["resourcesPerNode"] = {"limits": {"memory": "30Gi"}}  # merged key by key
    trainer["env"] = [{"name": "PYTHONUNBUFFERED", "value": "0"}, {"name": "EXTRA", "value": "x"}]
    (group,) = controllers.pod_groups(trainjob, runtimes)
    node = container(group)
    assert group.count == 5
    assert node["image"] == "registry.example.com/ml/sft:9.9.9"
    assert node["resources"]["limits"] == {"cpu": "6", "memory": "30Gi", "nvidia.com/gpu": 1}
    assert node["resources"]["requests"] == {"cpu": "6", "memory": "24Gi"}
    variables = env(node)
    assert list(variables)[: 3 + len(WRITABLE_ENV) + len(PYTORCH_NCCL_ENV)] == [
        "PYTHONUNBUFFERED",
        *dict(WRITABLE_ENV),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT",
        "MLGITOPS_RESTART_ATTEMPT",
        *PYTORCH_NCCL_ENV,
    ]  # upserted in place
    assert variables["PYTHONUNBUFFERED"] == "0" and variables["EXTRA"] == "x"
    assert (variables["PET_NNODES"], variables["PET_NPROC_PER_NODE"]) == ("5", "3")
    # Without numNodes the runtime's mlPolicy.numNodes. Without numProcPerNode "auto",
    # which without GPUs is one process per CPU (rounded up, at least 1); Trainer counts
    # the GPUs of the TrainJob's resourcesPerNode when it has some, not of the merge.
    del trainer["numNodes"], trainer["numProcPerNode"]
    trainer["resourcesPerNode"] = {"limits": {"cpu": "2500m", "memory": "8Gi"}}
    runtime = runtimes[trainjob["spec"]["runtimeRef"]["name"]]
    runtime["spec"]["mlPolicy"]["numNodes"] = 3
    (group,) = controllers.pod_groups(trainjob, runtimes)
    assert group.count == 3
    assert container(group)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env(container(group))["PET_NPROC_PER_NODE"] == "3"
    del trainer["resourcesPerNode"]  # the runtime's, with its GPU
    (group,) = controllers.pod_groups(trainjob, runtimes)
    assert env(container(group))["PET_NPROC_PER_NODE"] == "auto"
    (rjob,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    del rjob["template"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    (group,) = controllers.pod_groups(trainjob, runtimes)
    assert env(container(group))["PET_NPROC_PER_NODE"] == "1"


def test_a_trainjob_whose_runtime_the_cluster_lacks_has_no_pods(
    builds: dict[tuple[str, str], Objects],
) -> None:
    trainjob = workload(builds, "gke-b", "llm-sft")
    name = trainjob["spec"]["runtimeRef"]["name"]
    for runtimes in (None, {}, {"other": runtimes_of(builds, "gke-b")[name]}):
        with pytest.raises(MissingRuntime) as missing:
            controllers.pod_groups(trainjob, runtimes)
        assert missing.value.args[0] == name == missing.value.name
        with pytest.raises(MissingRuntime):
            controllers.pods(trainjob, runtimes)
    # A namespaced TrainingRuntime is looked for, not the ClusterTrainingRuntime.
    namespaced = copy.deepcopy(trainjob)
    namespaced["spec"]["runtimeRef"]["kind"] = "TrainingRuntime"
    with pytest.raises(MissingRuntime):
        controllers.pod_groups(namespaced, runtimes_of(builds, "gke-b"))
    runtime = copy.deepcopy(runtimes_of(builds, "gke-b")[name])
    runtime["kind"] = "TrainingRuntime"
    runtime["metadata"]["namespace"] = "llm"
    (group,) = controllers.pod_groups(namespaced, {name: runtime})
    assert group.count == trainjob["spec"]["trainer"]["numNodes"]
    runtime["metadata"]["namespace"] = "training"
    with pytest.raises(MissingRuntime):
        controllers.pod_groups(namespaced, {name: runtime})


def test_kinds_no_controller_here_runs_have_no_pods(builds: dict[tuple[str, str], Objects]) -> None:
    others = [
        o
        for objects in builds.values()
        for o in objects
        if o["kind"] not in controllers.TRAINING_KINDS
    ]
    assert {"Namespace", "NetworkPolicy", "ClusterTrainingRuntime", "PersistentVolumeClaim"} <= {
        o["kind"] for o in others
    }
    impostor = {**workload(builds, "eks-a", "plain-ddp"), "apiVersion": "example.com/v1"}
    for obj in [*others, impostor, {"kind": "Deployment"}, {}]:
        assert controllers.pod_groups(obj) == []
        assert controllers.pods(obj) == []
        assert controllers.services(obj) == []


def test_a_group_is_its_pods(builds: dict[tuple[str, str], Objects]) -> None:
    """Over every built training object: the groups count the pods one by one gives, every
    pod carries its group's labels, and its scheduling fields are its group's."""
    seen = set()
    for (cluster, _), objects in builds.items():
        runtimes = runtimes_of(builds, cluster)
        for obj in (o for o in objects if o["kind"] in controllers.TRAINING_KINDS):
            groups = controllers.pod_groups(obj, runtimes)
            pods = controllers.pods(obj, runtimes)
            assert sum(g.count for g in groups) == len(pods), obj["metadata"]["name"]
            for group in groups:
                members = [p for p in pods if p.role == group.role]
                assert len(members) == group.count
                for pod in members:
                    assert group.labels.items() <= pod.labels.items()
                    for field in SCHEDULING:
                        assert pod.spec.get(field) == group.spec.get(field), field
                    for ours, theirs in zip(
                        pod.spec["containers"], group.spec["containers"], strict=True
                    ):
                        assert ours["resources"] == theirs["resources"]
                seen.add(group.owner_kind)
    assert seen == controllers.TRAINING_KINDS


# --- what the generator does not emit, but a repository may hold ---------------------


def small_job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ml"},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        ({}, 1),
        ({"parallelism": 4}, 4),
        ({"parallelism": 4, "completions": 2}, 2),
        ({"parallelism": 0}, 0),
    ],
)
def test_a_non_indexed_job_runs_parallelism_pods_at_most_its_completions(
    spec: dict[str, Any], count: int
) -> None:
    job = small_job(**spec)
    assert sum(g.count for g in controllers.pod_groups(job)) == count
    pods = controllers.pods(job)
    assert (
        [p.hostname for p in pods]
        == [p.name for p in pods]
        == [f"j-e2e{i:02d}" for i in range(count)]
    )
    assert all("env" not in c for p in pods for c in p.spec["containers"])


def test_an_indexed_job_runs_its_lowest_indexes_first() -> None:
    job = small_job(completionMode="Indexed", completions=5, parallelism=2)
    (group,) = controllers.pod_groups(job)
    assert group.count == 2
    assert [p.index for p in controllers.pods(job)] == [0, 1]


def test_objects_another_controller_manages_get_no_pods_here() -> None:
    job = small_job(managedBy="kueue.x-k8s.io/multikueue")
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "js"},
        "spec": {
            "managedBy": "kueue.x-k8s.io/multikueue",
            "replicatedJobs": [{"name": "w", "template": job}],
        },
    }
    for obj in (job, jobset):
        assert controllers.pod_groups(obj) == controllers.pods(obj) == []


def exclusive_jobset(annotations: dict[str, str]) -> dict[str, Any]:
    pod = {"spec": {"containers": [{"name": "c"}]}}
    job = {"spec": {"completions": 2, "parallelism": 2, "template": pod}}
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "js", "namespace": "ml", "annotations": annotations},
        "spec": {"replicatedJobs": [{"name": "slice", "replicas": 3, "template": job}]},
    }


def test_jobset_exclusive_placement_makes_each_jobs_pods_a_group_of_their_own() -> None:
    groups = controllers.pod_groups(
        exclusive_jobset({"alpha.jobset.sigs.k8s.io/exclusive-topology": "zone"})
    )
    assert [(g.role, g.count) for g in groups] == [("slice", 2)] * 3
    keys = [g.labels["jobset.sigs.k8s.io/job-key"] for g in groups]
    for group, key in zip(groups, keys, strict=True):
        (together,) = group.spec["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert together["topologyKey"] == "zone"
        assert together["labelSelector"]["matchExpressions"][0]["values"] == [key]
    # Without it, the Jobs of a replicated job are one group.
    (group,) = controllers.pod_groups(exclusive_jobset({}))
    assert (group.count, "jobset.sigs.k8s.io/job-key" in group.labels) == (6, False)
    # The node-selector strategy: a selector and a toleration per Job instead.
    groups = controllers.pod_groups(
        exclusive_jobset(
            {
                "alpha.jobset.sigs.k8s.io/exclusive-topology": "zone",
                "alpha.jobset.sigs.k8s.io/node-selector": "true",
            }
        )
    )
    assert [g.spec["nodeSelector"] for g in groups] == [
        {"alpha.jobset.sigs.k8s.io/namespaced-job": f"ml_js-slice-{i}"} for i in range(3)
    ]
    assert all("affinity" not in g.spec and PRIORITY not in g.labels for g in groups)


PRIORITY = "jobset.sigs.k8s.io/priority"


def test_runtime_patches_merge_into_the_runtimes_pods(
    builds: dict[tuple[str, str], Objects],
) -> None:
    """What Kueue writes when it admits a TrainJob (manager `kueue.x-k8s.io/manager`): the
    flavor's node selector and tolerations for the trainer's pods."""
    trainjob = copy.deepcopy(workload(builds, "eks-a", "llm-sft"))
    runtimes = runtimes_of(builds, "eks-a")
    toleration = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    pod_patch = {
        "metadata": {"labels": {"kueue.x-k8s.io/podset": "node"}},
        "spec": {
            "nodeSelector": {"eks.amazonaws.com/nodegroup": "gpu"},
            "tolerations": [toleration],
            "volumes": [
                {"name": "dshm", "persistentVolumeClaim": {"claimName": "shm"}},
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }
    trainjob["spec"]["runtimePatches"] = [
        {
            "manager": "kueue.x-k8s.io/manager",
            "trainingRuntimeSpec": {
                "template": {
                    "spec": {
                        "replicatedJobs": [
                            {"name": "node", "template": {"spec": {"template": pod_patch}}}
                        ]
                    }
                }
            },
        }
    ]
    (group,) = controllers.pod_groups(trainjob, runtimes)
    assert group.spec["nodeSelector"] == {"eks.amazonaws.com/nodegroup": "gpu"}
    assert group.spec["tolerations"] == [toleration]  # a list without merge key: replaced
    # Volumes merge by name and keep only the patch's source (`retainKeys`).
    assert group.spec["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "dshm", "persistentVolumeClaim": {"claimName": "shm"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    assert group.labels["kueue.x-k8s.io/podset"] == "node"
    assert group.labels["app.kubernetes.io/name"] == "llm-sft"  # the runtime's, kept
    bad = copy.deepcopy(trainjob)
    bad["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][
        0
    ]["name"] = "launcher"
    with pytest.raises(NotModelled):
        controllers.pod_groups(bad, runtimes)


def test_runtimes_the_model_does_not_follow_are_refused(
    builds: dict[tuple[str, str], Objects],
) -> None:
    trainjob = workload(builds, "eks-a", "llm-sft")
    name = trainjob["spec"]["runtimeRef"]["name"]
    for policy in ({"mlPolicy": {"mpi": {}}}, {"podGroupPolicy": {"coscheduling": {}}}):
        runtime = copy.deepcopy(runtimes_of(builds, "eks-a")[name])
        runtime["spec"].update(policy)
        with pytest.raises(NotModelled):
            controllers.pod_groups(trainjob, {name: runtime})


def test_the_inputs_are_never_changed(builds: dict[tuple[str, str], Objects]) -> None:
    before = copy.deepcopy(builds)
    for (cluster, _), objects in builds.items():
        for obj in objects:
            controllers.pod_groups(obj, runtimes_of(builds, cluster))
            controllers.pods(obj, runtimes_of(builds, cluster))
            controllers.services(obj, runtimes_of(builds, cluster))
    assert builds == before
