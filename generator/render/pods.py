"""The pod every runtime runs: Pod Security "restricted", requests equal to limits, the
checkpoint and shared-memory volumes, and the labels the per-cloud overlays select on.

It also passes the Kubernetes checks of the common scanners (Checkov, kube-score,
kubesec): a user and group id of 10000 or more, a read-only root filesystem with a
writable `emptyDir` at /tmp where HOME and the frameworks' caches point, and a pull
policy that follows from how the image is pinned (see `pull_policy`).

And it is ready to be stopped and resumed (render/disruption.py): the annotations that
keep autoscalers from draining its node, time between SIGTERM and SIGKILL to save a
checkpoint, and the environment a resuming program reads."""

from __future__ import annotations

from typing import Any

from generator.config import model
from generator.render import datasets, disruption, fabric, frameworks, secrets, topology
from generator.render.labels import CHECKPOINT_LABEL, GPU_LABEL

CONTAINER_NAME = "trainer"
CHECKPOINT_VOLUME = "checkpoint"
SHARED_MEMORY_VOLUME = "dshm"
SCRATCH_VOLUME = "tmp"
SCRATCH_PATH = "/tmp"
CACHE_PATH = f"{SCRATCH_PATH}/.cache"
# Where training programs write besides their volumes, all on the scratch volume: the
# root filesystem is read-only, and a user id that is in no /etc/passwd of the image has
# no home directory. Each name is what the library itself reads: torch.hub (TORCH_HOME,
# else XDG_CACHE_HOME/torch), TorchInductor (TORCHINDUCTOR_CACHE_DIR, else a folder
# named after the user, which fails without a passwd entry), Triton (TRITON_CACHE_DIR),
# Hugging Face (HF_HOME), Keras (KERAS_HOME), Matplotlib (MPLCONFIGDIR); TensorFlow and
# the rest write to TMPDIR or HOME. A workload's own `env` replaces any of them.
WRITABLE_ENV: tuple[tuple[str, str], ...] = (
    ("HOME", SCRATCH_PATH),
    ("TMPDIR", SCRATCH_PATH),
    ("XDG_CACHE_HOME", CACHE_PATH),
    ("TORCH_HOME", f"{CACHE_PATH}/torch"),
    ("TORCHINDUCTOR_CACHE_DIR", f"{CACHE_PATH}/torchinductor"),
    ("TRITON_CACHE_DIR", f"{CACHE_PATH}/triton"),
    ("HF_HOME", f"{CACHE_PATH}/huggingface"),
    ("KERAS_HOME", f"{CACHE_PATH}/keras"),
    ("MPLCONFIGDIR", f"{CACHE_PATH}/matplotlib"),
)


# What the validate policies read on a training object (generator.validate.policies).
REQUIRE_DIGEST_ANNOTATION = "mlgitops.io/require-digest"
HIGH_ID_RULE = "MLG018"
HIGH_ID = 10000


def policy_annotations(config: model.Config, workload: model.Workload) -> dict[str, str]:
    """`images.requireDigest` stated on the object, so `validate` holds every image of
    it (after any overlay or patch) to a digest; and, for a user id below 10000 that the
    config chose, the waiver of the high-id rule with that reason."""
    annotations = {}
    if config.images.require_digest:
        annotations[REQUIRE_DIGEST_ANNOTATION] = "true"
    if workload.run_as_user < HIGH_ID:
        annotations[f"mlgitops.io/waive-{HIGH_ID_RULE.lower()}"] = (
            f"runAsUser {workload.run_as_user} is what mlgitops.yaml chose for {workload.name}"
        )
    return annotations


def selection_labels(workload: model.Workload) -> dict[str, str]:
    """What the per-cloud overlays select on: GPUs, and a checkpoint and how it is shared."""
    labels = {}
    if workload.resources.gpu:
        labels[GPU_LABEL] = "true"
    if workload.checkpoint:
        labels[CHECKPOINT_LABEL] = checkpoint_sharing(workload)
    if shares_data_claims(workload):
        labels[datasets.DATA_LABEL] = "true"
    return labels


def shares_data_claims(workload: model.Workload) -> bool:
    """Several pods mount the dataset claims: on a cloud without ReadWriteMany storage
    (local) they run on one node."""
    return bool(workload.data) and workload.pod_count > 1


def checkpoint_sharing(workload: model.Workload) -> str:
    return "shared" if workload.pod_count > 1 else "single"


def pod_metadata(labels: dict[str, str], workload: model.Workload) -> dict[str, Any]:
    """A training pod template's metadata: its labels, the annotations that keep
    Karpenter and the Cluster Autoscaler from taking its node away to save money, and
    the topology Kueue admits it by (render/topology.py: Kueue reads it from every pod
    set's template)."""
    annotations = (
        dict(disruption.DO_NOT_DISRUPT)
        | topology.pod_template_annotations(workload)
        | datasets.pod_annotations(workload)
    )
    return {"labels": labels, "annotations": annotations}


def render_pod_spec(
    workload: model.Workload, container: dict[str, Any], subdomain: str | None = None
) -> dict[str, Any]:
    """Pod Security "restricted", no service account token, the checkpoint and shared
    memory volumes; `subdomain` only where the runtime does not set it itself.

    A workload with a `priority` that no queue orders gets the scheduler's PriorityClass
    of that name (render/queues.py); a queued one is ordered by Kueue instead."""
    spec: dict[str, Any] = {"subdomain": subdomain} if subdomain else {}
    if workload.priority and not workload.queue:
        spec["priorityClassName"] = workload.priority
    if workload.image_pull_secrets:
        spec["imagePullSecrets"] = secrets.pull_secrets(workload)
    return spec | {
        "serviceAccountName": workload.name,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": workload.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_user,
            "fsGroup": workload.run_as_user,  # the volumes are writable by that group
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
    env = [
        *launch.env,
        *writable_env(workload),
        *disruption.resume_env(workload),
        *fabric.nccl_env(workload),
        *user_env(workload),
    ]
    env += secrets.secret_env(workload)
    env += datasets.trainer_env(workload)
    mounts = [
        {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH},
        {"name": SHARED_MEMORY_VOLUME, "mountPath": "/dev/shm"},
    ]
    if workload.checkpoint:
        mounts.append({"name": CHECKPOINT_VOLUME, "mountPath": workload.checkpoint.mount_path})
    mounts += secrets.secret_mounts(workload)
    mounts += datasets.trainer_mounts(workload)
    return {
        "name": name,
        "image": workload.image,
        "imagePullPolicy": pull_policy(workload.image),
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
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            # Also on the container: scanners read the ids there (kube-score only there).
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_user,
        },
        "volumeMounts": mounts,
    }


def pull_policy(image: str) -> str:
    """A digest names one immutable image: the node's copy is that image, so
    IfNotPresent is safe and spares the registry. A tag can be moved to another image:
    Always, so every pod runs what the tag names now, with the pull secret checked."""
    return "IfNotPresent" if "@" in image else "Always"


def writable_env(workload: model.Workload) -> list[dict[str, Any]]:
    """HOME, TMPDIR and the framework caches on the scratch volume, unless the workload
    sets the variable itself."""
    return [{"name": k, "value": v} for k, v in WRITABLE_ENV if k not in workload.env]


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
    """Scratch space on the node's disk (the root filesystem is read-only), shared
    memory for data loaders and NCCL (the 64Mi default is too small), and the checkpoint
    claim. All are allowed under Pod Security "restricted"; hostPath is not."""
    volumes: list[dict[str, Any]] = [
        {"name": SCRATCH_VOLUME, "emptyDir": {}},
        {"name": SHARED_MEMORY_VOLUME, "emptyDir": {"medium": "Memory"}},
    ]
    if workload.checkpoint:
        volumes.append(
            {
                "name": CHECKPOINT_VOLUME,
                "persistentVolumeClaim": {"claimName": checkpoint_claim(workload)},
            }
        )
    return volumes + secrets.secret_volumes(workload) + datasets.pod_volumes(workload)


def checkpoint_claim(workload: model.Workload) -> str:
    return f"{workload.name}-checkpoint"


def checkpoint_access_mode(workload: model.Workload) -> str:
    """Several pods writing one volume need ReadWriteMany; a single pod can own it."""
    return "ReadWriteMany" if checkpoint_sharing(workload) == "shared" else "ReadWriteOnce"
