"""Secrets from the cloud's store: read back from the built tree what each cluster gets
(ExternalSecrets, stores, IAM) and hold it to least privilege and "no value in git"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import build_and_validate, kustomize_build, needs_upstream, schema_args, upstream_file

from generator.cli import main
from generator.operator_facts import EXTERNAL_SECRETS, EXTERNAL_SECRETS_IMAGE

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {
    "hf-token": "hf-token",
    "wandb-key": "wandb-api-key",
    "registry-creds": "registry-example-com-pull",
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's own config (an EKS, a GKE and a local cluster; secrets on both
    workloads), with one more workload on EKS alone whose secret the GKE side must not
    be allowed to read."""
    out = tmp_path_factory.mktemp("secrets")
    config = yaml.safe_load((ROOT / "mlgitops.yaml").read_text())
    extra = dict(config["workloads"][0])
    extra.update(
        name="eks-only",
        clusters=["eks-training"],
        secrets=[{"name": "eks-only-token", "from": "eks/only-token", "env": "ONLY_TOKEN"}],
    )
    config["workloads"].append(extra)
    (out / "mlgitops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = CliRunner().invoke(
        main, ["generate", "--config", str(out / "mlgitops.yaml"), "--out", str(out / "tree")]
    )
    assert result.exit_code == 0, result.output
    return out / "tree"


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _pod_secret_refs(objects: list[dict[str, Any]]) -> set[str]:
    """Every Secret a pod template of these objects names."""
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.add(node["secretKeyRef"]["name"])
            if "secret" in node and isinstance(node["secret"], dict):
                refs.add(node["secret"]["secretName"])
            for pull in node.get("imagePullSecrets") or []:
                refs.add(pull["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for obj in objects:
        if obj["kind"] not in {"ExternalSecret", "SecretStore"}:
            walk(obj.get("spec"))
    return refs


@pytest.mark.parametrize("cluster", ["eks-training", "gke-training"])
def test_every_secret_a_pod_names_is_made_by_an_external_secret(tree: Path, cluster: str) -> None:
    for folder in sorted((tree / f"clusters/{cluster}/workloads/namespaces").iterdir()):
        built = kustomize_build(folder)
        targets = {e["spec"]["target"]["name"] for e in _of(built, "ExternalSecret")}
        refs = _pod_secret_refs(built)
        assert refs, folder
        assert refs == targets, folder
        stores = _of(built, "SecretStore")
        assert [s["metadata"]["name"] for s in stores] == ["ml-platform-secrets"]
        for external in _of(built, "ExternalSecret"):
            spec = external["spec"]
            assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": "ml-platform-secrets"}
            assert spec["refreshInterval"] == "1h"
            (data,) = spec["data"]
            name = spec["target"]["name"]
            if name in SOURCES:
                assert data["remoteRef"]["key"] == SOURCES[name]
        assert not _of(built, "Secret"), "a Secret in git"


def test_pods_get_secrets_read_only_and_pull_secrets(tree: Path) -> None:
    (job,) = _of(
        kustomize_build(tree / "clusters/eks-training/workloads/namespaces/ml-workloads"), "Job"
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": "wandb-key", "defaultMode": 0o400}
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {
        "name": volume["name"],
        "mountPath": "/var/run/secrets/wandb",
        "readOnly": True,
    }
    (job,) = _of(
        kustomize_build(tree / "clusters/gke-training/workloads/namespaces/distributed-training"),
        "Job",
    )
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "hf-token"}}


def test_eks_store_role_reads_exactly_the_declared_secrets(tree: Path) -> None:
    built = build_and_validate(tree / "clusters/eks-training/infrastructure")
    objects = next(iter(built.values()))
    (role,) = [r for r in _of(objects, "Role") if r["metadata"]["name"] == "eks-training-secrets"]
    assert "policies" not in role["spec"]  # no managed policy: only the inline one
    trust = json.loads(role["spec"]["assumeRolePolicyDocument"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    (policy,) = role["spec"]["inlinePolicies"].values()
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    prefix = "arn:aws:secretsmanager:us-west-2:123456789012:secret:"
    wanted = {*SOURCES.values(), "eks/only-token"}
    assert sorted(statement["Resource"]) == sorted(f"{prefix}{s}-??????" for s in wanted)
    associations = {
        (a["spec"]["namespace"], a["spec"]["serviceAccount"]): a["spec"]["roleRef"]["from"]["name"]
        for a in _of(objects, "PodIdentityAssociation")
    }
    assert associations[("external-secrets", "external-secrets")] == "eks-training-secrets"
    # The training pods' role (if any) is not the store's.
    assert list(associations.values()).count("eks-training-secrets") == 1
    addons = {a["spec"]["name"] for a in _of(objects, "Addon")}
    assert "eks-pod-identity-agent" in addons


def test_gke_store_account_reads_exactly_the_declared_secrets(tree: Path) -> None:
    built = build_and_validate(tree / "clusters/gke-training/infrastructure")
    objects = next(iter(built.values()))
    members = _of(objects, "IAMPolicyMember")
    readers = [m for m in members if m["spec"]["role"] == "roles/secretmanager.secretAccessor"]
    assert sorted(m["spec"]["resourceRef"]["external"] for m in readers) == sorted(
        f"projects/acme-ml/secrets/{s}" for s in SOURCES.values()
    )  # not eks/only-token: that workload does not run on GKE
    for reader in readers:
        assert reader["spec"]["resourceRef"]["kind"] == "SecretManagerSecret"
        assert reader["spec"]["memberFrom"] == {
            "serviceAccountRef": {"name": "gke-training-secrets"}
        }
    users = [
        m["spec"]["member"]
        for m in members
        if m["spec"]["resourceRef"] == {"kind": "IAMServiceAccount", "name": "gke-training-secrets"}
    ]
    assert sorted(users) == [
        "serviceAccount:acme-ml.svc.id.goog[distributed-training/ml-platform-secrets]",
        "serviceAccount:acme-ml.svc.id.goog[ml-workloads/ml-platform-secrets]",
    ]
    # No project-wide secret access for anyone.
    assert not [
        m
        for m in members
        if m["spec"]["resourceRef"].get("kind") == "Project"
        and "secretmanager" in m["spec"]["role"]
    ]


def test_gke_store_account_keeps_its_own_google_account(tree: Path) -> None:
    built = kustomize_build(tree / "clusters/gke-training/workloads/namespaces/ml-workloads")
    accounts = {a["metadata"]["name"]: a for a in _of(built, "ServiceAccount")}
    store = accounts["ml-platform-secrets"]["metadata"]["annotations"]
    assert store["iam.gke.io/gcp-service-account"] == (
        "gke-training-secrets@acme-ml.iam.gserviceaccount.com"
    )
    (store_object,) = _of(built, "SecretStore")
    identity = store_object["spec"]["provider"]["gcpsm"]["auth"]["workloadIdentity"]
    assert identity["serviceAccountRef"] == {"name": "ml-platform-secrets"}
    assert (identity["clusterName"], identity["clusterLocation"]) == ("gke-training", "us-central1")


def test_argo_cd_installs_the_operator_and_allows_its_kinds(tree: Path) -> None:
    apps = list(
        yaml.safe_load_all((tree / "clusters/eks-training/gitops/application.yaml").read_text())
    )
    (app,) = [a for a in apps if a["metadata"]["name"] == "eks-training-external-secrets"]
    source = app["spec"]["source"]
    assert (source["targetRevision"], source["path"]) == (
        "v2.6.0",
        "deploy/charts/external-secrets",
    )
    tags = {p["name"]: p["value"] for p in source["helm"]["parameters"]}
    assert set(tags.values()) == {"v2.6.0"} and len(tags) == 3
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
    project = yaml.safe_load((tree / "bootstrap/fleet/project/appproject.yaml").read_text())
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert {
        ("external-secrets.io", "ExternalSecret"),
        ("external-secrets.io", "SecretStore"),
    } <= allowed
    assert ("external-secrets.io", "ClusterSecretStore") not in allowed
    assert not (tree / "clusters/local/gitops").exists() or "external-secrets" not in (
        "".join(p.read_text() for p in (tree / "clusters/local/gitops").glob("*.yaml"))
    )


def test_local_secrets_are_one_command_each(tree: Path) -> None:
    text = (
        tree / "clusters/local/workloads/namespaces/ml-workloads/kustomization.yaml"
    ).read_text()
    assert "kubectl -n ml-workloads create secret generic wandb-key" in text
    assert "kubectl -n ml-workloads create secret docker-registry registry-creds" in text
    built = kustomize_build(tree / "clusters/local/workloads/namespaces/ml-workloads")
    assert not _of(built, "ExternalSecret") and not _of(built, "SecretStore")
    assert not _of(built, "Secret")


def test_undeclared_secret_is_not_readable(tmp_path: Path) -> None:
    """Removing a secret from the config removes it from every policy."""
    config = yaml.safe_load((ROOT / "mlgitops.yaml").read_text())
    config["workloads"][1].pop("secrets")
    (tmp_path / "mlgitops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tmp_path / "mlgitops.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    infra = (out / "clusters/eks-training/infrastructure/role.yaml").read_text()
    assert "wandb-api-key" not in infra and "hf-token-??????" in infra
    gke = (out / "clusters/gke-training/infrastructure/iampolicymember.yaml").read_text()
    assert "wandb-api-key" not in gke
    shutil.rmtree(out)


# --- validate (MLG030): every Secret a pod names is made where it runs ---------------


def _validate(tree: Path) -> str:
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args(), "--no-cache"])
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.fixture(scope="module")
def seeds_copy(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("mlg030") / "tree"
    shutil.copytree(tree, copy)
    return copy


def _drop_resource(folder: Path, entry: str, key: str = "resources") -> None:
    file = folder / "kustomization.yaml"
    kustomization = yaml.safe_load(file.read_text())
    items = kustomization[key]
    kept = [i for i in items if (i.get("path") if isinstance(i, dict) else i) != entry]
    assert len(kept) == len(items) - 1, items
    kustomization[key] = kept
    file.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def test_validate_reports_a_pod_whose_secret_nothing_creates(seeds_copy: Path) -> None:
    assert "MLG030" not in _validate(seeds_copy)
    eks = seeds_copy / "clusters/eks-training/workloads/namespaces/ml-workloads"
    _drop_resource(eks, "externalsecret.yaml")
    local = seeds_copy / "clusters/local/workloads/namespaces/distributed-training"
    _drop_resource(local, "hand-made-secrets.yaml", "patches")
    output = _validate(seeds_copy)
    found = [line for line in output.splitlines() if "[MLG030]" in line]
    wanted = {
        ("clusters/eks-training/workloads/namespaces/ml-workloads", "registry-creds"),
        ("clusters/eks-training/workloads/namespaces/ml-workloads", "wandb-key"),
        ("clusters/local/workloads/namespaces/distributed-training", "hf-token"),
    }
    seen = {
        (path, secret)
        for path, secret in wanted
        for line in found
        if line.startswith(f"{path}: Job/") and f"needs Secret {secret!r}" in line
    }
    assert seen == wanted, output
    # Only those: GKE's namespace builds still make every Secret their pods name.
    assert not [line for line in found if "gke-training" in line], output


# --- the pinned chart itself, where a mirror is at hand ------------------------------

ESO_MIRROR = "external-secrets+external-secrets"


@needs_upstream
def test_the_chart_at_the_tag_needs_the_image_pins_and_has_the_values_they_set() -> None:
    chart = yaml.safe_load(
        upstream_file(ESO_MIRROR, EXTERNAL_SECRETS.tag, f"{EXTERNAL_SECRETS.helm_path}/Chart.yaml")
    )
    # The chart at the tag still names the previous release: without the pins it would
    # run that image (upstream_images).
    assert f"{EXTERNAL_SECRETS_IMAGE}:{chart['appVersion']}" == EXTERNAL_SECRETS.upstream_images[0]
    assert chart["appVersion"] != EXTERNAL_SECRETS.tag
    values = yaml.safe_load(
        upstream_file(ESO_MIRROR, EXTERNAL_SECRETS.tag, f"{EXTERNAL_SECRETS.helm_path}/values.yaml")
    )
    for name, value in EXTERNAL_SECRETS.helm_parameters:
        node = values
        *parents, leaf = name.split(".")
        for part in parents:
            node = node[part]
        assert node[leaf] == "", name  # "" means: the chart's appVersion
        assert value == EXTERNAL_SECRETS.tag
    assert values["installCRDs"] is True and values["serviceAccount"]["create"] is True
    assert values["rbac"]["serviceAccountTokenCreate"] is True  # GKE: TokenRequest


def test_one_secret_name_in_two_namespaces_may_read_two_sources(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "mlgitops.yaml").read_text())
    config["workloads"][1]["secrets"].append({"name": "hf-token", "from": "other-hf", "env": "HF"})
    (tmp_path / "mlgitops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tmp_path / "mlgitops.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    infra = kustomize_build(out / "clusters/eks-training/infrastructure")
    (role,) = [r for r in _of(infra, "Role") if r["metadata"]["name"] == "eks-training-secrets"]
    (policy,) = role["spec"]["inlinePolicies"].values()
    resources = json.loads(policy)["Statement"][0]["Resource"]
    assert {r.rsplit(":", 1)[1] for r in resources} >= {"hf-token-??????", "other-hf-??????"}
    for ns, source in (("distributed-training", "hf-token"), ("ml-workloads", "other-hf")):
        built = kustomize_build(out / f"clusters/gke-training/workloads/namespaces/{ns}")
        (external,) = [
            e for e in _of(built, "ExternalSecret") if e["metadata"]["name"] == "hf-token"
        ]
        assert external["spec"]["data"][0]["remoteRef"]["key"] == source
    gke = kustomize_build(out / "clusters/gke-training/infrastructure")
    readers = {m["spec"]["resourceRef"].get("external") for m in _of(gke, "IAMPolicyMember")}
    assert "projects/acme-ml/secrets/other-hf" in readers
