"""Dispatch across clusters (MultiKueue): what the management cluster and each worker are
given, read back from real kustomize builds of the generated tree, and what validate and
the config rules say about it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, kustomize_build, schema_args

from generator.cli import main
from generator.validate.schemas import python_patterns

ARGOCD = CONFIGS / "dispatch-argocd.yaml"
FLUX = CONFIGS / "dispatch-flux.yaml"
WORKERS = ["eks-east", "gke-west"]
RUNS = {("PyTorchJob", "torch-dispatched"), ("TFJob", "tf-dispatched")}
NAMESPACE = "fleet-training"


def _generate(config: Path, out: Path) -> Path:
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def argocd_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(ARGOCD, tmp_path_factory.mktemp("dispatch") / "argocd")


@pytest.fixture(scope="module")
def flux_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(FLUX, tmp_path_factory.mktemp("dispatch") / "flux")


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod_specs(run: dict[str, Any]) -> list[dict[str, Any]]:
    replicas = run["spec"].get("pytorchReplicaSpecs") or run["spec"]["tfReplicaSpecs"]
    return [r["template"]["spec"] for r in replicas.values()]


def test_the_manager_chains_queue_check_config_and_one_cluster_per_worker(
    argocd_tree: Path,
) -> None:
    built = kustomize_build(argocd_tree / "clusters/management/platform")
    queue = _by_kind(built, "ClusterQueue")["ml-fleet"]
    checks = [c["name"] for c in queue["spec"]["admissionChecksStrategy"]["admissionChecks"]]
    check = _by_kind(built, "AdmissionCheck")[checks[0]]
    assert check["spec"]["controllerName"] == "kueue.x-k8s.io/multikueue"
    parameters = check["spec"]["parameters"]
    assert (parameters["apiGroup"], parameters["kind"]) == ("kueue.x-k8s.io", "MultiKueueConfig")
    config = _by_kind(built, "MultiKueueConfig")[parameters["name"]]
    clusters = _by_kind(built, "MultiKueueCluster")
    assert config["spec"]["clusters"] == WORKERS == sorted(clusters)
    # Each worker's kubeconfig Secret is the one the kustomization's header says to make.
    header = (argocd_tree / "clusters/management/platform/kustomization.yaml").read_text()
    for name, cluster in clusters.items():
        source = cluster["spec"]["clusterSource"]["kubeConfig"]
        assert source["locationType"] == "Secret"
        assert (
            f"kubectl -n kueue-system create secret generic {source['location']} "
            f"--from-file=kubeconfig={name}.kubeconfig"
        ) in header
    # One flavor without node labels: the manager runs no pods, nothing to inject.
    flavors = queue["spec"]["resourceGroups"][0]["flavors"]
    assert [f["name"] for f in flavors] == list(_by_kind(built, "ResourceFlavor"))
    assert all(f["spec"] == {} for f in _by_kind(built, "ResourceFlavor").values())
    selector = queue["spec"]["namespaceSelector"]["matchExpressions"][0]
    assert selector["values"] == [NAMESPACE]


def test_the_manager_quota_is_what_the_workers_queues_offer_together(argocd_tree: Path) -> None:
    manager = _by_kind(
        kustomize_build(argocd_tree / "clusters/management/platform"), "ClusterQueue"
    )
    offered = {r["name"]: r["nominalQuota"] for r in _quotas(manager["ml-fleet"])}
    gpus = 0
    for worker in WORKERS:
        queue = _by_kind(
            kustomize_build(argocd_tree / f"clusters/{worker}/platform"), "ClusterQueue"
        )
        gpus += sum(
            r["nominalQuota"] for r in _quotas(queue["ml-fleet"]) if r["name"] == "nvidia.com/gpu"
        )
    assert offered["nvidia.com/gpu"] == gpus > 0


def _quotas(queue: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for f in queue["spec"]["resourceGroups"][0]["flavors"] for r in f["resources"]]


def test_the_manager_holds_the_runs_in_a_restricted_denied_namespace(argocd_tree: Path) -> None:
    built = kustomize_build(argocd_tree / f"clusters/management/workloads/namespaces/{NAMESPACE}")
    runs = {
        (o["kind"], o["metadata"]["name"]): o for o in built if o["kind"] in ("PyTorchJob", "TFJob")
    }
    assert set(runs) == RUNS
    namespace = _by_kind(built, "Namespace")[NAMESPACE]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = _by_kind(built, "NetworkPolicy")["default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    queues = _by_kind(built, "LocalQueue")
    for run in runs.values():
        queue = run["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
        assert queues[queue]["spec"]["clusterQueue"] == "ml-fleet"
        assert run["spec"]["runPolicy"]["suspend"] is True
        for spec in _pod_specs(run):
            # Cloud-neutral: the workers' own Kueue flavors select their nodes.
            assert "affinity" not in spec and "nodeSelector" not in spec
    torch = runs[("PyTorchJob", "torch-dispatched")]
    assert all(
        spec["tolerations"]
        == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        for spec in _pod_specs(torch)
    )
    assert all("tolerations" not in s for s in _pod_specs(runs[("TFJob", "tf-dispatched")]))
    # No claim, ServiceAccount or Service on the manager: it runs no pods.
    assert not {"PersistentVolumeClaim", "ServiceAccount"} & {o["kind"] for o in built}


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_has_all_but_the_run_and_lets_the_manager_create_it(
    argocd_tree: Path, worker: str
) -> None:
    built = kustomize_build(argocd_tree / f"clusters/{worker}/workloads/namespaces/{NAMESPACE}")
    kinds = {o["kind"] for o in built}
    assert not kinds & {"PyTorchJob", "TFJob"}, "MultiKueue creates the run, not the engine"
    manager = kustomize_build(argocd_tree / f"clusters/management/workloads/namespaces/{NAMESPACE}")
    assert _by_kind(built, "LocalQueue") == _by_kind(manager, "LocalQueue")
    claim = _by_kind(built, "PersistentVolumeClaim")["torch-dispatched-checkpoint"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"]
    assert {"torch-dispatched", "tf-dispatched"} <= set(_by_kind(built, "ServiceAccount"))
    platform = kustomize_build(argocd_tree / f"clusters/{worker}/platform")
    queue = _by_kind(platform, "ClusterQueue")["ml-fleet"]
    assert NAMESPACE in queue["spec"]["namespaceSelector"]["matchExpressions"][0]["values"]
    role = _by_kind(platform, "ClusterRole")["ml-fleet-multikueue"]
    granted = {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in role["rules"]}
    for resource in ("pytorchjobs", "tfjobs"):
        assert {"create", "delete", "get", "list", "watch"} <= set(
            granted[("kubeflow.org", resource)]
        )
    assert "update" in granted[("kueue.x-k8s.io", "workloads/status")]
    binding = _by_kind(platform, "ClusterRoleBinding")["ml-fleet-multikueue"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "multikueue", "namespace": "kueue-system"}
    ]
    token = _by_kind(platform, "Secret")["multikueue"]
    assert token["type"] == "kubernetes.io/service-account-token" and "data" not in token


def _documents(folder: Path) -> list[dict[str, Any]]:
    """The objects of a folder's files, its kustomization.yaml aside."""
    files = [f for f in sorted(folder.glob("*.yaml")) if f.name != "kustomization.yaml"]
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]


def test_argocd_syncs_the_manager_from_the_fleet_with_exactly_the_crds_it_needs(
    argocd_tree: Path,
) -> None:
    apps = _by_kind(_documents(argocd_tree / "clusters/management/gitops"), "Application")
    assert sorted(apps) == [
        "management-kueue",
        "management-platform",
        "management-training-operator-crds",
        f"management-workloads-{NAMESPACE}",
    ]
    assert all(
        a["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
        for a in apps.values()
    )
    crds = apps["management-training-operator-crds"]["spec"]["source"]
    assert (crds["repoURL"], crds["targetRevision"], crds["path"]) == (
        "https://github.com/kubeflow/trainer.git",
        "v1.9.4",
        "manifests/base/crds",
    )
    # The workers run the Training Operator; the manager does not.
    worker_apps = _by_kind(_documents(argocd_tree / "clusters/eks-east/gitops"), "Application")
    assert "eks-east-training-operator" in worker_apps
    assert not [a for a in apps if a.endswith("-training-operator")]
    fleet = kustomize_build(argocd_tree / "bootstrap/fleet/apps")
    assert {a["metadata"]["name"] for a in fleet if a["kind"] == "Application"} >= set(apps)
    project = _by_kind(fleet, "AppProject")["ml-fleet"]
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    for kind in ("AdmissionCheck", "MultiKueueConfig", "MultiKueueCluster", "ClusterQueue"):
        assert ("kueue.x-k8s.io", kind) in allowed
    assert "*" not in yaml.safe_dump(project["spec"])


def test_flux_applies_the_manager_paths_to_itself(flux_tree: Path) -> None:
    objects = _documents(flux_tree / "clusters/management/gitops")
    kustomizations = _by_kind(objects, "Kustomization")
    assert len(kustomizations) == 4
    assert all("kubeConfig" not in k["spec"] for k in kustomizations.values())
    runs = kustomizations[f"management-workloads-{NAMESPACE}"]
    assert {d["name"] for d in runs["spec"]["dependsOn"]} == {
        "management-kueue",
        "management-training-operator-crds",
        "management-platform",
    }
    sources = kustomize_build(flux_tree / "bootstrap/fleet/source")
    assert "training-operator-crds" in _by_kind(sources, "GitRepository")


def _validate(tree: Path) -> str:
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args(), "--no-cache"])
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_validate_reports_a_worker_whose_kubeconfig_secret_nothing_creates(
    argocd_tree: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(argocd_tree, copy)
    assert "problem" not in _validate(copy)
    file = copy / "clusters/management/platform/multikueuecluster.yaml"
    documents = list(yaml.safe_load_all(file.read_text()))
    for document in documents:
        if document["metadata"]["name"] == "gke-west":
            del document["metadata"]["annotations"]
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    found = [line for line in _validate(copy).splitlines() if "[MLG031]" in line]
    assert len(found) == 1
    assert found[0].startswith("clusters/management/platform: MultiKueueCluster/gke-west: ")
    assert "'gke-west-multikueue'" in found[0]


def _config_with(tmp_path: Path, change: Any) -> Path:
    config = yaml.safe_load(ARGOCD.read_text())
    change(config)
    path = tmp_path / "mlgitops.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_run_that_fits_only_one_worker_is_dispatched(tmp_path: Path) -> None:
    """A worker that can never admit it just never does; the run goes to the other."""

    def small_gke(config: dict[str, Any]) -> None:
        # g2-standard-4: 4 vCPU, less than the 6 CPU each pod asks for.
        config["clusters"][1]["nodePools"][1]["machineType"] = "g2-standard-4"

    _generate(_config_with(tmp_path, small_gke), tmp_path / "out")

    def nowhere(config: dict[str, Any]) -> None:
        small_gke(config)
        config["workloads"][0]["dispatch"]["clusters"] = ["gke-west"]

    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--config",
            str(_config_with(tmp_path, nowhere)),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2
    assert "workloads[0].dispatch.clusters: no worker could ever admit the run" in result.stderr
    assert "'gke-west': a pod asks for 6 CPU" in result.stderr


def test_graph_draws_dispatch_edges_from_the_manager_queue_to_each_worker() -> None:
    result = CliRunner().invoke(main, ["graph", "--config", str(ARGOCD)])
    assert result.exit_code == 0, result.output
    nodes = dict(re.findall(r'^    (\w+)\S*?"([^"<]*)', result.stdout, re.MULTILINE))
    ids = {label: node for node, label in nodes.items()}
    edges = re.findall(r"^    (\w+) -\.->\|dispatches\| (\w+)$", result.stdout, re.MULTILINE)
    assert edges == [(ids["clusters/management/platform"], ids[w]) for w in WORKERS]
    runs = re.findall(r"^    (\w+) --> (w\d)$", result.stdout, re.MULTILINE)
    holders = {nodes[path] for path, _ in runs if nodes[_] in ("torch-dispatched", "tf-dispatched")}
    assert holders == {f"clusters/management/workloads/namespaces/{NAMESPACE}"}


def test_go_patterns_with_flags_after_the_anchor_are_read_as_go_reads_them() -> None:
    """Kueue's AdmissionCheck `parameters.kind` is `^(?i)[a-z]...`: RE2 syntax."""
    schema = python_patterns({"type": "string", "pattern": "^(?i)[a-z]([-a-z0-9]*[a-z0-9])?$"})
    validator = jsonschema.Draft7Validator(schema)
    assert validator.is_valid("MultiKueueConfig")
    assert not validator.is_valid("1-config")


def test_jobs_and_jobsets_are_dispatched_with_what_the_manager_needs_for_them(
    tmp_path: Path,
) -> None:
    def jobs_only(config: dict[str, Any]) -> None:
        config["workloads"][0]["runtime"] = "job"
        config["workloads"][1]["runtime"] = "jobset"

    out = _generate(_config_with(tmp_path, jobs_only), tmp_path / "out")
    apps = _by_kind(_documents(out / "clusters/management/gitops"), "Application")
    assert "management-jobset" in apps and "management-training-operator-crds" not in apps
    held = out / f"clusters/management/workloads/namespaces/{NAMESPACE}"
    kinds = {(o["kind"], o["metadata"]["name"]) for o in kustomize_build(held)}
    assert {("Job", "torch-dispatched"), ("JobSet", "tf-dispatched")} <= kinds
    assert "Kubernetes 1.32 or later" in (held / "kustomization.yaml").read_text()
    worker = kustomize_build(out / f"clusters/{WORKERS[0]}/workloads/namespaces/{NAMESPACE}")
    assert not {o["kind"] for o in worker} & {"Job", "JobSet"}
    # The Job's headless Service stays with the workers, where its pods run.
    assert "torch-dispatched" in _by_kind(worker, "Service")
    role = _by_kind(kustomize_build(out / f"clusters/{WORKERS[1]}/platform"), "ClusterRole")
    granted = {(r["apiGroups"][0], r["resources"][0]) for r in role["ml-fleet-multikueue"]["rules"]}
    assert {("batch", "jobs"), ("jobset.x-k8s.io", "jobsets")} <= granted
    assert not any(group == "kubeflow.org" for group, _ in granted)


def test_runs_for_other_workers_get_their_own_queue_check_and_config(tmp_path: Path) -> None:
    def eks_only(config: dict[str, Any]) -> None:
        config["workloads"][1]["dispatch"]["clusters"] = ["eks-east"]

    out = _generate(_config_with(tmp_path, eks_only), tmp_path / "out")
    platform = kustomize_build(out / "clusters/management/platform")
    configs = {n: c["spec"]["clusters"] for n, c in _by_kind(platform, "MultiKueueConfig").items()}
    assert configs == {"ml-fleet-eks-east-gke-west": WORKERS, "ml-fleet-eks-east": ["eks-east"]}
    checks = _by_kind(platform, "AdmissionCheck")
    for name, queue in _by_kind(platform, "ClusterQueue").items():
        (check,) = queue["spec"]["admissionChecksStrategy"]["admissionChecks"]
        assert checks[check["name"]]["spec"]["parameters"]["name"] == name
    held = kustomize_build(out / f"clusters/management/workloads/namespaces/{NAMESPACE}")
    queues = {n: q["spec"]["clusterQueue"] for n, q in _by_kind(held, "LocalQueue").items()}
    assert queues == {"gpu-runs": "ml-fleet-eks-east-gke-west", "cpu-runs": "ml-fleet-eks-east"}
    # gke-west never gets the TFJob, so the manager may not create TFJobs there.
    role = _by_kind(kustomize_build(out / "clusters/gke-west/platform"), "ClusterRole")
    granted = {r["resources"][0] for r in role["ml-fleet-multikueue"]["rules"]}
    assert "pytorchjobs" in granted and "tfjobs" not in granted


def test_validate_places_each_run_on_its_workers_and_reports_one_none_could_admit(
    tmp_path: Path,
) -> None:
    """The cluster model evaluates the manager's runs on every worker they may go to: a
    run that fits only one of them is fine; one that fits none is MLG032."""

    def small_gke(config: dict[str, Any]) -> None:
        config["clusters"][1]["nodePools"][1]["machineType"] = "g2-standard-4"

    config = _config_with(tmp_path, small_gke)
    tree = _generate(config, tmp_path / "tree")

    def validate() -> list[str]:
        args = ["validate", str(tree), "--config", str(config), *schema_args(), "--no-cache"]
        result = CliRunner().invoke(main, args)
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        return [line for line in output.splitlines() if "[MLG" in line]

    assert validate() == []
    run = tree / f"clusters/management/workloads/namespaces/{NAMESPACE}/pytorchjob.yaml"
    run.write_text(run.read_text().replace("nvidia.com/gpu: 1\n", "nvidia.com/gpu: 4\n"))
    (found,) = validate()
    assert found.startswith(
        f"clusters/management/workloads/namespaces/{NAMESPACE}: PyTorchJob/torch-dispatched: "
        "spec: [MLG032] no worker could ever admit it, so it waits forever: 'eks-east': "
    )
    assert "; 'gke-west': " in found and "the pods ask for 8" in found


def test_diff_shows_a_dispatched_run_changed_on_the_management_cluster(tmp_path: Path) -> None:
    """The run lives on the manager only: that is where `mlgitops diff` shows the change."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mlgitops.yaml").write_text(ARGOCD.read_text())
    for command in (["init", "-q"], ["add", "mlgitops.yaml"], ["commit", "-q", "-m", "x"]):
        subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
                *command,
            ],
            check=True,
            capture_output=True,
        )
    config = repo / "mlgitops.yaml"
    config.write_text(config.read_text().replace("workers: 2\n", "workers: 3\n", 1))
    result = CliRunner().invoke(main, ["diff", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[:2] == [
        "cluster management",
        f"  ~ PyTorchJob/{NAMESPACE}/torch-dispatched",
    ]
    assert "spec.pytorchReplicaSpecs.Worker.replicas: 2 -> 3" in result.stdout
    assert "cluster eks-east" not in result.stdout  # the workers hold no copy in git


def test_a_dispatched_runs_secrets_are_made_on_the_workers_where_its_pods_run(
    tmp_path: Path,
) -> None:
    def with_secret(config: dict[str, Any]) -> None:
        config["workloads"][0]["secrets"] = [
            {"name": "hf-token", "from": "hf-token", "env": "HF_TOKEN"}
        ]

    config = _config_with(tmp_path, with_secret)
    tree = _generate(config, tmp_path / "tree")
    for worker in WORKERS:
        built = kustomize_build(tree / f"clusters/{worker}/workloads/namespaces/{NAMESPACE}")
        assert "hf-token" in _by_kind(built, "ExternalSecret")
    held = kustomize_build(tree / f"clusters/management/workloads/namespaces/{NAMESPACE}")
    assert not _by_kind(held, "ExternalSecret")  # the manager runs no pods
    args = ["validate", str(tree), "--config", str(config), *schema_args(), "--no-cache"]
    result = CliRunner().invoke(main, args)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 0, output
    assert (
        "PyTorchJob/torch-dispatched: [MLG030] waived: dispatched: its pods run on a worker"
        in output
    )


def test_a_dispatched_run_mounts_the_claim_every_worker_has(tmp_path: Path) -> None:
    """The one object MultiKueue copies mounts the `pvc:` claim by its name, and each
    worker's namespace says it has it, so the run is admissible on either worker."""

    def with_data(config: dict[str, Any]) -> None:
        config["workloads"][0]["data"] = [
            {
                "name": "corpus",
                "mountPath": "/data/corpus",
                "sources": {"eks": "pvc:shared-corpus", "gke": "pvc:shared-corpus"},
            }
        ]

    config = _config_with(tmp_path, with_data)
    tree = _generate(config, tmp_path / "out")
    (run,) = [
        o
        for o in kustomize_build(tree / "clusters/management/workloads/namespaces/fleet-training")
        if o["kind"] == "PyTorchJob"
    ]
    for pod in _pod_specs(run):
        (volume,) = [v for v in pod["volumes"] if v["name"] == "data-corpus"]
        assert volume["persistentVolumeClaim"] == {"claimName": "shared-corpus", "readOnly": True}
    for worker in ("eks-east", "gke-west"):
        built = kustomize_build(tree / f"clusters/{worker}/workloads/namespaces/fleet-training")
        (namespace,) = [o for o in built if o["kind"] == "Namespace"]
        assert namespace["metadata"]["annotations"]["mlgitops.io/claims-made-by-hand"] == (
            "shared-corpus"
        )
    result = CliRunner().invoke(
        main, ["validate", str(tree), "--config", str(config), *schema_args(), "--no-cache"]
    )
    assert result.exit_code == 0, result.output


def test_a_dispatched_trainjob_has_its_runtime_and_the_trainer_crds_on_the_manager(
    tmp_path: Path,
) -> None:
    """The manager's Kueue builds the TrainJob's pod sets from the runtime it names: a
    cloud-neutral copy there, Trainer's CRDs (and JobSet's) without Trainer's controller;
    each worker keeps its own cloud's runtime of the same name and runs Trainer."""

    def trainjob(config: dict[str, Any]) -> None:
        config["workloads"][0]["runtime"] = "trainjob"
        # GPU nodes with EFA: a TrainJob run there would ask for it in its container.
        config["clusters"][0]["nodeGroups"][0]["instanceTypes"] = ["g5.12xlarge"]

    config = _config_with(tmp_path, trainjob)
    out = _generate(config, tmp_path / "out")
    held = kustomize_build(out / f"clusters/management/workloads/namespaces/{NAMESPACE}")
    (run,) = _by_kind(held, "TrainJob").values()
    assert run["metadata"]["name"] == "torch-dispatched"
    name = run["spec"]["runtimeRef"]["name"]
    platform = kustomize_build(out / "clusters/management/platform")
    runtime = _by_kind(platform, "ClusterTrainingRuntime")[name]
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]["spec"]
    # Cloud-neutral: the workers' own Kueue flavors select their nodes.
    assert "affinity" not in pod and "nodeSelector" not in pod
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    apps = _by_kind(_documents(out / "clusters/management/gitops"), "Application")
    assert "management-trainer" not in apps, "no Trainer controller on the manager"
    crds = apps["management-trainer-crds"]["spec"]["source"]
    assert (crds["repoURL"], crds["targetRevision"], crds["path"]) == (
        "https://github.com/kubeflow/trainer.git",
        "v2.3.0",
        "manifests/base/crds",
    )
    assert "management-jobset" in apps  # Kueue's TrainJob integration watches JobSets
    for worker in WORKERS:
        own = _by_kind(
            kustomize_build(out / f"clusters/{worker}/platform"), "ClusterTrainingRuntime"
        )
        worker_pod = own[name]["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]
        assert "affinity" in worker_pod["spec"]["template"]["spec"]  # its cloud's GPU nodes
        # The worker's Kueue finishes a run whose containers differ from the manager's
        # Workload's (built from the manager's copy) as out of sync.
        assert worker_pod["spec"]["template"]["spec"]["containers"] == pod["containers"]
        worker_apps = _by_kind(_documents(out / f"clusters/{worker}/gitops"), "Application")
        assert f"{worker}-trainer" in worker_apps
        role = _by_kind(kustomize_build(out / f"clusters/{worker}/platform"), "ClusterRole")
        granted = {
            (r["apiGroups"][0], r["resources"][0]) for r in role["ml-fleet-multikueue"]["rules"]
        }
        assert ("trainer.kubeflow.org", "trainjobs") in granted
        namespace = kustomize_build(out / f"clusters/{worker}/workloads/namespaces/{NAMESPACE}")
        assert not _by_kind(namespace, "TrainJob"), "MultiKueue creates the run"
    args = ["validate", str(out), "--config", str(config), *schema_args(), "--no-cache"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "[MLG" not in result.output


def test_a_dispatched_trainjob_may_not_name_its_own_runtime(tmp_path: Path) -> None:
    def own_runtime(config: dict[str, Any]) -> None:
        config["workloads"][0]["runtime"] = "trainjob"
        config["workloads"][0]["trainingRuntime"] = "torch-distributed"

    args = ["generate", "--config", str(_config_with(tmp_path, own_runtime))]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "workloads[0].trainingRuntime: not with dispatch:" in result.stderr
