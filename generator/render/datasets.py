"""Datasets: the data a workload trains on, mounted read-only (by default) where the
trainer reads it, and found through `MLGITOPS_DATA_<NAME>` = its mountPath.

Per cloud (a dataset's `source`, or its `sources.<cloud>`):

- EKS, `s3://bucket/prefix`: the Mountpoint for Amazon S3 CSI driver (EKS add-on
  `aws-mountpoint-s3-csi-driver`, driver `s3.csi.aws.com`), a statically provisioned
  PersistentVolume bound to the claim `<workload>-data-<name>` by `claimRef`, read with
  the training pods' own EKS Pod Identity credentials (`authenticationSource: pod`).
  Facts from awslabs/mountpoint-s3-csi-driver at v2.7.0: docs/CONFIGURATION.md ("Static
  Provisioning", "Pod-Level Credentials": `storageClassName: ""`, a unique
  `volumeHandle`, `claimRef`, ReadWriteMany / ReadOnlyMany), deploy/kubernetes/base/
  csidriver.yaml (tokenRequests for the audience pods.eks.amazonaws.com: the kubelet
  hands the driver the pod's token, so the pod needs no mounted token), pkg/driver/node/
  node.go (a read-only volume or a ReadOnlyMany claim mounts with `--read-only`).
  Pod-level Pod Identity is in pkg/driver/node/credentialprovider/provider_pod.go at
  v1.15.0, v2.0.0 and v2.7.0 alike (the tags read).
- GKE, `gs://bucket/prefix`: the Cloud Storage FUSE CSI driver (ContainerCluster
  `addonsConfig.gcsFuseCsiDriverConfig.enabled`), a CSI ephemeral volume in the pod
  (`gcsfuse.csi.storage.gke.io`), the pod annotated `gke-gcsfuse/volumes: "true"` so
  GKE's webhook adds the gcsfuse sidecar, which reads the bucket with the pod's Workload
  Identity. Facts from GoogleCloudPlatform/gcs-fuse-csi-driver at v1.24.4 (GKE runs its
  own build of the driver; this is the newest tag read): pkg/csi_driver/utils.go (the
  volume attributes `mountOptions`, `fileCacheCapacity`, `fileCacheForRangeRead`),
  pkg/webhook/config.go (the sidecar's resource annotations), pkg/webhook/sidecar_spec.go
  (the sidecar's security context meets Pod Security "restricted": runAsNonRoot as
  65534, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
  read-only root; only NUMA pinning, which is not asked for, would break it; its
  volumes are emptyDirs, the file cache `gke-gcsfuse-cache` among them).
- `pvc:CLAIM`: an existing claim of the workload's namespace, on any cloud.
- local clusters: a bucket source becomes the claim `<workload>-data-<name>` (kind's
  `standard` class, ReadWriteOnce, `localSize`), which you fill (README "Datasets").
  Never a hostPath (Pod Security "restricted" forbids it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from generator.cluster import webhooks
from generator.config import checks, model
from generator.quantities import memory_bytes, millicores
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, Patch, metadata

VOLUME_PREFIX = "data-"
ENV_PREFIX = "MLGITOPS_DATA_"
# Selects, on local clusters, the Jobs whose pods share ReadWriteOnce data claims.
DATA_LABEL = "mlgitops.io/data-claims"
# On a namespace: the claims its pods mount that are made outside this tree (`pvc:`
# sources), for the cluster model (cluster/inventory.py), which otherwise reports a claim
# nothing creates (MLG015).
HAND_MADE_CLAIMS_ANNOTATION = "mlgitops.io/claims-made-by-hand"

# ------------------------------------------------------------------ Mountpoint (EKS)
MOUNTPOINT_DRIVER = "s3.csi.aws.com"
MOUNTPOINT_ADDON = "aws-mountpoint-s3-csi-driver"
# The namespace the driver (v2) runs its Mountpoint pods in, one per volume and node
# (charts/aws-mountpoint-s3-csi-driver/values.yaml at v2.7.0, `mountpointPod.namespace`;
# the chart enforces Pod Security "restricted" there).
MOUNTPOINT_POD_NAMESPACE = "mount-s3"
# Kubernetes requires a capacity on the PV and a request on the claim; the driver
# ignores both (docs/CONFIGURATION.md: "Value is ignored but required by Kubernetes").
S3_NOMINAL_SIZE = "1Ti"

# --------------------------------------------------------- Cloud Storage FUSE (GKE)
GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
# The sidecar's share of the pod (pkg/webhook/config.go: `gke-gcsfuse/<key>` for each
# of cpu, memory and ephemeral-storage requests and limits). CPU and memory with
# requests equal to limits keep the pod Guaranteed; a zero ephemeral-storage limit is
# none (prepareResourceList drops zero quantities), so the file cache, which lives in the
# sidecar's emptyDir, is requested from the node but the pod is never evicted for it.
GCSFUSE_SIDECAR_CPU = "1"
GCSFUSE_SIDECAR_MEMORY = "2Gi"
# Each dataset's file cache (volume attribute fileCacheCapacity): epochs after the
# first read from the node's disk instead of the bucket.
GCSFUSE_FILE_CACHE_GI = 20
GCSFUSE_FILE_CACHE = f"{GCSFUSE_FILE_CACHE_GI}Gi"
# gcsfuse options for training reads (gcsfuse's documented config keys; not read in
# gcsfuse's source here): folders that exist only as object name prefixes, and parallel
# downloads into the file cache (they need the file cache, which fileCacheCapacity
# turns on). `_gcsfuse_volume` adds the dataset's prefix (only-dir) and the pod's user
# and group.
GCSFUSE_IMPLICIT_DIRS = "implicit-dirs"
GCSFUSE_PARALLEL_DOWNLOADS = "file-cache:enable-parallel-downloads:true"
# Cloud Storage IAM roles: read objects and list them (objectViewer), and also write
# (objectUser), on one bucket.
GCS_READ_ROLE = "roles/storage.objectViewer"
GCS_WRITE_ROLE = "roles/storage.objectUser"
STORAGE_API = "storage.cnrm.cloud.google.com/v1beta1"


def volume_name(dataset: model.Dataset) -> str:
    return f"{VOLUME_PREFIX}{dataset.name}"


def env_name(dataset: model.Dataset) -> str:
    return ENV_PREFIX + dataset.name.upper().replace("-", "_")


def claim_name(workload: model.Workload, dataset: model.Dataset) -> str:
    """The claim the pods mount: the configured one (pvc:), else the generated one."""
    source = dataset.source
    if source is not None and source.startswith("pvc:"):
        return source.removeprefix("pvc:")
    return f"{workload.name}-data-{dataset.name}"


def on_cloud(workload: model.Workload, cloud: str) -> tuple[model.Dataset, ...]:
    """The workload's datasets as one cloud sees them: one `source` each (None: the
    claim you fill, on local clusters)."""
    return tuple(replace(d, source=d.source_on(cloud), sources=None) for d in workload.data)


def _scheme(dataset: model.Dataset) -> str | None:
    source = dataset.source
    if source is None:
        return None
    return source.split(":", 1)[0]


def gcs(workload: model.Workload) -> list[model.Dataset]:
    return [d for d in workload.data if d.sources is None and _scheme(d) == "gs"]


def s3(workload: model.Workload) -> list[model.Dataset]:
    return [d for d in workload.data if d.sources is None and _scheme(d) == "s3"]


def filled_by_hand(workload: model.Workload) -> list[model.Dataset]:
    """Datasets that are a generated claim with no cloud store behind it (local)."""
    return [d for d in workload.data if d.sources is None and d.source is None]


# ------------------------------------------------------------------------- pods


def pod_volumes(workload: model.Workload) -> list[dict[str, Any]]:
    volumes = []
    for dataset in workload.data:
        if dataset.sources is None and _scheme(dataset) == "gs":
            volumes.append(
                {"name": volume_name(dataset), "csi": _gcsfuse_volume(workload, dataset)}
            )
        else:
            claim = {"claimName": claim_name(workload, dataset), "readOnly": dataset.read_only}
            volumes.append({"name": volume_name(dataset), "persistentVolumeClaim": claim})
    return volumes


def trainer_mounts(workload: model.Workload) -> list[dict[str, Any]]:
    return [
        {"name": volume_name(d), "mountPath": d.mount_path, "readOnly": d.read_only}
        for d in workload.data
    ]


def trainer_env(workload: model.Workload) -> list[dict[str, str]]:
    return [{"name": env_name(d), "value": d.mount_path} for d in workload.data]


def pod_annotations(workload: model.Workload) -> dict[str, str]:
    """GKE's webhook adds the gcsfuse sidecar to pods annotated so, with these
    resources (pkg/webhook/config.go)."""
    found = gcs(workload)
    if not found:
        return {}
    cache = f"{GCSFUSE_FILE_CACHE_GI * len(found)}Gi"
    return {
        webhooks.GCSFUSE_ENABLE_ANNOTATION: "true",
        "gke-gcsfuse/cpu-limit": GCSFUSE_SIDECAR_CPU,
        "gke-gcsfuse/cpu-request": GCSFUSE_SIDECAR_CPU,
        "gke-gcsfuse/ephemeral-storage-limit": "0",
        "gke-gcsfuse/ephemeral-storage-request": cache,
        "gke-gcsfuse/memory-limit": GCSFUSE_SIDECAR_MEMORY,
        "gke-gcsfuse/memory-request": GCSFUSE_SIDECAR_MEMORY,
    }


def sidecar_amounts(workload: model.Workload, cloud: str) -> tuple[int, int] | None:
    """(millicores, bytes) the gcsfuse sidecar asks for in the workload's pods on a cloud,
    or None where it has none: what GKE's webhook reads from the pods' annotations, as
    the cluster model reads it (cluster/webhooks.py)."""
    seen = replace(workload, data=on_cloud(workload, cloud))
    sidecar = webhooks.gcsfuse_sidecar(pod_annotations(seen))
    if sidecar is None:
        return None
    requests = sidecar["resources"]["requests"]
    return millicores(requests.get("cpu", "0")), memory_bytes(requests.get("memory", "0"))


def _gcsfuse_volume(workload: model.Workload, dataset: model.Dataset) -> dict[str, Any]:
    assert dataset.source is not None
    _, bucket, prefix = checks.bucket_and_prefix(dataset.source)
    options = [GCSFUSE_IMPLICIT_DIRS]
    if prefix:
        options.append(f"only-dir={prefix}")
    options += [
        f"uid={workload.run_as_user}",
        f"gid={workload.run_as_user}",
        GCSFUSE_PARALLEL_DOWNLOADS,
    ]
    return {
        "driver": GCSFUSE_DRIVER,
        "readOnly": dataset.read_only,
        "volumeAttributes": {
            "bucketName": bucket,
            "mountOptions": ",".join(options),
            "fileCacheCapacity": GCSFUSE_FILE_CACHE,
            # Random reads of a big file (a shard, a record file) fill the cache too.
            "fileCacheForRangeRead": "true",
        },
    }


# ----------------------------------------------------------- claims and volumes


def _labels(config: model.Config, workload: model.Workload) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": workload.name,
        "app.kubernetes.io/component": "data",
        **platform_labels(config),
    }


def eks_objects(config: model.Config, workload: model.Workload) -> list[Manifest]:
    """A PersistentVolume and its claim per S3 dataset of the workload (as EKS sees it)."""
    objects: list[Manifest] = []
    for dataset in s3(workload):
        assert dataset.source is not None
        _, bucket, prefix = checks.bucket_and_prefix(dataset.source)
        claim = claim_name(workload, dataset)
        # Kubernetes hands the driver the volume's access mode: ReadOnlyMany mounts
        # with --read-only (pkg/driver/node/node.go).
        mode = "ReadOnlyMany" if dataset.read_only else "ReadWriteMany"
        # The trainer's user and group own the files, and others than the Mountpoint
        # pod's own user may read them (Mountpoint's --uid, --gid, --allow-other;
        # examples/kubernetes/static_provisioning/non_root.yaml at v2.7.0). No `region`:
        # Mountpoint detects the bucket's region at startup (mountpoint-s3 doc/
        # CONFIGURATION.md "Region detection"), and the bucket need not be the cluster's.
        options = [f"uid={workload.run_as_user}", f"gid={workload.run_as_user}", "allow-other"]
        if prefix:
            options.append(f"prefix {prefix}/")
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": metadata(claim, _labels(config, workload)),
            "spec": {
                "capacity": {"storage": S3_NOMINAL_SIZE},
                "accessModes": [mode],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": workload.namespace, "name": claim},
                "mountOptions": options,
                "csi": {
                    "driver": MOUNTPOINT_DRIVER,
                    # Unique per cluster: Kubernetes handles one volume per handle.
                    "volumeHandle": f"{workload.namespace}-{claim}",
                    "volumeAttributes": {"bucketName": bucket, "authenticationSource": "pod"},
                },
            },
        }
        objects.append(volume)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": metadata(claim, _labels(config, workload), workload.namespace),
                "spec": {
                    "accessModes": [mode],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": S3_NOMINAL_SIZE}},
                    "volumeName": claim,
                },
            }
        )
    return objects


def local_objects(config: model.Config, workload: model.Workload) -> list[Manifest]:
    """The claims you fill on a local cluster (kind's `standard` class, ReadWriteOnce:
    the workload's pods run on one node)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(
                claim_name(workload, d), _labels(config, workload), workload.namespace
            ),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "standard",
                "resources": {"requests": {"storage": d.local_size}},
            },
        }
        for d in filled_by_hand(workload)
    ]


# ------------------------------------------------------------------ identities


def _bucket_grants(config: model.Config, cluster: model.Cluster) -> list[tuple[str, str, bool]]:
    """(bucket, prefix, writable) for each dataset the cluster's workloads mount from
    its cloud's store, once each; writable wins when one is written and one only read."""
    found: dict[tuple[str, str], bool] = {}
    for workload in config.workloads_on(cluster):
        seen = replace(workload, data=on_cloud(workload, cluster.cloud))
        for dataset in [*s3(seen), *gcs(seen)]:
            assert dataset.source is not None
            _, bucket, prefix = checks.bucket_and_prefix(dataset.source)
            key = (bucket, prefix)
            found[key] = found.get(key, False) or not dataset.read_only
    return [(b, p, w) for (b, p), w in sorted(found.items())]


# What Mountpoint needs (awslabs/mountpoint-s3 doc/CONFIGURATION.md "IAM permissions",
# read at commit 0398a86e, which the driver's docs/CONFIGURATION.md points to):
# s3:ListBucket on the bucket, scoped to a prefix by the s3:prefix condition, and
# s3:GetObject to read; to write, s3:PutObject and s3:AbortMultipartUpload (and
# s3:DeleteObject only with --allow-delete, which is not given). `--prefix` must end
# with "/" (same document, "Mounting a bucket prefix").
S3_READ = ("s3:GetObject",)
S3_WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")


def eks_data_policy(config: model.Config, cluster: model.EksCluster, partition: str) -> str | None:
    """The training role's inline policy: list exactly the declared prefixes and read
    (write, where a dataset is writable) exactly the objects under them."""
    grants = _bucket_grants(config, cluster)
    if not grants:
        return None
    statements: list[dict[str, Any]] = []
    for index, (bucket, prefix, writable) in enumerate(grants):
        bucket_arn = f"arn:{partition}:s3:::{bucket}"
        listing: dict[str, Any] = {
            "Sid": f"List{index}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
        }
        if prefix:
            # Only under the prefix and its slash: a bare "imagenet" would also list
            # "imagenet-private/...".
            listing["Condition"] = {"StringLike": {"s3:prefix": f"{prefix}/*"}}
        statements.append(listing)
        actions = [*S3_READ, *(S3_WRITE if writable else ())]
        objects = f"{bucket_arn}/{prefix}/*" if prefix else f"{bucket_arn}/*"
        statements.append(
            {
                "Sid": f"Objects{index}",
                "Effect": "Allow",
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": objects,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def needs_mountpoint(config: model.Config, cluster: model.Cluster) -> bool:
    return isinstance(cluster, model.EksCluster) and bool(_bucket_grants(config, cluster))


def needs_gcsfuse(config: model.Config, cluster: model.Cluster) -> bool:
    return isinstance(cluster, model.GkeCluster) and bool(_bucket_grants(config, cluster))


def gke_bucket_members(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    """The training pods' Google service account gets objectViewer (objectUser where a
    dataset is written) on each declared bucket alone. A bucket-level grant covers the
    whole bucket: Cloud Storage IAM has no prefix scope without IAM conditions, which
    these roles' list permission does not honour. Names are `infra_metadata` names."""
    account = cluster.training_service_account()
    writable: dict[str, bool] = {}
    for bucket, _, written in _bucket_grants(config, cluster):
        writable[bucket] = writable.get(bucket, False) or written
    return [
        {
            "name": _bucket_member_name(account, bucket),
            "spec": {
                "memberFrom": {"serviceAccountRef": {"name": account}},
                "role": GCS_WRITE_ROLE if writable[bucket] else GCS_READ_ROLE,
                "resourceRef": {
                    "apiVersion": STORAGE_API,
                    "kind": "StorageBucket",
                    "external": bucket,
                },
            },
        }
        for bucket in sorted(writable)
    ]


def _bucket_member_name(account: str, bucket: str) -> str:
    """Named after its bucket, so that declaring another bucket renames no grant (Config
    Connector would delete and create it again, and the pods would lose access a
    while). Bucket names may hold `_` and `.`, which the name turns into `-`; where that
    changes it, or it grows past 63 characters, a hash of the bucket keeps it unique."""
    safe = bucket.replace("_", "-").replace(".", "-")
    name = f"{account}-data-{safe}"
    if safe == bucket and len(name) <= 63:
        return name
    digest = hashlib.sha256(bucket.encode()).hexdigest()[:8]
    return f"{account}-data-{safe[: max(1, 63 - len(account) - 15)].rstrip('-')}-{digest}"


def local_notes(config: model.Config, cluster: model.LocalCluster, namespace: str) -> list[str]:
    """One line per claim a local cluster's namespace asks you to fill."""
    lines = []
    for workload in config.workloads_on(cluster):
        if workload.namespace != namespace:
            continue
        seen = replace(workload, data=on_cloud(workload, "local"))
        for dataset in filled_by_hand(seen):
            (configured,) = [d for d in workload.data if d.name == dataset.name]
            where = sorted(
                {s for c in ("eks", "gke") if (s := configured.source_on(c)) is not None}
            )
            copy = f" (a copy of {' or '.join(where)})" if where else ""
            lines.append(
                f"{claim_name(seen, dataset)}: {workload.name}'s {dataset.name}{copy}, "
                f"at {dataset.mount_path}"
            )
    return lines


def existing_claims(config: model.Config, cluster: model.Cluster, namespace: str) -> list[str]:
    """The claims the namespace's pods mount on this cluster that someone else creates
    (`pvc:` sources), in order."""
    found: list[str] = []
    for workload in config.workloads_on(cluster):
        if workload.namespace != namespace:
            continue
        for dataset in on_cloud(workload, cluster.cloud):
            if dataset.source is not None and dataset.source.startswith("pvc:"):
                claim = dataset.source.removeprefix("pvc:")
                if claim not in found:
                    found.append(claim)
    return found


def existing_claims_patch(claims: list[str], namespace: str) -> Patch:
    """The namespace says which claims exist outside the tree (see
    HAND_MADE_CLAIMS_ANNOTATION)."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "annotations": {HAND_MADE_CLAIMS_ANNOTATION: ",".join(claims)},
        },
    }
    return Patch("hand-made-claims.yaml", {"kind": "Namespace"}, body)
