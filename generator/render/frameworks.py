"""How each framework's processes find each other inside an Indexed Job.

Every pod of an Indexed Job gets the hostname `<job>-<index>` and, with `subdomain` set
to the headless Service, the DNS name `<job>-<index>.<service>` in its namespace. The
Job controller also sets `JOB_COMPLETION_INDEX` in every container.

- PyTorch: torchrun with a static rendezvous on pod 0. The node rank is the completion
  index, expanded by the kubelet from `$(JOB_COMPLETION_INDEX)` in the arguments, so no
  shell is needed in the image.
- TensorFlow: `TF_CONFIG` names every task. The cluster part is the same for all pods
  (`TF_CLUSTER`); the task part depends on the index, so a POSIX shell prefix builds it.
  Without parameter servers (MultiWorkerMirroredStrategy) every pod is a worker, index i
  worker i. With them (ParameterServerStrategy) the cluster needs a coordinator, the
  `chief` task: it creates the variables, which live on the parameter servers, and
  schedules the steps on the workers, while workers and parameter servers only serve
  and never exit. `workers` counts the workers that compute; the chief is one pod more.
  Index 0 is the chief, 1..workers the workers, the rest the parameter servers, so the
  run ends when index 0 succeeds (see pod_roles).
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


Role = Literal["chief", "worker", "ps"]


def pod_roles(workload: model.Workload) -> list[tuple[Role, int]]:
    """The roles of the workload's pods and how many of each, in the order an Indexed Job
    numbers them (a JobSet makes one replicated job of each, in this order).

    A cluster with parameter servers runs ParameterServerStrategy, whose coordinator is the
    `chief` task: without one nothing creates the variables or schedules a step, and the
    workers and parameter servers, which only serve, wait forever. It comes first, so
    its index is 0 whatever the counts, and the success policies name it. Without
    parameter servers every pod is a worker (MultiWorkerMirroredStrategy), as with
    PyTorch."""
    if not workload.parameter_servers:
        return [("worker", workload.workers)]
    return [("chief", 1), ("worker", workload.workers), ("ps", workload.parameter_servers)]


def first_index(workload: model.Workload, role: Role) -> int:
    """The completion index of a role's first pod in an Indexed Job."""
    offset = 0
    for each, count in pod_roles(workload):
        if each == role:
            return offset
        offset += count
    raise ValueError(f"workload {workload.name!r} has no {role} pods")


def pod_hostname(workload: model.Workload, index: int, role: Role = "worker") -> str:
    """Pod `index` of a role. An Indexed Job numbers all pods together in pod_roles' order
    (a chief, workers, parameter servers); a JobSet names pods
    `<jobset>-<replicated job>-<job index>-<pod index>`."""
    if workload.runtime == "jobset":
        return f"{workload.name}-{role}-0-{index}"
    return f"{workload.name}-{first_index(workload, role) + index}"


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


def processes_per_node(workload: model.Workload) -> int:
    """One training process per GPU; one on a CPU-only pod."""
    return workload.resources.gpu or 1


def _torchrun(workload: model.Workload) -> Launch:
    procs_per_node = processes_per_node(workload)
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
    """Every task's address, by role: the `chief`, `worker` and `ps` jobs TensorFlow's
    resolver reads from TF_CONFIG (only `worker` without parameter servers)."""
    port = workload.rendezvous_port
    return {
        role: [f"{pod_address(workload, i, role)}:{port}" for i in range(count)]
        for role, count in pod_roles(workload)
    }


def tf_config_script(roles: list[tuple[Role, int]]) -> str:
    """POSIX sh that exports TF_CONFIG for this pod's index, then runs the program.

    `roles` are in index order (pod_roles): the role whose range holds the index is the
    pod's, and its task index counts from the start of that range."""
    lines = ['index="$JOB_COMPLETION_INDEX"']
    if len(roles) == 1:
        lines.append(_task_assignment(roles[0][0], 0))
    else:
        start = 0
        for position, (role, count) in enumerate(roles):
            if position == len(roles) - 1:
                lines.append("else")
            else:
                keyword = "if" if position == 0 else "elif"
                lines.append(f'{keyword} [ "$index" -lt {start + count} ]; then')
            lines.append(f"  {_task_assignment(role, start)}")
            start += count
        lines.append("fi")
    lines += ['export TF_CONFIG="{\\"cluster\\":$TF_CLUSTER,\\"task\\":$task}"', 'exec "$@"', ""]
    return "\n".join(lines)


def _task_assignment(role: Role, start: int) -> str:
    """`task=` the JSON task of a pod whose role's indexes begin at `start`."""
    index = "$index" if start == 0 else f"$((index - {start}))"
    return f'task="{{\\"type\\":\\"{role}\\",\\"index\\":{index}}}"'


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
        tf_role_script(role)
        if workload.runtime == "jobset"
        else tf_config_script(pod_roles(workload))
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
