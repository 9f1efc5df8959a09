"""The seeds' TensorFlow workload trains with parameter servers, as the Job's pods run it.

Each pod runs its built command (the POSIX sh prefix that exports TF_CONFIG) with its
built environment plus what Kubernetes adds, in a network of its own (see jobrun.py).
`image/finetune.py` makes the pod of index 0 the coordinator if TF_CONFIG says it is the
chief: it builds a ParameterServerStrategy, puts the variables on the parameter server
and schedules the training steps on the workers, which, like the parameter server, only
serve. The Job must then end by its success policy when the chief exits, with the
others still serving. Every task binds the same gRPC port, which is why each pod needs
its own network namespace.
"""

from __future__ import annotations

import json
from pathlib import Path

import kube
import pytest
from checks import load_training_program, parameter_server_trained, results, served_tasks
from jobrun import Image, run_indexed_job
from workloads import Workload, replace_in_command

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run takes about 10 s on 2 cores; this only stops a hang.
DEADLINE_SECONDS = 240.0
# A run expected to hang is stopped after this, 3 times a healthy run; the test also
# finds in the pods' logs why they cannot meet.
HANG_DEADLINE_SECONDS = 30.0
# The line of the generated prefix that takes the pod's index.
INDEX_LINE = 'index="$JOB_COMPLETION_INDEX"'


@pytest.fixture
def tensorflow(seeds_workloads: dict[str, Workload]) -> Workload:
    return seeds_workloads["tensorflow"]


def expected_pods(workload: Workload) -> dict[str, str]:
    """Which pod must serve each task: index 0 is the chief, the workers follow in order,
    then the parameter servers."""
    workers, servers = workload.config["workers"], workload.config["parameterServers"]
    tasks = ["chief:0", *(f"worker:{i}" for i in range(workers))]
    tasks += [f"ps:{i}" for i in range(servers)]
    return {task: f"{workload.name}-{index}" for index, task in enumerate(tasks)}


def tf_cluster(workload: Workload) -> dict[str, list[str]]:
    """The cluster spec every pod of the built Job gets."""
    job = kube.find(workload.objects, "Job", workload.name)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    cluster: dict[str, list[str]] = json.loads(
        next(e for e in env if e["name"] == "TF_CLUSTER")["value"]
    )
    return cluster


def with_indexes_swapped(workload: Workload, first: int, second: int) -> list[kube.Manifest]:
    """The build with pods `first` and `second` each taking the other's task (the index
    the prefix reads is swapped; the pods keep their hostnames and addresses)."""
    index = "JOB_COMPLETION_INDEX"
    swapped = f"index=$(({index} == {first} ? {second} : {index} == {second} ? {first} : {index}))"
    return replace_in_command(workload, INDEX_LINE, swapped)


def test_the_chief_trains_on_the_workers_with_the_variables_on_the_parameter_server(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    run = run_indexed_job(tensorflow.objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    # Workers and parameter server never exit: the Job's successPolicy ends the run when
    # the chief's index has succeeded, and the others are stopped.
    assert run.outcome == "SuccessCriteriaMet", run.describe()
    exits = [pod.exit_code for pod in run.pods]
    assert exits == [0] + [None] * (len(run.pods) - 1), run.describe()
    job = kube.find(tensorflow.objects, "Job", tensorflow.name)
    chief = expected_pods(tensorflow)["chief:0"]
    assert kube.succeeded_indexes(job) == {p.pod.index for p in run.pods if p.pod.hostname == chief}
    parameter_server_trained(run, tensorflow, expected_pods(tensorflow))


def test_a_task_not_taken_from_the_completion_index_fails_the_job(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    """Kubernetes sets no JOB_INDEX: every pod falls through to the last branch and
    claims the parameter-server task -3, which TensorFlow refuses."""
    objects = replace_in_command(tensorflow, "$JOB_COMPLETION_INDEX", "$JOB_INDEX")
    run = run_indexed_job(objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    assert not results(run)
    assert any('Task -3 was not defined in job "ps"' in p.output for p in run.pods), run.describe()


def test_a_chief_in_the_wrong_pod_never_trains(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    """Pods 0 and 1 swap tasks: the coordinator starts in pod 1 and waits for worker 0 at
    pod 1's own address, where nothing serves, and pod 0, the index the success policy
    waits for, serves worker 0 and never exits."""
    objects = with_indexes_swapped(tensorflow, 0, 1)
    run = run_indexed_job(objects, tensorflow.name, image, tmp_path, HANG_DEADLINE_SECONDS)
    assert run.outcome == "DeadlineExceeded", run.describe()
    assert not results(run)
    coordinator, first_worker = run.pods[1], run.pods[0]
    assert served_tasks(run)[first_worker.pod.hostname] == "worker:0", run.describe()
    # Worker 0's address in TF_CLUSTER is pod 1's, the coordinator's own.
    address = tf_cluster(tensorflow)["worker"][0]
    assert address.startswith(f"{coordinator.pod.hostname}.{tensorflow.name}:")
    waiting = f"waiting for /job:worker/task:0 at {address}: [Errno 111] Connection refused"
    assert waiting in coordinator.output, run.describe()


def test_swapped_workers_still_train_and_only_the_served_tasks_show_it(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    """Pods 1 and 2 swap worker tasks. Under ParameterServerStrategy this does not fail
    the run: a server takes the task name the coordinator gives it when it creates the
    server's eager context, so the one at worker 0's address acts as worker 0 whatever it
    was started as, and the workers are interchangeable. What shows the wrong wiring is
    which task each pod says it serves, which the healthy run checks."""
    objects = with_indexes_swapped(tensorflow, 1, 2)
    run = run_indexed_job(objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "SuccessCriteriaMet", run.describe()
    (report,) = results(run)
    reference = load_training_program("finetune.py").reference_weights()
    assert report["weights"] == pytest.approx(reference, rel=1e-9, abs=1e-12)
    pods = expected_pods(tensorflow)
    swapped = {pods["worker:0"]: "worker:1", pods["worker:1"]: "worker:0"}
    assert served_tasks(run) == {pods["ps:0"]: "ps:0", **swapped}, run.describe()
