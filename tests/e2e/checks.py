"""What the training programs in `image/` report, and the checks every runtime shares.

Each program prints one line `E2E-RESULT {json}`: every rank (PyTorch), or the chief,
the coordinator of TensorFlow's parameter-server training; TensorFlow's workers and
parameter servers print `serving <task>` and serve until stopped. The checks here hold
whatever created the pods; each runtime's tests add what its controller decides (pod
names, which pod gets which rank or task).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jobrun import JobRun
from workloads import IMAGE_FOLDER, Workload, dataset_claims

RESULT_PREFIX = "E2E-RESULT "
SERVING = re.compile(r"^serving (\w+:\d+)$", re.MULTILINE)
# Where ParameterServerStrategy puts a variable: a parameter server's CPU.
PS_DEVICE = re.compile(r"^/job:ps/replica:0/task:(\d+)/device:CPU:0$")


def load_training_program(name: str = "train.py") -> ModuleType:
    """A program of the image, imported into the test to compute its reference result."""
    spec = importlib.util.spec_from_file_location(f"e2e_{name[:-3]}", IMAGE_FOLDER / name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(run: JobRun) -> list[dict[str, Any]]:
    """Every report, from every pod's output, in pod order."""
    return [
        json.loads(line.removeprefix(RESULT_PREFIX))
        for pod in run.pods
        for line in pod.output.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def served_tasks(run: JobRun) -> dict[str, str]:
    """The task each TensorFlow server said it serves (`worker:0`), by its pod's hostname."""
    served = {}
    for pod in run.pods:
        tasks = SERVING.findall(pod.output)
        if tasks:
            assert len(tasks) == 1, f"{pod.pod.hostname} served {tasks}"
            served[pod.pod.hostname] = tasks[0]
    return served


def parameter_server_trained(
    run: JobRun, workload: Workload, pods: Mapping[str, str], batches: list[Any] | None = None
) -> dict[str, Any]:
    """The chief's report, once checked: the chief of TF_CONFIG ran in the pod `pods`
    names for `chief:0`, every worker and parameter server served its task from its own
    pod, the variables lived on the parameter servers, the workers (all of them, and
    only they) ran every step, and the weights are what synchronous SGD over every
    step's batch gives, computed in one process.

    Steps go to whichever worker is free, so which worker ran which step varies; that
    every worker ran some does not: each round schedules more steps than there are
    workers, and a worker runs one step at a time, waiting for its result
    (`ClusterCoordinator`'s worker threads), so a second step of a round goes to another
    worker, which is already waiting for one, unless that worker cannot be reached."""
    program = load_training_program("finetune.py")
    reports = results(run)
    assert len(reports) == 1, run.describe()
    (report,) = reports
    assert report["task"] == "chief:0", run.describe()
    assert report["hostname"] == pods["chief:0"], run.describe()
    servers = {task: hostname for task, hostname in pods.items() if task != "chief:0"}
    assert served_tasks(run) == {hostname: task for task, hostname in servers.items()}
    # The addresses in TF_CONFIG name the pods that answer for them.
    assert {
        f"{job}:{index}": address.split(".")[0]
        for job, addresses in report["cluster"].items()
        for index, address in enumerate(addresses)
    } == dict(pods), run.describe()
    workers = workload.config["workers"]
    servers_count = workload.config["parameterServers"]
    for name, device in report["devices"].items():
        placed = PS_DEVICE.match(device)
        assert placed and int(placed.group(1)) < servers_count, f"{name} on {device}"
    steps = program.ROUNDS * program.STEPS_PER_ROUND
    assert report["steps"] == steps == len(report["executed_on"]), run.describe()
    assert set(report["executed_on"]) == {pods[f"worker:{i}"] for i in range(workers)}, (
        run.describe()
    )
    datasets = workload.config.get("data") or []
    assert (batches is None) == (not datasets), "fill the workload's dataset (fill_dataset)"
    if datasets:
        (dataset,) = datasets
        assert report["data"] == f"{dataset['mountPath'].rstrip('/')}/batches.json"
    else:
        assert report["data"] is None
    expected = program.reference_weights(batches)
    assert report["weights"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    return report


# Where the tests' shards come from: any seed but the synthetic data's.
SHARD_SEED = 4242


def training_steps(workload: Workload) -> int:
    command = workload.config["command"]
    return int(command[command.index("--epochs") + 1])


def fill_dataset(workload: Workload, folder: Path) -> list[Any] | None:
    """What a person does before the run on a local cluster: fill the workload's dataset
    claim (a folder of the run, `folder`/claims/<claim>, the claim the built pods mount)
    with one shard per rank for train.py (the shards' batches, by rank), or with every
    step's batch for finetune.py's chief (those batches); None when the workload declares
    no dataset."""
    claims = dataset_claims(workload)
    if not claims:
        return None
    assert len(claims) == 1, f"train.py reads one dataset, the workload has {sorted(claims)}"
    ((_, claim),) = claims.items()
    if workload.config["framework"] == "tensorflow":  # the chief reads every step's batch
        batches: list[Any] = load_training_program("finetune.py").write_batches(
            folder / "claims" / claim, SHARD_SEED
        )
        return batches
    program = load_training_program()
    steps = training_steps(workload)
    return [
        program.write_shard(folder / "claims" / claim, rank, steps, SHARD_SEED + rank)
        for rank in range(workload.config["workers"])
    ]


def ddp_trained(
    run: JobRun, workload: Workload, shards: list[Any] | None = None
) -> list[dict[str, Any]]:
    """The ranks' reports, by rank, once checked: every rank of the workload's world
    joined, met every other, trained every step on its data (its shard of the dataset,
    `shards` as `fill_dataset` wrote them, read where the workload declares it mounted;
    synthetic data without a dataset), and ended with the parameters that synchronous
    data-parallel SGD over all of them gives."""
    datasets = workload.config.get("data") or []
    assert (shards is None) == (not datasets), "fill the workload's dataset (fill_dataset)"
    reports = sorted(results(run), key=lambda r: r["rank"])
    workers = workload.config["workers"]
    assert [r["rank"] for r in reports] == list(range(workers)), run.describe()
    assert all(r["world_size"] == workers for r in reports), run.describe()
    hostnames = [r["hostname"] for r in reports]
    assert sorted(hostnames) == sorted(pod.pod.hostname for pod in run.pods), run.describe()
    assert all(r["peers"] == hostnames for r in reports), "ranks met different peers"
    steps = training_steps(workload)
    assert all(r["steps"] == steps for r in reports)
    if datasets:
        (dataset,) = datasets
        where = dataset["mountPath"].rstrip("/")
        assert [r["data"] for r in reports] == [
            f"{where}/shard-{rank}.json" for rank in range(workers)
        ], run.describe()
    else:
        assert all(r["data"] is None for r in reports), run.describe()
    parameters = [r["parameters"] for r in reports]
    assert all(p == parameters[0] for p in parameters), "ranks ended with different weights"
    expected = load_training_program().reference_parameters(workers, steps, shards)
    assert parameters[0] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    return reports
