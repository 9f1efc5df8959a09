"""Dispatch across clusters with Kueue's MultiKueue (`dispatch: {mode: multikueue, ...}`).

A dispatched workload is submitted once, to the management cluster (the one that syncs
the fleet), into a ClusterQueue whose AdmissionCheck is MultiKueue's; Kueue there copies
the run to every worker cluster it names, the first worker whose own Kueue admits it runs
it, and the copies on the others are removed (kubernetes-sigs/kueue@v0.17.6
site/content/en/docs/concepts/multikueue.md).

    clusters/management/platform/                the manager's ResourceFlavor, ClusterQueue,
                                                 AdmissionCheck, MultiKueueConfig and one
                                                 MultiKueueCluster per worker
    clusters/management/workloads/namespaces/<ns>/   the namespace (Pod Security
                                                 "restricted", default-deny, LocalQueues)
                                                 and the dispatched training objects
    clusters/<worker>/platform/                  besides its queues: the identity the
                                                 manager acts as there (ServiceAccount,
                                                 ClusterRole, its token Secret)
    clusters/<worker>/workloads/namespaces/<ns>/ everything of the workload but its training
                                                 object: MultiKueue creates that

Facts, at kubernetes-sigs/kueue@v0.17.6:

- Objects are `kueue.x-k8s.io/v1beta2` like the rest of the queues
  (apis/kueue/v1beta2/multikueue_types.go, admissioncheck_types.go). A MultiKueueCluster
  reaches its worker through `spec.clusterSource.kubeConfig` {location, locationType
  Secret}: a Secret of that name in Kueue's namespace (kueue-system) whose key
  `kubeconfig` holds the kubeconfig (MultiKueueConfigSecretKey). It is refused with an
  exec plugin, an auth provider, a token or CA *file*, basic auth or insecure TLS
  (pkg/controller/admissionchecks/multikueue/multikueuecluster.go validateKubeconfig,
  unless the deprecated MultiKueueAllowInsecureKubeconfigs gate is on), so the
  kubeconfig is a token one with the CA inline: the
  ServiceAccount below, with the rights Kueue's create-multikueue-kubeconfig.sh gives it
  for the kinds dispatched here (workloads and workloads/status, each kind and its
  status).
- The AdmissionCheck's controller is `kueue.x-k8s.io/multikueue`
  (MultiKueueControllerName), its parameters a MultiKueueConfig listing the clusters.
- The feature gate MultiKueue is beta and on by default since v0.9
  (pkg/features/kube_features.go); nothing is changed in Kueue's Configuration for it.
- The worker must hold the job's namespace and a LocalQueue of the same name
  (setup_multikueue.md "In the Worker Cluster"): the namespace's base (with its
  LocalQueues, pointing at the ClusterQueue named after the platform on every cluster)
  and the workload's other objects (ServiceAccount, claim, NetworkPolicies, secrets) are
  synced to each worker as for any workload running there.
- Kubeflow v1 jobs: MultiKueue adapters pytorchjob/tfjob (pkg/controller/jobs/kubeflow/
  jobs/*/..._multikueue_adapter.go); Kueue sets `spec.runPolicy.managedBy:
  kueue.x-k8s.io/multikueue` on the manager's copy (site .../run/multikueue/kubeflow.md).
  The manager holds only the Training Operator's CRDs (kubeflow/trainer@v1.9.4
  manifests/base/crds), no controller, so nothing there creates pods whatever managedBy
  says (v1.9.4 does honour it: pkg/controller.v1/common/job.go ManagedByExternalController).
- batch Jobs and JobSets: adapters job/job_multikueue_adapter.go (it clears managedBy on
  the worker's copy, so the worker's Job controller runs it) and
  jobset/jobset_multikueue_adapter.go; what the manager installs for them, and why its
  controllers leave the manager's copies alone, is in operator_facts.manager_operators_for.
- TrainJobs: adapter trainjob/trainjob_multikueue_adapter.go. Kueue's webhook on the
  manager sets the TrainJob's `spec.managedBy` to kueue.x-k8s.io/multikueue when its
  LocalQueue's ClusterQueue has the MultiKueue check (trainjob_webhook.go calls
  jobframework/defaults.go ApplyDefaultForManagedBy; trainjob_controller.go
  CanDefaultManagedBy accepts unset or trainer.kubeflow.org/trainjob-controller, the value
  Trainer v2.3.0's CRD defaults it to); the adapter clears it on the worker's copy, whose
  Trainer then runs it. To admit it, the manager's Kueue builds the pod sets itself from
  the (Cluster)TrainingRuntime the TrainJob names (trainjob_controller.go getChildJobSet,
  getRuntimeSpec: a Get of the runtime, and Trainer's runtime framework in-process), so
  the manager holds a copy of each generated ClusterTrainingRuntime in its platform
  folder, cloud-neutral like the run (render/training_runtimes.py with no cluster), and
  the CRDs operator_facts.manager_operators_for lists. Its integration
  trainer.kubeflow.org/trainjob is among the frameworks of Kueue's Configuration
  (render/kueue_config.py UPSTREAM_SETTINGS). The workers hold their own cloud's runtime
  of the same name (render/platform.py), which their Trainer builds the pods from.

The manager's copy is cloud-neutral: the workers differ in cloud, so its pods carry no
cloud's node affinity, only the GPU taint's toleration (the key every GPU node here is
tainted with, cluster/nodes.py GPU_TAINT and GKE's own); the worker's Kueue puts its
flavor's node labels on the pods when it admits the copy (render/queues.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from generator import cloud_facts
from generator.config import model
from generator.operator_facts import GPU_TOLERATIONS
from generator.quantities import cpu_quantity, memory_quantity
from generator.render import datasets
from generator.render.labels import platform_labels
from generator.render.objects import Manifest, Unit, metadata
from generator.render.queues import KUEUE_API, cluster_queue, flavor_quotas
from generator.render.runtimes import add_to_pods, render_training_object
from generator.render.training_runtimes import generates_runtime, render_training_runtime
from generator.render.workloads import render_namespace_base

MANAGER = "management"  # its folder: clusters/management/
MANAGER_FOLDER = f"clusters/{MANAGER}"
KUEUE_NAMESPACE = "kueue-system"
MULTIKUEUE_CONTROLLER = "kueue.x-k8s.io/multikueue"
KUBECONFIG_KEY = "kubeconfig"
WORKER_ACCOUNT = "multikueue"  # the ServiceAccount the manager acts as on each worker
# (API group, plural) of what MultiKueue creates on a worker, per runtime dispatched.
DISPATCHED_RESOURCES: dict[str, tuple[str, str]] = {
    "job": ("batch", "jobs"),
    "pytorchjob": ("kubeflow.org", "pytorchjobs"),
    "tfjob": ("kubeflow.org", "tfjobs"),
    "jobset": ("jobset.x-k8s.io", "jobsets"),
    "trainjob": ("trainer.kubeflow.org", "trainjobs"),
}


def dispatched(config: model.Config) -> list[model.Workload]:
    return [w for w in config.workloads if w.dispatch is not None]


def workers(config: model.Config) -> list[model.Cluster]:
    """The clusters some workload may be dispatched to, in the config's order."""
    named = {name for w in config.workloads if w.dispatch for name in w.dispatch.clusters}
    return [c for c in config.clusters if c.name in named]


def is_worker(config: model.Config, cluster: model.Cluster) -> bool:
    return cluster in workers(config)


def manager_platform_folder() -> str:
    return f"{MANAGER_FOLDER}/platform"


def manager_namespace_folder(namespace: str) -> str:
    return f"{MANAGER_FOLDER}/workloads/namespaces/{namespace}"


def manager_gitops_folder() -> str:
    return f"{MANAGER_FOLDER}/gitops"


def manager_namespaces(config: model.Config) -> list[str]:
    return sorted({w.namespace for w in dispatched(config)})


def kubeconfig_secret(cluster: model.Cluster) -> str:
    """The Secret in the manager's kueue-system holding a worker's kubeconfig."""
    return f"{cluster.name}-multikueue"


def worker_sets(config: model.Config) -> list[tuple[str, ...]]:
    """The distinct sets of workers the dispatched workloads name, each in the config's
    cluster order, in the order the workloads first name them."""
    order = [c.name for c in config.clusters]
    found: list[tuple[str, ...]] = []
    for workload in dispatched(config):
        assert workload.dispatch is not None
        named = tuple(n for n in order if n in workload.dispatch.clusters)
        if named not in found:
            found.append(named)
    return found


def set_name(config: model.Config, workers_named: tuple[str, ...]) -> str:
    """Names the manager's ClusterQueue, AdmissionCheck and MultiKueueConfig of one set of
    workers: the platform's name where every dispatched workload names the same workers."""
    if len(worker_sets(config)) == 1:
        return config.name
    return "-".join([config.name, *workers_named])


def queue_of(config: model.Config, workload: model.Workload) -> str:
    """The manager's ClusterQueue a dispatched workload's LocalQueue points at."""
    assert workload.dispatch is not None
    order = [c.name for c in config.clusters]
    return set_name(config, tuple(n for n in order if n in workload.dispatch.clusters))


def admission_check_name(name: str) -> str:
    return f"{name}-multikueue"


def manager_flavor_name(config: model.Config) -> str:
    return f"{config.name}-dispatch"


def render_dispatch_units(config: model.Config) -> list[Unit]:
    if not dispatched(config):
        return []
    comment = "#\n# The workers' kubeconfigs, made once by hand (never in git; README \"Dispatch\n"
    comment += "# across clusters\" writes each from the worker's multikueue token):\n"
    comment += "".join(f"#   {line}\n" for line in kubeconfig_commands(config))
    units = [Unit(manager_platform_folder(), render_manager_platform(config), comment=comment)]
    for namespace in manager_namespaces(config):
        held = [w for w in dispatched(config) if w.namespace == namespace]
        note = ""
        if any(w.runtime == "job" for w in held):
            note = (
                "#\n# The management cluster must run Kubernetes 1.32 or later: its Job\n"
                "# controller then leaves these Jobs to MultiKueue (spec.managedBy, KEP-4368).\n"
            )
        # The namespace's own base holds LocalQueues for the workers' ClusterQueue; the
        # manager's point at the ClusterQueue of the workers each one's runs go to.
        units.append(
            Unit(
                manager_namespace_folder(namespace),
                [
                    *render_namespace_base(config, namespace),
                    *render_manager_local_queues(config, namespace),
                    *(manager_training_object(config, w) for w in held),
                ],
                comment=note,
            )
        )
    return units


def manager_training_object(config: model.Config, workload: model.Workload) -> Manifest:
    """The run as submitted to the manager: the base object, with the GPU taint's
    toleration where its pods ask for GPUs (the only scheduling every worker shares),
    and its datasets' claims as the workers have them (one `pvc:` claim on every worker,
    config/dispatch_rules.py)."""
    assert workload.dispatch is not None
    first = next(c for c in config.clusters if c.name in workload.dispatch.clusters)
    workload = replace(workload, data=datasets.on_cloud(workload, first.cloud))
    obj = render_training_object(config, workload)
    if workload.resources.gpu:
        add_to_pods(obj, {"tolerations": [dict(t) for t in GPU_TOLERATIONS]})
    if workload.secrets or workload.image_pull_secrets:
        # Its pods run on a worker, whose namespace path makes their Secrets (as for any
        # workload there); the manager runs none, so MLG030 does not apply here.
        annotations = obj["metadata"].setdefault("annotations", {})
        annotations[SECRETS_WAIVER] = (
            "dispatched: its pods run on a worker, where the namespace's secrets are made"
        )
    return obj


def render_manager_local_queues(config: model.Config, namespace: str) -> list[Manifest]:
    """The namespace's LocalQueues on the manager, each pointing at the ClusterQueue of
    the workers its workloads name (same names as the workers' LocalQueues: MultiKueue
    creates the copy in the LocalQueue of the same name there)."""
    queues: dict[str, str] = {}
    for workload in dispatched(config):
        if workload.namespace == namespace and workload.queue:
            queues[workload.queue] = queue_of(config, workload)
    return [
        {
            "apiVersion": KUEUE_API,
            "kind": "LocalQueue",
            "metadata": metadata(queue, platform_labels(config), namespace),
            "spec": {"clusterQueue": queues[queue]},
        }
        for queue in sorted(queues)
    ]


def render_manager_platform(config: model.Config) -> list[Manifest]:
    """One flavor without node labels (the manager runs no pods; nothing is injected);
    per set of workers, a ClusterQueue whose quota is what those workers' queues offer
    together (the manager never holds back a run some worker could take), with the
    MultiKueue check, its MultiKueueConfig; the cloud-neutral ClusterTrainingRuntime of
    each dispatched TrainJob (its Kueue builds the pod sets from it); one
    MultiKueueCluster per worker."""
    labels = platform_labels(config)
    objects: list[Manifest] = [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": metadata(manager_flavor_name(config), labels),
            "spec": {},
        }
    ]
    for named in worker_sets(config):
        objects += _set_objects(config, named)
    objects += [
        render_training_runtime(config, None, w) for w in dispatched(config) if generates_runtime(w)
    ]
    objects += [
        {
            "apiVersion": KUEUE_API,
            "kind": "MultiKueueCluster",
            "metadata": {
                **metadata(cluster.name, labels),
                # Read by validate (MLG031): the kubeconfig Secret is made once by hand.
                "annotations": {HAND_MADE_ANNOTATION: kubeconfig_secret(cluster)},
            },
            "spec": {
                "clusterSource": {
                    "kubeConfig": {"location": kubeconfig_secret(cluster), "locationType": "Secret"}
                }
            },
        }
        for cluster in workers(config)
    ]
    return objects


def _set_objects(config: model.Config, named: tuple[str, ...]) -> list[Manifest]:
    labels = platform_labels(config)
    name = set_name(config, named)
    check = admission_check_name(name)
    resources = ["cpu", "memory", cloud_facts.GPU_RESOURCE]
    total = fleet_quota(config, named)
    namespaces = sorted({w.namespace for w in dispatched(config) if queue_of(config, w) == name})
    queue = cluster_queue(
        name, labels, namespaces, resources, [(manager_flavor_name(config), total)]
    )
    queue["spec"]["admissionChecksStrategy"] = {"admissionChecks": [{"name": check}]}
    return [
        queue,
        {
            "apiVersion": KUEUE_API,
            "kind": "AdmissionCheck",
            "metadata": metadata(check, labels),
            "spec": {
                "controllerName": MULTIKUEUE_CONTROLLER,
                "parameters": {
                    "apiGroup": "kueue.x-k8s.io",
                    "kind": "MultiKueueConfig",
                    "name": name,
                },
            },
        },
        {
            "apiVersion": KUEUE_API,
            "kind": "MultiKueueConfig",
            "metadata": metadata(name, labels),
            "spec": {"clusters": list(named)},
        },
    ]


def fleet_quota(config: model.Config, named: tuple[str, ...]) -> dict[str, Any]:
    """The sum over these workers of what their ClusterQueues offer."""
    millicores, memory, gpus = 0, 0, 0
    for cluster in [c for c in config.clusters if c.name in named]:
        for quota in flavor_quotas(config, cluster):
            millicores += quota.millicores
            memory += quota.memory
            gpus += quota.gpus
    return {
        "cpu": cpu_quantity(millicores),
        "memory": memory_quantity(memory),
        cloud_facts.GPU_RESOURCE: gpus,
    }


def render_worker_access(config: model.Config, cluster: model.Cluster) -> list[Manifest]:
    """On a worker: the ServiceAccount the manager's kubeconfig acts as, the rights
    MultiKueue needs there for what is dispatched to it, and a token Secret for it (no
    data in git: the token controller fills it in the cluster)."""
    labels = platform_labels(config)
    kinds = sorted(
        {
            DISPATCHED_RESOURCES[w.runtime]
            for w in dispatched(config)
            if w.dispatch and cluster.name in w.dispatch.clusters
        }
    )
    managed = [("kueue.x-k8s.io", "workloads"), *kinds]
    rules: list[dict[str, Any]] = []
    for group, plural in managed:
        rules.append(
            {
                "apiGroups": [group],
                "resources": [plural],
                "verbs": ["create", "delete", "get", "list", "watch"],
            }
        )
        status_verbs = ["get", "patch", "update"] if plural == "workloads" else ["get"]
        rules.append(
            {"apiGroups": [group], "resources": [f"{plural}/status"], "verbs": status_verbs}
        )
    role = f"{config.name}-multikueue"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(WORKER_ACCOUNT, labels, KUEUE_NAMESPACE),
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                **metadata(WORKER_ACCOUNT, labels, KUEUE_NAMESPACE),
                "annotations": {"kubernetes.io/service-account.name": WORKER_ACCOUNT},
            },
            "type": "kubernetes.io/service-account-token",
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(role, labels),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(role, labels),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": WORKER_ACCOUNT, "namespace": KUEUE_NAMESPACE}
            ],
        },
    ]


HAND_MADE_ANNOTATION = "mlgitops.io/kubeconfig-made-by-hand"  # validate MLG031 reads it
SECRETS_WAIVER = "mlgitops.io/waive-mlg030"  # validate's waiver of MLG030, with its reason


def kubeconfig_commands(config: model.Config) -> list[str]:
    """The one-time step per worker (README "Dispatch across clusters" writes the
    kubeconfig from the worker's token Secret): put it in the manager's kueue-system."""
    return [
        f"kubectl -n {KUEUE_NAMESPACE} create secret generic {kubeconfig_secret(c)} "
        f"--from-file={KUBECONFIG_KEY}={c.name}.kubeconfig"
        for c in workers(config)
    ]
