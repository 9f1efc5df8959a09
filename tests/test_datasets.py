"""Datasets: read back from the built tree what each cluster mounts (volumes, claims,
PersistentVolumes), who may read it (the EKS training role's S3 statements, the GKE
training account's bucket grants) and the egress it gets, and hold it to least
privilege: a bucket, prefix or action not declared is not granted."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import build_and_validate, kustomize_build, needs_upstream, schema_args, upstream_file

from generator.cli import main
from generator.render import datasets

ROOT = Path(__file__).resolve().parent.parent
NS = "clusters/{cluster}/workloads/namespaces/{namespace}"


def _generate(config: dict[str, Any], out: Path) -> Path:
    (out / "mlgitops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = CliRunner().invoke(
        main, ["generate", "--config", str(out / "mlgitops.yaml"), "--out", str(out / "tree")]
    )
    assert result.exit_code == 0, result.output
    return out / "tree"


def _seeds() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "mlgitops.yaml").read_text())
    return config


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's own config (resnet-ddp reads imagenet from S3 on EKS, Cloud Storage
    on GKE, a claim you fill on local), and bert-finetune with an existing claim on
    every cloud and a writable dataset in a second bucket."""
    config = _seeds()
    config["workloads"][1]["data"] = [
        {"name": "vocab", "mountPath": "/data/vocab", "source": "pvc:bert-vocab"},
        {
            "name": "eval-out",
            "mountPath": "/data/eval-out",
            "readOnly": False,
            "sources": {"eks": "s3://acme-ml-scratch/bert/eval", "gke": "gs://acme-ml-scratch"},
        },
    ]
    return _generate(config, tmp_path_factory.mktemp("datasets"))


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in _of(objects, kind) if o["metadata"]["name"] == name]
    return found


def _built(tree: Path, cluster: str, namespace: str) -> list[dict[str, Any]]:
    return kustomize_build(tree / NS.format(cluster=cluster, namespace=namespace))


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]
    return pod


def _volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == name]
    return volume


# --- the pods -------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", ["eks-training", "gke-training", "local"])
def test_the_trainer_mounts_each_dataset_and_is_told_where(tree: Path, cluster: str) -> None:
    for namespace, job_name, wanted in (
        ("distributed-training", "resnet-ddp", {"imagenet": ("/data/imagenet", True)}),
        (
            "ml-workloads",
            "bert-finetune",
            {"vocab": ("/data/vocab", True), "eval-out": ("/data/eval-out", False)},
        ),
    ):
        job = _named(_built(tree, cluster, namespace), "Job", job_name)
        (container,) = _pod(job)["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        for name, (path, read_only) in wanted.items():
            assert mounts[f"data-{name}"] == {
                "name": f"data-{name}",
                "mountPath": path,
                "readOnly": read_only,
            }
            assert env[f"MLGITOPS_DATA_{name.upper().replace('-', '_')}"] == path
        assert {m for m in mounts if m.startswith("data-")} == {f"data-{n}" for n in wanted}


@pytest.mark.parametrize("cluster", ["eks-training", "local"])
def test_eks_and_local_pods_mount_the_claims(tree: Path, cluster: str) -> None:
    job = _named(_built(tree, cluster, "distributed-training"), "Job", "resnet-ddp")
    assert _volume(_pod(job), "data-imagenet") == {
        "name": "data-imagenet",
        "persistentVolumeClaim": {"claimName": "resnet-ddp-data-imagenet", "readOnly": True},
    }
    assert not any(k.startswith("gke-gcsfuse/") for k in _pod(job)["metadata"]["annotations"])
    bert = _pod(_named(_built(tree, cluster, "ml-workloads"), "Job", "bert-finetune"))
    # an existing claim is mounted by its own name, and not created
    assert _volume(bert, "data-vocab")["persistentVolumeClaim"] == {
        "claimName": "bert-vocab",
        "readOnly": True,
    }
    assert _volume(bert, "data-eval-out")["persistentVolumeClaim"] == {
        "claimName": "bert-finetune-data-eval-out",
        "readOnly": False,
    }
    claims = {
        c["metadata"]["name"]
        for c in _of(_built(tree, cluster, "ml-workloads"), "PersistentVolumeClaim")
    }
    assert "bert-vocab" not in claims and "bert-finetune-data-eval-out" in claims


def test_gke_pods_mount_the_buckets_through_cloud_storage_fuse(tree: Path) -> None:
    job = _named(_built(tree, "gke-training", "distributed-training"), "Job", "resnet-ddp")
    pod = _pod(job)
    assert _volume(pod, "data-imagenet") == {
        "name": "data-imagenet",
        "csi": {
            "driver": "gcsfuse.csi.storage.gke.io",
            "readOnly": True,
            "volumeAttributes": {
                "bucketName": "acme-ml-datasets",
                "mountOptions": "implicit-dirs,only-dir=imagenet,uid=10001,gid=10001,"
                "file-cache:enable-parallel-downloads:true",
                "fileCacheCapacity": "20Gi",
                "fileCacheForRangeRead": "true",
            },
        },
    }
    annotations = pod["metadata"]["annotations"]
    sidecar = {k: v for k, v in annotations.items() if k.startswith("gke-gcsfuse/")}
    assert sidecar == {
        "gke-gcsfuse/volumes": "true",
        "gke-gcsfuse/cpu-request": "1",
        "gke-gcsfuse/cpu-limit": "1",
        "gke-gcsfuse/memory-request": "2Gi",
        "gke-gcsfuse/memory-limit": "2Gi",
        "gke-gcsfuse/ephemeral-storage-request": "20Gi",
        "gke-gcsfuse/ephemeral-storage-limit": "0",
    }
    # no claim for a bucket on GKE
    claims = _of(_built(tree, "gke-training", "distributed-training"), "PersistentVolumeClaim")
    assert not [c for c in claims if c["metadata"]["name"].startswith("resnet-ddp-data")]
    bert = _pod(_named(_built(tree, "gke-training", "ml-workloads"), "Job", "bert-finetune"))
    out = _volume(bert, "data-eval-out")["csi"]
    assert out["readOnly"] is False
    assert "only-dir" not in out["volumeAttributes"]["mountOptions"]  # the whole bucket
    assert bert["metadata"]["annotations"]["gke-gcsfuse/ephemeral-storage-request"] == "20Gi"


def test_no_pod_mounts_a_host_path(tree: Path) -> None:
    for cluster in ("eks-training", "gke-training", "local"):
        for namespace in ("distributed-training", "ml-workloads"):
            for job in _of(_built(tree, cluster, namespace), "Job"):
                assert all("hostPath" not in v for v in _pod(job)["spec"]["volumes"])


# --- EKS: Mountpoint, its volumes, and the S3 grants -----------------------------------


def test_eks_s3_datasets_are_static_volumes_bound_to_their_claims(tree: Path) -> None:
    built = _built(tree, "eks-training", "distributed-training")
    claim = _named(built, "PersistentVolumeClaim", "resnet-ddp-data-imagenet")
    (volume,) = [v for v in _of(built, "PersistentVolume")]
    assert claim["spec"] == {
        "accessModes": ["ReadOnlyMany"],
        "storageClassName": "",
        "resources": {"requests": {"storage": "1Ti"}},
        "volumeName": volume["metadata"]["name"],
    }
    spec = volume["spec"]
    assert spec["claimRef"] == {
        "namespace": "distributed-training",
        "name": "resnet-ddp-data-imagenet",
    }
    assert spec["storageClassName"] == "" and spec["accessModes"] == ["ReadOnlyMany"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["csi"] == {
        "driver": "s3.csi.aws.com",
        "volumeHandle": "distributed-training-resnet-ddp-data-imagenet",
        "volumeAttributes": {"bucketName": "acme-ml-datasets", "authenticationSource": "pod"},
    }
    assert spec["mountOptions"] == ["uid=10001", "gid=10001", "allow-other", "prefix imagenet/"]
    writable = _built(tree, "eks-training", "ml-workloads")
    (out,) = _of(writable, "PersistentVolume")
    assert out["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "prefix bert/eval/" in out["spec"]["mountOptions"]
    handles = [
        v["spec"]["csi"]["volumeHandle"]
        for v in [*_of(built, "PersistentVolume"), *_of(writable, "PersistentVolume")]
    ]
    assert len(handles) == len(set(handles))


def _policy(tree: Path) -> list[dict[str, Any]]:
    objects = next(iter(build_and_validate(tree / "clusters/eks-training/infrastructure").values()))
    role = _named(objects, "Role", "eks-training-training-pods")
    assert "policies" not in role["spec"]  # the seeds give no managed policy
    (document,) = role["spec"]["inlinePolicies"].values()
    statements: list[dict[str, Any]] = json.loads(document)["Statement"]
    return statements


def _allowed(
    statements: list[dict[str, Any]], action: str, resource: str, prefix: str = ""
) -> bool:
    """IAM's answer for one request, for the Allow statements and StringLike conditions
    these policies use (no Deny, no other condition)."""
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if action not in actions or not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        condition = statement.get("Condition", {})
        assert set(condition) <= {"StringLike"}
        patterns = condition.get("StringLike", {}).get("s3:prefix")
        if patterns is None or any(
            fnmatch.fnmatchcase(prefix, p)
            for p in ([patterns] if isinstance(patterns, str) else patterns)
        ):
            return True
    return False


def test_eks_training_role_reads_exactly_the_declared_prefixes(tree: Path) -> None:
    statements = _policy(tree)
    assert statements == [
        {
            "Sid": "List0",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::acme-ml-datasets",
            "Condition": {"StringLike": {"s3:prefix": "imagenet/*"}},
        },
        {
            "Sid": "Objects0",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::acme-ml-datasets/imagenet/*",
        },
        {
            "Sid": "List1",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::acme-ml-scratch",
            "Condition": {"StringLike": {"s3:prefix": "bert/eval/*"}},
        },
        {
            "Sid": "Objects1",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": "arn:aws:s3:::acme-ml-scratch/bert/eval/*",
        },
    ]
    bucket = "arn:aws:s3:::acme-ml-datasets"
    assert _allowed(statements, "s3:GetObject", f"{bucket}/imagenet/train/0001.jpg")
    assert _allowed(statements, "s3:ListBucket", bucket, "imagenet/")
    assert _allowed(statements, "s3:ListBucket", bucket, "imagenet/train/")
    # not declared: another bucket, another prefix (even one that starts alike), writes
    # to a read-only dataset, deletes anywhere
    assert not _allowed(statements, "s3:GetObject", "arn:aws:s3:::acme-other/imagenet/a.jpg")
    assert not _allowed(statements, "s3:ListBucket", "arn:aws:s3:::acme-other", "imagenet/")
    assert not _allowed(statements, "s3:GetObject", f"{bucket}/imagenet-private/a.jpg")
    assert not _allowed(statements, "s3:ListBucket", bucket, "imagenet-private/")
    assert not _allowed(statements, "s3:ListBucket", bucket, "")
    assert not _allowed(statements, "s3:PutObject", f"{bucket}/imagenet/a.jpg")
    assert _allowed(statements, "s3:PutObject", "arn:aws:s3:::acme-ml-scratch/bert/eval/x.json")
    assert not _allowed(statements, "s3:DeleteObject", "arn:aws:s3:::acme-ml-scratch/bert/eval/x")


def test_eks_gets_mountpoint_and_pod_identity_for_the_training_pods(tree: Path) -> None:
    objects = kustomize_build(tree / "clusters/eks-training/infrastructure")
    addons = {a["spec"]["name"] for a in _of(objects, "Addon")}
    assert {"aws-mountpoint-s3-csi-driver", "eks-pod-identity-agent"} <= addons
    associations = {
        (a["spec"]["namespace"], a["spec"]["serviceAccount"]): a["spec"]["roleRef"]["from"]["name"]
        for a in _of(objects, "PodIdentityAssociation")
    }
    # the pods whose volumes read S3 are those whose ServiceAccount has the role
    assert associations[("distributed-training", "resnet-ddp")] == "eks-training-training-pods"
    assert associations[("ml-workloads", "bert-finetune")] == "eks-training-training-pods"
    job = _named(_built(tree, "eks-training", "distributed-training"), "Job", "resnet-ddp")
    assert _pod(job)["spec"]["serviceAccountName"] == "resnet-ddp"


# --- GKE: the driver and the bucket grants --------------------------------------------


def test_gke_enables_the_driver_and_grants_exactly_the_declared_buckets(tree: Path) -> None:
    objects = next(iter(build_and_validate(tree / "clusters/gke-training/infrastructure").values()))
    cluster = _named(objects, "ContainerCluster", "gke-training")
    assert cluster["spec"]["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    grants = [
        (m["spec"]["role"], m["spec"]["resourceRef"], m["spec"]["memberFrom"])
        for m in _of(objects, "IAMPolicyMember")
        if m["spec"]["resourceRef"].get("kind") == "StorageBucket"
    ]
    account = {"serviceAccountRef": {"name": "gke-training-training"}}
    ref = {"apiVersion": "storage.cnrm.cloud.google.com/v1beta1", "kind": "StorageBucket"}
    assert grants == [
        ("roles/storage.objectViewer", {**ref, "external": "acme-ml-datasets"}, account),
        ("roles/storage.objectUser", {**ref, "external": "acme-ml-scratch"}, account),
    ]
    # no project-wide storage role for the training account (the seeds give no roles)
    assert not [
        m
        for m in _of(objects, "IAMPolicyMember")
        if m["spec"]["resourceRef"].get("kind") == "Project" and "storage" in m["spec"]["role"]
    ]
    # the pods act as that account through Workload Identity
    workloads = _built(tree, "gke-training", "distributed-training")
    account_object = _named(workloads, "ServiceAccount", "resnet-ddp")
    assert account_object["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "gke-training-training@acme-ml.iam.gserviceaccount.com"
    )


# --- egress -----------------------------------------------------------------------------


def _policies(tree: Path, cluster: str, namespace: str) -> list[dict[str, Any]]:
    return sorted(
        _of(_built(tree, cluster, namespace), "NetworkPolicy"), key=lambda p: p["metadata"]["name"]
    )


def test_datasets_open_no_egress_beyond_the_cloud_identitys(tree: Path, tmp_path: Path) -> None:
    """GKE: the gcsfuse sidecar reads the bucket from the pod's network, over 443 to
    Google's public endpoints with the pod's Workload Identity, which the identity
    policy already opens; EKS: Mountpoint pods of namespace mount-s3 read it, not the
    training pods. So the policies are exactly those of the same config without data."""
    config = _seeds()
    for workload in config["workloads"]:
        workload.pop("data", None)
    bare = _generate(config, tmp_path)
    for cluster in ("eks-training", "gke-training", "local"):
        assert _policies(tree, cluster, "distributed-training") == _policies(
            bare, cluster, "distributed-training"
        )
    policies = _policies(tree, "gke-training", "distributed-training")
    identity = _named(policies, "NetworkPolicy", "allow-workload-identity")
    assert identity["spec"]["podSelector"] == {}  # the training pods, sidecar and all
    https = [
        r for r in identity["spec"]["egress"] if r["ports"] == [{"protocol": "TCP", "port": 443}]
    ]
    (rule,) = https
    ipv4 = rule["to"][0]["ipBlock"]
    assert ipv4["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in ipv4["except"]
    assert "169.254.0.0/16" in ipv4["except"]
    metadata_server = [
        r
        for r in identity["spec"]["egress"]
        if r["to"][0]["ipBlock"]["cidr"] == "169.254.169.254/32"
    ]
    assert metadata_server  # Workload Identity's credentials


# --- the Argo CD project and the local claims ------------------------------------------


def test_argo_cd_project_allows_volumes_cluster_wide_and_claims_in_namespaces(tree: Path) -> None:
    project = yaml.safe_load((tree / "bootstrap/fleet/project/appproject.yaml").read_text())
    cluster_kinds = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    namespaced = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert ("", "PersistentVolume") in cluster_kinds
    assert ("", "PersistentVolume") not in namespaced
    assert ("", "PersistentVolumeClaim") in namespaced


def test_local_claims_are_the_ones_you_fill(tree: Path) -> None:
    built = _built(tree, "local", "distributed-training")
    claim = _named(built, "PersistentVolumeClaim", "resnet-ddp-data-imagenet")
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "standard",
        "resources": {"requests": {"storage": "10Gi"}},
    }
    assert not _of(built, "PersistentVolume")
    header = (
        tree / NS.format(cluster="local", namespace="distributed-training") / "kustomization.yaml"
    ).read_text()
    assert (
        "#   resnet-ddp-data-imagenet: resnet-ddp's imagenet (a copy of "
        "gs://acme-ml-datasets/imagenet or s3://acme-ml-datasets/imagenet), at /data/imagenet\n"
    ) in header
    # an existing claim is not one to fill
    other = (
        tree / NS.format(cluster="local", namespace="ml-workloads") / "kustomization.yaml"
    ).read_text()
    to_fill, _, existing = other.partition("# Claims the pods mount that must already exist")
    assert "bert-finetune-data-eval-out" in to_fill and "bert-vocab" not in to_fill
    assert "#   bert-vocab\n" in existing
    # ReadWriteOnce: the three pods run on the node that holds it
    job = _named(built, "Job", "resnet-ddp")
    affinity = _pod(job)["spec"]["affinity"]["podAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_the_tree_validates_clean(tree: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args(), "--no-cache"])
    assert result.exit_code == 0, result.output


def test_undeclared_datasets_leave_no_grant_or_driver(tmp_path: Path) -> None:
    config = _seeds()
    config["workloads"][0].pop("data")
    out = _generate(config, tmp_path)
    eks = kustomize_build(out / "clusters/eks-training/infrastructure")
    role = _named(eks, "Role", "eks-training-training-pods")
    assert "inlinePolicies" not in role["spec"]
    assert datasets.MOUNTPOINT_ADDON not in {a["spec"]["name"] for a in _of(eks, "Addon")}
    gke = kustomize_build(out / "clusters/gke-training/infrastructure")
    cluster = _named(gke, "ContainerCluster", "gke-training")
    assert "gcsFuseCsiDriverConfig" not in cluster["spec"]["addonsConfig"]
    assert not [
        m
        for m in _of(gke, "IAMPolicyMember")
        if m["spec"]["resourceRef"].get("kind") == "StorageBucket"
    ]
    assert not (out / "overlays/gke/workloads/resnet-ddp").exists()


def test_a_dataset_only_on_eks_is_not_granted_on_gke(tmp_path: Path) -> None:
    config = _seeds()
    extra = dict(config["workloads"][0])
    extra.update(
        name="eks-only",
        clusters=["eks-training"],
        data=[{"name": "logs", "mountPath": "/data/logs", "source": "s3://acme-eks-only/logs"}],
    )
    config["workloads"].append(extra)
    out = _generate(config, tmp_path)
    gke = (out / "clusters/gke-training/infrastructure/iampolicymember.yaml").read_text()
    assert "acme-eks-only" not in gke
    eks = kustomize_build(out / "clusters/eks-training/infrastructure")
    (document,) = _named(eks, "Role", "eks-training-training-pods")["spec"][
        "inlinePolicies"
    ].values()
    assert "arn:aws:s3:::acme-eks-only/logs/*" in document


# --- the drivers' sources, where a mirror is at hand ------------------------------------


@needs_upstream
def test_the_drivers_read_what_the_tree_writes() -> None:
    config = upstream_file(
        "GoogleCloudPlatform+gcs-fuse-csi-driver", "v1.24.4", "pkg/webhook/config.go"
    )
    for key in ("cpu", "memory", "ephemeral-storage"):
        for kind in ("request", "limit"):
            assert f'json:"{key}-{kind},omitempty"' in config
    utils = upstream_file(
        "GoogleCloudPlatform+gcs-fuse-csi-driver", "v1.24.4", "pkg/csi_driver/utils.go"
    )
    for attribute in ("mountOptions", "fileCacheCapacity", "fileCacheForRangeRead", "bucketName"):
        assert f'= "{attribute}"' in utils
    spec = upstream_file(
        "GoogleCloudPlatform+gcs-fuse-csi-driver", "v1.24.4", "pkg/webhook/sidecar_spec.go"
    )
    assert "RunAsNonRoot:   ptr.To(true)" in spec and 'corev1.Capability("ALL")' in spec
    driver = upstream_file(
        "awslabs+mountpoint-s3-csi-driver", "v2.7.0", "deploy/kubernetes/base/csidriver.yaml"
    )
    assert f"name: {datasets.MOUNTPOINT_DRIVER}" in driver
    assert 'audience: "pods.eks.amazonaws.com"' in driver


def test_an_existing_claim_is_one_its_namespace_says_it_has(tree: Path, tmp_path: Path) -> None:
    """A `pvc:` source is made outside the tree: no claim is generated for it, and each
    cluster's namespace lists it, so the cluster model does not report the claim nothing
    in the tree creates (MLG015); one that is not listed still is."""
    for cluster in ("eks-training", "gke-training", "local"):
        built = _built(tree, cluster, "ml-workloads")
        assert "bert-vocab" not in {
            c["metadata"]["name"] for c in _of(built, "PersistentVolumeClaim")
        }
        namespace = _named(built, "Namespace", "ml-workloads")
        assert namespace["metadata"]["annotations"][datasets.HAND_MADE_CLAIMS_ANNOTATION] == (
            "bert-vocab"
        )
    config = tree.parent / "mlgitops.yaml"
    result = CliRunner().invoke(
        main, ["validate", str(tree), "--config", str(config), *schema_args(), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "MLG015" not in result.output
    # Without the namespace's word for it, the same claim is one nothing creates.
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy)
    patch = (
        copy
        / NS.format(cluster="eks-training", namespace="ml-workloads")
        / ("hand-made-claims.yaml")
    )
    patch.write_text(patch.read_text().replace("bert-vocab", "other-claim"))
    result = CliRunner().invoke(
        main, ["validate", str(copy), "--config", str(config), *schema_args(), "--no-cache"]
    )
    (found,) = [line for line in result.output.splitlines() if "[MLG015]" in line]
    assert found.startswith("clusters/eks-training/workloads/namespaces/ml-workloads: ")
    assert "mounts PersistentVolumeClaim 'bert-vocab'" in found


def test_declaring_another_bucket_renames_no_grant(tmp_path: Path) -> None:
    """Config Connector deletes and creates again a renamed IAMPolicyMember: each bucket's
    grant is named after its bucket, so one that sorts first leaves the others as they are."""

    def grants(config: dict[str, Any], out: Path) -> dict[str, str]:
        built = kustomize_build(_generate(config, out) / "clusters/gke-training/infrastructure")
        return {
            m["metadata"]["name"]: m["spec"]["resourceRef"]["external"]
            for m in _of(built, "IAMPolicyMember")
            if m["spec"]["resourceRef"].get("kind") == "StorageBucket"
        }

    config = _seeds()
    (tmp_path / "before").mkdir()
    before = grants(config, tmp_path / "before")
    config["workloads"][1]["data"] = [
        {"name": "corpus", "mountPath": "/data/corpus", "source": "gs://aaa_corpus.v2"}
    ]
    config["workloads"][1]["clusters"] = ["gke-training"]
    (tmp_path / "after").mkdir()
    after = grants(config, tmp_path / "after")
    assert before.items() < after.items()
    (added,) = set(after) - set(before)
    assert after[added] == "aaa_corpus.v2"
    assert added.startswith("gke-training-training-data-aaa-corpus-v2-")  # `_`, `.` as `-`
