"""The seeds' PyTorch workload trains for real: one torchrun per pod, as the pods run it.

Each pod's process gets exactly its built command, args and environment plus what
Kubernetes adds (see kube.py), its own network, hostname and hosts file (see sandbox.py),
and the program `image/train.py`. Nothing generated is rewritten: if the ranks, the
world size, the rendezvous address or the port were wrong, these runs would not train.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from checks import ddp_trained, fill_dataset, results
from jobrun import Image, run_indexed_job
from workloads import Workload, replace_in_args

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run takes about 10 s on 2 cores; this only stops a hang.
DEADLINE_SECONDS = 240.0
# A run expected to hang is stopped after this; 3 times a healthy run.
HANG_DEADLINE_SECONDS = 45.0


@pytest.fixture
def pytorch(seeds_workloads: dict[str, Workload]) -> Workload:
    return seeds_workloads["pytorch"]


def test_every_rank_joins_and_ends_with_the_all_reduced_parameters(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    shards = fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(pytorch.objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Complete", run.describe()
    reports = ddp_trained(run, pytorch, shards)
    for rank, report in enumerate(reports):
        # The rank is the pod's completion index: rank i trains in pod <job>-i.
        assert report["node_rank"] == rank
        assert report["hostname"] == f"{pytorch.name}-{rank}"
        assert report["master"] == f"{pytorch.name}-0.{pytorch.name}:{pytorch.config['port']}"


@pytest.mark.parametrize(
    "broken_rank",
    [
        pytest.param("--node-rank=$JOB_COMPLETION_INDEX", id="shell-syntax-without-a-shell"),
        pytest.param("--node-rank=$(JOB_INDEX)", id="variable-kubernetes-does-not-set"),
    ],
)
def test_a_rank_not_taken_from_the_completion_index_fails_the_job(
    pytorch: Workload, image: Image, tmp_path: Path, broken_rank: str
) -> None:
    objects = replace_in_args(pytorch, "--node-rank=$(JOB_COMPLETION_INDEX)", broken_rank)
    fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(objects, pytorch.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Failed", run.describe()
    assert not results(run)
    # The kubelet leaves both as written, and torchrun refuses them as a node rank.
    assert any("invalid int value" in pod.output for pod in run.pods), run.describe()


def test_pods_that_disagree_on_the_rendezvous_port_never_train(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """Rank 0 listens on the port its args name; here pod i names port 10 * (port // 10) + i,
    so rank 0 still listens on 29500 while the others dial 29501 and 29502."""
    port = pytorch.config["port"]
    assert port % 10 == 0
    objects = replace_in_args(
        pytorch, f"--master-port={port}", f"--master-port={port // 10}$(JOB_COMPLETION_INDEX)"
    )
    fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(objects, pytorch.name, image, tmp_path, HANG_DEADLINE_SECONDS)
    assert run.outcome == "DeadlineExceeded", run.describe()
    assert not results(run)


def test_a_world_size_that_leaves_a_pod_out_fails_the_job(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """Ranks 0 and 1 form a group of two without the third pod, which then cannot join."""
    workers = pytorch.config["workers"]
    objects = replace_in_args(pytorch, f"--nnodes={workers}", f"--nnodes={workers - 1}")
    fill_dataset(pytorch, tmp_path)
    run = run_indexed_job(objects, pytorch.name, image, tmp_path, HANG_DEADLINE_SECONDS)
    assert not run.succeeded, run.describe()
    assert all(r["world_size"] == workers - 1 for r in results(run)), run.describe()
