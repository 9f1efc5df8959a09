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
from typing import Any

from generator.config import model

PYTHON_NAMES = frozenset({"python", "python3"})


@dataclass(frozen=True)
class Launch:
    """What goes into the trainer container to start one process of the job."""

    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    port_name: str


def pod_hostname(workload: model.Workload, index: int) -> str:
    return f"{workload.name}-{index}"


def pod_address(workload: model.Workload, index: int) -> str:
    """The in-namespace DNS name of pod `index`: `<job>-<index>.<service>`."""
    return f"{pod_hostname(workload, index)}.{workload.name}"


def launch(workload: model.Workload) -> Launch:
    if workload.framework == "pytorch":
        return _torchrun(workload)
    return _tensorflow(workload)


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
        args=options + _torchrun_program(list(workload.command)),
        env=[{"name": "PYTHONUNBUFFERED", "value": "1"}],
        port_name="rendezvous",
    )


def _torchrun_program(command: list[str]) -> list[str]:
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
    addresses = [f"{pod_address(workload, i)}:{port}" for i in range(workload.pod_count)]
    cluster = {"worker": addresses[: workload.workers]}
    if workload.parameter_servers:
        cluster["ps"] = addresses[workload.workers :]
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


def _tensorflow(workload: model.Workload) -> Launch:
    cluster = json.dumps(tf_cluster_spec(workload), separators=(",", ":"))
    return Launch(
        command=["/bin/sh", "-c", tf_config_script(workload.workers), "tf-config"],
        args=list(workload.command),
        env=[
            {"name": "TF_CLUSTER", "value": cluster},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        port_name="grpc",
    )
