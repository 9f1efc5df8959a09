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
from generator.render import frameworks, runtimes
from generator.render.labels import CHECKPOINT_LABEL, platform_labels, workload_labels
from generator.render.objects import Manifest, Unit, metadata
from generator.render.pods import checkpoint_access_mode, checkpoint_claim, checkpoint_sharing
from generator.render.queues import render_local_queues

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
    return [*render_namespace_base(config, namespace), *render_local_queues(config, namespace)]


def render_namespace_base(config: model.Config, namespace: str) -> list[Manifest]:
    """The Namespace and its namespace-wide NetworkPolicies, without its LocalQueues."""
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
    objects = [render_service_account(config, workload)]
    if runtimes.has_own_service(workload):
        objects.append(render_headless_service(config, workload))
    if workload.dispatch is None:
        # A dispatched run's object is on the management cluster (render/dispatch.py);
        # MultiKueue creates it on the worker that admits it, beside these objects.
        objects.append(runtimes.render_training_object(config, workload))
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
            "selector": runtimes.pod_selector(workload),
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
    own_pods = {"podSelector": {"matchLabels": runtimes.pod_selector(workload)}}
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
    spec: dict[str, Any] = {"podSelector": {"matchLabels": runtimes.pod_selector(workload)}}
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
