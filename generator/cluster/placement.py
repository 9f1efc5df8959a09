"""The scheduler's predicates, on a pod's shape and a group of identical nodes: resources
(requests within allocatable), nodeSelector, required node affinity, taints and
tolerations (kube-scheduler's NodeResourcesFit, NodeAffinity, TaintToleration plugins).

A pod is described by its `PodShape`: only what placement reads, as plain data that the
validate cache can keep (`as_data` / `from_data`), so a cached run need not rebuild
anything to place pods again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from generator import cloud_facts
from generator.cluster import webhooks
from generator.cluster.nodes import Amounts, NodeGroup, Taint
from generator.quantities import cpu_quantity, memory_bytes, millicores, readable_memory

GPU = "nvidia.com/gpu"
HOSTNAME = "kubernetes.io/hostname"
Expression = dict[str, Any]  # a nodeSelectorRequirement: key, operator, values


@dataclass(frozen=True)
class PodShape:
    requests: Amounts
    node_selector: dict[str, str] = field(default_factory=dict)
    # Required node affinity: any one term, each term all its expressions.
    affinity: tuple[tuple[Expression, ...], ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    colocated: bool = False  # required pod affinity on the hostname: all on one node
    claims: tuple[str, ...] = ()
    service_account: str = "default"
    priority_class: str | None = None
    # topology keys of required pod affinity terms: a node without the label matches no
    # term (kube-scheduler InterPodAffinity), e.g. JobSet's exclusive placement
    affinity_keys: tuple[str, ...] = ()
    # What the pod asks once GKE's webhooks have added their sidecars (webhooks.py),
    # None when they add none; only GKE clusters run those webhooks.
    on_gke: Amounts | None = None
    gke_sidecar: str = ""  # the sidecar GKE adds, and its requests, for messages
    injected: str = ""  # once on_cloud has added it: what it added

    def as_data(self) -> dict[str, Any]:
        return {
            "requests": [
                self.requests.millicores,
                self.requests.memory,
                self.requests.gpus,
                self.requests.efa,
            ],
            "nodeSelector": self.node_selector,
            "affinity": [list(term) for term in self.affinity],
            "tolerations": list(self.tolerations),
            "colocated": self.colocated,
            "claims": list(self.claims),
            "serviceAccount": self.service_account,
            "priorityClass": self.priority_class,
            "affinityKeys": list(self.affinity_keys),
            "onGke": None if self.on_gke is None else _amounts_data(self.on_gke),
            "gkeSidecar": self.gke_sidecar,
            "injected": self.injected,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PodShape:
        cpu, memory, gpus, *efa = data["requests"]
        on_gke = data.get("onGke")
        return cls(
            Amounts(cpu, memory, gpus, *efa),
            dict(data["nodeSelector"]),
            tuple(tuple(term) for term in data["affinity"]),
            tuple(data["tolerations"]),
            bool(data["colocated"]),
            tuple(data["claims"]),
            str(data["serviceAccount"]),
            data["priorityClass"],
            tuple(data.get("affinityKeys") or ()),
            None if on_gke is None else Amounts(*on_gke),
            str(data.get("gkeSidecar") or ""),
            str(data.get("injected") or ""),
        )

    def on_cloud(self, cloud: str) -> PodShape:
        """The pod as that cloud's admission webhooks leave it: on GKE with the FUSE
        sidecar's requests added, where the pod asks for it."""
        if cloud != "gke" or self.on_gke is None:
            return self
        return replace(
            self, requests=self.on_gke, on_gke=None, gke_sidecar="", injected=self.gke_sidecar
        )

    def with_flavor(
        self, labels: Mapping[str, str], tolerations: Sequence[dict[str, Any]]
    ) -> PodShape:
        """The pod as Kueue admits it to a flavor: its node labels added to the node
        selector, its tolerations to the pod's (kueue pkg/podset Merge)."""
        return replace(
            self,
            node_selector={**self.node_selector, **labels},
            tolerations=(*self.tolerations, *tolerations),
        )


def _amounts_data(amounts: Amounts) -> list[int]:
    return [amounts.millicores, amounts.memory, amounts.gpus, amounts.efa]


def shape_of(spec: Mapping[str, Any], annotations: Mapping[str, Any] | None = None) -> PodShape:
    """What placement reads from a pod spec (and its annotations, which GKE's webhooks
    read to add sidecars)."""
    affinity = spec.get("affinity") or {}
    node = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = tuple(
        tuple(term.get("matchExpressions") or ()) for term in node.get("nodeSelectorTerms") or ()
    )
    pod_terms = (affinity.get("podAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    injected = webhooks.with_injected_sidecars(spec, annotations or {})
    claims = tuple(
        volume["persistentVolumeClaim"]["claimName"]
        for volume in spec.get("volumes") or []
        if "persistentVolumeClaim" in volume
    )
    return PodShape(
        requests=pod_requests(spec),
        node_selector=dict(spec.get("nodeSelector") or {}),
        affinity=terms,
        tolerations=tuple(spec.get("tolerations") or ()),
        colocated=any(term.get("topologyKey") == HOSTNAME for term in pod_terms),
        claims=claims,
        service_account=str(spec.get("serviceAccountName") or "default"),
        priority_class=spec.get("priorityClassName"),
        affinity_keys=tuple(
            sorted({str(t["topologyKey"]) for t in pod_terms if t.get("topologyKey")})
        ),
        on_gke=None if injected is None else pod_requests(injected),
        gke_sidecar=_sidecar_text(annotations or {}),
    )


def _sidecar_text(annotations: Mapping[str, Any]) -> str:
    sidecar = webhooks.gcsfuse_sidecar(annotations)
    if sidecar is None:
        return ""
    return f"{describe(_container_requests(sidecar))} of it for the {sidecar['name']} GKE injects"


def pod_requests(spec: Mapping[str, Any]) -> Amounts:
    """What the scheduler reserves for a pod (k8s.io/component-helpers resource/helpers.go
    `PodRequests`, with sidecars, KEP-753): the sum of its containers' and its sidecars'
    (init containers with `restartPolicy: Always`, which keep running beside them), or
    what an init container needs while it runs when that is more: its own requests plus
    those of the sidecars started before it. A resource given only as a limit is
    requested at the limit (the API server's defaulting)."""
    total = Amounts(0, 0, 0)
    for container in spec.get("containers") or []:
        total = _plus(total, _container_requests(container))
    sidecars = Amounts(0, 0, 0)
    initializing = Amounts(0, 0, 0)
    for container in spec.get("initContainers") or []:
        asks = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            total = _plus(total, asks)
            sidecars = _plus(sidecars, asks)
            initializing = _max(initializing, sidecars)
        else:
            initializing = _max(initializing, _plus(asks, sidecars))
    return _max(total, initializing)


def _max(a: Amounts, b: Amounts) -> Amounts:
    return Amounts(
        max(a.millicores, b.millicores),
        max(a.memory, b.memory),
        max(a.gpus, b.gpus),
        max(a.efa, b.efa),
    )


def _container_requests(container: Mapping[str, Any]) -> Amounts:
    resources = container.get("resources") or {}
    wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return Amounts(
        millicores(wanted["cpu"]) if "cpu" in wanted else 0,
        memory_bytes(wanted["memory"]) if "memory" in wanted else 0,
        int(wanted.get(GPU, 0)),
        int(wanted.get(cloud_facts.EFA_RESOURCE, 0)),
    )


def _plus(a: Amounts, b: Amounts) -> Amounts:
    return Amounts(a.millicores + b.millicores, a.memory + b.memory, a.gpus + b.gpus, a.efa + b.efa)


def tolerates(taint: Taint, tolerations: Sequence[Mapping[str, Any]]) -> bool:
    """A toleration matches a taint (k8s.io/api core/v1 toleration.go ToleratesTaint):
    same effect or none, same key or none with Exists, and Exists or an equal value."""
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.effect:
            continue
        key = toleration.get("key")
        operator = toleration.get("operator", "Equal")
        if not key and operator != "Exists":
            continue
        if key and key != taint.key:
            continue
        if operator == "Exists" or toleration.get("value", "") == taint.value:
            return True
    return False


def matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    number = labels.get(key)
    if operator in ("Gt", "Lt") and number is not None and number.isascii() and number.isdigit():
        bound = int(values[0])
        return int(number) > bound if operator == "Gt" else int(number) < bound
    return False


def selection_problems(shape: PodShape, group: NodeGroup) -> list[str]:
    """Why no node of `group` is chosen for the pod by labels and taints."""
    found = []
    wrong = {k: v for k, v in shape.node_selector.items() if group.labels.get(k) != v}
    if wrong:
        found.append(
            "its nodeSelector wants "
            + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items()))
            + " which these nodes do not have"
        )
    if shape.affinity and not any(
        all(matches(e, group.labels) for e in term) for term in shape.affinity
    ):
        found.append("its required node affinity matches none of these nodes' labels")
    carried = {*group.labels, *group.topology_labels, HOSTNAME}
    for key in shape.affinity_keys:
        if key not in carried:
            found.append(f"its required pod affinity is per {key}, a label these nodes lack")
    for taint in group.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(taint, shape.tolerations):
            found.append(
                f"it does not tolerate their taint {taint.key}={taint.value}:{taint.effect}"
            )
    return found


def fit_problems(shape: PodShape, group: NodeGroup, pods_per_node: int = 1) -> list[str]:
    """Why the pod cannot run on a node of `group`: selection, then room."""
    found = selection_problems(shape, group)
    room = group.allocatable
    wanted = shape.requests.times(pods_per_node)
    if room is not None and not room.holds(wanted):
        what = "these pods together ask" if pods_per_node > 1 else "it asks"
        added = f" ({shape.injected})" if shape.injected else ""
        found.append(
            f"{what} for {describe(wanted)}{added}, more than a node gives pods ({describe(room)})"
        )
    if not found and group.nodes == 0:
        found.append("the group has no nodes (its size is 0)")
    return found


def describe(amounts: Amounts) -> str:
    parts = [f"{cpu_quantity(amounts.millicores)} CPU", f"{readable_memory(amounts.memory)} memory"]
    if amounts.gpus:
        parts.append(f"{amounts.gpus} GPU{'s' if amounts.gpus > 1 else ''}")
    if amounts.efa:
        parts.append(f"{amounts.efa} EFA interface{'s' if amounts.efa > 1 else ''}")
    return ", ".join(parts)


def place(
    shape: PodShape, groups: Sequence[NodeGroup], pods_per_node: int = 1
) -> tuple[NodeGroup | None, dict[str, list[str]]]:
    """The first group whose nodes can take the pod (the scheduler would pick among all
    that can; the first is reported), or None with every group's reasons."""
    reasons: dict[str, list[str]] = {}
    for group in groups:
        problems = fit_problems(shape, group, pods_per_node)
        if not problems:
            return group, {}
        reasons[group.name] = problems
    return None, reasons
