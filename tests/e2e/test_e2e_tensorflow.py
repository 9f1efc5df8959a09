"""The seeds' TensorFlow workload forms its cluster: every pod's TF_CONFIG, as the pods
build it, is accepted by TensorFlow and its tasks reach each other.

Each pod runs its built command (the POSIX sh prefix that exports TF_CONFIG) with its
built environment plus what Kubernetes adds, in a network of its own (see jobrun.py);
`image/finetune.py` starts a `tf.distribute.Server` from TF_CONFIG and, on the workers,
runs an op on every task. Every task binds the same gRPC port, which is why each pod
needs its own network namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from checks import tensorflow_results as results
from jobrun import Image, run_indexed_job
from workloads import Workload, replace_in_command

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run takes about 10 s on 2 cores; this only stops a hang.
DEADLINE_SECONDS = 240.0


@pytest.fixture
def tensorflow(seeds_workloads: dict[str, Workload]) -> Workload:
    return seeds_workloads["tensorflow"]


def expected_pods(workload: Workload) -> dict[str, str]:
    """Which pod must answer for each task: indexes 0..workers-1 are the workers, in
    order, and the parameter servers follow."""
    workers, servers = workload.config["workers"], workload.config["parameterServers"]
    tasks = [f"/job:worker/task:{i}" for i in range(workers)]
    tasks += [f"/job:ps/task:{i}" for i in range(servers)]
    return {task: f"{workload.name}-{index}" for index, task in enumerate(tasks)}


def test_every_task_accepts_its_tf_config_and_reaches_every_other_task(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    run = run_indexed_job(tensorflow.objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    # The parameter server never exits: the Job's successPolicy ends it after the workers.
    assert run.outcome == "SuccessCriteriaMet", run.describe()
    workers = tensorflow.config["workers"]
    assert [pod.exit_code for pod in run.pods[:workers]] == [0] * workers, run.describe()
    assert all(pod.exit_code is None for pod in run.pods[workers:]), run.describe()
    assert all("serving ps:" in pod.output for pod in run.pods[workers:]), run.describe()
    reports = results(run)
    assert sorted(reports) == [f"worker:{i}" for i in range(workers)], run.describe()
    for index in range(workers):
        report = reports[f"worker:{index}"]
        assert report["hostname"] == f"{tensorflow.name}-{index}"
        assert report["seen"] == expected_pods(tensorflow)
        assert report["arrived"] == list(range(workers))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Kubernetes sets no JOB_INDEX: every pod claims the parameter-server index -2.
        pytest.param("$JOB_COMPLETION_INDEX", "$JOB_INDEX", id="variable-kubernetes-does-not-set"),
        # Pods 0 and 1 each claim the other's worker task.
        pytest.param('\\"index\\":$index}', '\\"index\\":$((1 - index))}', id="workers-swapped"),
    ],
)
def test_a_task_not_taken_from_the_completion_index_fails_the_job(
    tensorflow: Workload, image: Image, tmp_path: Path, old: str, new: str
) -> None:
    objects = replace_in_command(tensorflow, old, new)
    run = run_indexed_job(objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    assert not results(run)
