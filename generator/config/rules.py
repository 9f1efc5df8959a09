"""Rules that relate several fields. Each problem is (field path, message); the loader
turns the path into the file position where that field was written."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from generator import cloud_facts, operator_facts
from generator.cluster import nodes
from generator.config import model
from generator.config.dispatch_rules import dispatch_problems
from generator.quantities import cpu_quantity, readable_memory
from generator.render import datasets, secrets
from generator.render.pods import WRITABLE_ENV

# Folder names under base/ that are not workloads.
RESERVED_WORKLOAD_NAMES = frozenset({"namespaces"})
# Namespaces a training workload must not take over: Kubernetes' own, and those of what
# runs the platform (the engines, the operators mlgitops installs, ACK, Config Connector),
# whose controllers Pod Security "restricted" and default-deny would break.
RESERVED_NAMESPACES = frozenset(
    {
        "default", "kube-system", "kube-public", "kube-node-lease",
        "argocd", "flux-system",
        "kueue-system", "jobset-system", "kubeflow", "kubeflow-system",
        "ack-system", "cnrm-system", "configconnector-operator-system",
    }
    | {operator.namespace for operator in operator_facts.OPERATORS}
    | {namespace for operator in operator_facts.OPERATORS for namespace in operator.more_namespaces}
)  # fmt: skip
RESERVED_NAMESPACE_PREFIXES = ("kube-", "infra-")  # infra-<cluster>: cloud resources
# Where a workload's own volumes must not be mounted: the root, the runtime's and the
# kubelet's mounts, and the volumes mlgitops mounts itself.
RESERVED_MOUNTS = ("/", "/dev", "/proc", "/sys", "/dev/shm", "/tmp")
# Environment variables the generated pods set themselves (the last two: the resume
# contract, render/disruption.py).
GENERATED_ENV = frozenset(
    {
        "JOB_COMPLETION_INDEX",
        "TF_CLUSTER",
        "TF_CONFIG",
        "PYTHONUNBUFFERED",
        "MLGITOPS_CHECKPOINT_DIR",
        "MLGITOPS_RESTART_ATTEMPT",
    }
)
# PriorityClass names Kubernetes keeps for its own (pkg/apis/scheduling, SystemPriorityClassPrefix).
SYSTEM_PRIORITY_PREFIX = "system-"
MAX_HOSTNAME = 63

Found = tuple[str, str]


@dataclass(frozen=True)
class Loaded:
    """The parts of a config that loaded cleanly, each with its index in the file, so the
    rules can run even when other parts have problems of their own."""

    workloads: list[tuple[int, model.Workload]]
    clusters: list[tuple[int, model.Cluster]]
    kubernetes_version: str | None
    name: str | None = None
    gitops: str | None = None
    require_digest: bool = False  # images.requireDigest
    # priorityClasses' names; None when they did not load (their own problems say why)
    priority_classes: tuple[str, ...] | None = ()

    @classmethod
    def of(cls, config: model.Config) -> Loaded:
        return cls(
            list(enumerate(config.workloads)),
            list(enumerate(config.clusters)),
            config.kubernetes_version,
            config.name,
            config.gitops,
            require_digest=config.images.require_digest,
            priority_classes=tuple(c.name for c in config.priority_classes),
        )


def cross_field_problems(loaded: Loaded) -> list[Found]:
    return [
        *_duplicates(((i, w.name) for i, w in loaded.workloads), "workloads", "workload"),
        *_duplicates(((i, c.name) for i, c in loaded.clusters), "clusters", "cluster"),
        *(p for i, w in loaded.workloads for p in _workload(w, f"workloads[{i}]")),
        *(p for i, c in loaded.clusters for p in _cluster(c, f"clusters[{i}]", loaded)),
        *(p for i, c in loaded.clusters for p in _system_nodes(c, f"clusters[{i}]")),
        *(p for i, w in loaded.workloads for p in _placement(w, f"workloads[{i}]", loaded)),
        *(p for i, c in loaded.clusters for p in _queue_capacity(c, f"clusters[{i}]", loaded)),
        *(p for i, w in loaded.workloads for p in _topology(w, f"workloads[{i}]", loaded)),
        *(p for i, c in loaded.clusters for p in _topology_types(c, f"clusters[{i}]", loaded)),
        *_sync_names(loaded),
        *dispatch_problems(loaded.workloads, loaded.clusters),
        *_priorities(loaded),
        *_secrets_shared(loaded),
        *(p for i, w in loaded.workloads for p in _secret_stores(w, f"workloads[{i}]", loaded)),
        *(p for i, w in loaded.workloads for p in _dataset_readers(w, f"workloads[{i}]", loaded)),
        *(
            (f"workloads[{i}].image", _undigested(w.image))
            for i, w in loaded.workloads
            if loaded.require_digest and "@" not in w.image
        ),
    ]


def _priorities(loaded: Loaded) -> Iterator[Found]:
    """Workloads name priority classes the config has; class names are unique and not
    the system's."""
    names = loaded.priority_classes
    if names is None:
        return
    yield from _duplicates(enumerate(names), "priorityClasses", "priority class")
    for i, name in enumerate(names):
        if name.startswith(SYSTEM_PRIORITY_PREFIX):
            yield (
                f"priorityClasses[{i}].name",
                f"{name!r}: names starting with {SYSTEM_PRIORITY_PREFIX!r} belong to Kubernetes",
            )
    for i, workload in loaded.workloads:
        if workload.priority and workload.priority not in names:
            known = ", ".join(names) if names else "none are defined"
            yield (
                f"workloads[{i}].priority",
                f"no priority class named {workload.priority!r} in priorityClasses ({known})",
            )


def _undigested(image: str) -> str:
    return (
        f"{image!r} has no digest and images.requireDigest is on: pin it as {image}@sha256:<digest>"
    )


# Argo CD and Flux label what they apply with the name of the Application or Kustomization
# that applied it, and a label value holds at most 63 characters.
MAX_SYNC_NAME = 63


# What a cluster's sync objects are called after its name (the longest: the NVIDIA
# device plugin's, on EKS; the infrastructure's), and the scopes' root objects after the
# platform's name (gitops.argocd, gitops.flux).
CLUSTER_SYNC_SUFFIXES = ("-nvidia-device-plugin", "-training-operator", "-infrastructure")


def _sync_names(loaded: Loaded) -> Iterator[Found]:
    """Sync objects are named <cluster>-<part> and <cluster>-workloads-<namespace>; each
    scope's root <platform>-fleet or <platform>-<local cluster> (Flux), <project>-root
    (Argo CD)."""
    root_suffix = "-root" if loaded.gitops != "flux" else ""
    has_fleet = any(not isinstance(c, model.LocalCluster) for _, c in loaded.clusters)
    if loaded.name and has_fleet:
        fleet_root = f"{loaded.name}-{'root' if root_suffix else 'fleet'}"
        if len(fleet_root) > MAX_SYNC_NAME:
            yield (
                "name",
                f"{loaded.name!r} is too long: the root sync object {fleet_root!r} must fit in "
                f"{MAX_SYNC_NAME} characters, the label Argo CD and Flux put on what they apply",
            )
    for i, cluster in loaded.clusters:
        candidates = [f"{cluster.name}{suffix}" for suffix in CLUSTER_SYNC_SUFFIXES]
        if isinstance(cluster, model.LocalCluster) and loaded.name:
            candidates.append(f"{loaded.name}-{cluster.name}{root_suffix}")
        longest = max(candidates, key=len)
        if len(longest) > MAX_SYNC_NAME:
            yield (
                f"clusters[{i}].name",
                f"{cluster.name!r} is too long: the sync object {longest!r} must fit in "
                f"{MAX_SYNC_NAME} characters, the label Argo CD and Flux put on what they apply",
            )
    reported: set[tuple[str, str]] = set()
    for w_index, workload in loaded.workloads:
        for _, cluster in loaded.clusters:
            name = f"{cluster.name}-workloads-{workload.namespace}"
            pair = (cluster.name, workload.namespace)
            if (
                workload.runs_on(cluster.name)
                and len(name) > MAX_SYNC_NAME
                and pair not in reported
            ):
                reported.add(pair)
                yield (
                    f"workloads[{w_index}].namespace",
                    f"namespace {workload.namespace!r} on cluster {cluster.name!r} makes the sync "
                    f"object {name!r}, longer than {MAX_SYNC_NAME} characters (the label Argo CD "
                    "and Flux put on what they apply): shorten the namespace or cluster name",
                )


def _duplicates(
    names: Iterable[tuple[int, str]], path: str, what: str, suffix: str = ".name"
) -> Iterator[Found]:
    seen: dict[str, int] = {}
    for index, name in names:
        if name in seen:
            yield (
                f"{path}[{index}]{suffix}",
                f"duplicate {what} name {name!r} (also {path}[{seen[name]}])",
            )
        else:
            seen[name] = index


def _workload(workload: model.Workload, path: str) -> Iterator[Found]:
    if workload.name in RESERVED_WORKLOAD_NAMES:
        yield f"{path}.name", f"{workload.name!r} is reserved (base/{workload.name}/ is generated)"
    if workload.namespace in RESERVED_NAMESPACES or workload.namespace.startswith(
        RESERVED_NAMESPACE_PREFIXES
    ):
        yield (
            f"{path}.namespace",
            f"{workload.namespace!r} belongs to Kubernetes or the platform (its controllers "
            "would get Pod Security 'restricted' and default-deny): give the workload its own",
        )
    checkpoint = workload.checkpoint
    if checkpoint and _collides(checkpoint.mount_path):
        yield (
            f"{path}.checkpoint.mountPath",
            f"{checkpoint.mount_path!r} is where the container's root, the runtime or mlgitops "
            f"mounts ({', '.join(RESERVED_MOUNTS)}): mount the checkpoint elsewhere, e.g. "
            "/var/ml_model",
        )
    if workload.parameter_servers and workload.framework != "tensorflow":
        yield (
            f"{path}.parameterServers",
            f"parameter servers need framework tensorflow, not {workload.framework}",
        )
    yield from _runtime(workload, path)
    suffix = _longest_hostname_suffix(workload)
    last_hostname = f"{workload.name}{suffix}"
    if len(last_hostname) > MAX_HOSTNAME:
        room = MAX_HOSTNAME - len(suffix)
        yield (
            f"{path}.name",
            f"{workload.name!r} is too long: pod hostnames such as {last_hostname!r} must fit "
            f"in {MAX_HOSTNAME} characters (at most {room} characters here)",
        )
    for key in sorted(set(workload.env) & GENERATED_ENV):
        yield f"{path}.env.{key}", f"{key} is set by the generator and cannot be overridden"
    yield from _secrets(workload, path)
    yield from _datasets(workload, path)
    for i, source in enumerate(workload.network.ingress_from):
        yield from _duplicates_ports(source.ports, f"{path}.network.ingressFrom[{i}].ports")
    for i, destination in enumerate(workload.network.egress_to):
        yield from _duplicates_ports(destination.ports, f"{path}.network.egressTo[{i}].ports")


# Google Secret Manager secret ids: letters, digits, - and _, at most 255 (Secret Manager
# REST reference, projects.secrets.create `secretId`).
GCP_ACCOUNT_LIMIT = 30  # IAM service account ids: 6 to 30 characters
_GCP_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$", re.ASCII)


def _secrets(workload: model.Workload, path: str) -> Iterator[Found]:
    """Each secret is given one way; names, variables and folders do not clash with each
    other, the generated environment or the volumes mlgitops mounts."""
    names = [(i, s.name) for i, s in enumerate(workload.secrets)]
    yield from _duplicates(names, f"{path}.secrets", "secret")
    pulls = [(i, s.name) for i, s in enumerate(workload.image_pull_secrets)]
    yield from _duplicates(pulls, f"{path}.imagePullSecrets", "pull secret")
    for i, pull in pulls:
        if pull in {name for _, name in names}:
            yield (
                f"{path}.imagePullSecrets[{i}].name",
                f"{pull!r} is also one of secrets: a pull secret is its own Secret",
            )
    taken = GENERATED_ENV | {name for name, _ in WRITABLE_ENV} | set(workload.env)
    taken |= {datasets.env_name(d) for d in workload.data}
    seen_env: dict[str, int] = {}
    seen_mounts: list[tuple[int, str]] = []
    checkpoint = workload.checkpoint.mount_path if workload.checkpoint else None
    for i, secret in enumerate(workload.secrets):
        where = f"{path}.secrets[{i}]"
        if (secret.env is None) == (secret.mount_path is None):
            yield where, "give the secret as exactly one of env or mountPath"
            continue
        if secret.env is not None:
            if secret.env in taken:
                yield (
                    f"{where}.env",
                    f"{secret.env} is already set on the pods (by mlgitops or the workload's "
                    "env): name another variable",
                )
            elif secret.env in seen_env:
                yield (
                    f"{where}.env",
                    f"{secret.env} is also given by secrets[{seen_env[secret.env]}]",
                )
            seen_env[secret.env] = i
            continue
        mount = (secret.mount_path or "").rstrip("/") or "/"
        if _collides(mount):
            yield (
                f"{where}.mountPath",
                f"{secret.mount_path!r} is where the container's root, the runtime or "
                f"mlgitops mounts ({', '.join(RESERVED_MOUNTS)}): mount the secret elsewhere, "
                "e.g. /var/run/secrets/<name>",
            )
        elif checkpoint and _nested(mount, checkpoint.rstrip("/") or "/"):
            yield (
                f"{where}.mountPath",
                f"{secret.mount_path!r} overlaps the checkpoint volume at {checkpoint!r}: "
                "mount the secret elsewhere",
            )
        else:
            for j, other in seen_mounts:
                if _nested(mount, other):
                    yield (
                        f"{where}.mountPath",
                        f"{secret.mount_path!r} overlaps secrets[{j}]'s mountPath {other!r}",
                    )
                    break
        seen_mounts.append((i, mount))


# A volume name is a DNS label (63 characters) and a dataset's is `data-<name>`.
MAX_DATASET_NAME = 63 - len(datasets.VOLUME_PREFIX)


def _datasets(workload: model.Workload, path: str) -> Iterator[Found]:
    """Each dataset has one way to say its source, a name that makes a volume name and
    a variable of its own, and a folder no other volume of the pod takes."""
    yield from _duplicates(
        ((i, d.name) for i, d in enumerate(workload.data)), f"{path}.data", "dataset"
    )
    taken: list[tuple[str, str]] = [
        (mount, f"secrets[{i}]'s mountPath")
        for i, s in enumerate(workload.secrets)
        if (mount := (s.mount_path or "").rstrip("/"))
    ]
    if workload.checkpoint:
        taken.insert(0, (workload.checkpoint.mount_path.rstrip("/") or "/", "the checkpoint"))
    if workload.data and workload.training_runtime:
        yield (
            f"{path}.data",
            "a trainjob with its own trainingRuntime gets its volumes from that runtime: "
            "mount the datasets there, or leave trainingRuntime out",
        )
    for i, dataset in enumerate(workload.data):
        where = f"{path}.data[{i}]"
        if len(dataset.name) > MAX_DATASET_NAME:
            yield (
                f"{where}.name",
                f"{dataset.name!r} is too long: the volume {datasets.volume_name(dataset)!r} "
                f"must fit in 63 characters (at most {MAX_DATASET_NAME} here)",
            )
        if (dataset.source is None) == (dataset.sources is None):
            yield where, "give the dataset exactly one of source and sources"
        elif dataset.sources and not any(
            dataset.sources.on(cloud) for cloud in ("eks", "gke", "local")
        ):
            yield f"{where}.sources", "give the source on at least one cloud"
        variable = datasets.env_name(dataset)
        if variable in workload.env:
            yield (
                f"{path}.env.{variable}",
                f"{variable} is set by mlgitops to data[{i}]'s mountPath and cannot be overridden",
            )
        mount = dataset.mount_path.rstrip("/") or "/"
        if _collides(mount):
            yield (
                f"{where}.mountPath",
                f"{dataset.mount_path!r} is where the container's root, the runtime or "
                f"mlgitops mounts ({', '.join(RESERVED_MOUNTS)}): mount the dataset elsewhere, "
                "e.g. /data/<name>",
            )
        else:
            for other, what in taken:
                if _nested(mount, other):
                    yield (
                        f"{where}.mountPath",
                        f"{dataset.mount_path!r} overlaps {what} at {other!r}: mount the "
                        "dataset elsewhere",
                    )
                    break
        taken.append((mount, f"data[{i}]'s mountPath"))


STORE_OF_CLOUD = {"eks": ("s3", "S3"), "gke": ("gs", "Cloud Storage")}


def _dataset_readers(workload: model.Workload, path: str, loaded: Loaded) -> Iterator[Found]:
    """On every cloud cluster that runs the workload, each dataset has a source that
    cloud can mount, and an identity that can read it: the training pods' Pod Identity
    role (EKS) or Google service account (GKE), so `workloadIdentity` on the cluster."""
    for i, dataset in enumerate(workload.data):
        if (dataset.source is None) == (dataset.sources is None):
            continue  # its own problem
        if dataset.sources and not any(dataset.sources.on(c) for c in ("eks", "gke", "local")):
            continue  # its own problem
        field_name = "source" if dataset.source else "sources"
        where = f"{path}.data[{i}].{field_name}"
        for c, cluster in loaded.clusters:
            if isinstance(cluster, model.LocalCluster) or not workload.runs_on(cluster.name):
                continue
            cloud = cluster.cloud
            scheme, store = STORE_OF_CLOUD[cloud]
            source = dataset.source_on(cloud)
            if source is None:
                yield (
                    where,
                    f"dataset {dataset.name!r} has no source on {cloud} (cluster "
                    f"{cluster.name!r} runs the workload): set sources.{cloud} to "
                    f"{scheme}://BUCKET/PREFIX or pvc:CLAIM",
                )
                break
            # the cloud's own entry, where each cloud has one
            here = f"{path}.data[{i}].sources.{cloud}" if dataset.sources else where
            if source.startswith("pvc:"):
                continue
            if not source.startswith(f"{scheme}://"):
                yield (
                    here,
                    f"{source!r} cannot be mounted on {cloud} cluster {cluster.name!r}: its "
                    f"pods read {store} buckets ({scheme}://) or claims (pvc:); give the "
                    "source per cloud with sources",
                )
                break
            if cluster.workload_identity is None:
                yield (
                    here,
                    f"nothing on cluster {cluster.name!r} can read {source!r}: the training "
                    f"pods get its bucket through workloadIdentity, which the cluster does not "
                    f"have (set clusters[{c}].workloadIdentity)",
                )
                break


def _nested(a: str, b: str) -> bool:
    """One folder is the other or inside it."""
    return a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/") or "/" in (a, b)


def _secrets_shared(loaded: Loaded) -> Iterator[Found]:
    """Workloads of one namespace share its Secrets: one name, one source."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for i, workload in loaded.workloads:
        declared = [("secrets", s.name, s.source) for s in workload.secrets]
        declared += [("imagePullSecrets", s.name, s.source) for s in workload.image_pull_secrets]
        for j, (field_name, name, source) in enumerate(declared):
            index = j if field_name == "secrets" else j - len(workload.secrets)
            where = f"workloads[{i}].{field_name}[{index}]"
            key = (workload.namespace, name)
            if key in seen and seen[key][1] != source:
                yield (
                    f"{where}.from",
                    f"secret {name!r} of namespace {workload.namespace!r} is read from "
                    f"{seen[key][1]!r} by {seen[key][0]}: one name, one source",
                )
            seen.setdefault(key, (where, source))


def _secret_stores(workload: model.Workload, path: str, loaded: Loaded) -> Iterator[Found]:
    """Every cloud cluster running a workload with secrets has a store they can be read
    from: Secrets Manager ARNs need the account (EKS), Google secret ids a narrower
    alphabet (GKE), and the External Secrets Operator is installed through Argo CD."""
    declared = [("secrets", i, s.source) for i, s in enumerate(workload.secrets)]
    declared += [
        ("imagePullSecrets", i, s.source) for i, s in enumerate(workload.image_pull_secrets)
    ]
    if not declared:
        return
    for c, cluster in loaded.clusters:
        if isinstance(cluster, model.LocalCluster) or not workload.runs_on(cluster.name):
            continue
        field_name, index, _ = declared[0]
        if loaded.gitops == "flux":
            yield (
                f"{path}.{field_name}[{index}]",
                f"secrets on cluster {cluster.name!r} need the External Secrets Operator, "
                "which mlgitops installs through Argo CD only (its release has no static "
                "manifest): use gitops argocd, or run the workload on local clusters",
            )
            return
        if isinstance(cluster, model.EksCluster) and cluster.account_id is None:
            yield (
                f"{path}.{field_name}[{index}].from",
                f"cluster {cluster.name!r} has no accountId: its secrets' ARNs, which the "
                f"store's IAM role is limited to, need it (set clusters[{c}].accountId)",
            )
        if isinstance(cluster, model.GkeCluster):
            account = secrets.google_account(cluster)
            if len(account) > GCP_ACCOUNT_LIMIT:
                yield (
                    f"clusters[{c}].name",
                    f"the secret stores' Google service account {account!r} is longer than "
                    f"{GCP_ACCOUNT_LIMIT} characters: give the cluster a shorter name",
                )
            for field_name, index, source in declared:
                if not _GCP_SECRET_ID.fullmatch(source):
                    yield (
                        f"{path}.{field_name}[{index}].from",
                        f"{source!r} is not a Google Secret Manager secret id (letters, "
                        f"digits, - and _), which cluster {cluster.name!r} reads it as",
                    )


def _collides(mount_path: str) -> bool:
    clean = mount_path.rstrip("/") or "/"
    return clean in RESERVED_MOUNTS or any(
        clean.startswith(f"{reserved}/") for reserved in RESERVED_MOUNTS if reserved != "/"
    )


def _longest_hostname_suffix(workload: model.Workload) -> str:
    """What each runtime appends to the workload name for its pods' hostnames: an Indexed
    Job `-<index>`, a JobSet `-<replicated job>-<job index>-<index>`, the Kubeflow
    operators `-<replica type>-<index>`, a TrainJob (run as a JobSet) `-node-0-<index>`.

    With parameter servers a TensorFlow run has a chief besides its `workers` (see
    Workload.pod_count); without them a TFJob's Chief is the first of the workers."""
    workers, servers = workload.workers, workload.parameter_servers
    if workload.runtime == "jobset":
        suffixes = [f"-worker-0-{workers - 1}"]
        if servers:
            suffixes += ["-chief-0-0", f"-ps-0-{servers - 1}"]
    elif workload.runtime == "trainjob":
        suffixes = [f"-node-0-{workers - 1}"]
    elif workload.runtime == "pytorchjob":
        suffixes = [
            f"-worker-{max(workers, workload.elastic.max_replicas if workload.elastic else 0) - 1}"
        ]
    elif workload.runtime == "tfjob":
        tfjob_workers = workers if servers else workers - 1
        suffixes = ["-chief-0", f"-worker-{tfjob_workers - 1}" if tfjob_workers else ""]
        suffixes.append(f"-ps-{servers - 1}" if servers else "")
    else:
        suffixes = [f"-{workload.pod_count - 1}"]
    return max(suffixes, key=len)


def _runtime(workload: model.Workload, path: str) -> Iterator[Found]:
    """Settings that only some runtimes can honour."""
    runtime = workload.runtime
    needs = {"pytorchjob": "pytorch", "tfjob": "tensorflow"}.get(runtime)
    if needs and workload.framework != needs:
        yield f"{path}.runtime", f"{runtime} runs framework {needs}, not {workload.framework}"
    if runtime == "trainjob" and workload.parameter_servers:
        yield (
            f"{path}.parameterServers",
            "a trainjob has no parameter servers (its runtime starts numNodes equal nodes)",
        )
    if runtime == "trainjob" and workload.framework != "pytorch" and not workload.training_runtime:
        yield (
            f"{path}.trainingRuntime",
            f"Kubeflow Trainer ships no {workload.framework} runtime: name your "
            "ClusterTrainingRuntime here",
        )
    if workload.training_runtime and workload.checkpoint and runtime == "trainjob":
        yield (
            f"{path}.checkpoint",
            "a trainjob with its own trainingRuntime gets its volumes from that runtime: "
            "mount the checkpoint there, or leave trainingRuntime out",
        )
    if workload.training_runtime and runtime != "trainjob":
        yield f"{path}.trainingRuntime", f"only a trainjob uses a training runtime, not {runtime}"
    if workload.clean_pod_policy and runtime not in model.KUBEFLOW_V1_RUNTIMES:
        yield f"{path}.cleanPodPolicy", "only pytorchjob and tfjob have a clean-pod policy"
    if workload.max_restarts and runtime not in model.RUNTIMES_THAT_RESTART:
        yield (
            f"{path}.maxRestarts",
            f"a {runtime} cannot restart a distributed run: use pytorchjob, tfjob, jobset "
            "or trainjob",
        )
    for key, value in (
        ("maxRestarts", workload.max_restarts),
        ("ttlSecondsAfterFinished", workload.ttl_seconds_after_finished),
    ):
        if value and runtime == "trainjob" and workload.training_runtime:
            yield (
                f"{path}.{key}",
                f"a trainjob's {key} comes from its runtime: set it in "
                f"{workload.training_runtime!r}, or leave trainingRuntime out",
            )
    if workload.fail_on_exit_codes is not None and runtime in model.KUBEFLOW_V1_RUNTIMES:
        yield (
            f"{path}.failOnExitCodes",
            f"a {runtime} cannot choose them: the Training Operator fails the job on any exit "
            "code below 128 and recreates the pod on 128 and above (restartPolicy ExitCode)",
        )
    if runtime == "trainjob" and workload.training_runtime:
        own = [("failOnExitCodes", workload.fail_on_exit_codes is not None)]
        own.append(("priority", bool(workload.priority and not workload.queue)))
        for key, is_set in own:
            if is_set:
                yield (
                    f"{path}.{key}",
                    f"a trainjob's pods come from its runtime: set {key} in "
                    f"{workload.training_runtime!r}, or leave trainingRuntime out",
                )
    elastic = workload.elastic
    if elastic and runtime != "pytorchjob":
        yield f"{path}.elastic", f"elastic training needs runtime pytorchjob, not {runtime}"
    elif elastic and not elastic.min_replicas <= workload.workers <= elastic.max_replicas:
        yield (
            f"{path}.elastic",
            "bounds must satisfy minReplicas <= workers <= maxReplicas "
            f"(got {elastic.min_replicas}, {workload.workers}, {elastic.max_replicas})",
        )


def _duplicates_ports(ports: tuple[int, ...], path: str) -> Iterator[Found]:
    seen: set[int] = set()
    for index, port in enumerate(ports):
        if port in seen:
            yield f"{path}[{index}]", f"port {port} is listed twice"
        seen.add(port)


def _placement(workload: model.Workload, path: str, loaded: Loaded) -> Iterator[Found]:
    """The clusters a workload names exist, and those it runs on can give it GPUs."""
    names = [c.name for _, c in loaded.clusters]
    for i, name in enumerate(workload.clusters):
        if name not in names:
            guess = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"did you mean '{guess[0]}'?" if guess else f"clusters: {', '.join(names)}"
            yield f"{path}.clusters[{i}]", f"no cluster named {name!r} ({hint})"
    local = workload.overrides.local
    if local and local.resources.gpu:
        yield (
            f"{path}.overrides.local.resources.gpu",
            "local clusters have no GPUs: leave gpu out (local runs on CPU)",
        )
    if workload.dispatch is not None:
        yield from _dispatch_placement(workload, path, loaded)
        return
    for _, cluster in loaded.clusters:
        if _malformed_node_types(cluster):
            continue  # the node type's own problem says it; its capacity is unknown
        wants_gpu = workload.runs_on(cluster.name) and workload.resources_on(cluster.cloud).gpu
        if wants_gpu and not _has_gpu_nodes(cluster):
            yield (
                f"{path}.resources.gpu",
                f"needs GPUs, but cluster {cluster.name!r} has no GPU "
                f"{'node group' if cluster.cloud == 'eks' else 'node pool'} "
                "(set the workload's clusters, or give the cluster GPU nodes)",
            )
        elif workload.runs_on(cluster.name):
            yield from _pod_fits(workload, path, cluster)
        if workload.runs_on(cluster.name):
            yield from _shared_storage(workload, path, cluster)


def _dispatch_placement(workload: model.Workload, path: str, loaded: Loaded) -> Iterator[Found]:
    """A dispatched run goes to a worker whose Kueue admits it: it must fit some worker,
    not every one (one that cannot take it never admits it, and the run goes elsewhere).
    Its pods fit a worker when they would on a fixed cluster; a shared checkpoint needs
    what it needs on each worker, since the claim is synced to all of them."""
    assert workload.dispatch is not None
    workers = [
        c
        for _, c in loaded.clusters
        if c.name in workload.dispatch.clusters and not isinstance(c, model.LocalCluster)
    ]
    for cluster in workers:
        yield from _shared_storage(workload, path, cluster)
    reasons: list[str] = []
    for cluster in workers:
        if _malformed_node_types(cluster):
            return  # the node type's own problem says it; its capacity is unknown
        if workload.resources.gpu and not _has_gpu_nodes(cluster):
            reasons.append(f"{cluster.name!r} has no GPU nodes")
            continue
        problems = [message for _, message in _pod_fits(workload, path, cluster)]
        problems += _run_fits_quota(workload, cluster)
        if not problems:
            return  # this worker can admit it
        reasons.append(f"{cluster.name!r}: {problems[0]}")
    if workers and len(reasons) == len(workers):
        yield (
            f"{path}.dispatch.clusters",
            "no worker could ever admit the run, so it would wait forever: " + "; ".join(reasons),
        )


def _run_fits_quota(workload: model.Workload, cluster: model.Cluster) -> list[str]:
    """Kueue admits a run only whole: all its pods within the quota of the flavors they
    may use (render/queues.py: what those nodes offer together)."""
    wanted = nodes.pod_amounts(workload.resources).times(workload.pod_count)
    usable = [
        g
        for g in nodes.node_groups(cluster)
        if (g.gpu_type is not None if workload.resources.gpu else not g.tainted)
        and g.allocatable is not None
    ]
    if not usable:
        return []
    offered = nodes.Amounts(0, 0, 0)
    for group in usable:
        assert group.allocatable is not None
        room = group.allocatable.times(group.nodes)
        offered = nodes.Amounts(
            offered.millicores + room.millicores,
            offered.memory + room.memory,
            offered.gpus + room.gpus,
        )
    if offered.holds(nodes.Amounts(wanted.millicores, wanted.memory, wanted.gpus)):
        return []
    return [
        f"its {workload.pod_count} pods ask for {_amounts(wanted)} together, more than "
        f"the cluster's queue offers them ({_amounts(offered)})"
    ]


def _malformed_node_types(cluster: model.Cluster) -> bool:
    if isinstance(cluster, model.EksCluster):
        types = [t for g in cluster.node_groups for t in g.instance_types]
        return not all(cloud_facts.EC2_INSTANCE_TYPE.fullmatch(t) for t in types)
    if isinstance(cluster, model.GkeCluster):
        types = [p.machine_type for p in cluster.node_pools]
        return not all(cloud_facts.GCE_MACHINE_TYPE.fullmatch(t) for t in types)
    return False


def _pod_fits(workload: model.Workload, path: str, cluster: model.Cluster) -> Iterator[Found]:
    """A pod larger than what every node it may go to can give pods never schedules.
    GPU pods go to GPU nodes (the overlays' affinity); other pods to untainted nodes.
    Nodes whose size is unknown (kind, types without figures) are given the benefit of
    the doubt."""
    resources = workload.resources_on(cluster.cloud)
    wanted = nodes.pod_amounts(resources)
    sidecar = datasets.sidecar_amounts(workload, cluster.cloud)
    if sidecar:
        # GKE's webhook adds the gcsfuse sidecar, with its own requests, to the pod
        wanted = nodes.Amounts(
            wanted.millicores + sidecar[0], wanted.memory + sidecar[1], wanted.gpus
        )
    candidates = [
        group
        for group in nodes.node_groups(cluster)
        if (group.gpu_type is not None if resources.gpu else not group.tainted)
    ]
    fitting = [g for g in candidates if g.allocatable is None or g.allocatable.holds(wanted)]
    if fitting and not any(g.nodes for g in fitting):
        where = "node group" if cluster.cloud == "eks" else "node pool"
        size = "desiredSize" if cluster.cloud == "eks" else "nodeCount"
        names = ", ".join(repr(g.name) for g in fitting)
        yield (
            f"{path}.clusters" if workload.clusters else f"{path}.name",
            f"its pods fit only the {where} {names} of cluster {cluster.name!r}, which has no "
            f"nodes: raise its {size}, or run the workload elsewhere (clusters:)",
        )
        return
    sized = [g for g in candidates if g.allocatable is not None]
    if not sized or len(sized) < len(candidates) or fitting:
        return
    best = max(
        sized,
        key=lambda g: (
            (g.allocatable.gpus, g.allocatable.millicores, g.allocatable.memory)
            if g.allocatable
            else (0, 0, 0)
        ),
    )
    room = best.allocatable
    assert room is not None
    where, machine = (
        ("node group", "instance") if cluster.cloud == "eks" else ("node pool", "machine")
    )
    override = workload.overrides.for_cloud(cluster.cloud)
    field = f"overrides.{cluster.cloud}.resources" if override else "resources"
    yield (
        f"{path}.{field}",
        f"a pod asks for {_amounts(wanted)}"
        + (
            f" (with the Cloud Storage FUSE sidecar's {datasets.GCSFUSE_SIDECAR_CPU} CPU and "
            f"{datasets.GCSFUSE_SIDECAR_MEMORY})"
            if sidecar
            else ""
        )
        + f", more than any node of cluster "
        f"{cluster.name!r} can give one: {best.machine} nodes ({where} {best.name!r}) have "
        f"{_amounts(room)} left for pods after what the kubelet and system pods reserve; "
        f"ask for at most that, or use a larger {machine} type",
    )


def _shared_storage(workload: model.Workload, path: str, cluster: model.Cluster) -> Iterator[Found]:
    """Several pods writing one checkpoint need ReadWriteMany: on EKS that is the efs-sc
    class, which exists only where the cluster names its EFS file system."""
    shared = workload.checkpoint and workload.pod_count > 1
    if shared and isinstance(cluster, model.EksCluster) and not cluster.efs_file_system_id:
        yield (
            f"{path}.checkpoint",
            f"is shared by {workload.pod_count} pods, which on EKS needs the efs-sc class "
            f"(ReadWriteMany): set efsFileSystemId on cluster {cluster.name!r}, or the claim "
            "stays Pending",
        )


def _system_nodes(cluster: model.Cluster, path: str) -> Iterator[Found]:
    """CoreDNS, the CSI controllers and the operators tolerate no GPU taint: a cluster
    needs untainted nodes that exist, or nothing works on it (cluster/facts.py)."""
    if isinstance(cluster, model.LocalCluster):
        return
    if any(g.nodes and not g.tainted for g in nodes.node_groups(cluster)):
        return
    field, size = (
        ("nodeGroups", "desiredSize") if cluster.cloud == "eks" else ("nodePools", "nodeCount")
    )
    yield (
        f"{path}.{field}",
        f"no node of cluster {cluster.name!r} can run CoreDNS and the other system pods: its "
        f"untainted (CPU) {'node groups' if cluster.cloud == 'eks' else 'node pools'} have no "
        f"nodes; give one a {size} of at least 1",
    )


def _amounts(amounts: nodes.Amounts) -> str:
    parts = [f"{cpu_quantity(amounts.millicores)} CPU", f"{readable_memory(amounts.memory)} memory"]
    if amounts.gpus:
        parts.append(f"{amounts.gpus} GPU{'s' if amounts.gpus > 1 else ''}")
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _queue_capacity(cluster: model.Cluster, path: str, loaded: Loaded) -> Iterator[Found]:
    """Kueue quotas come from node capacity: a cluster that runs queued workloads needs
    it for every node group, from the tables or the config."""
    queued = {w.namespace for _, w in loaded.workloads if w.queue}
    if not any(w.namespace in queued and w.runs_on(cluster.name) for _, w in loaded.workloads):
        return
    if isinstance(cluster, model.EksCluster):
        for i, group in enumerate(cluster.node_groups):
            known = cloud_facts.ec2_capacity(group.instance_types[0])
            if group.capacity is None and known is None:
                yield (
                    f"{path}.nodeGroups[{i}].instanceTypes[0]",
                    f"no capacity figures for {group.instance_types[0]!r}, which Kueue "
                    "quotas need: give the node group a capacity: {cpu, memory, gpus}",
                )
    elif isinstance(cluster, model.GkeCluster):
        for i, pool in enumerate(cluster.node_pools):
            known = cloud_facts.gce_capacity(pool.machine_type, 0)
            if pool.capacity is None and known is None:
                yield (
                    f"{path}.nodePools[{i}].machineType",
                    f"no capacity figures for {pool.machine_type!r}, which Kueue quotas "
                    "need: give the node pool a capacity: {cpu, memory, gpus}",
                )


def _has_gpu_nodes(cluster: model.Cluster) -> bool:
    if isinstance(cluster, model.EksCluster):
        return any(cloud_facts.ec2_gpu(g.instance_types[0]) for g in cluster.node_groups)
    if isinstance(cluster, model.GkeCluster):
        return any(pool.accelerator for pool in cluster.node_pools)
    return True  # local drops GPU requests


def _cluster(cluster: model.Cluster, path: str, loaded: Loaded) -> Iterator[Found]:
    version = cluster.version or loaded.kubernetes_version
    version_path = f"{path}.version" if cluster.version else "kubernetesVersion"
    if isinstance(cluster, model.EksCluster):
        problem = cloud_facts.eks_version_problem(version) if version else None
        if problem:
            default_note = "" if cluster.version else f" (cluster {cluster.name!r} uses it)"
            listing = f"supported: {cloud_facts.eks_supported_versions()}"
            yield version_path, f"{problem}{default_note}; {listing}"
        longest_role = f"{loaded.name}-{cluster.name}-{cloud_facts.EKS_LONGEST_ROLE_SUFFIX}"
        if loaded.name and len(longest_role) > cloud_facts.IAM_ROLE_NAME_LIMIT:
            yield (
                f"{path}.name",
                f"{cluster.name!r} is too long: IAM role names such as {longest_role!r} must "
                f"fit in {cloud_facts.IAM_ROLE_NAME_LIMIT} characters (shorten it or name)",
            )
        if loaded.gitops == "flux" and not cluster.account_id:
            yield (
                f"{path}.accountId",
                "Flux reaches an EKS cluster by its ARN, which needs the AWS account: "
                'set accountId (e.g. accountId: "123456789012")',
            )
        if cluster.region not in cloud_facts.AWS_REGIONS and not cluster.allow_unlisted_region:
            yield (
                f"{path}.region",
                f"{cluster.region!r} is not an AWS region mlgitops knows (e.g. us-west-2); "
                "if it is new, say `allowUnlistedRegion: true` on the cluster",
            )
        for i, group in enumerate(cluster.node_groups):
            yield from _node_group(group, f"{path}.nodeGroups[{i}]")
            yield from _efa(group, f"{path}.nodeGroups[{i}]")
        yield from _eks_network(cluster, path)
        yield from _duplicates(
            enumerate(g.name for g in cluster.node_groups), f"{path}.nodeGroups", "node group"
        )
    if isinstance(cluster, model.EksCluster):
        for i, group in enumerate(cluster.node_groups):
            if not group.min_size <= group.desired_size <= group.max_size:
                yield (
                    f"{path}.nodeGroups[{i}].desiredSize",
                    f"sizes must satisfy minSize <= desiredSize <= maxSize "
                    f"(got {group.min_size}, {group.desired_size}, {group.max_size})",
                )
        if len(cluster.subnets) == 1:
            yield f"{path}.subnets", "EKS needs subnets in at least two availability zones"
        yield from _duplicates(enumerate(cluster.subnets), f"{path}.subnets", "subnet", suffix="")
    elif isinstance(cluster, model.LocalCluster):
        if version and version not in cloud_facts.KIND_NODE_IMAGES:
            known = ", ".join(cloud_facts.KIND_NODE_IMAGES)
            yield (
                version_path,
                f"no pinned kind node image for Kubernetes {version}"
                + ("" if cluster.version else f" (cluster {cluster.name!r} uses it)")
                + f"; local clusters run {known}",
            )
    elif isinstance(cluster, model.GkeCluster):
        yield from _gke_names(cluster, path, loaded)
        yield from _duplicates(
            enumerate(p.name for p in cluster.node_pools), f"{path}.nodePools", "node pool"
        )
        for i, pool in enumerate(cluster.node_pools):
            if pool.gpu_direct:
                yield f"{path}.nodePools[{i}].gpuDirect", _gpu_direct_refusal(pool.gpu_direct)
            scaling = pool.autoscaling
            if scaling and not scaling.min_nodes <= pool.node_count <= scaling.max_nodes:
                yield (
                    f"{path}.nodePools[{i}].autoscaling",
                    f"bounds must satisfy minNodes <= nodeCount <= maxNodes "
                    f"(got {scaling.min_nodes}, {pool.node_count}, {scaling.max_nodes})",
                )
        identity = cluster.workload_identity
        account = cluster.training_service_account()
        if identity and not identity.service_account and len(account) > 30:
            yield (
                f"{path}.workloadIdentity",
                f"the default service account name {account!r} is longer than 30 characters: "
                "set workloadIdentity.serviceAccount",
            )


def _gke_names(cluster: model.GkeCluster, path: str, loaded: Loaded) -> Iterator[Found]:
    """GKE's own limits: cluster and node pool names of at most 40 characters starting
    with a letter, machine types by their grammar, regions it has, versions it offers."""
    limit = cloud_facts.GKE_NAME_LIMIT
    if len(cluster.name) > limit or not "a" <= cluster.name[:1] <= "z":
        yield (
            f"{path}.name",
            f"{cluster.name!r}: a GKE cluster name starts with a letter and has at most "
            f"{limit} characters",
        )
    for i, pool in enumerate(cluster.node_pools):
        if len(pool.name) > limit or not "a" <= pool.name[:1] <= "z":
            yield (
                f"{path}.nodePools[{i}].name",
                f"{pool.name!r}: a GKE node pool name starts with a letter and has at most "
                f"{limit} characters",
            )
        if not cloud_facts.GCE_MACHINE_TYPE.fullmatch(pool.machine_type):
            yield (
                f"{path}.nodePools[{i}].machineType",
                f"{pool.machine_type!r} is not a Compute Engine machine type "
                "(e.g. n2-standard-8, a2-highgpu-1g)",
            )
    region = cloud_facts.gcp_region(cluster.location)
    if region not in cloud_facts.GCP_REGIONS and not cluster.allow_unlisted_region:
        yield (
            f"{path}.location",
            f"{cluster.location!r} is not in a Google Cloud region mlgitops knows (e.g. "
            "us-central1); if it is new, say `allowUnlistedRegion: true` on the cluster",
        )
    version = cluster.version or loaded.kubernetes_version
    if version and version not in cloud_facts.GKE_OFFERED:
        where = f"{path}.version" if cluster.version else "kubernetesVersion"
        yield (
            where,
            f"GKE does not offer Kubernetes {version}"
            + ("" if cluster.version else f" (cluster {cluster.name!r} uses it)")
            + f"; offered: {', '.join(cloud_facts.GKE_OFFERED)}",
        )


def _eks_network(cluster: model.EksCluster, path: str) -> Iterator[Found]:
    """The VPC created when no subnets are given: four subnets in two zones of the region."""
    if cluster.subnets and cluster.availability_zones:
        yield (
            f"{path}.availabilityZones",
            "availabilityZones apply only to the VPC created when no subnets are given",
        )
    zones = cluster.availability_zones
    for i, zone in enumerate(zones):
        if not (zone.startswith(cluster.region) and len(zone) == len(cluster.region) + 1):
            yield (
                f"{path}.availabilityZones[{i}]",
                f"{zone!r} is not a zone of {cluster.region} (e.g. {cluster.region}a)",
            )
    if zones and len(set(zones)) < 2:
        yield f"{path}.availabilityZones", "EKS needs two different availability zones"
    network = ipaddress.ip_network(cluster.vpc_cidr)
    if network.version != 4 or not 16 <= network.prefixlen <= 24:
        yield (
            f"{path}.vpcCidr",
            f"{cluster.vpc_cidr!r}: the VPC needs an IPv4 range from /16 to /24 (e.g. 10.0.0.0/16)",
        )


def _node_group(group: model.EksNodeGroup, path: str) -> Iterator[Found]:
    """One AMI serves a node group, so its instance types share GPU and architecture."""
    for i, instance in enumerate(group.instance_types):
        if not cloud_facts.EC2_INSTANCE_TYPE.fullmatch(instance):
            yield (
                f"{path}.instanceTypes[{i}]",
                f"{instance!r} is not an EC2 instance type (<family>.<size>, e.g. g5.xlarge)",
            )
            return
    first = group.instance_types[0]
    for i, other in enumerate(group.instance_types[1:], start=1):
        if cloud_facts.ec2_gpu(other) != cloud_facts.ec2_gpu(first):
            yield (
                f"{path}.instanceTypes[{i}]",
                f"{other!r} does not carry the same GPU as {first!r}: "
                "put GPU and CPU instances in separate node groups",
            )
        elif cloud_facts.ec2_is_arm(other) != cloud_facts.ec2_is_arm(first):
            yield (
                f"{path}.instanceTypes[{i}]",
                f"{other!r} and {first!r} differ in architecture (Arm and x86): "
                "use separate node groups",
            )


def _efa(group: model.EksNodeGroup, path: str) -> Iterator[Found]:
    """`efa: true` needs every instance type of the group to have EFA (one launch
    template serves them all); a placement group is for EFA nodes."""
    if group.efa:
        for i, instance in enumerate(group.instance_types):
            if not cloud_facts.ec2_efa_interfaces(instance):
                yield (
                    f"{path}.instanceTypes[{i}]",
                    f"{instance!r} has no EFA interfaces mlgitops knows of (EFA GPU types: "
                    "p4d.24xlarge, p5.48xlarge, g5.48xlarge, ...): "
                    "use such a type or remove `efa: true`",
                )
                return
    if group.placement_group and not fabric_efa_interfaces(group):
        yield (
            f"{path}.placementGroup",
            "a placement group is for a node group with EFA, and this one has none "
            "(its instance types have no EFA, or `efa: false`)",
        )


def fabric_efa_interfaces(group: model.EksNodeGroup) -> int:
    from generator.render.fabric import group_efa_interfaces

    return group_efa_interfaces(group)


def _gpu_direct_refusal(variant: str) -> str:
    machines, needs = cloud_facts.GKE_GPU_DIRECT[variant]
    return (
        f"GPUDirect-{variant.upper()} (GKE, {machines}) needs {needs} in every training pod, "
        'which Pod Security "restricted" forbids, and every training namespace here is '
        "restricted: remove gpuDirect (NCCL then uses TCP sockets, over gVNIC on GPU pools of "
        "the series that have it)"
    )


def _topology(workload: model.Workload, path: str, loaded: Loaded) -> Iterator[Found]:
    """A topology request the clusters can honour (render/topology.py): one mode; Kueue's
    modes need a queue (its Topology-Aware Scheduling places only what it admits),
    exclusive placement needs a jobset (JobSet's annotation); the level is one of every
    cloud the workload runs on, and the nodes of some group of each such cluster carry
    its label (a Topology level its nodes lack leaves them out of Kueue's view, and
    JobSet's pod affinity on a missing label matches no node)."""
    request = workload.topology
    if request is None:
        return
    modes = [
        (key, level)
        for key, level in (
            ("required", request.required),
            ("preferred", request.preferred),
            ("exclusive", request.exclusive),
        )
        if level is not None
    ]
    if len(modes) != 1:
        yield (
            f"{path}.topology",
            "give exactly one of required, preferred or exclusive"
            + (f" (got {', '.join(k for k, _ in modes)})" if modes else ""),
        )
        return
    mode, level = modes[0]
    where = f"{path}.topology.{mode}"
    if mode != "exclusive" and not workload.queue:
        yield (
            where,
            f"{mode} topology is Kueue's Topology-Aware Scheduling, which places only what "
            "it admits: give the workload a queue (or use exclusive with runtime jobset)",
        )
        return
    if mode != "exclusive" and workload.training_runtime and workload.runtime == "trainjob":
        yield (
            where,
            f"a trainjob's pod templates are its runtime's: annotate them in "
            f"{workload.training_runtime!r} ({'kueue.x-k8s.io/podset-' + mode + '-topology'}), "
            "or leave trainingRuntime out",
        )
        return
    if mode == "exclusive" and workload.runtime not in ("jobset", "trainjob"):
        yield (
            where,
            f"exclusive placement is JobSet's (alpha.jobset.sigs.k8s.io/exclusive-topology): "
            f"use runtime jobset or trainjob, not {workload.runtime}, or required/preferred "
            "with a queue",
        )
        return
    if mode == "exclusive" and workload.training_runtime:
        yield (
            where,
            f"a trainjob's JobSet is its runtime's: annotate {workload.training_runtime!r} "
            "(spec.template.metadata.annotations), or leave trainingRuntime out",
        )
        return
    for _, cluster in loaded.clusters:
        if not workload.runs_on(cluster.name):
            continue
        levels = cloud_facts.TOPOLOGY_LEVELS[cluster.cloud]
        if level not in levels:
            yield (
                where,
                f"{level!r} is not a topology level of {cluster.cloud} (cluster "
                f"{cluster.name!r} runs the workload): {cluster.cloud} has "
                f"{', '.join(levels)}",
            )
            return
        label = levels[level]
        if mode == "exclusive" and label == cloud_facts.HOSTNAME_LABEL:
            yield from _exclusive_nodes(workload, where, cluster)
        if mode == "required" and label == cloud_facts.HOSTNAME_LABEL:
            yield from _one_node(workload, where, cluster)
        if label == cloud_facts.HOSTNAME_LABEL or _malformed_node_types(cluster):
            continue
        groups = nodes.node_groups(cluster)
        if not any(label in g.topology_labels for g in groups):
            kind = "node group" if cluster.cloud == "eks" else "node pool"
            yield (
                where,
                f"no {kind} of cluster {cluster.name!r} has nodes labelled {label} "
                f"({', '.join(f'{g.name}: {g.machine}' for g in groups)}); the instance "
                f"types that have it: {_types_with(cluster.cloud, label)}",
            )
    if mode == "exclusive" and workload.queue:
        for _, cluster in loaded.clusters:
            if not workload.runs_on(cluster.name):
                continue
            others = [
                w.name
                for _, w in loaded.workloads
                if w.queue and w.runs_on(cluster.name) and _asks_kueue(w)
            ]
            if others:
                yield (
                    where,
                    f"cluster {cluster.name!r} queues with Topology-Aware Scheduling "
                    f"({', '.join(others)} asks for a topology), where Kueue picks every "
                    "queued pod's node, which JobSet's exclusive affinity can contradict: "
                    "use required or preferred, or leave the queue out",
                )


def _asks_kueue(workload: model.Workload) -> bool:
    request = workload.topology
    return request is not None and bool(request.required or request.preferred)


def _types_with(cloud: str, label: str) -> str:
    if cloud == "eks":
        families = set(cloud_facts.EKS_FOUR_LAYER_FAMILIES)
        if label != cloud_facts.EKS_NETWORK_LAYERS[3]:
            families |= cloud_facts.EKS_THREE_LAYER_FAMILIES
        return ", ".join(f"{f}.*" for f in sorted(families))
    return ", ".join(f"{s}-{k}-*" for s, k in sorted(cloud_facts.GKE_TOPOLOGY_KINDS.items()))


def _exclusive_nodes(
    workload: model.Workload, where: str, cluster: model.Cluster
) -> Iterator[Found]:
    """Exclusive per node: each Job of the set (one per role, frameworks.pod_roles) needs
    a node no other Job of its priority uses, so the cluster needs that many nodes."""
    jobs = 3 if workload.parameter_servers else 1
    wants_gpu = workload.resources_on(cluster.cloud).gpu > 0
    eligible = [
        g for g in nodes.node_groups(cluster) if (g.gpu_type if wants_gpu else not g.taints)
    ]
    have = sum(g.nodes for g in eligible)
    if isinstance(cluster, model.LocalCluster):
        have = max(cluster.workers, 1)
    if have < jobs:
        yield (
            where,
            f"exclusive per node gives each of the {jobs} Jobs of the set (chief, worker, "
            f"ps) a node of its own, and cluster {cluster.name!r} has {have} node(s) for "
            "them: the others never start",
        )


def _one_node(workload: model.Workload, where: str, cluster: model.Cluster) -> Iterator[Found]:
    """Required `node`: Kueue admits each role's pods only onto one node with room for
    them all (its Topology-Aware Scheduling), so the largest role must fit one node of a
    group its pods may go to. Nodes of unknown size get the benefit of the doubt."""
    resources = workload.resources_on(cluster.cloud)
    largest = max(
        workload.workers, workload.parameter_servers
    )  # roles: frameworks.pod_roles (the chief is one pod)
    wanted = nodes.pod_amounts(resources).times(largest)
    candidates = [
        g
        for g in nodes.node_groups(cluster)
        if (g.gpu_type is not None if resources.gpu else not g.tainted)
    ]
    if not candidates or any(
        g.allocatable is None or g.allocatable.holds(wanted) for g in candidates
    ):
        return
    yield (
        where,
        f"Kueue admits the {largest} pods of a role only onto one node, and no node of "
        f"cluster {cluster.name!r} can give them {_amounts(wanted)} (its nodes: "
        + ", ".join(
            f"{g.machine} with {_amounts(g.allocatable)}" for g in candidates if g.allocatable
        )
        + "): ask for a wider level, or preferred",
    )


def _topology_types(cluster: model.Cluster, path: str, loaded: Loaded) -> Iterator[Found]:
    """Where Kueue places by topology, each node group's flavor has the Topology of its
    first instance type's labels (render/topology.py): nodes of another type in the
    group without them would be invisible to Kueue, so a group's types must agree."""
    if not isinstance(cluster, model.EksCluster):
        return
    if not any(w.runs_on(cluster.name) and w.queue and _asks_kueue(w) for _, w in loaded.workloads):
        return
    for j, group in enumerate(cluster.node_groups):
        first = cloud_facts.ec2_topology_labels(group.instance_types[0])
        for k, other in enumerate(group.instance_types[1:], start=1):
            theirs = cloud_facts.ec2_topology_labels(other)
            if theirs != first:
                yield (
                    f"{path}.nodeGroups[{j}].instanceTypes[{k}]",
                    f"{other} nodes carry other network-layer labels than "
                    f"{group.instance_types[0]} nodes ({len(theirs)} "
                    f"layers, not {len(first)}), and Kueue's Topology-Aware Scheduling on this "
                    "cluster sees only nodes with all of their flavor's: keep one kind per group",
                )
