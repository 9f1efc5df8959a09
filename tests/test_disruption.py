"""Training that survives disruption, read back from the generated tree of every runtime,
built with the real kustomize and checked against the pinned releases' strict schemas:
what a disrupted pod, a bug and any other failure do under each runtime's controller,
what every pod carries to resume, and the priority classes.

How the policies then play out is the product's controller model
(generator/cluster/controllers.py, `job_outcome` and `jobset_outcome`), checked here on
the built objects; the end-to-end run in tests/e2e/test_e2e_disruption.py runs them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import build_and_validate, refused, schema_args

from generator.cli import main
from generator.cluster import controllers
from generator.cluster.disruption import disruption_findings
from generator.render import disruption

Objects = list[dict[str, Any]]

CONFIG: dict[str, Any] = {
    "name": "ml-survive",
    "repo": {"url": "https://github.com/acme/ml-survive-gitops.git"},
    "gitops": "argocd",
    "kubernetesVersion": "1.34",
    "priorityClasses": [
        {"name": "urgent", "value": 1000, "description": "deadlines"},
        {"name": "batch", "value": 10},
    ],
    "workloads": [
        {
            "name": "plain",
            "namespace": "training",
            "framework": "pytorch",
            "image": "registry.example.com/ml/ddp:1.0.0",
            "command": ["python", "train.py"],
            "workers": 2,
            "resources": {"cpu": "2", "memory": "8Gi"},
            "checkpoint": {"size": "5Gi", "mountPath": "/ckpt"},
            "priority": "urgent",
            "terminationGracePeriodSeconds": 300,
        },
        {
            "name": "gang",
            "namespace": "training",
            "framework": "pytorch",
            "runtime": "jobset",
            "queue": "cpu-jobs",
            "priority": "batch",
            "image": "registry.example.com/ml/ddp:1.0.0",
            "command": ["python", "train.py"],
            "workers": 3,
            "maxRestarts": 2,
            "failOnExitCodes": [3, 2],
            "resources": {"cpu": "2", "memory": "8Gi"},
            "checkpoint": {"size": "5Gi", "mountPath": "/ckpt"},
        },
        {
            "name": "elastic",
            "namespace": "research",
            "framework": "pytorch",
            "runtime": "pytorchjob",
            "image": "registry.example.com/ml/ddp:1.0.0",
            "command": ["python", "train.py"],
            "workers": 2,
            "maxRestarts": 3,
            "resources": {"cpu": "2", "memory": "8Gi"},
        },
        {
            "name": "tf-once",
            "namespace": "research",
            "framework": "tensorflow",
            "runtime": "tfjob",
            "image": "registry.example.com/ml/tf:2.16.1",
            "command": ["python", "train.py"],
            "workers": 2,
            "resources": {"cpu": "2", "memory": "8Gi"},
        },
        {
            "name": "sft",
            "namespace": "llm",
            "framework": "pytorch",
            "runtime": "trainjob",
            "queue": "cpu-jobs",
            "priority": "urgent",
            "image": "registry.example.com/ml/sft:0.3.0",
            "command": ["python", "sft.py"],
            "workers": 2,
            "maxRestarts": 1,
            "resources": {"cpu": "2", "memory": "8Gi"},
        },
    ],
    "clusters": [{"name": "laptop", "cloud": "local"}],
}
TRAINING_KINDS = {"Job", "JobSet", "PyTorchJob", "TFJob", "TrainJob"}
DO_NOT_DISRUPT = {
    "karpenter.sh/do-not-disrupt": "true",
    "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
}


def generate(folder: Path, config: dict[str, Any]) -> Path:
    config_file = folder / "mlgitops.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    out = folder / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Objects]:
    tree = generate(tmp_path_factory.mktemp("disruption"), CONFIG)
    return {
        path.relative_to(tree).as_posix(): objects
        for path, objects in build_and_validate(tree, "1.34").items()
    }


def training(built: dict[str, Objects], name: str) -> dict[str, Any]:
    namespaces = "clusters/laptop/workloads/namespaces/"
    (found,) = [
        o
        for path, objects in built.items()
        if path.startswith(namespaces)
        for o in objects
        if o["kind"] in TRAINING_KINDS and o["metadata"]["name"] == name
    ]
    return found


def platform(built: dict[str, Objects]) -> Objects:
    return built["clusters/laptop/platform"]


def runtimes(built: dict[str, Objects]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o for o in platform(built) if o["kind"] == "ClusterTrainingRuntime"
    }


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def field_ref(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


# --- every pod: the annotations, the grace period, the resume contract ---------------


@pytest.mark.parametrize(
    ("name", "grace", "restart_field"),
    [
        (
            "plain",
            300,
            "metadata.annotations['batch.kubernetes.io/job-index-ignored-failure-count']",
        ),
        ("gang", 120, "metadata.labels['jobset.sigs.k8s.io/restart-attempt']"),
        ("elastic", 120, None),
        ("tf-once", 120, None),
        ("sft", 120, "metadata.labels['jobset.sigs.k8s.io/restart-attempt']"),
    ],
)
def test_every_pod_keeps_its_node_has_time_to_save_and_knows_where_to_resume(
    built: dict[str, Objects], name: str, grace: int, restart_field: str | None
) -> None:
    obj = training(built, name)
    pods = controllers.pods(obj, runtimes(built))
    assert pods
    checkpoint = next((w.get("checkpoint") for w in CONFIG["workloads"] if w["name"] == name), None)
    for pod in pods:
        assert DO_NOT_DISRUPT.items() <= pod.annotations.items(), pod.name
        assert pod.spec["terminationGracePeriodSeconds"] == grace
        (container,) = pod.spec["containers"]
        variables = env(container)
        if checkpoint:
            assert variables["MLGITOPS_CHECKPOINT_DIR"] == checkpoint["mountPath"]
        else:
            assert "MLGITOPS_CHECKPOINT_DIR" not in variables
        if restart_field:
            assert variables["MLGITOPS_RESTART_ATTEMPT"] == field_ref(restart_field)
        else:
            assert "MLGITOPS_RESTART_ATTEMPT" not in variables
        # torchrun gives its processes the grace period (less its own exit), not 30 s.
        framework = next(w["framework"] for w in CONFIG["workloads"] if w["name"] == name)
        if framework == "pytorch":
            assert variables["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == str(grace - 10)
        else:
            assert "TORCH_ELASTIC_SHUTDOWN_TIMEOUT" not in variables


def test_the_jobset_restart_attempt_is_a_label_jobset_puts_on_every_pod(
    built: dict[str, Objects],
) -> None:
    """The downward API reads a label the controller really sets (the model, modelled on
    JobSet's `labelAndAnnotateObject`): 0 on the first run, the restart number after."""
    jobset = training(built, "gang")
    first = controllers.jobset_pods(jobset)
    assert {p.labels[disruption.JOBSET_RESTART_ATTEMPT] for p in first} == {"0"}
    again = controllers.jobset_pods(jobset, restarts=2)
    assert {p.labels[disruption.JOBSET_RESTART_ATTEMPT] for p in again} == {"2"}


# --- what a failure means, per runtime --------------------------------------------


def test_a_plain_job_ignores_disruptions_and_fails_at_once_on_a_bug(
    built: dict[str, Objects],
) -> None:
    job = training(built, "plain")["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # the API requires it
    assert (job["backoffLimit"], job["backoffLimitPerIndex"]) == (0, 0)
    assert job["podFailurePolicy"]["rules"] == [
        {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        },
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [2, 126, 127]},
        },
    ]


def test_a_jobsets_child_jobs_fail_on_a_disruption_and_the_set_restarts_for_free(
    built: dict[str, Objects],
) -> None:
    spec = training(built, "gang")["spec"]
    for rjob in spec["replicatedJobs"]:
        job = rjob["template"]["spec"]
        assert job["backoffLimit"] == 0
        assert job["template"]["spec"]["restartPolicy"] == "Never"
        assert job["podFailurePolicy"]["rules"] == [
            {
                "action": "FailJob",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [2, 3]},
            },
        ]
    policy = spec["failurePolicy"]
    assert policy["maxRestarts"] == 2
    assert [(r["name"], r["action"]) for r in policy["rules"]] == [
        ("Disruption", "RestartJobSetAndIgnoreMaxRestarts"),
        ("Bug", "FailJobSet"),
        ("OtherFailure", "RestartJobSet"),
    ]


def test_a_trainjobs_runtime_carries_the_jobset_policies(built: dict[str, Objects]) -> None:
    runtime = runtimes(built)["ml-survive-sft"]["spec"]["template"]["spec"]
    assert runtime["failurePolicy"]["maxRestarts"] == 1
    assert [r["action"] for r in runtime["failurePolicy"]["rules"]] == [
        "RestartJobSetAndIgnoreMaxRestarts",
        "FailJobSet",
        "RestartJobSet",
    ]
    (rjob,) = runtime["replicatedJobs"]
    job = rjob["template"]["spec"]
    assert job["backoffLimit"] == 0
    bug = job["podFailurePolicy"]["rules"][1]["onExitCodes"]
    assert bug["containerName"] == "node"  # Trainer's container of the torch runtimes


def test_kubeflow_jobs_restart_failed_pods_only_when_they_may_restart(
    built: dict[str, Objects],
) -> None:
    """torchrun exits 1 on SIGTERM, so a PyTorchJob retries any failure (OnFailure); a
    TFJob retries what a signal ended (ExitCode) and fails at once on anything else."""
    elastic = training(built, "elastic")["spec"]
    worker = elastic["pytorchReplicaSpecs"]["Worker"]
    assert worker["restartPolicy"] == "OnFailure"
    assert worker["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert elastic["runPolicy"]["backoffLimit"] == 3
    once = training(built, "tf-once")["spec"]["tfReplicaSpecs"]
    assert {r["restartPolicy"] for r in once.values()} == {"Never"}


def test_a_tfjob_that_may_restart_retries_what_a_signal_ended(tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    tf = next(w for w in config["workloads"] if w["name"] == "tf-once")
    tf["maxRestarts"] = 2
    tree = generate(tmp_path, config)
    build_and_validate(tree, "1.34")  # ExitCode is what the pinned TFJob schema allows
    tfjob = yaml.safe_load((tree / "base" / "tf-once" / "tfjob.yaml").read_text())
    for replica in tfjob["spec"]["tfReplicaSpecs"].values():
        assert replica["restartPolicy"] == "ExitCode"
        assert replica["template"]["spec"]["restartPolicy"] == "Never"
    assert tfjob["spec"]["runPolicy"]["backoffLimit"] == 2


# --- the policies, as the controllers apply them (the product's model) -------------

DISRUPTED = controllers.PodEnd(exit_code=143, disrupted=True)
BUG = controllers.PodEnd(exit_code=2)
CRASH = controllers.PodEnd(exit_code=1)


def test_the_modelled_job_controller_applies_the_generated_pod_failure_policy(
    built: dict[str, Objects],
) -> None:
    job = training(built, "plain")
    assert controllers.job_outcome(job, [DISRUPTED, None]) == controllers.JobOutcome(
        failed=None, replace=(0,)
    )
    bug = controllers.job_outcome(job, [BUG, None])
    assert bug.failed == "PodFailurePolicy" and bug.message is not None
    assert "exit code 2 matching FailJob rule" in bug.message
    assert controllers.job_outcome(job, [CRASH, None]).failed == "BackoffLimitExceeded"
    # A disrupted pod is a disruption whatever it exited with: the first rule decides.
    assert controllers.job_outcome(job, [controllers.PodEnd(2, disrupted=True), None]) == (
        controllers.JobOutcome(failed=None, replace=(0,))
    )
    # Without the policy (as before it existed), a disruption fails the run.
    bare = copy.deepcopy(job)
    del bare["spec"]["podFailurePolicy"]
    assert controllers.job_outcome(bare, [DISRUPTED, None]).failed == "BackoffLimitExceeded"


def test_the_modelled_jobset_controller_restarts_for_free_after_a_disruption(
    built: dict[str, Objects],
) -> None:
    jobset = training(built, "gang")
    restarts = controllers.JobSetRestarts(total=0, counted=0)
    # A disrupted pod fails its Job; its peers then fail too (they lost it): the
    # disruption rule is tried first, against every failed Job.
    (job,) = controllers.jobset_child_jobs(jobset)
    disrupted = controllers.job_outcome(job, [DISRUPTED, CRASH, None])
    assert disrupted.failed == "PodFailurePolicy"
    decision = controllers.jobset_outcome(jobset, [(job, disrupted)], restarts)
    assert decision == controllers.JobSetDecision("RestartJobSetAndIgnoreMaxRestarts", 1, 0)
    # Any number of disruptions; the counted restarts stay untouched.
    again = controllers.JobSetRestarts(total=decision.total, counted=decision.counted)
    assert controllers.jobset_outcome(jobset, [(job, disrupted)], again).counted == 0
    # A bug fails the set at once, whatever maxRestarts allows.
    bug = controllers.job_outcome(job, [BUG, None, None])
    assert controllers.jobset_outcome(jobset, [(job, bug)], restarts).action == "FailJobSet"
    # Anything else uses up maxRestarts (2), then fails.
    crash = controllers.job_outcome(job, [CRASH, None, None])
    first = controllers.jobset_outcome(jobset, [(job, crash)], restarts)
    assert first == controllers.JobSetDecision("RestartJobSet", 1, 1)
    used_up = controllers.JobSetRestarts(total=5, counted=2)
    assert (
        controllers.jobset_outcome(jobset, [(job, crash)], used_up).action == "ReachedMaxRestarts"
    )


def test_without_the_rules_a_disrupted_jobset_uses_up_its_restarts(
    built: dict[str, Objects],
) -> None:
    """The failure policy of before: maxRestarts alone counts every disruption."""
    jobset = copy.deepcopy(training(built, "gang"))
    jobset["spec"]["failurePolicy"] = {"maxRestarts": 2}
    for rjob in jobset["spec"]["replicatedJobs"]:
        del rjob["template"]["spec"]["podFailurePolicy"]
    (job,) = controllers.jobset_child_jobs(jobset)
    disrupted = controllers.job_outcome(job, [DISRUPTED, None, None])
    used_up = controllers.JobSetRestarts(total=2, counted=2)
    assert (
        controllers.jobset_outcome(jobset, [(job, disrupted)], used_up).action
        == "ReachedMaxRestarts"
    )


# --- priorities --------------------------------------------------------------------


def test_priorities_are_kueues_for_queued_workloads_and_the_schedulers_for_the_rest(
    built: dict[str, Objects],
) -> None:
    classes = {
        (o["kind"], o["metadata"]["name"]): o
        for o in platform(built)
        if o["kind"] in ("WorkloadPriorityClass", "PriorityClass")
    }
    assert set(classes) == {
        ("WorkloadPriorityClass", "urgent"),  # sft, queued
        ("WorkloadPriorityClass", "batch"),  # gang, queued
        ("PriorityClass", "urgent"),  # plain, not queued
    }
    assert classes["WorkloadPriorityClass", "urgent"]["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert classes["WorkloadPriorityClass", "urgent"]["value"] == 1000
    assert classes["PriorityClass", "urgent"]["apiVersion"] == "scheduling.k8s.io/v1"
    assert classes["PriorityClass", "urgent"]["description"] == "deadlines"
    label = "kueue.x-k8s.io/priority-class"
    assert training(built, "gang")["metadata"]["labels"][label] == "batch"
    assert training(built, "sft")["metadata"]["labels"][label] == "urgent"
    plain = training(built, "plain")
    assert label not in plain["metadata"]["labels"]
    assert plain["spec"]["template"]["spec"]["priorityClassName"] == "urgent"
    for name in ("gang", "elastic", "tf-once"):
        assert all("priorityClassName" not in s for s in _pod_specs(training(built, name)))


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [group.spec for group in controllers.pod_groups(obj)]


def test_the_argocd_project_allows_the_priority_kinds(built: dict[str, Objects]) -> None:
    projects = [o for objects in built.values() for o in objects if o["kind"] == "AppProject"]
    allowed = {
        (k["group"], k["kind"]) for p in projects for k in p["spec"]["clusterResourceWhitelist"]
    }
    assert {
        ("kueue.x-k8s.io", "WorkloadPriorityClass"),
        ("scheduling.k8s.io", "PriorityClass"),
    } <= (allowed)


# --- what the config refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["workloads"][0].update(priority="nightly"),
            "workloads[0].priority: no priority class named 'nightly' in priorityClasses "
            "(urgent, batch)",
        ),
        (
            lambda c: c["priorityClasses"].append({"name": "system-high", "value": 1}),
            "'system-high': names starting with 'system-' belong to Kubernetes",
        ),
        (
            lambda c: c["priorityClasses"].append({"name": "batch", "value": 1}),
            "duplicate priority class name 'batch'",
        ),
        (
            lambda c: c["workloads"][2].update(failOnExitCodes=[1]),
            "workloads[2].failOnExitCodes: a pytorchjob cannot choose them",
        ),
        (
            lambda c: c["workloads"][0].update(failOnExitCodes=[0]),
            "0 is not an exit code of a failed container (1 to 255)",
        ),
        (
            lambda c: c["workloads"][0].update(terminationGracePeriodSeconds=0),
            "workloads[0].terminationGracePeriodSeconds",
        ),
        (
            lambda c: c["workloads"][0].update(env={"MLGITOPS_CHECKPOINT_DIR": "/elsewhere"}),
            "MLGITOPS_CHECKPOINT_DIR is set by the generator",
        ),
    ],
    ids=["unknown", "system", "duplicate", "kubeflow-codes", "zero", "no-grace", "env"],
)
def test_what_the_config_refuses(tmp_path: Path, edit: Any, expected: str) -> None:
    config = copy.deepcopy(CONFIG)
    edit(config)
    output = refused(tmp_path, config)
    assert expected in output, output
    assert "mlgitops.yaml:" in output, output  # names the file, line and column


# --- validate (MLG021): the built objects, read by the same model ----------------------


def mlg021(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return list(disruption_findings(obj))


def test_every_generated_training_object_survives_a_disruption(
    built: dict[str, Objects],
) -> None:
    checked = {
        o["kind"]
        for objects in built.values()
        for o in objects
        if o["kind"] in ("Job", "JobSet", "ClusterTrainingRuntime")
    }
    assert checked == {"Job", "JobSet", "ClusterTrainingRuntime"}
    assert [
        (o["kind"], o["metadata"]["name"], found)
        for objects in built.values()
        for o in objects
        for found in mlg021(o)
    ] == []


def test_a_job_without_the_disruption_rule_fails_or_counts_a_disrupted_pod(
    built: dict[str, Objects],
) -> None:
    job = copy.deepcopy(training(built, "plain"))
    del job["spec"]["podFailurePolicy"]
    ((field, message),) = mlg021(job)
    assert field == "spec.podFailurePolicy"
    assert message.startswith("a disrupted pod fails the Job (BackoffLimitExceeded)")
    # With retries left (backoffLimit 6, no per-index limit), it counts as one of them.
    del job["spec"]["backoffLimitPerIndex"]
    job["spec"]["backoffLimit"] = 6
    ((_, message),) = mlg021(job)
    assert message.startswith("a disrupted pod counts towards backoffLimit like a failure")
    # A rule ahead of the disruption rule that fails the Job on any exit code wins.
    job = copy.deepcopy(training(built, "plain"))
    rules = job["spec"]["podFailurePolicy"]["rules"]
    rules.insert(
        0,
        {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0]}},
    )
    ((_, message),) = mlg021(job)
    assert message.startswith("a disrupted pod fails the Job (PodFailurePolicy)")


def test_a_jobset_that_counts_disruptions_or_fails_on_them_is_reported(
    built: dict[str, Objects],
) -> None:
    jobset = copy.deepcopy(training(built, "gang"))
    policy = jobset["spec"]["failurePolicy"]
    policy["rules"] = [
        r for r in policy["rules"] if r["action"] != "RestartJobSetAndIgnoreMaxRestarts"
    ]
    ((field, message),) = mlg021(jobset)
    assert field == "spec.failurePolicy"
    assert "uses up one of maxRestarts (RestartJobSet)" in message
    policy["maxRestarts"] = 0
    ((_, message),) = mlg021(jobset)
    assert "fails the JobSet (ReachedMaxRestarts)" in message
    # A child Job that ignores the disruption replaces the pod: the set is not involved.
    for rjob in jobset["spec"]["replicatedJobs"]:
        rjob["template"]["spec"]["podFailurePolicy"] = {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        }
        rjob["template"]["spec"]["backoffLimitPerIndex"] = 0
    assert mlg021(jobset) == []


def test_a_training_runtime_is_checked_as_the_jobset_its_trainjobs_become(
    built: dict[str, Objects],
) -> None:
    runtime = runtimes(built)["ml-survive-sft"]
    assert mlg021(runtime) == []
    broken = copy.deepcopy(runtime)
    del broken["spec"]["template"]["spec"]["failurePolicy"]
    found = mlg021(broken)
    assert found and {f for f, _ in found} == {"spec.template.spec.failurePolicy"}
    assert all("fails the JobSet (FailedJobs)" in m for _, m in found)


def test_validate_reports_a_patch_that_drops_the_policy_and_honours_a_waiver(
    tmp_path: Path,
) -> None:
    config = copy.deepcopy(CONFIG)
    config["workloads"] = [w for w in config["workloads"] if w["name"] == "plain"]
    tree = generate(tmp_path, config)
    custom = tree / "clusters" / "laptop" / "custom"
    (custom / "no-policy.yaml").write_text("- op: remove\n  path: /spec/podFailurePolicy\n")
    (custom / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n"
        "  - path: no-policy.yaml\n    target: {kind: Job, name: plain}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args()])
    assert result.exit_code == 1, result.output
    namespace = "clusters/laptop/workloads/namespaces/training: "
    (line,) = [row for row in result.output.splitlines() if row.startswith(namespace)]
    assert line == (
        f"{namespace}Job/plain: spec.podFailurePolicy: [MLG021] a disrupted pod fails the "
        "Job (BackoffLimitExceeded): no rule `Ignore` for the pod condition "
        "DisruptionTarget comes first; a drained node, a reclaimed spot node or a "
        "preemption then ends the run (add the rule, or waive with a reason)"
    )
    (custom / "waive.yaml").write_text(
        "- op: add\n  path: /metadata/annotations/mlgitops.io~1waive-mlg021\n"
        "  value: the program restarts itself from a queue\n"
    )
    (custom / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n"
        "  - path: no-policy.yaml\n    target: {kind: Job, name: plain}\n"
        "  - path: waive.yaml\n    target: {kind: Job, name: plain}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args()])
    assert result.exit_code == 0, result.output
    assert "MLG021" in result.output and "the program restarts itself" in result.output
