"""Credentials without Secrets in git: each secret a workload declares is read from the
cloud's secret store by the External Secrets Operator (operator_facts.EXTERNAL_SECRETS,
v2.6.0) on EKS and GKE, or made by hand with one `kubectl create secret` on a local
cluster. The tree holds only where a value lives, never the value.

Per namespace of a cloud cluster that runs workloads with secrets:

- a SecretStore `<platform>-secrets` (external-secrets.io/v1): AWS Secrets Manager in the
  cluster's region, or Google Secret Manager in the cluster's project;
- an ExternalSecret per declared Secret, whose target is a Secret of that name with one
  key: the Secret's name (a pull secret: `.dockerconfigjson`, type
  kubernetes.io/dockerconfigjson). ESO v2.6.0 copies the fetched data as is when a
  template sets only the type (pkg/controllers/externalsecret/
  externalsecret_controller_template.go, `noTemplate`).

Who may read what, least privilege per cluster (the cluster's namespaces share one set of
secrets: a namespace's store could read another's declared secret, not an undeclared one):

- EKS: the AWS provider without `auth` uses the SDK's default credential chain of the
  controller pod (providers/v1/aws/auth/auth.go at v2.6.0, `constructCredsProvider`:
  `auth.jwt` is IRSA's AssumeRoleWithWebIdentity with the `eks.amazonaws.com/role-arn`
  annotation, which needs an IAM OIDC provider this project does not create). That chain
  reads the EKS Pod Identity agent's credentials, so the controller's ServiceAccount gets
  a Pod Identity association with a role allowed `secretsmanager:GetSecretValue` on
  exactly the declared secrets' ARNs (`...:secret:<name>-??????`: Secrets Manager appends
  six random characters to every ARN; AWS Secrets Manager User Guide, "Permissions policy
  examples").
- GKE: `auth.workloadIdentity` with a ServiceAccount `<platform>-secrets` of the namespace:
  ESO requests a token for it and exchanges it for the Google service account its
  `iam.gke.io/gcp-service-account` annotation names (providers/v1/gcp/secretmanager/
  workload_identity.go at v2.6.0). That account, `<cluster>-secrets`, holds
  `roles/secretmanager.secretAccessor` on each declared secret alone (an IAMPolicyMember
  per secret, `resourceRef` kind SecretManagerSecret, external
  `projects/<project>/secrets/<id>`), and `roles/iam.workloadIdentityUser` for each
  namespace's store account alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from generator.config import model
from generator.operator_facts import EXTERNAL_SECRETS, EXTERNAL_SECRETS_ACCOUNT
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, Patch, metadata

API = "external-secrets.io/v1"
# What `validate` reads on a local Namespace (generator.validate.policies, MLG030).
HAND_MADE_SECRETS_ANNOTATION = "mlgitops.io/secrets-made-by-hand"
PULL_KEY = ".dockerconfigjson"
PULL_TYPE = "kubernetes.io/dockerconfigjson"
SECRET_VOLUME_PREFIX = "secret"
# Owner read only. With the pod's fsGroup the kubelet makes the files group-owned by it
# and group-readable (pkg/volume/volume_linux.go, SetVolumeOwnership), which the trainer,
# running as that group, reads through.
SECRET_FILE_MODE = 0o400
GCP_SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
GCP_WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
GCP_IAM = "iam.cnrm.cloud.google.com/v1beta1"


@dataclass(frozen=True)
class Declared:
    """One Secret of a namespace: its name, where its value lives, and whether it holds
    registry credentials."""

    name: str
    source: str
    pull: bool

    @property
    def key(self) -> str:
        return PULL_KEY if self.pull else self.name


def declared(workloads: list[model.Workload], namespace: str | None = None) -> list[Declared]:
    """The Secrets these workloads (of `namespace`, or all) name, once each, by name."""
    found: dict[str, Declared] = {}
    for workload in workloads:
        if namespace is not None and workload.namespace != namespace:
            continue
        for secret in workload.secrets:
            found.setdefault(secret.name, Declared(secret.name, secret.source, False))
        for pull in workload.image_pull_secrets:
            found.setdefault(pull.name, Declared(pull.name, pull.source, True))
    return [found[name] for name in sorted(found)]


def sources(workloads: list[model.Workload]) -> list[str]:
    """Every place in the store these workloads read, once each (two namespaces may give
    one Secret name different sources)."""
    found = {s.source for w in workloads for s in w.secrets}
    found |= {p.source for w in workloads for p in w.image_pull_secrets}
    return sorted(found)


def has_secrets(workload: model.Workload) -> bool:
    return bool(workload.secrets or workload.image_pull_secrets)


def needs_store(config: model.Config, cluster: model.Cluster) -> bool:
    """A cloud cluster running a workload with secrets: ESO and its stores."""
    return not isinstance(cluster, model.LocalCluster) and any(
        has_secrets(w) for w in config.workloads_on(cluster)
    )


def store_name(config: model.Config) -> str:
    return f"{config.name}-secrets"


def store_account(config: model.Config) -> str:
    """GKE: the namespace's ServiceAccount the store acts as."""
    return f"{config.name}-secrets"


def google_account(cluster: model.GkeCluster) -> str:
    """The Google service account the stores of a GKE cluster read as (6 to 30 characters:
    config/rules.py refuses a cluster name that makes it longer)."""
    return f"{cluster.name}-secrets"


def google_account_email(cluster: model.GkeCluster) -> str:
    return f"{google_account(cluster)}@{cluster.project}.iam.gserviceaccount.com"


def eks_role_suffix() -> str:
    return "secrets"


# ---------------------------------------------------------------------------- pods


def secret_env(workload: model.Workload) -> list[dict[str, Any]]:
    """The secrets given as environment variables, from their Secret's one key."""
    return [
        {
            "name": s.env,
            "valueFrom": {"secretKeyRef": {"name": s.name, "key": s.name}},
        }
        for s in workload.secrets
        if s.env is not None
    ]


def secret_mounts(workload: model.Workload) -> list[dict[str, Any]]:
    return [
        {"name": f"{SECRET_VOLUME_PREFIX}-{i}", "mountPath": s.mount_path, "readOnly": True}
        for i, s in enumerate(workload.secrets)
        if s.mount_path is not None
    ]


def secret_volumes(workload: model.Workload) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{SECRET_VOLUME_PREFIX}-{i}",
            "secret": {"secretName": s.name, "defaultMode": SECRET_FILE_MODE},
        }
        for i, s in enumerate(workload.secrets)
        if s.mount_path is not None
    ]


def pull_secrets(workload: model.Workload) -> list[dict[str, str]]:
    return [{"name": p.name} for p in workload.image_pull_secrets]


# ------------------------------------------------------------- stores, per namespace


def namespace_objects(
    config: model.Config, cluster: model.Cluster, namespace: str
) -> list[Manifest]:
    """The store and the ExternalSecrets of one namespace of a cloud cluster (none on a
    local cluster, whose Secrets are made by hand: `local_commands`)."""
    wanted = declared(config.workloads_on(cluster), namespace)
    if not wanted or isinstance(cluster, model.LocalCluster):
        return []
    labels = {**platform_labels(config), "app.kubernetes.io/component": "secrets"}
    objects: list[Manifest] = []
    if isinstance(cluster, model.GkeCluster):
        account_meta = metadata(store_account(config), labels)
        account_meta["annotations"] = {
            "iam.gke.io/gcp-service-account": google_account_email(cluster)
        }
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": account_meta,
                # ESO asks the API server for this account's token (TokenRequest); no pod
                # runs as it.
                "automountServiceAccountToken": False,
            }
        )
    objects.append(
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": metadata(store_name(config), labels),
            "spec": {"provider": _provider(config, cluster)},
        }
    )
    for secret in wanted:
        # The CRD's defaults, written out (externalsecret_v1 schema): the live object then
        # equals the desired one. `Retain`: a deleted ExternalSecret leaves its Secret, so
        # a re-sync never starts pods without their credentials.
        target: dict[str, Any] = {
            "name": secret.name,
            "creationPolicy": "Owner",
            "deletionPolicy": "Retain",
        }
        if secret.pull:
            target["template"] = {"type": PULL_TYPE}
        objects.append(
            {
                "apiVersion": API,
                "kind": "ExternalSecret",
                "metadata": metadata(secret.name, labels),
                "spec": {
                    "refreshInterval": config.secret_refresh_interval,
                    "secretStoreRef": {"kind": "SecretStore", "name": store_name(config)},
                    "target": target,
                    "data": [{"secretKey": secret.key, "remoteRef": _remote(secret.source)}],
                },
            }
        )
    for obj in objects:
        if obj["kind"] != "ServiceAccount":
            # Argo CD has health checks for both kinds (argo-cd resource_customizations/
            # external-secrets.io/{SecretStore,ExternalSecret}/health.lua: Healthy once
            # Ready): an earlier wave of the namespace's Application, so the training
            # objects are applied only once their Secrets exist.
            obj["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "-1"}
    return objects


def _remote(source: str) -> dict[str, str]:
    """The whole secret's value, as stored (no JSON property, no decoding)."""
    return {
        "key": source,
        "conversionStrategy": "Default",
        "decodingStrategy": "None",
        "metadataPolicy": "None",
        "nullBytePolicy": "Ignore",
    }


def _provider(config: model.Config, cluster: model.Cluster) -> dict[str, Any]:
    if isinstance(cluster, model.EksCluster):
        # No `auth`: the controller pod's own credentials (EKS Pod Identity), see above.
        return {"aws": {"service": "SecretsManager", "region": cluster.region}}
    assert isinstance(cluster, model.GkeCluster)
    return {
        "gcpsm": {
            "projectID": cluster.project,
            "auth": {
                "workloadIdentity": {
                    # Given, so ESO need not ask the metadata server of its node.
                    "clusterLocation": cluster.location,
                    "clusterName": cluster.name,
                    "clusterProjectID": cluster.project,
                    "serviceAccountRef": {"name": store_account(config)},
                }
            },
        }
    }


# --------------------------------------------------------------- cloud identities


def secret_arn(cluster: model.EksCluster, source: str, partition: str) -> str:
    return (
        f"arn:{partition}:secretsmanager:{cluster.region}:{cluster.account_id}:secret:"
        f"{source}-??????"
    )


def eks_read_policy(config: model.Config, cluster: model.EksCluster, partition: str) -> str:
    """GetSecretValue on exactly the declared secrets of the cluster."""
    arns = [secret_arn(cluster, s, partition) for s in sources(config.workloads_on(cluster))]
    statement = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arns}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":"))


def eks_association_spec(cluster: model.EksCluster, role_object: str) -> dict[str, Any]:
    return {
        "clusterRef": {"from": {"name": cluster.name}},
        "namespace": EXTERNAL_SECRETS.namespace,
        "serviceAccount": EXTERNAL_SECRETS_ACCOUNT,
        "roleRef": {"from": {"name": role_object}},
    }


def gke_identity(config: model.Config, cluster: model.GkeCluster) -> list[Manifest]:
    """The stores' Google service account, its read right on each declared secret, and
    each namespace's store account's right to act as it. Names are `infra_metadata`
    names; the caller adds the metadata."""
    account = google_account(cluster)
    specs: list[tuple[str, str, dict[str, Any]]] = [
        (account, "IAMServiceAccount", {"displayName": f"secret stores on {cluster.name}"})
    ]
    workloads = config.workloads_on(cluster)
    for index, source in enumerate(sources(workloads)):
        specs.append(
            (
                f"{account}-read-{index}",
                "IAMPolicyMember",
                {
                    "memberFrom": {"serviceAccountRef": {"name": account}},
                    "role": GCP_SECRET_ACCESSOR,
                    "resourceRef": {
                        "kind": "SecretManagerSecret",
                        "external": f"projects/{cluster.project}/secrets/{source}",
                    },
                },
            )
        )
    namespaces = sorted({w.namespace for w in workloads if has_secrets(w)})
    for namespace in namespaces:
        member = (
            f"serviceAccount:{cluster.project}.svc.id.goog[{namespace}/{store_account(config)}]"
        )
        specs.append(
            (
                f"{account}-{namespace}",
                "IAMPolicyMember",
                {
                    "member": member,
                    "role": GCP_WORKLOAD_IDENTITY_USER,
                    "resourceRef": {"kind": "IAMServiceAccount", "name": account},
                },
            )
        )
    return [
        {"apiVersion": GCP_IAM, "kind": kind, "name": name, "spec": spec}
        for name, kind, spec in specs
    ]


# ------------------------------------------------------------------------ local


def hand_made_patch(config: model.Config, cluster: model.LocalCluster, namespace: str) -> Patch:
    """What a local namespace's Secrets are, for `validate` (MLG030): made by hand, with
    the commands its kustomization lists."""
    names = [d.name for d in declared(config.workloads_on(cluster), namespace)]
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "annotations": {HAND_MADE_SECRETS_ANNOTATION: ",".join(names)},
        },
    }
    return Patch("hand-made-secrets.yaml", {"kind": "Namespace"}, body)


def local_commands(config: model.Config, cluster: model.LocalCluster) -> list[str]:
    """One `kubectl create secret` per Secret a local cluster's pods need, values from
    files or your environment, never from the tree."""
    lines = []
    for namespace in sorted({w.namespace for w in config.workloads_on(cluster)}):
        for secret in declared(config.workloads_on(cluster), namespace):
            if secret.pull:
                lines.append(
                    f"kubectl -n {namespace} create secret docker-registry {secret.name} "
                    "--from-file=.dockerconfigjson=$HOME/.docker/config.json"
                )
            else:
                variable = secret.name.upper().replace("-", "_")
                lines.append(
                    f"kubectl -n {namespace} create secret generic {secret.name} "
                    f'--from-literal={secret.name}="${variable}"'
                )
    return lines
