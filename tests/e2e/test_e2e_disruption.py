"""A disrupted training run restarts, resumes from its last checkpoint on the shared
volume, and ends with the weights an uninterrupted run has; a bug fails it at once.

The seeds' PyTorch workload (3 workers), as a JobSet and as a one-pod Job, runs
`image/resume.py`: it saves a checkpoint on SIGTERM and every 2 steps, and loads the
latest on start. A worker is disrupted mid-training as an eviction or a preemption does
it (the `DisruptionTarget` condition, SIGTERM, restarts.py), and the product's
controller model applies the generated policies (generator/cluster/controllers.py).

The broken variants show what each part is for: without the generated policies the
disruption fails the run; without the resume contract (`MLGITOPS_CHECKPOINT_DIR`) the
restarted run starts over; without the bug rule a bug uses up every restart.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kube
import pytest
from checks import load_training_program, results
from jobrun import Image
from restarts import Disruption, RestartedRun, run_job, run_jobset
from workloads import Workload, build_runtime_workloads, replace_in_args

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run and its restart take about 25 s on 2 cores; this stops a hang.
DEADLINE_SECONDS = 300.0
STEPS = 8
HOLD_AFTER = 3  # the first run holds after its third step (index 2) until disrupted
COMMAND = ["python", "resume.py", "--steps", str(STEPS), "--save-every", "2"]
CHECKPOINT = {"size": "1Gi", "mountPath": "/srv"}  # a folder the machine has (sandbox.py)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # maxRestarts 0, the default: a disruption must not need a restart of the budget.
    "gang": (
        "pytorch",
        {
            "runtime": "jobset",
            "name": "resnet-survive",
            "command": COMMAND,
            "checkpoint": CHECKPOINT,
        },
    ),
    "retrying": (
        "pytorch",
        {
            "runtime": "jobset",
            "name": "resnet-retry",
            "command": COMMAND,
            "checkpoint": CHECKPOINT,
            "maxRestarts": 2,
        },
    ),
    "single": (
        "pytorch",
        {"name": "resnet-single", "workers": 1, "command": COMMAND, "checkpoint": CHECKPOINT},
    ),
}


@pytest.fixture(scope="module")
def survivors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workload]:
    return build_runtime_workloads(tmp_path_factory.mktemp("survivors"), VARIANTS)


@pytest.fixture
def holding_image(image: Image) -> Image:
    return Image(workdir=image.workdir, env={**image.env, "E2E_HOLD_AFTER": str(HOLD_AFTER)})


def holding(hostname: str) -> Callable[[Path], bool]:
    """When the pod's first process says it holds mid-training."""

    def ready(logs: Path) -> bool:
        log = logs / f"{hostname}-0.log"
        return log.exists() and "E2E-HOLDING" in log.read_text(errors="replace")

    return ready


def final_reports(run: RestartedRun) -> list[dict[str, Any]]:
    return sorted(results(run.runs[-1]), key=lambda r: r["rank"])


def assert_same_weights_as_uninterrupted(reports: list[dict[str, Any]], workers: int) -> None:
    expected = load_training_program().reference_parameters(workers, STEPS)
    assert [r["rank"] for r in reports] == list(range(workers))
    for report in reports:
        assert report["parameters"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def disrupt_worker_1(workload: Workload) -> Disruption:
    return Disruption(pod=1, when=holding(f"{workload.name}-worker-0-1"))


def without_policies(workload: Workload) -> list[kube.Manifest]:
    """The JobSet as it was before it survived disruption: maxRestarts alone."""
    objects = copy.deepcopy(workload.objects)
    jobset = kube.find(objects, "JobSet", workload.name)
    jobset["spec"]["failurePolicy"] = {
        "maxRestarts": jobset["spec"]["failurePolicy"]["maxRestarts"]
    }
    for rjob in jobset["spec"]["replicatedJobs"]:
        del rjob["template"]["spec"]["podFailurePolicy"]
    return objects


# --- JobSet: the whole gang restarts, for free ---------------------------------------


def test_a_disrupted_jobset_restarts_resumes_and_ends_with_the_uninterrupted_weights(
    survivors: dict[str, Workload], holding_image: Image, tmp_path: Path
) -> None:
    gang = survivors["gang"]
    run = run_jobset(
        gang.objects, gang.name, holding_image, tmp_path, DEADLINE_SECONDS, [disrupt_worker_1(gang)]
    )
    assert run.outcome == "Completed", run.describe()
    # One restart, that maxRestarts (0) did not have to allow.
    assert run.decisions == ["RestartJobSetAndIgnoreMaxRestarts"], run.describe()
    assert len(run.runs) == 2
    # The disrupted worker saved on SIGTERM after the step under way (index 2), and the
    # whole new run went on from there: only the steps after it were trained again.
    stopped = [p for p in run.runs[0].pods if "E2E-STOPPED rank 1 saved step 2" in p.output]
    assert stopped, run.describe()
    reports = final_reports(run)
    assert {r["resumed_from"] for r in reports} == {HOLD_AFTER - 1}, run.describe()
    assert {r["steps_run"] for r in reports} == {STEPS - HOLD_AFTER}
    # The restart number the pods read is JobSet's restart-attempt label.
    assert {r["restart_attempt"] for r in reports} == {"1"}
    assert_same_weights_as_uninterrupted(reports, gang.config["workers"])


def test_without_the_policies_a_disruption_fails_the_jobset(
    survivors: dict[str, Workload], holding_image: Image, tmp_path: Path
) -> None:
    gang = survivors["gang"]
    run = run_jobset(
        without_policies(gang),
        gang.name,
        holding_image,
        tmp_path,
        DEADLINE_SECONDS,
        [disrupt_worker_1(gang)],
    )
    assert run.outcome == "ReachedMaxRestarts", run.describe()
    assert len(run.runs) == 1 and not final_reports(run)


def test_without_the_checkpoint_contract_the_restarted_run_starts_over(
    survivors: dict[str, Workload], holding_image: Image, tmp_path: Path
) -> None:
    """The same program, without MLGITOPS_CHECKPOINT_DIR in its pods: it restarts (the
    policy) but cannot resume, and trains every step again."""
    gang = survivors["gang"]
    objects = copy.deepcopy(gang.objects)
    jobset = kube.find(objects, "JobSet", gang.name)
    for rjob in jobset["spec"]["replicatedJobs"]:
        for container in rjob["template"]["spec"]["template"]["spec"]["containers"]:
            container["env"] = [
                e for e in container["env"] if e["name"] != "MLGITOPS_CHECKPOINT_DIR"
            ]
    run = run_jobset(
        objects, gang.name, holding_image, tmp_path, DEADLINE_SECONDS, [disrupt_worker_1(gang)]
    )
    assert run.outcome == "Completed", run.describe()
    reports = final_reports(run)
    assert {r["resumed_from"] for r in reports} == {None}
    assert {r["steps_run"] for r in reports} == {STEPS}


def test_a_bug_fails_the_jobset_at_once_whatever_maxrestarts_allows(
    survivors: dict[str, Workload], image: Image, tmp_path: Path
) -> None:
    """torchrun refuses a node rank that is not a number with exit code 2, one of the
    default failOnExitCodes: no restart, though maxRestarts is 2."""
    retrying = survivors["retrying"]
    broken = replace_in_args(
        retrying, "--node-rank=$(JOB_COMPLETION_INDEX)", "--node-rank=$JOB_COMPLETION_INDEX"
    )
    run = run_jobset(broken, retrying.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "FailJobSet", run.describe()
    assert len(run.runs) == 1
    # Every pod that exited before the set failed exited 2; the others were stopped.
    assert {p.exit_code for p in run.pods} - {None} == {2}, run.describe()


def test_without_the_bug_rule_a_bug_uses_up_every_restart(
    survivors: dict[str, Workload], image: Image, tmp_path: Path
) -> None:
    retrying = survivors["retrying"]
    broken = replace_in_args(
        retrying, "--node-rank=$(JOB_COMPLETION_INDEX)", "--node-rank=$JOB_COMPLETION_INDEX"
    )
    patched = Workload(retrying.name, retrying.namespace, broken, retrying.config)
    run = run_jobset(without_policies(patched), retrying.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "ReachedMaxRestarts", run.describe()
    assert run.decisions == ["RestartJobSet", "RestartJobSet", "ReachedMaxRestarts"]
    assert len(run.runs) == 3


# --- a plain Job: the disrupted pod is replaced, not counted -------------------------


def test_a_disrupted_single_pod_job_is_replaced_and_resumes(
    survivors: dict[str, Workload], holding_image: Image, tmp_path: Path
) -> None:
    single = survivors["single"]
    disruption = Disruption(pod=0, when=holding(f"{single.name}-0"))
    run = run_job(
        single.objects, single.name, holding_image, tmp_path, DEADLINE_SECONDS, [disruption]
    )
    assert run.outcome == "Complete", run.describe()
    (report,) = final_reports(run)
    assert report["resumed_from"] == HOLD_AFTER - 1
    # The Job controller counts the ignored failure in the replacement's annotation.
    assert report["restart_attempt"] == "1"
    assert_same_weights_as_uninterrupted([report], 1)


def test_without_the_pod_failure_policy_a_disruption_fails_the_job(
    survivors: dict[str, Workload], holding_image: Image, tmp_path: Path
) -> None:
    single = survivors["single"]
    objects = copy.deepcopy(single.objects)
    del kube.find(objects, "Job", single.name)["spec"]["podFailurePolicy"]
    disruption = Disruption(pod=0, when=holding(f"{single.name}-0"))
    run = run_job(objects, single.name, holding_image, tmp_path, DEADLINE_SECONDS, [disruption])
    assert run.outcome == "BackoffLimitExceeded", run.describe()
    assert not final_reports(run)
