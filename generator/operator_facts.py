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
    # Values Argo CD gives the chart (source.helm.valuesObject).
    helm_values: dict[str, object] | None = None
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

# NVIDIA dcgm-exporter (NVIDIA/dcgm-exporter, newest release tag 4.5.3-4.8.2: DCGM 4.5.3,
# exporter 4.8.2) serves per-GPU metrics on :9400. Facts at that tag:
# - it runs as root with SYS_ADMIN (profiling metrics, DCGM_FI_PROF_*) and mounts the
#   kubelet's pod-resources socket folder (hostPath /var/lib/kubelet/pod-resources) to map
#   each GPU to the pod, namespace and container using it (dcgm-exporter.yaml,
#   deployment/values.yaml securityContext, kubeletPath): Pod Security "privileged", so
#   it runs in kube-system beside the other node agents (the NVIDIA device plugin, the
#   EFA plugin), never in a training namespace, and the tree holds no Namespace below
#   "restricted";
# - `DCGM_EXPORTER_KUBERNETES=true` adds those pod attributes;
#   `DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS=true` adds the pod's labels too, read
#   through a pod informer of the node's pods (internal/pkg/transformation/kubernetes.go
#   NewPodMapper: in-cluster config, field selector spec.nodeName=$NODE_NAME), which needs a
#   service account token and get/list/watch on pods;
#   `DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX` keeps only the labels whose key
#   matches (pkg/cmd/app.go; kubernetes.go matches the key as written, then writes it
#   with every character Prometheus refuses as `_`, internal/pkg/utils SanitizeLabelName:
#   `app.kubernetes.io/name` -> `app_kubernetes_io_name`);
# - the static manifest (dcgm-exporter.yaml: DaemonSet and Service, no namespace, no
#   service account, automountServiceAccountToken false, no node selection or
#   tolerations) gives pod attributes only; the chart (deployment/, 4.8.2) creates the
#   service account and a ClusterRole `<fullname>-read-pods` when
#   kubernetes.enablePodLabels and kubernetes.rbac.create, and a ServiceMonitor by default
#   (serviceMonitor.enabled: true, a Prometheus Operator kind).
# Argo CD renders the chart with pod labels on and no ServiceMonitor; Flux applies the
# static manifest, patched to the same effect, with the service account and its role
# generated beside its network policies (render/gpu_metrics.py).
GPU_METRICS_NAMESPACE = "kube-system"
# The exporter's pods' label, in the static manifest and the chart alike (dcgm-exporter.yaml
# template labels; deployment/templates/_helpers.tpl selectorLabels, name = the chart's).
DCGM_EXPORTER_POD_LABELS = {"app.kubernetes.io/name": "dcgm-exporter"}
DCGM_EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless"
DCGM_EXPORTER_NAME = "dcgm-exporter"  # the DaemonSet, Service and service account
# The GPU nodes' taint (cluster/nodes.py GPU_TAINT, on GPU groups beside CPU ones).
GPU_TOLERATIONS = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
# The labels of training pods a GPU metric carries (render/labels.py: the workload's
# name and platform; the labels each controller puts on the pods it creates, as
# cluster/controllers.py models them with their sources: batch/v1 Job, JobSet, and so
# Trainer's TrainJob, Training Operator v1), and the queue.
GPU_METRIC_POD_LABELS = (
    r"^app\.kubernetes\.io/(name|part-of|component)$",
    r"^batch\.kubernetes\.io/job-name$",
    r"^jobset\.sigs\.k8s\.io/(jobset-name|replicatedjob-name)$",
    r"^training\.kubeflow\.org/(job-name|replica-type|replica-index)$",
    r"^kueue\.x-k8s\.io/queue-name$",
)
# What the chart's kubernetes.enablePodLabels and podLabelAllowlistRegex set
# (deployment/templates/daemonset.yaml), for the static manifest.
POD_LABEL_ENV = [
    {"name": "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS", "value": "true"},
    {
        "name": "DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX",
        "value": ",".join(GPU_METRIC_POD_LABELS),
    },
]
DCGM_EXPORTER = Operator(
    "dcgm-exporter",
    "https://github.com/NVIDIA/dcgm-exporter.git",
    "4.5.3-4.8.2",
    "",  # the repository's top folder, where dcgm-exporter.yaml is
    GPU_METRICS_NAMESPACE,
    release_images=(DCGM_EXPORTER_IMAGE,),
    upstream_images=(DCGM_EXPORTER_IMAGE,),
    kinds=(
        ("apps", "DaemonSet"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    ),
    helm_path="deployment",
    helm_values={
        "fullnameOverride": DCGM_EXPORTER_NAME,
        "serviceMonitor": {"enabled": False},
        "affinity": GPU_PRESENT_AFFINITY,
        "tolerations": list(GPU_TOLERATIONS),
        "kubernetes": {
            "enablePodLabels": True,
            "podLabelAllowlistRegex": list(GPU_METRIC_POD_LABELS),
            "rbac": {"create": True},
        },
    },
    flux=FluxSelection(
        keep="dcgm-exporter.yaml",
        patches=(
            {
                "target": {"kind": "DaemonSet", "name": DCGM_EXPORTER_NAME},
                "patch": {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {"name": DCGM_EXPORTER_NAME},
                    "spec": {
                        "template": {
                            "spec": {
                                "serviceAccountName": DCGM_EXPORTER_NAME,
                                "automountServiceAccountToken": True,
                                "affinity": GPU_PRESENT_AFFINITY,
                                "tolerations": list(GPU_TOLERATIONS),
                                "containers": [{"name": DCGM_EXPORTER_NAME, "env": POD_LABEL_ENV}],
                            }
                        }
                    },
                },
            },
        ),
    ),
)

# The EFA device plugin advertises `vpc.amazonaws.com/efa` and mounts the EFA devices
# into the pods that ask for them (EKS user guide ml/node-efa.adoc installs it with this
# chart). Its chart (aws/eks-charts stable/aws-efa-k8s-device-plugin, version v0.5.30,
# image v0.5.20 from EKS's ECR) has no release tags of its own, so it is pinned to the
# eks-charts commit that carries it. Its DaemonSet (templates/daemonset.yaml) is
# privileged with hostPaths, in kube-system, not a training namespace; its required node
# affinity lists the instance types with EFA (values.yaml supportedInstanceLabels, which
# holds every type of cloud_facts.EC2_EFA_INTERFACES) and excludes EKS Auto Mode nodes;
# it tolerates only CriticalAddonsOnly by default, so the values add the GPU taint.
# The chart has no plain manifest: Flux, which syncs kustomize paths here, does not
# install it (the generate warning says so and the README gives the helm command).
EFA_DEVICE_PLUGIN = Operator(
    "efa-device-plugin",
    "https://github.com/aws/eks-charts.git",
    "5239609242f3430be50fb0b714a24d3ef2b47983",
    "stable/aws-efa-k8s-device-plugin",
    "kube-system",
    release_images=(
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v0.5.20",
    ),
    upstream_images=(
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v0.5.20",
    ),
    kinds=(("apps", "DaemonSet"),),
    helm_path="stable/aws-efa-k8s-device-plugin",
    helm_values={
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ]
    },
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


# The management cluster holds dispatched Kubeflow v1 jobs without running them
# (render/dispatch.py): only the Training Operator's CRDs, kubeflow/trainer@v1.9.4
# manifests/base/crds (a kustomization of the six kubeflow.org CRDs; Kueue's
# site/content/en/docs/tasks/run/multikueue/kubeflow.md at v0.17.6 installs the manager
# that way), so no controller there creates pods whatever `runPolicy.managedBy` says.
TRAINING_OPERATOR_CRDS = Operator(
    "training-operator-crds",
    TRAINING_OPERATOR.repo,
    TRAINING_OPERATOR.tag,
    "manifests/base/crds",
    "default",  # its objects are cluster-scoped
    kinds=(("apiextensions.k8s.io", "CustomResourceDefinition"),),
)


# The management cluster holds dispatched TrainJobs without running them
# (render/dispatch.py): only Trainer v2's three CRDs, kubeflow/trainer@v2.3.0
# manifests/base/crds (a kustomization of trainjobs, trainingruntimes and
# clustertrainingruntimes; none has a conversion webhook), and no Trainer controller, so
# nothing there makes a JobSet or pods from them. Trainer v2.3.0 would leave them alone
# anyway: its TrainJob CRD documents that the controller delegates a TrainJob whose
# `spec.managedBy` is kueue.x-k8s.io/multikueue to Kueue. Kueue's TrainJob integration
# reads the ClusterTrainingRuntime (its RBAC: get/list/watch) and owns JobSets
# (kueue v0.17.6 pkg/controller/jobs/trainjob/trainjob_controller.go SetupWithManager
# `Owns(&jobsetapi.JobSet{})`), so the manager also needs JobSet's CRD: JobSet itself
# is installed as for dispatched JobSets (manager_operators_for).
TRAINER_CRDS = Operator(
    "trainer-crds",
    TRAINER.repo,
    TRAINER.tag,
    "manifests/base/crds",
    "default",  # its objects are cluster-scoped
    kinds=(("apiextensions.k8s.io", "CustomResourceDefinition"),),
)


def manager_operators_for(workloads: list[model.Workload]) -> list[Operator]:
    """What the management cluster needs for the dispatched workloads' kinds, none of
    which may create pods there: MultiKueue's webhook sets the manager's copy's managedBy
    to kueue.x-k8s.io/multikueue (kueue v0.17.6 site/content/en/docs/tasks/run/multikueue/).
    - Kubeflow v1 jobs: the CRDs only (above).
    - JobSet: JobSet itself, whose controller leaves a JobSet with another `managedBy`
      alone (kubernetes-sigs/jobset@v0.12.0 pkg/controllers/jobset_controller.go,
      managedByExternalController); its CRD folder alone would keep a conversion webhook
      to a Service that would not exist (config/components/crd/patches/webhook_in_jobsets.yaml).
    - batch Job: nothing to install; the built-in Job controller skips a Job whose
      `spec.managedBy` is not its own from Kubernetes 1.32, where the JobManagedBy gate is
      beta and on (KEP-4368: alpha 1.30, beta 1.32, GA 1.35), so the manager needs 1.32+.
    - TrainJob: Trainer v2's CRDs only, and JobSet for its CRD (TRAINER_CRDS above)."""
    runtimes = {w.runtime for w in workloads}
    needed = []
    if runtimes & set(model.KUBEFLOW_V1_RUNTIMES):
        needed.append(TRAINING_OPERATOR_CRDS)
    if "trainjob" in runtimes:
        needed.append(TRAINER_CRDS)
    if runtimes & {"jobset", "trainjob"}:
        needed.append(JOBSET)
    return needed


OPERATORS = (
    TRAINING_OPERATOR,
    JOBSET,
    TRAINER,
    KUEUE,
    NVIDIA_DEVICE_PLUGIN,
    EFA_DEVICE_PLUGIN,
    DCGM_EXPORTER,
    EXTERNAL_SECRETS,
)


def operators_for(
    workloads: list[model.Workload],
    queues: bool,
    device_plugin: bool = False,
    efa_plugin: bool = False,
    secrets: bool = False,
) -> list[Operator]:
    """What a cluster running these workloads (and Kueue queues, when `queues`; the NVIDIA
    device plugin, when `device_plugin`; the EFA one, when `efa_plugin`; the External
    Secrets Operator, when `secrets`) needs installed, in a fixed order. The GPU metrics
    exporter is not among them: it waits for its namespace (gitops.sync_paths)."""
    runtimes = {w.runtime for w in workloads}
    needed = [NVIDIA_DEVICE_PLUGIN] if device_plugin else []
    if efa_plugin:
        needed.append(EFA_DEVICE_PLUGIN)
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
