"""The pod every runtime runs: Pod Security "restricted", requests equal to limits, the
checkpoint and shared-memory volumes, and the labels the per-cloud overlays select on."""

from __future__ import annotations

from typing import Any

from generator.config import model
from generator.render import frameworks
from generator.render.labels import CHECKPOINT_LABEL, GPU_LABEL

CONTAINER_NAME = "trainer"
CHECKPOINT_VOLUME = "checkpoint"
SHARED_MEMORY_VOLUME = "dshm"


def selection_labels(workload: model.Workload) -> dict[str, str]:
    """What the per-cloud overlays select on: GPUs, and a checkpoint and how it is shared."""
    labels = {}
    if workload.resources.gpu:
        labels[GPU_LABEL] = "true"
    if workload.checkpoint:
        labels[CHECKPOINT_LABEL] = checkpoint_sharing(workload)
    return labels


def checkpoint_sharing(workload: model.Workload) -> str:
    return "shared" if workload.pod_count > 1 else "single"


def render_pod_spec(
    workload: model.Workload, container: dict[str, Any], subdomain: str | None = None
) -> dict[str, Any]:
    """Pod Security "restricted", no service account token, the checkpoint and shared
    memory volumes; `subdomain` only where the runtime does not set it itself."""
    spec: dict[str, Any] = {"subdomain": subdomain} if subdomain else {}
    return spec | {
        "serviceAccountName": workload.name,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_user,
            "fsGroup": workload.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": render_volumes(workload),
    }


def render_trainer_container(
    workload: model.Workload,
    launch: frameworks.Launch | None = None,
    name: str = CONTAINER_NAME,
) -> dict[str, Any]:
    """The one container of every training pod; `launch` says how it starts (by default
    as the framework's wiring for an Indexed Job), `name` what the runtime expects."""
    launch = launch or frameworks.launch(workload)
    env = launch.env + user_env(workload)
    mounts = [{"name": SHARED_MEMORY_VOLUME, "mountPath": "/dev/shm"}]
    if workload.checkpoint:
        mounts.append({"name": CHECKPOINT_VOLUME, "mountPath": workload.checkpoint.mount_path})
    return {
        "name": name,
        "image": workload.image,
        "command": launch.command,
        **({"args": launch.args} if launch.args else {}),
        **({"env": env} if env else {}),
        "ports": [
            {"name": launch.port_name, "containerPort": workload.rendezvous_port, "protocol": "TCP"}
        ],
        "resources": render_resources(workload.resources),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "volumeMounts": mounts,
    }


def user_env(workload: model.Workload) -> list[dict[str, Any]]:
    """The config's own environment variables, in a fixed order."""
    return [{"name": k, "value": v} for k, v in sorted(workload.env.items())]


def render_resources(resources: model.Resources) -> dict[str, Any]:
    """Requests equal limits: training pods get the Guaranteed QoS class."""
    amounts: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    limits = dict(amounts)
    if resources.gpu:
        limits["nvidia.com/gpu"] = resources.gpu
    return {"requests": amounts, "limits": limits}


def render_volumes(workload: model.Workload) -> list[dict[str, Any]]:
    """Shared memory for data loaders and NCCL (the 64Mi default is too small), and the
    checkpoint claim. Both are allowed under Pod Security "restricted"; hostPath is not."""
    volumes: list[dict[str, Any]] = [
        {"name": SHARED_MEMORY_VOLUME, "emptyDir": {"medium": "Memory"}}
    ]
    if workload.checkpoint:
        volumes.append(
            {
                "name": CHECKPOINT_VOLUME,
                "persistentVolumeClaim": {"claimName": checkpoint_claim(workload)},
            }
        )
    return volumes


def checkpoint_claim(workload: model.Workload) -> str:
    return f"{workload.name}-checkpoint"


def checkpoint_access_mode(workload: model.Workload) -> str:
    """Several pods writing one volume need ReadWriteMany; a single pod can own it."""
    return "ReadWriteMany" if checkpoint_sharing(workload) == "shared" else "ReadWriteOnce"
