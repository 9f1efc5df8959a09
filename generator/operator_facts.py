"""The controllers some runtimes need, installed by the GitOps engine from their upstream
manifests at a pinned release tag (the engine fetches them; no build in this repository
reaches the network).

Sources: kubeflow/trainer@v1.9.4 manifests/overlays/standalone (Training Operator v1,
namespace kubeflow); kubernetes-sigs/jobset@v0.12.0 config/default (jobset-system);
kubeflow/trainer@v2.3.0 manifests/overlays/manager (Trainer v2, kubeflow-system; it
brings its own JobSet); kubernetes-sigs/kueue@v0.17.6 config/default (kueue-system);
NVIDIA/k8s-device-plugin@v0.20.0 (kube-system). The kinds are what those builds
contain; the Argo CD project allows exactly them.

Every operator runs its release image at the pinned version. Kueue's and JobSet's
`config/default` at their tags still name the staging image
(`us-central1-docker.pkg.dev/k8s-staging-images/...`, Kueue with tag `main`): their
release manifests are that same build with the image set to the promoted one (Kueue
Makefile `prepare-manifests` + `artifacts`, JobSet Makefile `artifacts`; images are
promoted to registry.k8s.io). So the engine builds the path at the tag with that one image
override (Argo CD `source.kustomize.images`, Flux `spec.images`), which yields the
release manifests without fetching a release asset. Their Helm charts would do the same,
but Flux would then need a HelmRelease; one mechanism serves both engines here. The
Training Operator's and Trainer's manifests already pin their release images (Trainer
also sets JobSet's to registry.k8s.io/jobset/jobset:v0.12.0).
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.config import model

# (API group, kind): what an operator's manifests create, cluster-scoped or namespaced.
Kind = tuple[str, str]

CONTROLLER_CLUSTER_KINDS: tuple[Kind, ...] = (
    ("", "Namespace"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
)
CONTROLLER_NAMESPACED_KINDS: tuple[Kind, ...] = (
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "Deployment"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
)


@dataclass(frozen=True)
class ImageOverride:
    """An image the upstream build names (without its tag), and the release image to run."""

    name: str
    new_name: str
    new_tag: str

    @property
    def resolved(self) -> str:
        return f"{self.new_name}:{self.new_tag}"


@dataclass(frozen=True)
class FluxSelection:
    """For a path that is a folder of alternative manifests rather than one kustomization:
    the one file Flux's source keeps (GitRepository `ignore`) and the patches the
    Kustomization applies to it."""

    keep: str
    patches: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class Operator:
    name: str  # names its sync object: <cluster>-<name>
    repo: str
    tag: str
    path: str
    namespace: str
    more_cluster_kinds: tuple[Kind, ...] = ()  # beyond CONTROLLER_CLUSTER_KINDS
    more_namespaces: tuple[str, ...] = ()  # where some of its objects go besides its own
    images: tuple[ImageOverride, ...] = ()  # what the engine sets on the upstream build
    # The controller images it runs, at the pinned version: what each install resolves to.
    release_images: tuple[str, ...] = ()
    # The upstream build's own images (tests check each one is a release image or is
    # overridden to one).
    upstream_images: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] | None = None  # when not the usual controller's kinds
    helm_path: str | None = None  # Argo CD renders this chart folder instead of `path`
    # Values Argo CD sets on that chart (`source.helm.parameters`), in order.
    helm_parameters: tuple[tuple[str, str], ...] = ()
    # Its manifests create no Namespace of their own: Argo CD creates it (CreateNamespace).
    create_namespace: bool = False
    flux: FluxSelection | None = None

    def source_path(self, engine: str) -> str:
        """The folder of its repository the engine syncs."""
        return self.helm_path if engine == "argocd" and self.helm_path else self.path


TRAINING_OPERATOR = Operator(
    "training-operator",
    "https://github.com/kubeflow/trainer.git",
    "v1.9.4",
    "manifests/overlays/standalone",
    "kubeflow",
    release_images=("ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489",),
    upstream_images=("ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489",),
)
JOBSET = Operator(
    "jobset",
    "https://github.com/kubernetes-sigs/jobset.git",
    "v0.12.0",
    "config/default",
    "jobset-system",
    images=(
        ImageOverride(
            "us-central1-docker.pkg.dev/k8s-staging-images/jobset/jobset",
            "registry.k8s.io/jobset/jobset",
            "v0.12.0",
        ),
    ),
    release_images=("registry.k8s.io/jobset/jobset:v0.12.0",),
    upstream_images=("us-central1-docker.pkg.dev/k8s-staging-images/jobset/jobset:v0.12.0",),
)
# Trainer's manager overlay includes JobSet's release manifests (namespace jobset-system).
TRAINER = Operator(
    "trainer",
    "https://github.com/kubeflow/trainer.git",
    "v2.3.0",
    "manifests/overlays/manager",
    "kubeflow-system",
    more_namespaces=("jobset-system",),
    release_images=(
        "ghcr.io/kubeflow/trainer/trainer-controller-manager:v2.3.0",
        "registry.k8s.io/jobset/jobset:v0.12.0",
    ),
    # manifests/overlays/manager sets both (its third-party/jobset sets JobSet's).
    upstream_images=(
        "ghcr.io/kubeflow/trainer/trainer-controller-manager:v2.3.0",
        "registry.k8s.io/jobset/jobset:v0.12.0",
    ),
)
# Kueue's config/default also serves its visibility API (an APIService with API
# priority and fairness objects) and binds a role in kube-system for it.
KUEUE = Operator(
    "kueue",
    "https://github.com/kubernetes-sigs/kueue.git",
    "v0.17.6",
    "config/default",
    "kueue-system",
    more_cluster_kinds=(
        ("apiregistration.k8s.io", "APIService"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ),
    more_namespaces=("kube-system",),
    images=(
        ImageOverride(
            "us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue",
            "registry.k8s.io/kueue/kueue",
            "v0.17.6",
        ),
    ),
    release_images=("registry.k8s.io/kueue/kueue:v0.17.6",),
    upstream_images=("us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:main",),
)
# The NVIDIA device plugin advertises `nvidia.com/gpu` on EKS GPU nodes (the EKS NVIDIA
# AMIs bring the driver and container toolkit, not the plugin; GKE installs its own).
# Its static manifest has no node selector and, on a node without GPUs, exits
# (failOnInitError defaults to true; internal/plugin/factory.go), so it must run only
# on GPU nodes: Argo CD renders the upstream chart, whose default affinity selects nodes
# labelled `nvidia.com/gpu.present=true` (which mlgitops puts on GPU node groups); Flux
# applies the static manifest with that same node affinity.
GPU_PRESENT_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
                    ]
                }
            ]
        }
    }
}
NVIDIA_DEVICE_PLUGIN = Operator(
    "nvidia-device-plugin",
    "https://github.com/NVIDIA/k8s-device-plugin.git",
    "v0.20.0",
    "deployments/static",
    "kube-system",
    release_images=("nvcr.io/nvidia/k8s-device-plugin:v0.20.0",),
    upstream_images=("nvcr.io/nvidia/k8s-device-plugin:v0.20.0",),
    kinds=(
        ("apps", "DaemonSet"),
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    ),
    helm_path="deployments/helm/nvidia-device-plugin",
    flux=FluxSelection(
        keep="deployments/static/nvidia-device-plugin.yml",
        patches=(
            {
                "target": {"kind": "DaemonSet", "name": "nvidia-device-plugin-daemonset"},
                "patch": {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {"name": "nvidia-device-plugin-daemonset"},
                    "spec": {"template": {"spec": {"affinity": GPU_PRESENT_AFFINITY}}},
                },
            },
        ),
    ),
)


# The External Secrets Operator turns each ExternalSecret into a Secret read from the
# cloud's store (render/secrets.py). v2.6.0 is the release whose CRDs are the strict
# schemas validate holds the tree to (SecretStore, ClusterSecretStore and ExternalSecret
# v1, ExternalSecret v1beta1 in ../shared/schemas/external-secrets.io: the same fields as
# config/crds/bases at v2.5.0 and v2.6.0; v2.4.1 lacks some, v2.7.0 adds some).
# Its repository has no static manifest at the tag (deploy/manifests holds only Helm
# values, deploy/crds only the CRDs), so Argo CD renders the chart
# deploy/charts/external-secrets at the tag; Flux would need a HelmRelease, which
# mlgitops does not generate (config/rules.py refuses secrets on cloud clusters with flux).
# The chart at v2.6.0 still says appVersion v2.5.0 (the chart is bumped after a
# release), and its three images default to that: the parameters pin them to v2.6.0.
# Default values: installCRDs true, webhook and cert-controller on, no
# PodDisruptionBudgets, no resources; the controller's ServiceAccount is the release's
# fullname, `external-secrets`, which EKS Pod Identity associates with the store's role.
EXTERNAL_SECRETS_IMAGE = "ghcr.io/external-secrets/external-secrets"
EXTERNAL_SECRETS = Operator(
    "external-secrets",
    "https://github.com/external-secrets/external-secrets.git",
    "v2.6.0",
    "deploy/charts/external-secrets",
    "external-secrets",
    release_images=(f"{EXTERNAL_SECRETS_IMAGE}:v2.6.0",),
    upstream_images=(f"{EXTERNAL_SECRETS_IMAGE}:v2.5.0",),
    kinds=(
        ("", "Namespace"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apps", "Deployment"),
        ("", "Secret"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    ),
    helm_path="deploy/charts/external-secrets",
    helm_parameters=(
        ("image.tag", "v2.6.0"),
        ("webhook.image.tag", "v2.6.0"),
        ("certController.image.tag", "v2.6.0"),
    ),
    create_namespace=True,
)
EXTERNAL_SECRETS_ACCOUNT = "external-secrets"  # the controller's ServiceAccount (chart fullname)


OPERATORS = (TRAINING_OPERATOR, JOBSET, TRAINER, KUEUE, NVIDIA_DEVICE_PLUGIN, EXTERNAL_SECRETS)


def operators_for(
    workloads: list[model.Workload],
    queues: bool,
    device_plugin: bool = False,
    secrets: bool = False,
) -> list[Operator]:
    """What a cluster running these workloads (and Kueue queues, when `queues`; the NVIDIA
    device plugin, when `device_plugin`; the External Secrets Operator, when `secrets`)
    needs installed, in a fixed order."""
    runtimes = {w.runtime for w in workloads}
    needed = [NVIDIA_DEVICE_PLUGIN] if device_plugin else []
    if runtimes & set(model.KUBEFLOW_V1_RUNTIMES):
        needed.append(TRAINING_OPERATOR)
    if "trainjob" in runtimes:
        needed.append(TRAINER)  # it installs JobSet too: one JobSet per cluster
    elif "jobset" in runtimes:
        needed.append(JOBSET)
    if queues:
        needed.append(KUEUE)
    if secrets:
        needed.append(EXTERNAL_SECRETS)
    return needed
