"""The labels every generated object carries, and the selectors built from them."""

from __future__ import annotations

from generator.config import model

MANAGED_BY = "mlgitops"
NAME = "app.kubernetes.io/name"
# Labels the per-cloud overlays select on, so one patch serves every workload.
GPU_LABEL = "mlgitops.io/gpu"  # "true" on Jobs whose pods request GPUs
CHECKPOINT_LABEL = "mlgitops.io/checkpoint"  # "shared" or "single" on Jobs and their claims
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # the LocalQueue a workload waits in


def platform_labels(config: model.Config) -> dict[str, str]:
    """Labels for objects that belong to the platform rather than to one workload."""
    return {"app.kubernetes.io/part-of": config.name, "app.kubernetes.io/managed-by": MANAGED_BY}


def workload_labels(config: model.Config, workload: model.Workload) -> dict[str, str]:
    return {
        NAME: workload.name,
        "app.kubernetes.io/component": "training",
        **platform_labels(config),
    }


def workload_selector(workload: model.Workload) -> dict[str, str]:
    """Selects exactly the pods of one workload; workload names are unique per namespace."""
    return {NAME: workload.name}
