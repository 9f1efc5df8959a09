"""What a mutating webhook adds to a pod at admission, which the built pod does not show
but the scheduler counts: on GKE, the Cloud Storage FUSE CSI driver's sidecar.

Facts from GoogleCloudPlatform/gcs-fuse-csi-driver at v1.24.4 (the newest release tag):

- pkg/webhook/mutatingwebhook.go `Handle`: a pod annotated `gke-gcsfuse/volumes` with
  `true` or `True` (parsers.go `ParseBool`) gets the `gke-gcsfuse-sidecar` container;
- injection.go: it goes in as a native sidecar (an init container with
  `restartPolicy: Always`, first in `initContainers` unless an `istio-proxy` is there)
  when the cluster and all its nodes run Kubernetes 1.29 or later (parsers.go
  `minimumSupportedVersion`), which every GKE version mlgitops accepts does;
- config.go `prepareConfig` / `populateResource`: its requests come from the pod's
  annotations `gke-gcsfuse/cpu-request`, `memory-request`, `ephemeral-storage-request`;
  a request left out takes its limit annotation (`cpu-limit` ...) when that is set and
  not zero, else the webhook's default: cmd/webhook/main.go with the arguments of
  deploy/base/webhook/deployment.yaml, `--sidecar-cpu-request=250m`,
  `--sidecar-memory-request=256Mi`, `--sidecar-ephemeral-storage-request=5Gi`;
  a zero request is no request (`prepareResourceList` leaves zero quantities out);
- the metadata-prefetch sidecar is injected only for volumes with the volume attribute
  `gcsfuseMetadataPrefetchOnMount` (sidecar_spec.go), which mlgitops does not set: it is
  not modelled.

A sidecar's requests add to the pod's (Kubernetes sidecar containers, KEP-753:
k8s.io/component-helpers resource/helpers.go `PodRequests`, placement.pod_requests).
Ephemeral storage is not modelled by the placement model, so its request is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.quantities import is_quantity, value

GCSFUSE_ENABLE_ANNOTATION = "gke-gcsfuse/volumes"
GCSFUSE_SIDECAR = "gke-gcsfuse-sidecar"
GCSFUSE_PREFIX = "gke-gcsfuse/"
ISTIO_PROXY = "istio-proxy"
# The webhook's defaults (deploy/base/webhook/deployment.yaml at v1.24.4).
GCSFUSE_DEFAULT_REQUESTS = {"cpu": "250m", "memory": "256Mi"}
_TRUE = ("true", "True")


def gcsfuse_sidecar(annotations: Mapping[str, Any]) -> dict[str, Any] | None:
    """The sidecar container the webhook injects into a pod with these annotations, as
    far as scheduling reads it (name, restartPolicy, requests); None when it injects
    none."""
    if str(annotations.get(GCSFUSE_ENABLE_ANNOTATION)) not in _TRUE:
        return None
    requests = {}
    for resource, default in GCSFUSE_DEFAULT_REQUESTS.items():
        asked = _sidecar_request(annotations, resource, default)
        if value(asked) != 0:
            requests[resource] = asked
    return {
        "name": GCSFUSE_SIDECAR,
        "restartPolicy": "Always",
        "resources": {"requests": requests},
    }


def _sidecar_request(annotations: Mapping[str, Any], resource: str, default: str) -> str:
    request = annotations.get(f"{GCSFUSE_PREFIX}{resource}-request")
    if request is not None and is_quantity(str(request)):
        return str(request)
    limit = annotations.get(f"{GCSFUSE_PREFIX}{resource}-limit")
    if limit is not None and is_quantity(str(limit)) and value(str(limit)) != 0:
        return str(limit)
    return default


def with_injected_sidecars(
    spec: Mapping[str, Any], annotations: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The pod spec as GKE's webhooks leave it (the FUSE sidecar among the init
    containers, after an `istio-proxy` if there is one, else first: injection.go
    `getInjectIndexAfterContainer`), or None when no webhook changes it."""
    sidecar = gcsfuse_sidecar(annotations)
    if sidecar is None:
        return None
    init = list(spec.get("initContainers") or ())
    names = [c.get("name") for c in init]
    at = names.index(ISTIO_PROXY) + 1 if ISTIO_PROXY in names else 0
    return {**spec, "initContainers": [*init[:at], sidecar, *init[at:]]}
