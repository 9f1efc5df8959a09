"""The seeds' PyTorch workload trains on its dataset: on a local cluster a claim a person
fills (README "Datasets"), here a folder of the test filled before the run with one
shard per rank, which every pod mounts where the workload declares it (read-only by
default) and finds through `MLGITOPS_DATA_<NAME>`.

Each rank of `image/train.py` reads its own shard from the folder that variable names,
and the run must end with every rank equal to synchronous SGD over the shards, computed
in one process: a rank that trained on anything else would not match. A pod whose mount
is not where its variable points finds no shard there and fails the run; a read-only
dataset cannot be written. TensorFlow's chief (`image/finetune.py`) reads every step's
batch from a dataset the same way, on a copy of the seeds' TensorFlow workload given one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kube
import pytest
from checks import ddp_trained, fill_dataset, parameter_server_trained, results
from jobrun import Image, run_indexed_job
from test_e2e_tensorflow import expected_pods
from workloads import Workload, build_runtime_workloads, dataset_claims, with_trainer_edited

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

DEADLINE_SECONDS = 240.0


@pytest.fixture
def pytorch(seeds_workloads: dict[str, Workload]) -> Workload:
    workload = seeds_workloads["pytorch"]
    assert workload.config.get("data"), "the seeds' PyTorch workload declares a dataset"
    return workload


def _dataset(workload: Workload) -> dict[str, Any]:
    (dataset,) = workload.config["data"]
    return dict(dataset)


def _variable(dataset: dict[str, Any]) -> str:
    return "MLGITOPS_DATA_" + dataset["name"].upper().replace("-", "_")


def test_the_pods_mount_the_dataset_where_declared_and_say_where(pytorch: Workload) -> None:
    dataset = _dataset(pytorch)
    (claim,) = dataset_claims(pytorch).values()
    job = kube.find(pytorch.objects, "Job", pytorch.name)
    for pod in kube.indexed_job_pods(job):
        process = kube.container_process(pod, "192.0.2.10", "node")
        assert kube.Mount(dataset["mountPath"], claim, True) in process.mounts
        assert process.env[_variable(dataset)] == dataset["mountPath"]


def test_every_rank_trains_on_its_shard_of_the_dataset(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    shards = fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(pytorch.objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Complete", run.describe()
    ddp_trained(run, pytorch, shards)


def test_the_same_run_without_its_shards_fails_and_says_why(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """The dataset is declared, so a rank without its shard does not fall back on other
    data: the claim is empty, and the run fails at once."""
    run = run_indexed_job(pytorch.objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    assert not results(run)
    assert any("has no shard at" in pod.output for pod in run.pods), run.describe()


def test_a_dataset_mounted_elsewhere_than_its_variable_says_fails_the_run(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """The built pod's volumeMount moved to another folder, the variable left at the
    declared path: the shards are in the pod, but not where the program is told."""
    dataset = _dataset(pytorch)
    moved = dataset["mountPath"].rstrip("/") + "-moved"

    def edit(container: dict[str, Any]) -> None:
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == f"data-{dataset['name']}"]
        mount["mountPath"] = moved

    objects = with_trainer_edited(pytorch, edit)
    fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    assert not results(run)
    declared = f"{dataset['mountPath'].rstrip('/')}/shard-"
    assert any(f"has no shard at {declared}" in pod.output for pod in run.pods), run.describe()


WRITE_INTO = """
import os, sys
folder = os.environ[sys.argv[1]]
print("shards", sorted(os.listdir(folder)), flush=True)
open(os.path.join(folder, "written-by-the-pod"), "w").write("x")
print("wrote", folder)
"""


def _writing_program(workload: Workload, variable: str) -> list[kube.Manifest]:
    def edit(container: dict[str, Any]) -> None:
        container["command"] = ["python", "-c", WRITE_INTO, variable]
        container.pop("args", None)

    return with_trainer_edited(workload, edit)


def test_a_read_only_dataset_cannot_be_written(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    dataset = _dataset(pytorch)
    assert dataset.get("readOnly", True), "the seeds' dataset is read-only (the default)"
    fill_dataset(pytorch, tmp_path)
    objects = _writing_program(pytorch, _variable(dataset))
    run = run_indexed_job(objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    # The first failed pod fails the Job, and the others are stopped: each pod that
    # got that far read the shards and was refused the write.
    failed = [pod for pod in run.pods if pod.exit_code is not None]
    assert failed and all(pod.exit_code != 0 for pod in failed), run.describe()
    for pod in failed:
        assert "shards ['shard-0.json', 'shard-1.json', 'shard-2.json']" in pod.output
        assert "Read-only file system" in pod.output, run.describe()
    (claim,) = dataset_claims(pytorch).values()
    assert not (tmp_path / "claims" / claim / "written-by-the-pod").exists()


def test_a_writable_dataset_is_written_through_to_the_claim(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """The other side of the test above: `readOnly: false` on the volume and the mount
    (as the generator writes a writable dataset), and the same program writes."""
    dataset = _dataset(pytorch)
    objects = _writing_program(pytorch, _variable(dataset))
    spec = kube.find(objects, "Job", pytorch.name)["spec"]["template"]["spec"]
    name = f"data-{dataset['name']}"
    for volume in spec["volumes"]:
        if volume["name"] == name:
            volume["persistentVolumeClaim"]["readOnly"] = False
    for mount in spec["containers"][0]["volumeMounts"]:
        if mount["name"] == name:
            mount["readOnly"] = False
    fill_dataset(pytorch, tmp_path)
    edited = Workload(pytorch.name, pytorch.namespace, copy.deepcopy(objects), pytorch.config)
    run = run_indexed_job(edited.objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Complete", run.describe()
    (claim,) = dataset_claims(pytorch).values()
    assert (tmp_path / "claims" / claim / "written-by-the-pod").read_text() == "x"


# TensorFlow: the seeds' TensorFlow workload with a dataset of its own (the seeds give it
# none), generated and built as the local cluster runs it.
TENSORFLOW_DATA = [
    {"name": "glue", "mountPath": "/data/glue", "source": "gs://acme-ml-datasets/glue"}
]


@pytest.fixture(scope="module")
def tensorflow(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    variant = {"name": "bert-finetune-data", "clusters": ["local"], "data": TENSORFLOW_DATA}
    built = build_runtime_workloads(
        tmp_path_factory.mktemp("tensorflow-data"), {"tensorflow": ("tensorflow", variant)}
    )
    return built["tensorflow"]


def test_the_tensorflow_chief_trains_on_the_dataset(
    tensorflow: Workload, image: Image, tmp_path: Path
) -> None:
    batches = fill_dataset(tensorflow, tmp_path)
    run = run_indexed_job(tensorflow.objects, tensorflow.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "SuccessCriteriaMet", run.describe()
    parameter_server_trained(run, tensorflow, expected_pods(tensorflow), batches)
