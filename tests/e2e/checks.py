"""What the training programs in `image/` report, and the checks every runtime shares.

Each program prints one line `E2E-RESULT {json}` per rank (PyTorch) or worker task
(TensorFlow). The checks here hold whatever created the pods; each runtime's tests add
what its controller decides (pod names, which pod gets which rank or task).
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
from jobrun import JobRun
from workloads import IMAGE_FOLDER, Workload

RESULT_PREFIX = "E2E-RESULT "


def load_training_program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("e2e_train", IMAGE_FOLDER / "train.py")
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


def tensorflow_results(run: JobRun) -> dict[str, dict[str, Any]]:
    """Each TensorFlow worker's report, by its task (`worker:<i>`)."""
    return {report["task"]: report for report in results(run)}


def ddp_trained(run: JobRun, workload: Workload) -> list[dict[str, Any]]:
    """The ranks' reports, by rank, once checked: every rank of the workload's world
    joined, met every other, trained every step, and ended with the parameters that
    synchronous data-parallel SGD over all of them gives."""
    reports = sorted(results(run), key=lambda r: r["rank"])
    workers = workload.config["workers"]
    assert [r["rank"] for r in reports] == list(range(workers)), run.describe()
    assert all(r["world_size"] == workers for r in reports), run.describe()
    hostnames = [r["hostname"] for r in reports]
    assert sorted(hostnames) == sorted(pod.pod.hostname for pod in run.pods), run.describe()
    assert all(r["peers"] == hostnames for r in reports), "ranks met different peers"
    command = workload.config["command"]
    steps = int(command[command.index("--epochs") + 1])
    assert all(r["steps"] == steps for r in reports)
    parameters = [r["parameters"] for r in reports]
    assert all(p == parameters[0] for p in parameters), "ranks ended with different weights"
    expected = load_training_program().reference_parameters(workers, steps)
    assert parameters[0] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    return reports
