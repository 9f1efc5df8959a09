"""Policy checks with stable rule IDs. A rule can be waived for one object with the
annotation `mlgitops.io/waive-<RULE>: <reason>`; a waiver without a reason is itself a
problem, and every waiver is reported."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from generator.cluster.disruption import disruption_findings

WAIVER_PREFIX = "mlgitops.io/waive-"
REQUIRE_DIGEST_ANNOTATION = "mlgitops.io/require-digest"
# On a Namespace: the Secrets someone creates by hand there (a local cluster's, made with
# the `kubectl create secret` lines its kustomization lists), comma-separated.
HAND_MADE_SECRETS_ANNOTATION = "mlgitops.io/secrets-made-by-hand"
SECRET_REFERENCES = "MLG030"
# MultiKueue (render/dispatch.py): a MultiKueueCluster reads its worker's kubeconfig from a
# Secret of Kueue's namespace (kueue v0.17.6 apis/kueue/v1beta2/multikueue_types.go:
# `location` names a Secret "inside the namespace in which the kueue controller manager
# is running", key `kubeconfig`; locationType defaults to Secret); mlgitops' Kueue runs in
# kueue-system. The annotation names the Secret made once by hand.
KUBECONFIG_SECRETS = "MLG031"
HAND_MADE_KUBECONFIG_ANNOTATION = "mlgitops.io/kubeconfig-made-by-hand"
KUEUE_NAMESPACE = "kueue-system"
HIGH_ID = 10000

Finding = tuple[str, str]  # (field path, message)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    explanation: str


RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "MLG001",
            "pod-security-restricted",
            "pods must meet Pod Security 'restricted': non-root, no privilege escalation, "
            "capabilities dropped, RuntimeDefault seccomp, no hostPath",
        ),
        Rule(
            "MLG002",
            "default-deny",
            "every namespace that runs pods has a default-deny "
            "NetworkPolicy for ingress and egress",
        ),
        Rule("MLG003", "image-pinned", "images are pinned by tag or digest, never :latest"),
        Rule("MLG004", "resources", "every container requests and limits cpu and memory"),
        Rule("MLG005", "no-secret-data", "no Secret with data is committed to git"),
        Rule(
            "MLG006",
            "appproject-no-wildcards",
            "an AppProject allows no '*' source repo, destination or kind",
        ),
        Rule("MLG007", "valid-cidr", "every NetworkPolicy ipBlock is a valid CIDR"),
        Rule(
            "MLG008",
            "sync-path",
            "every path an Application or Flux Kustomization syncs exists and builds",
        ),
        Rule("MLG009", "waiver-reason", "a waiver annotation must say why"),
        # The cluster model (generator/cluster): what each cluster would do with the tree.
        Rule(
            "MLG010",
            "pods-fit-a-node",
            "every pod fits a node of its cluster it may go to: resources within what a node "
            "gives pods, nodeSelector and required node affinity, taints tolerated",
        ),
        Rule(
            "MLG011", "flavor-selects-nodes", "every Kueue ResourceFlavor selects nodes that exist"
        ),
        Rule(
            "MLG012",
            "flavor-declares-taints",
            "a ResourceFlavor declares the taints of the nodes it selects, so Kueue admits "
            "only pods that tolerate them",
        ),
        Rule(
            "MLG013",
            "system-pods",
            "CoreDNS, the CSI controllers and the installed operators have a node to run on",
        ),
        Rule(
            "MLG014",
            "storage",
            "every claim's StorageClass exists on its cluster and gives its access mode and "
            "size; a ReadWriteOnce claim is mounted from one node",
        ),
        Rule(
            "MLG015",
            "references",
            "every ServiceAccount, claim, LocalQueue, ClusterQueue, training runtime and "
            "PriorityClass a workload refers to exists on its cluster",
        ),
        Rule("MLG016", "admission", "Kueue can admit every queued workload (quota, flavors)"),
        Rule(
            "MLG024",
            "topology",
            "a topology request Kueue can honour: the flavor has a Topology with the level, "
            "its nodes carry every level's label, and a pod set that requires one node fits one",
        ),
        Rule(
            "MLG032",
            "dispatch-admissible",
            "some worker a dispatched run may go to (its queue's MultiKueueConfig) could "
            "admit and place it, its queue reaches a worker at all",
        ),
        # What the common scanners (Checkov, kube-score, kubesec) ask of every container.
        Rule(
            "MLG017",
            "read-only-root",
            "every container's root filesystem is read-only (readOnlyRootFilesystem: true); "
            "programs write to their volumes",
        ),
        Rule(
            "MLG018",
            "high-ids",
            f"containers run as a user and group id of {HIGH_ID} or more, which no user of "
            "the node has",
        ),
        Rule(
            "MLG019",
            "pull-policy",
            "every container says its imagePullPolicy: Always for an image pinned by tag "
            "(a tag can move), Always or IfNotPresent for one pinned by digest",
        ),
        Rule(
            "MLG020",
            "image-digest",
            f"an object annotated {REQUIRE_DIGEST_ANNOTATION}: 'true' (images.requireDigest) "
            "pins every image by digest",
        ),
        Rule(
            "MLG021",
            "survives-disruption",
            "a disrupted pod (DisruptionTarget) neither fails a Job, JobSet or training "
            "runtime nor uses up its restarts",
        ),
        Rule(
            SECRET_REFERENCES,
            "secret-references",
            "every Secret a pod names (env, envFrom, volume, imagePullSecrets) is created "
            "where it runs: by an ExternalSecret, or by hand as its Namespace's "
            f"{HAND_MADE_SECRETS_ANNOTATION} annotation says",
        ),
        Rule(
            KUBECONFIG_SECRETS,
            "multikueue-kubeconfig",
            "every MultiKueueCluster's kubeconfig Secret is created in kueue-system: by an "
            f"ExternalSecret, a Secret, or by hand as its {HAND_MADE_KUBECONFIG_ANNOTATION} "
            "annotation says",
        ),
    )
}


def secret_references(obj: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(field, namespace, Secret) for each Secret a pod of this object needs to start: the
    kubelet refuses to start a container whose env, envFrom or secret volume names a
    missing Secret unless it is `optional`, and cannot pull with a missing pull secret's
    credentials. Training runtimes' templates are left out (their pods' namespace is
    the TrainJob's)."""
    namespace = (obj.get("metadata") or {}).get("namespace") or "default"
    kubeconfig = _multikueue_kubeconfig(obj)
    if kubeconfig:
        yield "spec.clusterSource.kubeConfig.location", KUEUE_NAMESPACE, kubeconfig
    for at, spec in pod_specs(obj):
        for i, pull in enumerate(spec.get("imagePullSecrets") or []):
            if isinstance(pull, dict) and pull.get("name"):
                yield f"{at}.imagePullSecrets[{i}]", namespace, str(pull["name"])
        for i, volume in enumerate(spec.get("volumes") or []):
            secret = volume.get("secret") if isinstance(volume, dict) else None
            if isinstance(secret, dict) and secret.get("secretName") and not secret.get("optional"):
                yield f"{at}.volumes[{i}].secret", namespace, str(secret["secretName"])
        for group in ("initContainers", "containers"):
            for j, container in enumerate(spec.get(group) or []):
                where = f"{at}.{group}[{j}]"
                for k, env in enumerate(container.get("env") or []):
                    ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                    if isinstance(ref, dict) and ref.get("name") and not ref.get("optional"):
                        yield f"{where}.env[{k}]", namespace, str(ref["name"])
                for k, source in enumerate(container.get("envFrom") or []):
                    ref = source.get("secretRef")
                    if isinstance(ref, dict) and ref.get("name") and not ref.get("optional"):
                        yield f"{where}.envFrom[{k}]", namespace, str(ref["name"])


def _multikueue_kubeconfig(obj: dict[str, Any]) -> str | None:
    """The Secret a MultiKueueCluster reads its kubeconfig from, if it names one."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    if obj.get("kind") != "MultiKueueCluster" or group != "kueue.x-k8s.io":
        return None
    source = ((obj.get("spec") or {}).get("clusterSource") or {}).get("kubeConfig") or {}
    if not isinstance(source, dict) or source.get("locationType", "Secret") != "Secret":
        return None
    location = source.get("location")
    return str(location) if location else None


def secrets_created(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(namespace, Secret) for each Secret this object makes exist: a Secret, an
    ExternalSecret's target (its `target.name`, else its own name: ESO v2.6.0
    pkg/controllers/externalsecret/externalsecret_controller.go, Reconcile), or a
    Namespace's list of Secrets made by hand."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    kind, group = obj.get("kind"), str(obj.get("apiVersion", "")).rpartition("/")[0]
    if kind == "Secret" and group == "":
        yield namespace, str(meta.get("name"))
    elif kind == "ExternalSecret" and group == "external-secrets.io":
        target = ((obj.get("spec") or {}).get("target") or {}).get("name")
        yield namespace, str(target or meta.get("name"))
    elif kind == "MultiKueueCluster" and group == "kueue.x-k8s.io":
        made = (meta.get("annotations") or {}).get(HAND_MADE_KUBECONFIG_ANNOTATION, "")
        if str(made).strip():
            yield KUEUE_NAMESPACE, str(made).strip()
    elif kind == "Namespace" and group == "":
        listed = (meta.get("annotations") or {}).get(HAND_MADE_SECRETS_ANNOTATION, "")
        for name in str(listed).split(","):
            if name.strip():
                yield str(meta.get("name")), name.strip()


POD_SPEC_PATHS: dict[str, list[list[str]]] = {
    "Pod": [["spec"]],
    "Job": [["spec", "template", "spec"]],
    "CronJob": [["spec", "jobTemplate", "spec", "template", "spec"]],
    "Deployment": [["spec", "template", "spec"]],
    "StatefulSet": [["spec", "template", "spec"]],
    "DaemonSet": [["spec", "template", "spec"]],
    "ReplicaSet": [["spec", "template", "spec"]],
    "PyTorchJob": [["spec", "pytorchReplicaSpecs", "*", "template", "spec"]],
    "TFJob": [["spec", "tfReplicaSpecs", "*", "template", "spec"]],
    "MPIJob": [["spec", "mpiReplicaSpecs", "*", "template", "spec"]],
    "JobSet": [["spec", "replicatedJobs", "*", "template", "spec", "template", "spec"]],
}


# Pod templates that are no pods of their own: a Kubeflow Trainer runtime's JobSet
# template becomes pods only through a TrainJob, in the TrainJob's namespace.
TEMPLATE_PATHS: dict[str, list[list[str]]] = {
    kind: [["spec", "template", *path] for path in POD_SPEC_PATHS["JobSet"]]
    for kind in ("ClusterTrainingRuntime", "TrainingRuntime")
}


def pod_specs(obj: dict[str, Any], templates: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each pod spec in an object, with its field path; with `templates`, the pod
    templates of training runtimes too."""

    def walk(node: Any, path: list[str], at: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if not path:
            if isinstance(node, dict):
                yield at, node
            return
        head, rest = path[0], path[1:]
        if head == "*":
            items = node.items() if isinstance(node, dict) else enumerate(node or [])
            for key, value in items:
                yield from walk(value, rest, f"{at}.{key}")
        elif isinstance(node, dict) and head in node:
            yield from walk(node[head], rest, f"{at}.{head}" if at else head)

    kind = obj.get("kind", "")
    paths = POD_SPEC_PATHS.get(kind, []) + (TEMPLATE_PATHS.get(kind, []) if templates else [])
    for path in paths:
        yield from walk(obj, path, "")


def containers(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Each container of every pod spec and pod template, with its field path and its
    pod's security context."""
    for at, spec in pod_specs(obj, templates=True):
        pod_context = spec.get("securityContext") or {}
        for group in ("initContainers", "containers"):
            for i, container in enumerate(spec.get(group) or []):
                if isinstance(container, dict):
                    yield f"{at}.{group}[{i}]", container, pod_context


def _pinned_by_digest(image: str) -> bool:
    return "@" in image


def _read_only_root(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, container, _ in containers(obj):
        context = container.get("securityContext") or {}
        if context.get("readOnlyRootFilesystem") is not True:
            yield (
                f"{at}.securityContext.readOnlyRootFilesystem",
                f"container {container.get('name')!r} can write to its root filesystem",
            )


def _high_ids(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, container, pod_context in containers(obj):
        context = container.get("securityContext") or {}
        for key, what in (("runAsUser", "user"), ("runAsGroup", "group")):
            value = context.get(key, pod_context.get(key))
            if not isinstance(value, int) or isinstance(value, bool) or value < HIGH_ID:
                shown = "no" if value is None else f"{what} id {value!r}, not"
                yield (
                    f"{at}.securityContext.{key}",
                    f"container {container.get('name')!r} runs with {shown} a {what} id of "
                    f"{HIGH_ID} or more",
                )


def _pull_policy(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, container, _ in containers(obj):
        image = str(container.get("image", ""))
        policy = container.get("imagePullPolicy")
        name = container.get("name")
        if policy is None:
            yield f"{at}.imagePullPolicy", f"container {name!r} leaves its pull policy implicit"
        elif policy != "Always" and not _pinned_by_digest(image):
            yield (
                f"{at}.imagePullPolicy",
                f"container {name!r} pulls {image!r}, pinned by tag only, {policy}: the node "
                "may run an image the tag no longer names (use Always, or pin a digest)",
            )


def _image_digest(obj: dict[str, Any]) -> Iterator[Finding]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(REQUIRE_DIGEST_ANNOTATION, "")).lower() != "true":
        return
    images = [(f"{at}.image", str(c.get("image", ""))) for at, c, _ in containers(obj)]
    trainer = (obj.get("spec") or {}).get("trainer") if obj.get("kind") == "TrainJob" else None
    if isinstance(trainer, dict) and "image" in trainer:
        images.append(("spec.trainer.image", str(trainer["image"])))
    for at, image in images:
        if not _pinned_by_digest(image):
            yield at, f"image {image!r} has no digest ({REQUIRE_DIGEST_ANNOTATION} is 'true')"


def _pod_security(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, spec in pod_specs(obj):
        pod_context = spec.get("securityContext") or {}
        for i, volume in enumerate(spec.get("volumes") or []):
            if "hostPath" in volume:
                yield f"{at}.volumes[{i}].hostPath", f"volume {volume.get('name')!r} is a hostPath"
        for group in ("initContainers", "containers"):
            for i, container in enumerate(spec.get(group) or []):
                yield from _container_security(container, pod_context, f"{at}.{group}[{i}]")


def _container_security(
    container: dict[str, Any], pod_context: dict[str, Any], at: str
) -> Iterator[Finding]:
    context = container.get("securityContext") or {}
    name = container.get("name")
    if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
        yield f"{at}.securityContext.runAsNonRoot", f"container {name!r} may run as root"
    if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
        yield f"{at}.securityContext.runAsUser", f"container {name!r} runs as user 0"
    if context.get("allowPrivilegeEscalation") is not False:
        yield (
            f"{at}.securityContext.allowPrivilegeEscalation",
            f"container {name!r} allows privilege escalation",
        )
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        yield f"{at}.securityContext.capabilities.drop", f"container {name!r} keeps capabilities"
    added = set((context.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        yield f"{at}.securityContext.capabilities.add", f"container {name!r} adds {sorted(added)}"
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        yield (
            f"{at}.securityContext.seccompProfile",
            f"container {name!r} has no RuntimeDefault seccomp",
        )
    if context.get("privileged"):
        yield f"{at}.securityContext.privileged", f"container {name!r} is privileged"


def _image_pinned(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, spec in pod_specs(obj):
        for group in ("initContainers", "containers"):
            for i, container in enumerate(spec.get(group) or []):
                image = str(container.get("image", ""))
                tail = image.rsplit("/", 1)[-1]
                if "@" not in image and (":" not in tail or tail.endswith(":latest")):
                    yield (
                        f"{at}.{group}[{i}].image",
                        f"image {image!r} is not pinned to a tag or digest",
                    )


def _resources(obj: dict[str, Any]) -> Iterator[Finding]:
    for at, spec in pod_specs(obj):
        for group in ("initContainers", "containers"):
            for i, container in enumerate(spec.get(group) or []):
                amounts = container.get("resources") or {}
                for kind in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in (amounts.get(kind) or {}):
                            yield (
                                f"{at}.{group}[{i}].resources.{kind}.{resource}",
                                f"container {container.get('name')!r} has no {kind}.{resource}",
                            )


def _secret_data(obj: dict[str, Any]) -> Iterator[Finding]:
    if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
        yield "data", "a Secret with data is committed to git (use External Secrets or SOPS)"


def _appproject_wildcards(obj: dict[str, Any]) -> Iterator[Finding]:
    if obj.get("kind") != "AppProject":
        return
    spec = obj.get("spec") or {}
    for i, repo in enumerate(spec.get("sourceRepos") or []):
        if "*" in repo:
            yield f"spec.sourceRepos[{i}]", f"allows every source repo matching {repo!r}"
    for i, destination in enumerate(spec.get("destinations") or []):
        for key in ("server", "name", "namespace"):
            if "*" in str(destination.get(key, "")):
                yield (
                    f"spec.destinations[{i}].{key}",
                    f"wildcard destination {key} {destination[key]!r}",
                )
    for listing in ("clusterResourceWhitelist", "namespaceResourceWhitelist"):
        for i, entry in enumerate(spec.get(listing) or []):
            if "*" in (str(entry.get("group", "")) + str(entry.get("kind", ""))):
                yield f"spec.{listing}[{i}]", f"wildcard kind {entry}"


def _cidrs(obj: dict[str, Any]) -> Iterator[Finding]:
    if obj.get("kind") != "NetworkPolicy":
        return
    spec = obj.get("spec") or {}
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, peer in enumerate(rule.get(peers_key) or []):
                block = peer.get("ipBlock")
                if block is None:
                    continue
                at = f"spec.{direction}[{i}].{peers_key}[{j}].ipBlock"
                for value in [block.get("cidr"), *(block.get("except") or [])]:
                    try:
                        ipaddress.ip_network(str(value), strict=False)
                    except ValueError:
                        yield at, f"{value!r} is not a valid CIDR"


OBJECT_RULES: dict[str, Callable[[dict[str, Any]], Iterator[Finding]]] = {
    "MLG001": _pod_security,
    "MLG003": _image_pinned,
    "MLG004": _resources,
    "MLG005": _secret_data,
    "MLG006": _appproject_wildcards,
    "MLG007": _cidrs,
    "MLG017": _read_only_root,
    "MLG018": _high_ids,
    "MLG019": _pull_policy,
    "MLG020": _image_digest,
    "MLG021": disruption_findings,
}


def waivers(obj: dict[str, Any]) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {
        key[len(WAIVER_PREFIX) :].upper(): str(value).strip()
        for key, value in annotations.items()
        if key.startswith(WAIVER_PREFIX)
    }


def object_findings(obj: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(rule id, field, message) for one object, before waivers."""
    for rule_id, check in OBJECT_RULES.items():
        for field, message in check(obj):
            yield rule_id, field, message


def namespaces_running_pods(objects: list[dict[str, Any]]) -> set[str]:
    return {
        (o.get("metadata") or {}).get("namespace") or "default"
        for o in objects
        if any(True for _ in pod_specs(o))
    }


def namespaces_denied(objects: list[dict[str, Any]]) -> set[str]:
    denied = set()
    for obj in objects:
        spec = obj.get("spec") or {}
        if (
            obj.get("kind") == "NetworkPolicy"
            and spec.get("podSelector") in ({}, None, {"matchLabels": {}})
            and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
            and not spec.get("ingress")
            and not spec.get("egress")
        ):
            denied.add((obj.get("metadata") or {}).get("namespace") or "default")
    return denied
