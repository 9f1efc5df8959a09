"""Cloud-agnostic bases: one unit per namespace and one per training workload.

A namespace's unit holds the Namespace (enforcing Pod Security "restricted") and the
namespace-wide NetworkPolicies: default deny in both directions, and DNS egress to
kube-dns. It is its own unit because several workloads may share a namespace, and
kustomize refuses the same object twice in one build.

A workload's unit holds its ServiceAccount, headless Service, Indexed Job, checkpoint
claim and the NetworkPolicies that open exactly the traffic the job needs.
"""

from __future__ import annotations

from typing import Any

from generator.config import model
from generator.render import frameworks
from generator.render.labels import (
    CHECKPOINT_LABEL,
    GPU_LABEL,
    platform_labels,
    workload_labels,
    workload_selector,
)
from generator.render.objects import Manifest, Unit, metadata

CONTAINER_NAME = "trainer"
CHECKPOINT_VOLUME = "checkpoint"
SHARED_MEMORY_VOLUME = "dshm"
KUBE_DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def namespace_folder(namespace: str) -> str:
    return f"base/namespaces/{namespace}"


def workload_folder(workload: model.Workload) -> str:
    return f"base/{workload.name}"


def render_namespace_units(config: model.Config) -> list[Unit]:
    namespaces = sorted({w.namespace for w in config.workloads})
    return [Unit(namespace_folder(ns), render_namespace(config, ns)) for ns in namespaces]


def render_workload_units(config: model.Config) -> list[Unit]:
    return [Unit(workload_folder(w), render_workload(config, w)) for w in config.workloads]


def render_namespace(config: model.Config, namespace: str) -> list[Manifest]:
    labels = platform_labels(config)
    pss_version = f"v{config.kubernetes_version}"
    pod_security = {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "audit", "warn")
        for suffix, value in (("", "restricted"), ("-version", pss_version))
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata(namespace, {**labels, **pod_security}),
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("default-deny", labels, namespace),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("allow-dns", labels, namespace),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [KUBE_DNS_PEER],
                        "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")],
                    }
                ],
            },
        },
    ]


def render_workload(config: model.Config, workload: model.Workload) -> list[Manifest]:
    objects = [
        render_service_account(config, workload),
        render_headless_service(config, workload),
        render_job(config, workload),
    ]
    if workload.checkpoint:
        objects.append(render_checkpoint_claim(config, workload, workload.checkpoint))
    objects.extend(render_network_policies(config, workload))
    return objects


def render_service_account(config: model.Config, workload: model.Workload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(workload.name, workload_labels(config, workload), workload.namespace),
        "automountServiceAccountToken": False,
    }


def render_headless_service(config: model.Config, workload: model.Workload) -> Manifest:
    """Gives every pod the DNS name `<job>-<index>.<service>`, even before it is Ready."""
    launch = frameworks.launch(workload)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(workload.name, workload_labels(config, workload), workload.namespace),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": workload_selector(workload),
            "ports": [
                {
                    "name": launch.port_name,
                    "port": workload.rendezvous_port,
                    "targetPort": launch.port_name,
                    "protocol": "TCP",
                }
            ],
        },
    }


def render_job(config: model.Config, workload: model.Workload) -> Manifest:
    """An Indexed Job: pod i is rank i. One failed pod fails the job (backoffLimit 0), since
    a static rendezvous cannot take a replacement in; parameter servers, which never exit
    on their own, are stopped by the success policy once every worker has succeeded."""
    labels = workload_labels(config, workload)
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": workload.pod_count,
        "parallelism": workload.pod_count,
        "backoffLimit": 0,
    }
    if workload.parameter_servers:
        last_worker = workload.workers - 1
        indexes = "0" if last_worker == 0 else f"0-{last_worker}"
        spec["successPolicy"] = {"rules": [{"succeededIndexes": indexes}]}
    spec["template"] = {
        "metadata": {"labels": labels},
        "spec": render_pod_spec(workload),
    }
    job_metadata = metadata(
        workload.name, {**labels, **selection_labels(workload)}, workload.namespace
    )
    if config.gitops == "argocd":
        # A Job's pod template is immutable: a changed spec means a new run, so Argo CD
        # deletes and recreates it (Flux does the same through its Kustomization's force).
        job_metadata["annotations"] = {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata,
        "spec": spec,
    }


def selection_labels(workload: model.Workload) -> dict[str, str]:
    """What the per-cloud overlays select on: GPUs, and a checkpoint and how it is shared."""
    labels = {}
    if workload.resources.gpu:
        labels[GPU_LABEL] = "true"
    if workload.checkpoint:
        labels[CHECKPOINT_LABEL] = checkpoint_sharing(workload)
    return labels


def checkpoint_sharing(workload: model.Workload) -> str:
    return "shared" if workload.pod_count > 1 else "single"


def render_pod_spec(workload: model.Workload) -> dict[str, Any]:
    return {
        "subdomain": workload.name,
        "serviceAccountName": workload.name,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_user,
            "fsGroup": workload.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [render_trainer_container(workload)],
        "volumes": render_volumes(workload),
    }


def render_trainer_container(workload: model.Workload) -> dict[str, Any]:
    launch = frameworks.launch(workload)
    user_env = [{"name": k, "value": v} for k, v in sorted(workload.env.items())]
    mounts = [{"name": SHARED_MEMORY_VOLUME, "mountPath": "/dev/shm"}]
    if workload.checkpoint:
        mounts.append({"name": CHECKPOINT_VOLUME, "mountPath": workload.checkpoint.mount_path})
    return {
        "name": CONTAINER_NAME,
        "image": workload.image,
        "command": launch.command,
        "args": launch.args,
        "env": launch.env + user_env,
        "ports": [
            {"name": launch.port_name, "containerPort": workload.rendezvous_port, "protocol": "TCP"}
        ],
        "resources": render_resources(workload.resources),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "volumeMounts": mounts,
    }


def render_resources(resources: model.Resources) -> dict[str, Any]:
    """Requests equal limits: training pods get the Guaranteed QoS class."""
    amounts: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    limits = dict(amounts)
    if resources.gpu:
        limits["nvidia.com/gpu"] = resources.gpu
    return {"requests": amounts, "limits": limits}


def render_volumes(workload: model.Workload) -> list[dict[str, Any]]:
    """Shared memory for data loaders and NCCL (the 64Mi default is too small), and the
    checkpoint claim. Both are allowed under Pod Security "restricted"; hostPath is not."""
    volumes: list[dict[str, Any]] = [
        {"name": SHARED_MEMORY_VOLUME, "emptyDir": {"medium": "Memory"}}
    ]
    if workload.checkpoint:
        volumes.append(
            {
                "name": CHECKPOINT_VOLUME,
                "persistentVolumeClaim": {"claimName": checkpoint_claim(workload)},
            }
        )
    return volumes


def checkpoint_claim(workload: model.Workload) -> str:
    return f"{workload.name}-checkpoint"


def checkpoint_access_mode(workload: model.Workload) -> str:
    """Several pods writing one volume need ReadWriteMany; a single pod can own it."""
    return "ReadWriteMany" if checkpoint_sharing(workload) == "shared" else "ReadWriteOnce"


def render_checkpoint_claim(
    config: model.Config, workload: model.Workload, checkpoint: model.Checkpoint
) -> Manifest:
    """No storage class here: each cloud's overlay picks one that offers the access mode."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            checkpoint_claim(workload),
            {**workload_labels(config, workload), CHECKPOINT_LABEL: checkpoint_sharing(workload)},
            workload.namespace,
        ),
        "spec": {
            "accessModes": [checkpoint_access_mode(workload)],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": checkpoint.size}},
        },
    }


def render_network_policies(config: model.Config, workload: model.Workload) -> list[Manifest]:
    """The namespace denies everything; these open what this job needs.

    Pods of one job talk on all ports: NCCL and Gloo pick random ones."""
    labels = workload_labels(config, workload)
    own_pods = {"podSelector": {"matchLabels": workload_selector(workload)}}
    policies = [
        _network_policy(
            f"{workload.name}-allow-intra-job",
            workload,
            labels,
            ingress=[{"from": [own_pods]}],
            egress=[{"to": [own_pods]}],
        )
    ]
    if workload.network.ingress_from:
        rules = [_ingress_rule(source) for source in workload.network.ingress_from]
        policies.append(
            _network_policy(f"{workload.name}-allow-ingress", workload, labels, ingress=rules)
        )
    if workload.network.egress_to:
        rules = [_egress_rule(dest) for dest in workload.network.egress_to]
        policies.append(
            _network_policy(f"{workload.name}-allow-egress", workload, labels, egress=rules)
        )
    return policies


def _network_policy(
    name: str,
    workload: model.Workload,
    labels: dict[str, str],
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> Manifest:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": workload_selector(workload)}}
    spec["policyTypes"] = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules]
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, labels, workload.namespace),
        "spec": spec,
    }


def _tcp_ports(ports: tuple[int, ...]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _ingress_rule(source: model.IngressSource) -> dict[str, Any]:
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(sorted(source.pod_labels.items()))}}
    if source.namespace_labels is not None:
        peer["namespaceSelector"] = {"matchLabels": dict(sorted(source.namespace_labels.items()))}
    rule: dict[str, Any] = {"from": [peer]}
    if source.ports:
        rule["ports"] = _tcp_ports(source.ports)
    return rule


def _egress_rule(destination: model.EgressDestination) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": destination.cidr}}]}
    if destination.ports:
        rule["ports"] = _tcp_ports(destination.ports)
    return rule
