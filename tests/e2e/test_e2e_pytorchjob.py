"""The seeds' PyTorch workload as a Kubeflow PyTorchJob trains for real, with only what
the Training Operator gives its pods.

The generated container runs a bare `torchrun <program>`: nodes, processes per node and
the rendezvous come from the environment the operator appends (the controller model,
generator/cluster/controllers.py, modelled on the operator's envvar.go and elastic.go),
the rendezvous host from the per-pod Service the operator creates. Each pod runs exactly
that, in a network of its own (sandbox.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

import kube
import kubeflow
import pytest
from checks import ddp_trained, fill_dataset, results
from jobrun import Image, run_pytorchjob
from workloads import Workload

from generator.render.pods import WRITABLE_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

# Generous: a healthy run takes about 10 s on 2 cores; this only stops a hang.
DEADLINE_SECONDS = 240.0


@pytest.fixture
def pytorchjob(runtime_workloads: dict[str, Workload]) -> Workload:
    return runtime_workloads["pytorchjob"]


def test_torchrun_trains_from_the_operators_environment_alone(
    pytorchjob: Workload, image: Image, tmp_path: Path
) -> None:
    job = kube.find(pytorchjob.objects, "PyTorchJob", pytorchjob.name)
    workers = pytorchjob.config["workers"]
    assert job["spec"]["elasticPolicy"]["minReplicas"] == workers
    assert job["spec"]["elasticPolicy"]["maxReplicas"] == workers
    container = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    # Nothing in the container says how many nodes, which rank or where to meet.
    assert container["command"] == ["torchrun"]
    wiring = ("--nnodes", "--nproc", "--node", "--rdzv", "--master")
    assert not [a for a in container["args"] if a.startswith(wiring)], container["args"]
    # Its environment only says where to write (the root filesystem is read-only), how
    # long torchrun's processes have to stop (render/disruption.py), NCCL's defaults
    # (render/fabric.py) and where its dataset is mounted, none of them the rendezvous.
    assert [e["name"] for e in container["env"]] == [
        *(name for name, _ in WRITABLE_ENV),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT",
        "NCCL_SOCKET_IFNAME",
        "NCCL_DEBUG",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING",
        *(
            "MLGITOPS_DATA_" + d["name"].upper().replace("-", "_")
            for d in pytorchjob.config["data"]
        ),
    ]
    shards = fill_dataset(pytorchjob, tmp_path)
    run = run_pytorchjob(pytorchjob.objects, pytorchjob.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome == "Succeeded", run.describe()
    reports = ddp_trained(run, pytorchjob, shards)
    # The c10d rendezvous, not the pod, decides the ranks; rank 0's agent publishes its
    # own host name as the master address, which the others resolve through the
    # operator's Service of that pod.
    hostnames = {kubeflow.pod_name(pytorchjob.name, "Worker", i) for i in range(workers)}
    assert {r["hostname"] for r in reports} == hostnames
    for rank, report in enumerate(reports):
        assert report["node_rank"] == rank  # one process per node
        assert report["master"].rpartition(":")[0] == reports[0]["hostname"]


def test_elastic_bounds_below_the_replicas_leave_a_worker_out(
    pytorchjob: Workload, image: Image, tmp_path: Path
) -> None:
    """With `PET_NNODES=2:2` two workers close the rendezvous and train as a world of two;
    the third cannot join. The operator may even report success (an elastic job succeeds
    with its first succeeded worker), but what trained is not the workload's world."""
    objects = copy.deepcopy(pytorchjob.objects)
    elastic = kube.find(objects, "PyTorchJob", pytorchjob.name)["spec"]["elasticPolicy"]
    elastic.update(minReplicas=2, maxReplicas=2)
    shards = fill_dataset(pytorchjob, tmp_path)
    run = run_pytorchjob(objects, pytorchjob.name, image, tmp_path, DEADLINE_SECONDS)
    assert run.outcome in ("Succeeded", "Failed"), run.describe()
    reports = results(run)
    assert 1 <= len(reports) <= 2, run.describe()
    assert all(r["world_size"] == 2 for r in reports), run.describe()
    with pytest.raises(AssertionError):
        ddp_trained(run, pytorchjob, shards)
