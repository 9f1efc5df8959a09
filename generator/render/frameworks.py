"""How each framework's processes find each other inside an Indexed Job.

Every pod of an Indexed Job gets the hostname `<job>-<index>` and, with `subdomain` set
to the headless Service, the DNS name `<job>-<index>.<service>` in its namespace. The
Job controller also sets `JOB_COMPLETION_INDEX` in every container.

- PyTorch: torchrun with a static rendezvous on pod 0. The node rank is the completion
  index, expanded by the kubelet from `$(JOB_COMPLETION_INDEX)` in the arguments, so no
  shell is needed in the image.
- TensorFlow: `TF_CONFIG` names every task. The cluster part is the same for all pods
  (`TF_CLUSTER`); the task part depends on the index, so a POSIX shell prefix builds it:
  indexes 0..workers-1 are workers, the rest parameter servers.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, Literal

from generator.config import model

PYTHON_NAMES = frozenset({"python", "python3"})
# The container and port names the Kubeflow controllers look for.
PYTORCHJOB_CONTAINER, PYTORCHJOB_PORT = "pytorch", "pytorchjob-port"
TFJOB_CONTAINER, TFJOB_PORT = "tensorflow", "tfjob-port"
TRAINJOB_NODE = "node"  # the replicated job and container of Trainer's torch runtimes


@dataclass(frozen=True)
class Launch:
    """What goes into the trainer container to start one process of the job."""

    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    port_name: str


Role = Literal["worker", "ps"]


def pod_hostname(workload: model.Workload, index: int, role: Role = "worker") -> str:
    """Pod `index` of a role. An Indexed Job numbers all pods together, workers first; a
    JobSet names pods `<jobset>-<replicated job>-<job index>-<pod index>`."""
    if workload.runtime == "jobset":
        return f"{workload.name}-{role}-0-{index}"
    return f"{workload.name}-{index if role == 'worker' else workload.workers + index}"


def pod_address(workload: model.Workload, index: int, role: Role = "worker") -> str:
    """The in-namespace DNS name of a pod: `<hostname>.<subdomain>`, the subdomain being
    the workload's headless Service (the Job's own, or the one JobSet creates)."""
    return f"{pod_hostname(workload, index, role)}.{workload.name}"


def launch(workload: model.Workload, role: Role = "worker") -> Launch:
    """How the trainer container of a role starts, for runtimes that leave the wiring to
    us (job, jobset); the Kubeflow operators wire it themselves (see kubeflow_launch)."""
    if workload.framework == "pytorch":
        return _torchrun(workload)
    return _tensorflow(workload, role)


def _torchrun(workload: model.Workload) -> Launch:
    procs_per_node = workload.resources.gpu or 1
    options = [
        f"--nnodes={workload.workers}",
        f"--nproc-per-node={procs_per_node}",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={pod_address(workload, 0)}",
        f"--master-port={workload.rendezvous_port}",
    ]
    return Launch(
        command=["torchrun"],
        args=options + torchrun_program(list(workload.command)),
        env=[{"name": "PYTHONUNBUFFERED", "value": "1"}],
        port_name="rendezvous",
    )


def kubeflow_torchrun(workload: model.Workload) -> Launch:
    """Under the Training Operator, torchrun reads everything from the environment the
    operator sets: PET_NNODES, PET_NPROC_PER_NODE and the c10d rendezvous (PET_RDZV_*)."""
    return Launch(
        command=["torchrun"],
        args=torchrun_program(list(workload.command)),
        env=[],
        port_name=PYTORCHJOB_PORT,
    )


def kubeflow_tensorflow(workload: model.Workload) -> Launch:
    """The operator writes TF_CONFIG into every pod: the program runs as it is."""
    return Launch(command=list(workload.command), args=[], env=[], port_name=TFJOB_PORT)


def trainjob_command(workload: model.Workload) -> list[str]:
    """Trainer's torch runtimes set PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE and
    PET_MASTER_ADDR/PORT, so a bare torchrun finds everything."""
    if workload.framework != "pytorch":
        return list(workload.command)
    return ["torchrun", *torchrun_program(list(workload.command))]


def torchrun_program(command: list[str]) -> list[str]:
    """torchrun runs a Python script or module itself; anything else needs --no-python."""
    program, rest = command[0], command[1:]
    if posixpath.basename(program) in PYTHON_NAMES and rest:
        if rest[0] == "-m" and len(rest) > 1:
            return ["-m", *rest[1:]]
        if not rest[0].startswith("-"):
            return rest
    return ["--no-python", *command]


def tf_cluster_spec(workload: model.Workload) -> dict[str, list[str]]:
    port = workload.rendezvous_port
    cluster = {"worker": [f"{pod_address(workload, i)}:{port}" for i in range(workload.workers)]}
    if workload.parameter_servers:
        cluster["ps"] = [
            f"{pod_address(workload, i, 'ps')}:{port}" for i in range(workload.parameter_servers)
        ]
    return cluster


def tf_config_script(workers: int) -> str:
    """POSIX sh that exports TF_CONFIG for this pod's index, then runs the program."""
    return "\n".join(
        [
            'index="$JOB_COMPLETION_INDEX"',
            f'if [ "$index" -lt {workers} ]; then',
            '  task="{\\"type\\":\\"worker\\",\\"index\\":$index}"',
            "else",
            f'  task="{{\\"type\\":\\"ps\\",\\"index\\":$((index - {workers}))}}"',
            "fi",
            'export TF_CONFIG="{\\"cluster\\":$TF_CLUSTER,\\"task\\":$task}"',
            'exec "$@"',
            "",
        ]
    )


def tf_role_script(role: Role) -> str:
    """The same for a JobSet, where each role is its own replicated job and the index
    within it is the completion index."""
    return "\n".join(
        [
            f'task="{{\\"type\\":\\"{role}\\",\\"index\\":$JOB_COMPLETION_INDEX}}"',
            'export TF_CONFIG="{\\"cluster\\":$TF_CLUSTER,\\"task\\":$task}"',
            'exec "$@"',
            "",
        ]
    )


def _tensorflow(workload: model.Workload, role: Role) -> Launch:
    cluster = json.dumps(tf_cluster_spec(workload), separators=(",", ":"))
    script = (
        tf_role_script(role) if workload.runtime == "jobset" else tf_config_script(workload.workers)
    )
    return Launch(
        command=["/bin/sh", "-c", script, "tf-config"],
        args=list(workload.command),
        env=[
            {"name": "TF_CLUSTER", "value": cluster},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        port_name="grpc",
    )
