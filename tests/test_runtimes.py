"""Every runtime a workload can choose, built with the real kustomize and checked against
strict schemas, and the NetworkPolicies checked against the pods each controller makes.

The pods come from the product's controller model (generator/cluster/controllers.py,
modelled on each controller's source, not on the generator, and checked against the real
objects in tests/test_controllers.py): the labels every pod of a group carries
(`pod_groups`) must all match a policy's selector, and no single pod of another workload
(`pods`, with its per-pod labels) may.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, build_and_validate, kustomization_folders, schema_args

from generator.cli import main
from generator.cluster import controllers
from generator.config import rules
from generator.config.load import load_default_config
from generator.render import runtimes
from generator.validate import policies

RUNTIMES_CONFIG = CONFIGS / "runtimes.yaml"
Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runtimes")
    result = CliRunner().invoke(
        main, ["generate", "--config", str(RUNTIMES_CONFIG), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def built(tree: Path) -> dict[Path, Objects]:
    return build_and_validate(tree, "1.34")


def _objects(built: dict[Path, Objects], folder: str) -> Objects:
    return next(objects for path, objects in built.items() if path.as_posix().endswith(folder))


def _one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# --- the pods each controller creates (generator.cluster.controllers) ---------------


def _runtimes(objects: Objects) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"].endswith("TrainingRuntime")}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


TRAINING_KINDS = set(controllers.TRAINING_KINDS)


@pytest.mark.parametrize("cluster", ["eks-a", "gke-b", "laptop"])
def test_network_policies_select_exactly_the_pods_each_controller_creates(
    built: dict[Path, Objects], cluster: str
) -> None:
    runtimes = _runtimes(_objects(built, f"clusters/{cluster}/platform"))
    kinds_seen = set()
    for namespace in ("training", "research", "llm"):
        objects = _objects(built, f"clusters/{cluster}/workloads/namespaces/{namespace}")
        training = [o for o in objects if o["kind"] in TRAINING_KINDS]
        groups = {o["metadata"]["name"]: controllers.pod_groups(o, runtimes) for o in training}
        pods = {o["metadata"]["name"]: controllers.pods(o, runtimes) for o in training}
        for obj in training:
            name = obj["metadata"]["name"]
            kinds_seen.add(obj["kind"])
            policy = _one(objects, "NetworkPolicy", f"{name}-allow-intra-job")
            peers = policy["spec"]["ingress"][0]["from"][0]["podSelector"]
            assert groups[name] and sum(g.count for g in groups[name]) == len(pods[name]), name
            for selector in (policy["spec"]["podSelector"], peers):
                assert all(_selects(selector, g.labels) for g in groups[name]), (name, selector)
                others = [p for other, ps in pods.items() if other != name for p in ps]
                assert not any(_selects(selector, p.labels) for p in others), (name, selector)
    assert kinds_seen == TRAINING_KINDS


def test_every_runtime_builds_and_passes_strict_schemas(built: dict[Path, Objects]) -> None:
    kinds = {o["kind"] for objects in built.values() for o in objects}
    assert TRAINING_KINDS | {"ClusterTrainingRuntime", "ClusterQueue", "LocalQueue"} <= kinds


def _pod_specs(obj: dict[str, Any], runtimes: Objects) -> list[dict[str, Any]]:
    spec = obj["spec"]
    if obj["kind"] == "Job":
        return [spec["template"]["spec"]]
    if obj["kind"] == "JobSet":
        return [r["template"]["spec"]["template"]["spec"] for r in spec["replicatedJobs"]]
    if obj["kind"] in ("PyTorchJob", "TFJob"):
        replicas = spec["pytorchReplicaSpecs" if obj["kind"] == "PyTorchJob" else "tfReplicaSpecs"]
        return [r["template"]["spec"] for r in replicas.values()]
    runtime = _one(runtimes, "ClusterTrainingRuntime", spec["runtimeRef"]["name"])
    return _pod_specs({"kind": "JobSet", "spec": runtime["spec"]["template"]["spec"]}, [])


@pytest.mark.parametrize("cluster", ["eks-a", "gke-b", "laptop"])
def test_every_runtime_keeps_the_restricted_pod_and_its_volumes(
    built: dict[Path, Objects], cluster: str
) -> None:
    runtimes = _objects(built, f"clusters/{cluster}/platform")
    for namespace in ("training", "research", "llm"):
        objects = _objects(built, f"clusters/{cluster}/workloads/namespaces/{namespace}")
        for obj in (o for o in objects if o["kind"] in TRAINING_KINDS):
            for pod in _pod_specs(obj, runtimes):
                assert pod["securityContext"]["runAsNonRoot"] is True
                assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
                (container,) = pod["containers"]
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
                assert container["resources"]["requests"] == {
                    k: v
                    for k, v in container["resources"]["limits"].items()
                    if k != "nvidia.com/gpu"
                }
                assert not pod.get("initContainers")
                volumes = {v["name"] for v in pod["volumes"]}
                assert "dshm" in volumes
                if obj["metadata"]["name"] in ("torch-elastic", "jobset-tf"):
                    assert "checkpoint" in volumes


def test_each_runtime_gets_the_container_and_wiring_its_controller_expects(
    built: dict[Path, Objects],
) -> None:
    objects = _objects(built, "clusters/eks-a/workloads/namespaces/training")
    elastic = _one(objects, "PyTorchJob", "torch-elastic")["spec"]
    assert list(elastic["pytorchReplicaSpecs"]) == ["Worker"]  # no Master: no init container
    assert elastic["elasticPolicy"]["minReplicas"] == 2
    assert elastic["elasticPolicy"]["maxReplicas"] == 4
    worker = elastic["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert worker["name"] == "pytorch"
    assert worker["ports"][0]["name"] == "pytorchjob-port"
    assert worker["command"] == ["torchrun"] and worker["args"] == ["-m", "trainer.main"]
    research = _objects(built, "clusters/eks-a/workloads/namespaces/research")
    # With parameter servers the Chief coordinates: one pod besides the 3 `workers`.
    tfjob = _one(research, "TFJob", "tf-ps")["spec"]["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in tfjob.items()} == {"Chief": 1, "Worker": 3, "PS": 2}
    assert tfjob["Chief"]["template"]["spec"]["containers"][0]["name"] == "tensorflow"
    jobset = _one(research, "JobSet", "jobset-tf")["spec"]
    replicated = {r["name"]: r["template"]["spec"] for r in jobset["replicatedJobs"]}
    assert list(replicated) == ["chief", "worker", "ps"]
    assert {name: job["completions"] for name, job in replicated.items()} == {
        "chief": 1,
        "worker": 2,
        "ps": 1,
    }
    assert jobset["network"]["subdomain"] == "jobset-tf"
    for role, job in replicated.items():
        (container,) = job["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert yaml.safe_load(env["TF_CLUSTER"]) == {
            "chief": ["jobset-tf-chief-0-0.jobset-tf:2222"],
            "worker": [
                "jobset-tf-worker-0-0.jobset-tf:2222",
                "jobset-tf-worker-0-1.jobset-tf:2222",
            ],
            "ps": ["jobset-tf-ps-0-0.jobset-tf:2222"],
        }
        assert f'\\"type\\":\\"{role}\\"' in container["command"][2]
    # The chief is what exits when training is done; workers and ps serve until deleted.
    assert jobset["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["chief"]}
    assert jobset["failurePolicy"]["maxRestarts"] == 2


def test_queued_workloads_start_suspended_in_their_local_queue(built: dict[Path, Objects]) -> None:
    for cluster in ("eks-a", "gke-b", "laptop"):
        training = _objects(built, f"clusters/{cluster}/workloads/namespaces/training")
        job = _one(training, "Job", "plain-ddp")
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "cpu-jobs"
        assert job["spec"]["suspend"] is True
        elastic = _one(training, "PyTorchJob", "torch-elastic")
        assert elastic["spec"]["runPolicy"]["suspend"] is True
        queues = {o["metadata"]["name"] for o in training if o["kind"] == "LocalQueue"}
        assert queues == {"cpu-jobs", "gpu-jobs"}
        assert all(
            o["spec"]["clusterQueue"] == "ml-runtimes"
            for o in training
            if o["kind"] == "LocalQueue"
        )
        research = _objects(built, f"clusters/{cluster}/workloads/namespaces/research")
        assert "suspend" not in _one(research, "JobSet", "jobset-tf")["spec"]
        platform = _objects(built, f"clusters/{cluster}/platform")
        queue = _one(platform, "ClusterQueue", "ml-runtimes")
        selector = queue["spec"]["namespaceSelector"]["matchExpressions"][0]
        assert selector["values"] == ["llm", "training"]
        flavors = {o["metadata"]["name"] for o in platform if o["kind"] == "ResourceFlavor"}
        assert flavors == {f["name"] for f in queue["spec"]["resourceGroups"][0]["flavors"]}


def test_cluster_queue_quotas_come_from_node_capacity(built: dict[Path, Objects]) -> None:
    eks = _one(_objects(built, "clusters/eks-a/platform"), "ClusterQueue", "ml-runtimes")
    # Kueue v0.17.6 stores v1beta2 (its CRDs mark it `storage: true`).
    assert {o["apiVersion"] for o in built[next(iter(built))] if "kueue" in o["apiVersion"]} <= {
        "kueue.x-k8s.io/v1beta2"
    }
    assert eks["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    quotas = {
        f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]}
        for f in eks["spec"]["resourceGroups"][0]["flavors"]
    }
    # What pods can be given on one node, times the nodes that exist (desiredSize: no
    # autoscaler adds any). m6i.2xlarge and g6.2xlarge: 8 vCPUs, 32 GiB; the EKS AL2023
    # kubelet keeps 60+10+2x5+4x2.5 = 90m CPU and 11 MiB x 58 pods + 255 MiB = 893 MiB,
    # eviction 100 MiB; kube-proxy, aws-node and ebs-csi-node request 135m and 40 MiB.
    per_node_cpu = 8000 - 90 - 135
    per_node_memory = 32 * 1024 - 893 - 100 - 40
    assert quotas == {
        "cpu": {  # 2 nodes; untainted, so listed first
            "cpu": f"{2 * per_node_cpu}m",
            "memory": f"{2 * per_node_memory}Mi",
            "nvidia.com/gpu": 0,
        },
        "gpu": {
            "cpu": f"{4 * per_node_cpu}m",
            "memory": f"{4 * per_node_memory}Mi",
            "nvidia.com/gpu": 4,
        },
    }


# The label each cloud puts on a node naming its group (EKS managed node groups, GKE).
NODE_POOL_LABELS = {
    "eks-a": "eks.amazonaws.com/nodegroup",
    "gke-b": "cloud.google.com/gke-nodepool",
}


def test_kueue_sends_cpu_jobs_to_cpu_nodes_and_gpu_jobs_to_gpu_nodes(
    built: dict[Path, Objects],
) -> None:
    """Kueue assigns the first flavor, in order, with quota for what a workload asks and
    whose taints its pods tolerate, and puts that flavor's node labels on the pods. So
    the untainted CPU flavor comes first and the GPU flavor declares the GPU nodes' taint:
    the CPU job is never sent to a GPU node it cannot tolerate."""
    for cluster, taint in (("eks-a", "true"), ("gke-b", None)):
        platform = _objects(built, f"clusters/{cluster}/platform")
        queue = _one(platform, "ClusterQueue", "ml-runtimes")
        flavors = {
            o["metadata"]["name"]: o["spec"] for o in platform if o["kind"] == "ResourceFlavor"
        }
        order = [f["name"] for f in queue["spec"]["resourceGroups"][0]["flavors"]]
        infrastructure = _objects(built, f"clusters/{cluster}/infrastructure")
        pools = {
            o["spec"].get("name") or o["spec"].get("resourceID"): o["spec"]
            for o in infrastructure
            if o["kind"] in ("Nodegroup", "ContainerNodePool")
        }
        for name in order:
            # The flavor selects nodes of a pool that exists under that name.
            ((label, value),) = flavors[name]["nodeLabels"].items()
            assert label == NODE_POOL_LABELS[cluster]
            assert value in pools, (cluster, name, sorted(pools))
        if taint:
            assert order == ["cpu", "gpu"]
            assert "nodeTaints" not in flavors["cpu"]
            assert flavors["gpu"]["nodeTaints"] == [
                {"key": "nvidia.com/gpu", "value": taint, "effect": "NoSchedule"}
            ]
            assert pools["gpu"]["taints"] == [
                {"key": "nvidia.com/gpu", "value": taint, "effect": "NO_SCHEDULE"}
            ]
        else:
            # GKE, GPU pools only: GKE taints no pool, and no flavor declares a taint.
            assert all("nodeTaints" not in f for f in flavors.values())


def test_operators_are_installed_from_pinned_tags_before_the_workloads(tree: Path) -> None:
    sync = [
        doc
        for path in sorted((tree / "clusters/eks-a/gitops").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["apiVersion"].startswith("kustomize.toolkit.fluxcd.io/")
    ]
    by_name = {doc["metadata"]["name"]: doc for doc in sync}
    sources = {
        doc["metadata"]["name"]: doc
        for path in sorted((tree / "bootstrap/fleet/source").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == "GitRepository"
    }
    for operator in ("training-operator", "trainer", "kueue"):
        installed = by_name[f"eks-a-{operator}"]
        source = sources[installed["spec"]["sourceRef"]["name"]]
        assert source["spec"]["ref"]["tag"].startswith("v")
        assert source["spec"]["url"].startswith("https://github.com/")
        for namespace in ("training", "research", "llm"):
            workloads = by_name[f"eks-a-workloads-{namespace}"]
            assert {"name": f"eks-a-{operator}"} in workloads["spec"]["dependsOn"]
    assert "eks-a-jobset" not in by_name  # Trainer brings its own JobSet
    assert {"name": "eks-a-platform"} in by_name["eks-a-workloads-llm"]["spec"]["dependsOn"]


def test_every_build_in_the_tree_is_local(tree: Path) -> None:
    """No remote bases: the operators come through the engines, not through kustomize."""
    for folder in kustomization_folders(tree):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for entry in kustomization.get("resources", []) + kustomization.get("components", []):
            assert "://" not in entry and not entry.startswith("github.com"), (folder, entry)
            assert (folder / entry).exists(), (folder, entry)


@pytest.mark.parametrize("gitops", ["flux", "argocd"])
def test_validate_is_clean_and_checks_only_this_repositorys_paths(
    tmp_path: Path, gitops: str
) -> None:
    config = tmp_path / "runtimes.yaml"
    config.write_text(RUNTIMES_CONFIG.read_text().replace("gitops: flux", f"gitops: {gitops}"))
    out = tmp_path / "tree"
    assert (
        CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)]).exit_code
        == 0
    )
    validate = ["validate", str(out), *schema_args(), "--no-cache"]
    clean = CliRunner().invoke(main, validate)
    assert clean.exit_code == 0, clean.output
    sync = next((out / "clusters/laptop/gitops").glob("*.yaml"))
    sync.write_text(
        sync.read_text().replace("clusters/laptop/platform", "clusters/laptop/platfrom")
    )
    broken = CliRunner().invoke(main, validate)
    assert broken.exit_code == 1
    problems = [line for line in broken.output.splitlines() if "MLG008" in line]
    assert problems  # once per build that holds the sync object
    for problem in problems:
        assert problem.endswith(
            "[MLG008] 'clusters/laptop/platfrom' is not a kustomization in this repository"
        )


def test_a_ttl_is_generated_with_a_warning_that_the_engine_recreates_the_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(RUNTIMES_CONFIG), "--out", str(out)]
    )
    assert result.exit_code == 0
    assert (
        "mlgitops: warning: workload 'tf-ps': ttlSecondsAfterFinished deletes the finished "
        "run, which Flux then creates again from git, and it trains again\n"
    ) in result.stderr
    tfjob = yaml.safe_load(next((out / "base/tf-ps").glob("tfjob*.yaml")).read_text())
    assert tfjob["spec"]["runPolicy"]["ttlSecondsAfterFinished"] == 3600


def test_kubeflow_jobs_keep_or_delete_pods_at_the_end_as_their_runtime_needs(
    tmp_path: Path,
) -> None:
    config = tmp_path / "runtimes.yaml"
    config.write_text(RUNTIMES_CONFIG.read_text().replace("    cleanPodPolicy: All\n", ""))
    out = tmp_path / "tree"
    assert (
        CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)]).exit_code
        == 0
    )
    pytorchjob = yaml.safe_load(
        next((out / "base/torch-elastic").glob("pytorchjob*.yaml")).read_text()
    )
    assert pytorchjob["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    tfjob = yaml.safe_load(next((out / "base/tf-ps").glob("tfjob*.yaml")).read_text())
    assert tfjob["spec"]["runPolicy"] == {
        "cleanPodPolicy": "Running",
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": 3600,
    }


def test_a_node_capacity_from_the_config_sets_the_quota(tmp_path: Path) -> None:
    text = RUNTIMES_CONFIG.read_text().replace(
        "{name: cpu, instanceTypes: [m6i.2xlarge], minSize: 1, desiredSize: 2, maxSize: 6}",
        "{name: cpu, instanceTypes: [x9z.metal-48xl], minSize: 1, desiredSize: 2, maxSize: 3,"
        " capacity: {cpu: 16, memory: +1.5T, gpus: 2}}",
    )
    config = tmp_path / "runtimes.yaml"
    config.write_text(text)
    out = tmp_path / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    queue = yaml.safe_load((out / "clusters/eks-a/platform/clusterqueue.yaml").read_text())
    flavors = {f["name"]: f["resources"] for f in queue["spec"]["resourceGroups"][0]["flavors"]}
    # 16 vCPUs: the kubelet keeps 60+10+2x5+12x2.5 = 110m, the system pods 135m; a size
    # the max-pods table does not know counts 110 pods: 11 MiB x 110 + 255 MiB, eviction
    # 100 MiB, system pods 40 MiB. Two nodes exist (desiredSize).
    memory = 1_500_000_000_000 - (11 * 110 + 255 + 100 + 40) * 2**20
    assert flavors["cpu"] == [
        {"name": "cpu", "nominalQuota": f"{2 * (16000 - 110 - 135)}m"},
        {"name": "memory", "nominalQuota": f"{2 * memory // 2**20}Mi"},
        {"name": "nvidia.com/gpu", "nominalQuota": 4},
    ]


def test_the_argo_cd_project_allows_what_the_operators_install(tmp_path: Path) -> None:
    config = tmp_path / "runtimes.yaml"
    config.write_text(RUNTIMES_CONFIG.read_text().replace("gitops: flux", "gitops: argocd"))
    out = tmp_path / "tree"
    assert (
        CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)]).exit_code
        == 0
    )
    project = yaml.safe_load((out / "bootstrap/fleet/project/appproject.yaml").read_text())["spec"]
    assert project["sourceRepos"] == [
        "https://github.com/acme/ml-runtimes-gitops.git",
        "https://github.com/NVIDIA/dcgm-exporter.git",
        "https://github.com/NVIDIA/k8s-device-plugin.git",
        "https://github.com/kubeflow/trainer.git",
        "https://github.com/kubernetes-sigs/kueue.git",
    ]
    cluster_kinds = {(k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]}
    assert {
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),  # Kueue's visibility API
        ("kueue.x-k8s.io", "ClusterQueue"),
        ("trainer.kubeflow.org", "ClusterTrainingRuntime"),
    } <= cluster_kinds
    destinations = {(d.get("name"), d["namespace"]) for d in project["destinations"]}
    assert {
        ("eks-a", "kueue-system"),
        ("eks-a", "kube-system"),
        ("eks-a", "kubeflow-system"),
    } <= destinations
    assert all("*" not in str(value) for value in project.values())


def test_processes_per_node_are_set_on_the_trainjob_not_its_runtime(
    built: dict[Path, Objects],
) -> None:
    """Trainer v2.3.0 removed `mlPolicy.torch.numProcPerNode` (kubeflow/trainer#3239): the
    runtime says only that it is a torch runtime, and the TrainJob sets one process per
    GPU, which Trainer's torch plugin passes to torchrun as PET_NPROC_PER_NODE. Left out,
    it would be "auto": one process per CPU on a CPU node."""
    for cluster in ("eks-a", "gke-b", "laptop"):
        runtime = _one(
            _objects(built, f"clusters/{cluster}/platform"),
            "ClusterTrainingRuntime",
            "ml-runtimes-llm-sft",
        )
        assert runtime["spec"]["mlPolicy"] == {"numNodes": 2, "torch": {}}
        llm = _objects(built, f"clusters/{cluster}/workloads/namespaces/llm")
        trainer = _one(llm, "TrainJob", "llm-sft")["spec"]["trainer"]
        gpus = trainer["resourcesPerNode"]["limits"].get("nvidia.com/gpu", 0)
        assert trainer["numProcPerNode"] == max(gpus, 1)
        assert gpus == (0 if cluster == "laptop" else 1)


def _tensorflow_pods(obj: dict[str, Any]) -> dict[str, int]:
    """How many pods of each role a TensorFlow training object asks for, by the name its
    controller puts in the pods' hostnames."""
    spec = obj["spec"]
    if obj["kind"] == "Job":
        return {"": spec["completions"]}
    if obj["kind"] == "JobSet":
        return {r["name"]: r["template"]["spec"]["completions"] for r in spec["replicatedJobs"]}
    return {k.lower(): v["replicas"] for k, v in spec["tfReplicaSpecs"].items()}


def _longest_hostname(obj: dict[str, Any]) -> str:
    """The longest pod hostname its controller gives: `<job>-<index>` (Job),
    `<jobset>-<rjob>-0-<index>` (JobSet), `<tfjob>-<type>-<index>` (Training Operator)."""
    name, infix = obj["metadata"]["name"], {"Job": "", "JobSet": "-0", "TFJob": ""}[obj["kind"]]
    return max(
        (
            f"{name}{'-' + role if role else ''}{infix}-{count - 1}"
            for role, count in _tensorflow_pods(obj).items()
        ),
        key=len,
    )


@pytest.mark.parametrize("parameter_servers", [0, 2])
def test_tensorflow_runs_the_same_pods_on_every_runtime_that_starts_them(
    parameter_servers: int,
) -> None:
    """With parameter servers the chief (the coordinator of ParameterServerStrategy) is
    one pod besides the `workers` that compute, on every runtime, and each runtime ends
    the run with it; without them every pod is a worker (a TFJob's Chief is worker 0).
    The pod count and the hostname rule count the same pods."""
    config = load_default_config()
    base = replace(config.workloads[1], workers=11, parameter_servers=parameter_servers)
    built = {
        runtime: runtimes.render_training_object(config, replace(base, runtime=runtime))
        for runtime in ("job", "jobset", "tfjob")
    }
    job, jobset, tfjob = built["job"]["spec"], built["jobset"]["spec"], built["tfjob"]["spec"]
    if parameter_servers:
        assert _tensorflow_pods(built["jobset"]) == {"chief": 1, "worker": 11, "ps": 2}
        assert _tensorflow_pods(built["tfjob"]) == {"chief": 1, "worker": 11, "ps": 2}
        # Index 0 is the chief (see test_frameworks): the Job ends when it has succeeded.
        assert job["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}
        assert jobset["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["chief"]}
    else:
        assert _tensorflow_pods(built["jobset"]) == {"worker": 11}
        assert _tensorflow_pods(built["tfjob"]) == {"chief": 1, "worker": 10}
        assert "successPolicy" not in job
        assert jobset["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["worker"]}
    # A TFJob succeeds with its Chief (Training Operator v1.9, tfjob_controller.go
    # UpdateJobStatus), which is why it has one either way.
    assert tfjob["tfReplicaSpecs"]["Chief"]["replicas"] == 1
    assert job["completions"] == job["parallelism"] == base.pod_count
    for runtime, obj in built.items():
        assert sum(_tensorflow_pods(obj).values()) == base.pod_count, runtime
        workload = replace(base, runtime=runtime)
        assert _longest_hostname(obj) == base.name + rules._longest_hostname_suffix(workload)


# --- what the common scanners check on every pod (Checkov, kube-score, kubesec) --------

DIGEST = "@sha256:" + "0123456789abcdef" * 4
SCANNER_RULES = ("MLG017", "MLG018", "MLG019", "MLG020")


def _every_pod_template(built: dict[Path, Objects]) -> list[tuple[str, dict[str, Any]]]:
    """Each pod template in the tree, per build, with the object's name: the training
    objects' (Job, JobSet, PyTorchJob, TFJob) and the ClusterTrainingRuntimes' the
    TrainJobs run."""
    found = []
    for path, objects in built.items():
        for obj in objects:
            name = f"{path.name}: {obj['kind']}/{obj['metadata']['name']}"
            if obj["kind"] == "ClusterTrainingRuntime":
                jobset = {"kind": "JobSet", "spec": obj["spec"]["template"]["spec"]}
                found += [(name, pod) for pod in _pod_specs(jobset, [])]
            elif obj["kind"] in TRAINING_KINDS - {"TrainJob"}:
                found += [(name, pod) for pod in _pod_specs(obj, [])]
    return found


def _scanner_findings(built: dict[Path, Objects]) -> list[tuple[str, str, str]]:
    return [
        (rule, field, message)
        for objects in built.values()
        for obj in objects
        for rule, field, message in policies.object_findings(obj)
        if rule in SCANNER_RULES and not policies.waivers(obj).get(rule)
    ]


def _generate_and_build(tmp_path: Path, config_text: str) -> dict[Path, Objects]:
    config = tmp_path / "mlgitops.yaml"
    config.write_text(config_text)
    out = tmp_path / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return build_and_validate(out, "1.34")


def test_every_pod_template_of_every_runtime_passes_the_scanner_checks(
    built: dict[Path, Objects],
) -> None:
    """High ids, a read-only root with /tmp writable, a pull policy that follows the
    pinning; the images are pinned by tag, the waiver README "Security and network"
    documents (images.requireDigest turns it into a digest requirement)."""
    templates = _every_pod_template(built)
    kinds = {name.split(": ")[1].split("/")[0] for name, _ in templates}
    assert kinds == TRAINING_KINDS - {"TrainJob"} | {"ClusterTrainingRuntime"}
    for name, pod in templates:
        context = pod["securityContext"]
        assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == 10001
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["runAsUser"] >= 10000 and security["runAsGroup"] >= 10000, name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
            assert "@" not in container["image"], name
            assert container["imagePullPolicy"] == "Always", name
    assert not _scanner_findings(built)


def test_required_digests_are_pulled_if_not_present_and_stated_for_validate(
    tmp_path: Path,
) -> None:
    text = RUNTIMES_CONFIG.read_text()
    for tag in ("ddp:1.0.0", "tf:2.16.1", "sft:0.3.0"):
        text = text.replace(tag, tag + DIGEST)
    built = _generate_and_build(tmp_path, text + "images: {requireDigest: true}\n")
    templates = _every_pod_template(built)
    assert templates
    for name, pod in templates:
        for container in pod["containers"]:
            assert container["image"].endswith(DIGEST), name
            assert container["imagePullPolicy"] == "IfNotPresent", name
    annotated = [
        o
        for objects in built.values()
        for o in objects
        if o["kind"] in TRAINING_KINDS | {"ClusterTrainingRuntime"}
    ]
    for obj in annotated:
        annotations = obj["metadata"]["annotations"]
        assert annotations[policies.REQUIRE_DIGEST_ANNOTATION] == "true", obj["metadata"]
    assert not _scanner_findings(built)
    # An overlay or patch that puts a tag back is caught by validate.
    job = next(o for o in annotated if o["kind"] == "Job")
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/ml/ddp:2"
    findings = {rule for rule, _, _ in policies.object_findings(job)}
    assert {"MLG019", "MLG020"} <= findings  # IfNotPresent on a tag, and no digest
    trainjob = next(o for o in annotated if o["kind"] == "TrainJob")
    trainjob["spec"]["trainer"]["image"] = "registry.example.com/ml/sft:0.3.0"
    assert ("MLG020", "spec.trainer.image") in {
        (rule, field) for rule, field, _ in policies.object_findings(trainjob)
    }


def test_a_tag_is_refused_where_digests_are_required(tmp_path: Path) -> None:
    config = tmp_path / "mlgitops.yaml"
    config.write_text(RUNTIMES_CONFIG.read_text() + "images: {requireDigest: true}\n")
    out = tmp_path / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 2
    lines = RUNTIMES_CONFIG.read_text().splitlines()
    expected = [
        f"{config}:{n}:{lines[n - 1].index('registry') + 1}: workloads[{i}].image: "
        f"'{image}' has no digest and images.requireDigest is on: pin it as "
        f"{image}@sha256:<digest>"
        for i, (n, image) in enumerate(
            (n, line.split("image: ")[1])
            for n, line in enumerate(lines, start=1)
            if line.strip().startswith("image: ")
        )
    ]
    assert all(line in result.output for line in expected), result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_low_user_id_the_config_chose_is_a_reported_waiver(tmp_path: Path) -> None:
    text = RUNTIMES_CONFIG.read_text().replace(
        '    workers: 2\n    resources: {cpu: "2", memory: 8Gi}\n',
        '    workers: 2\n    runAsUser: 2000\n    resources: {cpu: "2", memory: 8Gi}\n',
        1,
    )
    assert "runAsUser: 2000" in text
    built = _generate_and_build(tmp_path, text)
    low = [
        o
        for objects in built.values()
        for o in objects
        if o["metadata"].get("annotations", {}).get("mlgitops.io/waive-mlg018")
    ]
    assert {o["metadata"]["name"] for o in low} == {"plain-ddp"}
    assert {o["kind"] for o in low} == {"Job"}
    assert "MLG018" in {rule for rule, _, _ in policies.object_findings(low[0])}
    assert not _scanner_findings(built)
