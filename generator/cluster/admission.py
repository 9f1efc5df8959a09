"""Kueue's admission of a queued workload, as v0.17.6 does it, with no other workload
running: its LocalQueue, that queue's ClusterQueue (which must select the namespace),
and for each pod set the first flavor, in the ClusterQueue's order, that

- covers every resource the pod set asks for (a resource no resource group covers makes
  the workload inadmissible),
- has nominal quota left for all of it (pod sets are assigned in order and use quota
  up as they go),
- declares no `nodeTaints` the pods do not tolerate, and
- has node labels that do not contradict the pods' own node selection

(kueue pkg/scheduler/flavorassigner: assignFlavors, checkFlavorForPodSets). The admitted
pods get the flavor's node labels in their node selector and its tolerations
(pkg/podset). A workload no flavor can take even alone is never admitted.

Topology-Aware Scheduling (pkg/scheduler/flavorassigner/tas_flavorassigner.go
`checkPodSetAndFlavorMatchForTAS`): a pod set that asks for a topology (required or
preferred, inventory.topology_request), or any pod set when every flavor of the
ClusterQueue has a Topology (TAS implied), takes only a flavor with a `topologyName`
whose Topology has the level asked for (`TASFlavorSnapshot.HasLevel`); a pod set that
does not ask takes no such flavor when the ClusterQueue also has flavors without one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator import cloud_facts
from generator.cluster.nodes import Amounts, Taint
from generator.cluster.placement import PodShape, matches, tolerates
from generator.quantities import cpu_quantity, memory_bytes, millicores, readable_memory


@dataclass(frozen=True)
class Flavor:
    name: str
    node_labels: dict[str, str]
    node_taints: tuple[Taint, ...]
    tolerations: tuple[dict[str, Any], ...]
    topology: str | None = None  # spec.topologyName


@dataclass(frozen=True)
class ClusterQueue:
    name: str
    namespaces: tuple[str, ...] | None  # None: every namespace
    # Per resource group: the resources it covers and, in order, each flavor's quota.
    groups: tuple[tuple[frozenset[str], tuple[tuple[str, Amounts], ...]], ...]


@dataclass(frozen=True)
class PodSet:
    name: str
    count: int
    shape: PodShape
    topology: tuple[str, str] | None = None  # (required | preferred, node label)


@dataclass
class Admission:
    flavors: dict[str, str] = field(default_factory=dict)  # pod set -> flavor
    problem: str | None = None
    topology: bool = False  # the problem comes from a topology request or Topology


def flavor_of(obj: Mapping[str, Any]) -> Flavor:
    spec = obj.get("spec") or {}
    return Flavor(
        obj["metadata"]["name"],
        dict(spec.get("nodeLabels") or {}),
        tuple(
            Taint(t["key"], t.get("value", ""), t["effect"]) for t in spec.get("nodeTaints") or ()
        ),
        tuple(spec.get("tolerations") or ()),
        spec.get("topologyName"),
    )


def cluster_queue_of(obj: Mapping[str, Any]) -> ClusterQueue:
    spec = obj.get("spec") or {}
    groups = []
    for group in spec.get("resourceGroups") or []:
        flavors = tuple(
            (flavor["name"], _quota(flavor.get("resources") or []))
            for flavor in group.get("flavors") or []
        )
        groups.append((frozenset(group.get("coveredResources") or ()), flavors))
    return ClusterQueue(obj["metadata"]["name"], _namespaces(spec), tuple(groups))


def _quota(resources: Sequence[Mapping[str, Any]]) -> Amounts:
    quota = {r["name"]: r.get("nominalQuota", 0) for r in resources}
    return Amounts(
        millicores(quota.get("cpu", 0)),
        memory_bytes(quota.get("memory", 0)),
        int(str(quota.get("nvidia.com/gpu", 0))),
        int(str(quota.get(cloud_facts.EFA_RESOURCE, 0))),
    )


def _namespaces(spec: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The namespaces a ClusterQueue's selector takes, by name; None: any. An absent
    selector takes none (Kueue v1beta2: nil selects nothing, {} everything)."""
    if "namespaceSelector" not in spec:
        return ()
    selector = spec["namespaceSelector"] or {}
    names: set[str] | None = None
    for key, value in (selector.get("matchLabels") or {}).items():
        if key == "kubernetes.io/metadata.name":
            names = {value} if names is None else names & {value}
    for expression in selector.get("matchExpressions") or []:
        if (
            expression.get("key") == "kubernetes.io/metadata.name"
            and expression.get("operator") == "In"
        ):
            wanted = set(expression.get("values") or ())
            names = wanted if names is None else names & wanted
    return None if names is None else tuple(sorted(names))


def requested(pod_set: PodSet) -> dict[str, int]:
    r = pod_set.shape.requests.times(pod_set.count)
    amounts = {
        "cpu": r.millicores,
        "memory": r.memory,
        "nvidia.com/gpu": r.gpus,
        cloud_facts.EFA_RESOURCE: r.efa,
    }
    return {name: amount for name, amount in amounts.items() if amount}


def admit(
    pod_sets: Sequence[PodSet],
    queue: ClusterQueue,
    flavors: Mapping[str, Flavor],
    topologies: Mapping[str, Sequence[str]] | None = None,
) -> Admission:
    """Which flavor each pod set gets, or why the workload can never be admitted.
    `topologies`: each Topology's levels (node labels), by name."""
    topologies = topologies or {}
    used: dict[str, dict[str, int]] = {}
    admission = Admission()
    # Kueue keeps a TAS flavor only once its Topology exists (pkg/cache/scheduler
    # clusterqueue.go isTASOnly: every flavor of every resource group is a TAS flavor).
    tas_only = all(
        (flavor := flavors.get(name)) is not None
        and flavor.topology is not None
        and flavor.topology in topologies
        for _, group in queue.groups
        for name, _ in group
    )
    for pod_set in pod_sets:
        wanted = requested(pod_set)
        group = next(
            (flavors_of for covered, flavors_of in queue.groups if set(wanted) <= covered), None
        )
        if group is None:
            missing = ", ".join(sorted(set(wanted) - _covered(queue)))
            admission.problem = (
                f"ClusterQueue {queue.name!r} covers no {missing or 'resource it asks for'}: "
                f"pod set {pod_set.name!r} is never admitted"
            )
            return admission
        reasons = []
        for name, quota in group:
            flavor = flavors.get(name)
            if flavor is None:
                reasons.append(f"{name}: no such ResourceFlavor")
                continue
            why = _topology_problem(pod_set, flavor, topologies, tas_only)
            if why is not None:
                admission.topology = admission.topology or pod_set.topology is not None
            else:
                why = _flavor_problem(pod_set, flavor, quota, used.get(name, {}), wanted)
            if why is None:
                admission.flavors[pod_set.name] = name
                usage = used.setdefault(name, {})
                for resource, amount in wanted.items():
                    usage[resource] = usage.get(resource, 0) + amount
                break
            reasons.append(f"{name}: {why}")
        else:
            admission.problem = (
                f"no flavor of ClusterQueue {queue.name!r} can ever admit pod set "
                f"{pod_set.name!r} ({'; '.join(reasons)})"
            )
            return admission
    return admission


def _topology_problem(
    pod_set: PodSet, flavor: Flavor, topologies: Mapping[str, Sequence[str]], tas_only: bool
) -> str | None:
    """Why the flavor cannot take the pod set for its topology (or its lack of one)."""
    asks = pod_set.topology
    if asks is None and not tas_only:
        if flavor.topology is not None:
            return (
                f"it has a Topology ({flavor.topology}) and takes only pods that ask for one "
                "while the ClusterQueue has flavors without"
            )
        return None
    if flavor.topology is None:
        return "it has no topologyName: Kueue places no topology request there"
    levels = topologies.get(flavor.topology)
    if levels is None:
        return f"its Topology {flavor.topology!r} does not exist"
    if asks is not None and asks[1] not in levels:
        return (
            f"its Topology {flavor.topology!r} has no level {asks[1]} (levels: {', '.join(levels)})"
        )
    return None


def _covered(queue: ClusterQueue) -> set[str]:
    return {resource for covered, _ in queue.groups for resource in covered}


def _flavor_problem(
    pod_set: PodSet,
    flavor: Flavor,
    quota: Amounts,
    used: Mapping[str, int],
    wanted: Mapping[str, int],
) -> str | None:
    for taint in flavor.node_taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(
            taint, pod_set.shape.tolerations
        ):
            return f"its nodes' taint {taint.key}={taint.value}:{taint.effect} is not tolerated"
    shape = pod_set.shape
    for key, value in flavor.node_labels.items():
        if key in shape.node_selector and shape.node_selector[key] != value:
            return f"the pods' nodeSelector wants {key}={shape.node_selector[key]}, not {value}"
    if shape.affinity and not any(_term_fits(term, flavor.node_labels) for term in shape.affinity):
        return "the pods' required node affinity excludes its node labels"
    limits = {
        "cpu": quota.millicores,
        "memory": quota.memory,
        "nvidia.com/gpu": quota.gpus,
        cloud_facts.EFA_RESOURCE: quota.efa,
    }
    for resource, amount in wanted.items():
        if used.get(resource, 0) + amount > limits[resource]:
            return (
                f"its {resource} quota is {_amount(resource, limits[resource])}, the pods ask "
                f"for {_amount(resource, used.get(resource, 0) + amount)}"
            )
    return None


def _amount(resource: str, amount: int) -> str:
    if resource == "cpu":
        return cpu_quantity(amount)
    if resource == "memory":
        return readable_memory(amount)
    return str(amount)


def _term_fits(term: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """Only the keys the flavor labels decide count (Kueue ignores the others)."""
    return all(matches(e, labels) for e in term if e["key"] in labels)
