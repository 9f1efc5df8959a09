"""The seeds' workloads under the `jobset` runtime train for real, as the JobSet
controller would start them.

The controller model (generator/cluster/controllers.py, through jobset.py) turns the
built JobSet into its Jobs, their pods and the headless Service the controller creates;
each pod then runs exactly its built command, args and environment plus what Kubernetes
adds (kube.py), in a network of its own (sandbox.py). Nothing generated is rewritten: the
pods find each other only if the addresses the generator wrote are the names JobSet gives
them (`<jobset>-<replicated job>-<job index>-<pod index>.<subdomain>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from checks import ddp_trained, fill_dataset, parameter_server_trained, results
from jobrun import Image, run_jobset
from workloads import Workload, with_trainer_edited

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run takes about 10 s on 2 cores; this only stops a hang.
DEADLINE_SECONDS = 240.0
# A run expected to hang is stopped after this, 3 times a healthy run; each such test also
# finds in the pods' logs why they cannot meet.
HANG_DEADLINE_SECONDS = 30.0


@pytest.fixture
def pytorch(runtime_workloads: dict[str, Workload]) -> Workload:
    return runtime_workloads["jobset-pytorch"]


@pytest.fixture
def tensorflow(runtime_workloads: dict[str, Workload]) -> Workload:
    return runtime_workloads["jobset-tensorflow"]


def pod_hostname(workload: Workload, replicated_job: str, index: int) -> str:
    """JobSet's one Job per replicated job (job index 0), and the Job's pod `index`."""
    return f"{workload.name}-{replicated_job}-0-{index}"


def test_pytorch_every_rank_joins_and_ends_with_the_all_reduced_parameters(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    shards = fill_dataset(pytorch, tmp_path)
    run = run_jobset(pytorch.objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Completed", run.describe()
    reports = ddp_trained(run, pytorch, shards)
    master = f"{pod_hostname(pytorch, 'worker', 0)}.{pytorch.name}:{pytorch.config['port']}"
    for rank, report in enumerate(reports):
        # Rank i is the completion index of the worker Job's pod i.
        assert report["node_rank"] == rank
        assert report["hostname"] == pod_hostname(pytorch, "worker", rank)
        assert report["master"] == master


def test_pytorch_master_under_a_service_jobset_does_not_create_never_trains(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """JobSet's first releases made one Service per replicated job, `<jobset>-<rjob>`;
    the controller modelled here makes one for the whole set (`network.subdomain`), so a
    master address under the old name resolves nowhere and no rank can reach rank 0."""
    wrong = f"{pod_hostname(pytorch, 'worker', 0)}.{pytorch.name}-worker"

    def edit(container: dict[str, Any]) -> None:
        old = f"--master-addr={pod_hostname(pytorch, 'worker', 0)}.{pytorch.name}"
        assert old in container["args"], container["args"]
        container["args"] = [f"--master-addr={wrong}" if a == old else a for a in container["args"]]

    objects = with_trainer_edited(pytorch, edit)
    fill_dataset(pytorch, tmp_path)
    run = run_jobset(objects, pytorch.name, image, tmp_path, HANG_DEADLINE_SECONDS)
    assert run.outcome == "DeadlineExceeded", run.describe()
    assert not results(run)
    for pod in run.pods[1:]:
        assert f"network addresses of ({wrong}, " in pod.output, run.describe()


def expected_tasks(workload: Workload) -> dict[str, str]:
    """Which pod must serve each task: the chief is the pod of the `chief` replicated
    job, worker i pod i of the `worker` one, parameter server i pod i of the `ps` one."""
    workers, servers = workload.config["workers"], workload.config["parameterServers"]
    tasks = {"chief:0": pod_hostname(workload, "chief", 0)}
    tasks |= {f"worker:{i}": pod_hostname(workload, "worker", i) for i in range(workers)}
    tasks |= {f"ps:{i}": pod_hostname(workload, "ps", i) for i in range(servers)}
    return tasks


def test_tensorflow_the_chief_trains_on_the_workers_with_the_variables_on_the_ps(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    run = run_jobset(tensorflow.objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    # Workers and parameter server never exit: the success policy (every `chief` Job)
    # ends the JobSet, which then deletes the `worker` and `ps` Jobs.
    assert run.outcome == "Completed", run.describe()
    chief = pod_hostname(tensorflow, "chief", 0)
    exits = {pod.pod.hostname: pod.exit_code for pod in run.pods}
    assert exits == {hostname: 0 if hostname == chief else None for hostname in exits}, (
        run.describe()
    )
    assert sorted(exits) == sorted(expected_tasks(tensorflow).values())
    parameter_server_trained(run, tensorflow, expected_tasks(tensorflow))


def test_tensorflow_a_cluster_naming_a_replicated_job_that_does_not_exist_never_trains(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    """TF_CLUSTER names the parameter server `…-parameter-server-0-0`, a pod of no
    replicated job: the name resolves nowhere, and the chief waits for it."""
    ps = pod_hostname(tensorflow, "ps", 0)
    wrong = f"{tensorflow.name}-parameter-server-0-0"

    def edit(container: dict[str, Any]) -> None:
        cluster = next(e for e in container["env"] if e["name"] == "TF_CLUSTER")
        assert f'"{ps}.' in cluster["value"], cluster["value"]
        cluster["value"] = cluster["value"].replace(ps, wrong)

    objects = with_trainer_edited(tensorflow, edit)
    run = run_jobset(objects, tensorflow.name, image, tmp_path, HANG_DEADLINE_SECONDS)
    assert run.outcome == "DeadlineExceeded", run.describe()
    assert not results(run)
    (chief,) = [pod for pod in run.pods if pod.pod.hostname == pod_hostname(tensorflow, "chief", 0)]
    assert f"waiting for /job:ps/task:0 at {wrong}.{tensorflow.name}:" in chief.output, (
        run.describe()
    )
