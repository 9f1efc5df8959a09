"""The controllers some runtimes need, installed by the GitOps engine from their upstream
manifests at a pinned release tag (the engine fetches them; no build in this repository
reaches the network).

Sources: kubeflow/trainer@v1.9.4 manifests/overlays/standalone (Training Operator v1,
namespace kubeflow); kubernetes-sigs/jobset@v0.12.0 config/default (jobset-system);
kubeflow/trainer@v2.3.0 manifests/overlays/manager (Trainer v2, kubeflow-system; it
brings its own JobSet); kubernetes-sigs/kueue@v0.17.6 config/default (kueue-system).
The kinds are what those builds contain; the Argo CD project allows exactly them.
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
class Operator:
    name: str  # names its sync object: <cluster>-<name>
    repo: str
    tag: str
    path: str
    namespace: str
    more_cluster_kinds: tuple[Kind, ...] = ()  # beyond CONTROLLER_CLUSTER_KINDS
    more_namespaces: tuple[str, ...] = ()  # where some of its objects go besides its own


TRAINING_OPERATOR = Operator(
    "training-operator",
    "https://github.com/kubeflow/trainer.git",
    "v1.9.4",
    "manifests/overlays/standalone",
    "kubeflow",
)
JOBSET = Operator(
    "jobset",
    "https://github.com/kubernetes-sigs/jobset.git",
    "v0.12.0",
    "config/default",
    "jobset-system",
)
# Trainer's manager overlay includes JobSet's release manifests (namespace jobset-system).
TRAINER = Operator(
    "trainer",
    "https://github.com/kubeflow/trainer.git",
    "v2.3.0",
    "manifests/overlays/manager",
    "kubeflow-system",
    more_namespaces=("jobset-system",),
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
)


def operators_for(workloads: list[model.Workload], queues: bool) -> list[Operator]:
    """What a cluster running these workloads (and Kueue queues, when `queues`) needs
    installed, in a fixed order."""
    runtimes = {w.runtime for w in workloads}
    needed = []
    if runtimes & set(model.KUBEFLOW_V1_RUNTIMES):
        needed.append(TRAINING_OPERATOR)
    if "trainjob" in runtimes:
        needed.append(TRAINER)  # it installs JobSet too: one JobSet per cluster
    elif "jobset" in runtimes:
        needed.append(JOBSET)
    if queues:
        needed.append(KUEUE)
    return needed
