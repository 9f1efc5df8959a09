"""Kueue's Configuration with gang admission (`waitForPodsReady`), as patches the GitOps
engine applies to Kueue's upstream build.

Facts, at kubernetes-sigs/kueue@v0.17.6:

- The controller reads its Configuration once, at start, from the file
  `controller_manager_config.yaml` of the ConfigMap `kueue-manager-config` in
  `kueue-system` (config/components/manager/kustomization.yaml generates `manager-config`
  with `disableNameSuffixHash: true`; config/default adds the `kueue-` prefix and the
  namespace; config/default/manager_config_patch.yaml mounts it and passes `--config`).
  It decodes strictly (pkg/config/config.go fromFile: `serializer.EnableStrict`), so an
  unknown key stops the controller.
- The file is `apiVersion: config.kueue.x-k8s.io/v1beta2`, `kind: Configuration`
  (config/components/manager/controller_manager_config.yaml), with `waitForPodsReady`
  commented out. In v1beta2 its presence turns it on (there is no `enable` field:
  apis/config/v1beta2/configuration_types.go WaitForPodsReady; pkg/util/waitforpodsready
  Enabled is `cfg != nil`); `timeout` is required and positive (pkg/config/validation.go
  validateWaitForPodsReady); `blockAdmission` defaults to false, `recoveryTimeout` to
  `timeout`, `requeuingStrategy` to timestamp Eviction, backoff base 60 s, max 3600 s,
  no limit on requeues (apis/config/v1beta2/defaults.go).
- A ConfigMap's data key is replaced whole by a strategic-merge patch, so the patch
  carries the whole file: UPSTREAM_SETTINGS below is that file's uncommented settings,
  exactly (tests/test_metrics.py compares them with the file at the tag when the
  upstream repository is at hand).
- A changed ConfigMap does not restart the controller (the name has no content hash, and
  the file is mounted by `subPath`, which the kubelet never refreshes), so
  a second patch puts the file's SHA-256 in the Deployment's pod template: a new
  Configuration is a new template, which rolls `kueue-controller-manager`.

Both engines add these patches to `config/default/kustomization.yaml` itself before
building (argoproj/argo-cd util/kustomize/kustomize.go appends `source.kustomize.patches`
to the file's `patches`; fluxcd/pkg kustomize generator appends `spec.patches` likewise),
so they run alongside upstream's own patches, before its `namePrefix`: they target the
objects by their names in the components (`manager-config`, `controller-manager`), as
upstream's patches in that file do.
"""

from __future__ import annotations

import hashlib
from typing import Any

from generator.config import model
from generator.emit import dump_document

CONFIG_KEY = "controller_manager_config.yaml"
CONFIG_MAP = "manager-config"  # kueue-manager-config once built
DEPLOYMENT = "controller-manager"  # kueue-controller-manager once built
CONFIG_HASH_ANNOTATION = "mlgitops.io/kueue-config-sha256"

# kubernetes-sigs/kueue@v0.17.6 config/components/manager/controller_manager_config.yaml,
# its settings that are not commented out, in its order.
UPSTREAM_SETTINGS: dict[str, Any] = {
    "apiVersion": "config.kueue.x-k8s.io/v1beta2",
    "kind": "Configuration",
    "health": {"healthProbeBindAddress": ":8081"},
    "metrics": {"bindAddress": ":8443"},
    "webhook": {"port": 9443},
    "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
    "controller": {
        "groupKindConcurrency": {
            "Job.batch": 5,
            "Pod": 5,
            "Workload.kueue.x-k8s.io": 5,
            "LocalQueue.kueue.x-k8s.io": 1,
            "Cohort.kueue.x-k8s.io": 1,
            "ClusterQueue.kueue.x-k8s.io": 1,
            "ResourceFlavor.kueue.x-k8s.io": 1,
        }
    },
    "clientConnection": {"qps": 50, "burst": 100},
    "integrations": {
        "frameworks": [
            "batch/job",
            "kubeflow.org/mpijob",
            "ray.io/rayjob",
            "ray.io/raycluster",
            "ray.io/rayservice",
            "jobset.x-k8s.io/jobset",
            "kubeflow.org/paddlejob",
            "kubeflow.org/pytorchjob",
            "kubeflow.org/tfjob",
            "kubeflow.org/xgboostjob",
            "kubeflow.org/jaxjob",
            "workload.codeflare.dev/appwrapper",
            "trainer.kubeflow.org/trainjob",
            "pod",
            "deployment",
            "statefulset",
            "leaderworkerset.x-k8s.io/leaderworkerset",
        ]
    },
}


def wait_for_pods_ready(settings: model.QueueSettings) -> dict[str, Any]:
    """All-or-nothing start: an admitted workload whose pods are not all Ready within the
    timeout is evicted (its pods deleted, its quota released) and requeued after a
    backoff (60 s doubling to an hour, never given up: a run waits for capacity rather
    than being deactivated). The same timeout applies when a running workload loses a
    pod and its replacement does not become Ready (recoveryTimeout). Admission is not
    blocked while a workload waits for its pods (blockAdmission false): quotas match the
    nodes, so admitted workloads do not compete for the same nodes, and other queues
    keep admitting while GPU nodes scale up."""
    timeout = f"{settings.pods_ready_timeout_minutes}m"
    return {
        "timeout": timeout,
        "recoveryTimeout": timeout,
        "blockAdmission": False,
        "requeuingStrategy": {
            "timestamp": "Eviction",
            "backoffBaseSeconds": 60,
            "backoffMaxSeconds": 3600,
        },
    }


def kueue_configuration(config: model.Config) -> dict[str, Any] | None:
    """The Configuration Kueue runs with, when it differs from upstream's file."""
    if not config.queues.gang_admission:
        return None
    return {**UPSTREAM_SETTINGS, "waitForPodsReady": wait_for_pods_ready(config.queues)}


def configuration_text(configuration: dict[str, Any]) -> str:
    """The file's text, without the final newline kustomize would drop from a patched
    ConfigMap value anyway (so the hash is of exactly what the controller mounts)."""
    return dump_document(configuration).decode().rstrip("\n")


def kueue_patches(config: model.Config) -> list[dict[str, Any]]:
    """Patches of Kueue's build: the whole Configuration file, and its hash on the
    controller's pod template (a restart whenever it changes). None when upstream's
    file is kept."""
    configuration = kueue_configuration(config)
    if configuration is None:
        return []
    text = configuration_text(configuration)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return [
        {
            "target": {"version": "v1", "kind": "ConfigMap", "name": CONFIG_MAP},
            "patch": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": CONFIG_MAP},
                "data": {CONFIG_KEY: text},
            },
        },
        {
            "target": {"group": "apps", "version": "v1", "kind": "Deployment", "name": DEPLOYMENT},
            "patch": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": DEPLOYMENT},
                "spec": {
                    "template": {"metadata": {"annotations": {CONFIG_HASH_ANNOTATION: digest}}}
                },
            },
        },
    ]
