"""Would every pod of every workload run on the cluster it is sent to? One cluster at a
time, from its nodes (the config) and the facts of what it is given (inventory.py, per
synced path): the system pods it needs have a node, every queued workload can be
admitted and gets a flavor, every pod fits a node it may go to, every claim gets a
volume of a class that exists, with an access mode and a size its driver gives, and
every ServiceAccount, LocalQueue, ClusterQueue, runtime and PriorityClass a pod refers
to exists.

No live state is known: other tenants' pods, nodes that are down, real free capacity.
Each pod set is placed on an empty cluster, one pod per node type at a time (the
scheduler's filters, not its scoring or bin packing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.cluster import admission, controllers, facts, nodes
from generator.cluster.inventory import Fact, workload_fact
from generator.cluster.nodes import NodeGroup
from generator.cluster.placement import (
    HOSTNAME,
    PodShape,
    place,
    selection_problems,
    tolerates,
)
from generator.config import model
from generator.quantities import memory_bytes

# Rule IDs (validate lists them with their explanations).
PLACEMENT = "MLG010"
FLAVOR_NODES = "MLG011"
FLAVOR_TAINTS = "MLG012"
SYSTEM_PODS = "MLG013"
STORAGE = "MLG014"
REFERENCES = "MLG015"
ADMISSION = "MLG016"
TOPOLOGY = "MLG024"
BUILTIN_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


@dataclass(frozen=True)
class Finding:
    path: str
    object: str
    field: str
    message: str
    rule: str


@dataclass(frozen=True)
class Landing:
    """Where the pods of one pod set would run."""

    path: str
    workload: str  # Kind/name
    namespace: str
    pod_set: str
    pods: int
    node_group: str | None
    flavor: str | None
    why_not: str | None


@dataclass
class Verdict:
    cluster: str
    landings: list[Landing] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Memo:
    """Work shared by the clusters of one run: pod shapes read once per distinct fact, and
    placements once per shape on each distinct set of node groups."""

    shapes: dict[tuple[int, str], tuple[Fact, PodShape]] = field(default_factory=dict)
    places: dict[tuple[str, int, str, int], tuple[str | None, dict[str, list[str]]]] = field(
        default_factory=dict
    )

    # Clusters of one cloud with the same nodes, given the same builds, get the same
    # verdict but for their names: by what they are given, the first such cluster's.
    verdicts: dict[tuple[Any, ...], tuple[str, Verdict, Any]] = field(default_factory=dict)

    @staticmethod
    def _signature(
        cluster: model.Cluster,
        nodes_key: str,
        given: Mapping[str, Sequence[Fact]],
        operators: Iterable[str],
        infrastructure: tuple[str, Sequence[Fact]] | None,
    ) -> tuple[Any, ...]:
        prefix = f"clusters/{cluster.name}/"
        return (
            cluster.cloud,
            nodes_key,
            tuple(sorted(operators)),
            tuple(sorted((p.removeprefix(prefix), id(f)) for p, f in given.items())),
            # What the infrastructure path says of the nodes is in nodes_key; only where
            # it is matters.
            infrastructure[0].removeprefix(prefix) if infrastructure else None,
        )

    def alike(
        self,
        cluster: model.Cluster,
        nodes_key: str,
        given: Mapping[str, Sequence[Fact]],
        operators: Iterable[str],
        infrastructure: tuple[str, Sequence[Fact]] | None,
    ) -> Verdict | None:
        signature = self._signature(cluster, nodes_key, given, operators, infrastructure)
        known = self.verdicts.get(signature)
        if known is None:
            return None
        return _renamed(known[1], known[0], cluster.name)

    def remember(
        self,
        cluster: model.Cluster,
        nodes_key: str,
        given: Mapping[str, Sequence[Fact]],
        operators: Iterable[str],
        infrastructure: tuple[str, Sequence[Fact]] | None,
        verdict: Verdict,
    ) -> None:
        signature = self._signature(cluster, nodes_key, given, list(operators), infrastructure)
        # The facts stay referenced, so the identities in the signature stay theirs.
        self.verdicts[signature] = (cluster.name, verdict, (given, infrastructure))

    def shape(self, data: Fact, cloud: str) -> PodShape:
        """The pod as the cloud's admission webhooks leave it, once per fact and cloud."""
        key = (id(data), cloud)
        known = self.shapes.get(key)
        if known is None or known[0] is not data:  # the entry keeps `data` alive
            known = self.shapes[key] = (data, PodShape.from_data(data).on_cloud(cloud))
        return known[1]


@dataclass
class _Given:
    """Everything the cluster is given, by kind, with the path each came from."""

    workloads: list[tuple[str, Fact]] = field(default_factory=list)
    trainjobs: list[tuple[str, Fact]] = field(default_factory=list)
    runtimes: dict[tuple[str, str], Fact] = field(default_factory=dict)  # (ns or "", name)
    claims: dict[tuple[str, str], tuple[str, Fact]] = field(default_factory=dict)
    classes: dict[str, str | None] = field(default_factory=dict)  # name -> provisioner
    accounts: set[tuple[str, str]] = field(default_factory=set)
    local_queues: dict[tuple[str, str], Fact] = field(default_factory=dict)
    cluster_queues: dict[str, Fact] = field(default_factory=dict)
    flavors: dict[str, Fact] = field(default_factory=dict)
    flavor_paths: dict[str, str] = field(default_factory=dict)
    topologies: dict[str, list[str]] = field(default_factory=dict)  # name -> levels
    priority_classes: set[str] = field(default_factory=set)
    refused: list[tuple[str, Fact]] = field(default_factory=list)  # controllers create no pods


def evaluate(
    cluster: model.Cluster,
    given: Mapping[str, Sequence[Fact]],
    operators: Iterable[str] = (),
    infrastructure: tuple[str, Sequence[Fact]] | None = None,
    memo: Memo | None = None,
) -> Verdict:
    """`given`: the facts of each path synced to the cluster; `operators`: the names
    (operator_facts) of the operators installed on it; `infrastructure`: the path that
    creates its node groups and its facts (problems of the nodes are reported there);
    `memo`: what earlier clusters of the same run worked out (clusters given the same
    builds on the same kind of nodes share it)."""
    memo = memo or Memo()
    operators = list(operators)
    built = list(infrastructure[1]) if infrastructure else []
    groups = nodes.as_built(cluster, nodes.node_groups(cluster), built)
    nodes_key = repr(groups)
    alike = memo.alike(cluster, nodes_key, given, operators, infrastructure)
    if alike is not None:
        return alike
    verdict = Verdict(cluster.name)
    state = _gather(cluster, given)
    where = infrastructure[0] if infrastructure else f"clusters/{cluster.name}"
    addons = {str(f["name"]) for f in built if f.get("type") == "Addon"}
    _system_pods(cluster, state, groups, list(operators), addons, where, verdict)
    _flavors(state, groups, where, verdict)
    for path, fact in state.refused:
        verdict.findings.append(
            Finding(
                path,
                f"{fact['kind']}/{fact['name']}",
                "spec",
                f"its controller creates no pods: {fact['message']}",
                PLACEMENT,
            )
        )
    workloads = list(state.workloads) + _trainjob_workloads(state, verdict)
    for path, workload in workloads:
        _workload(path, workload, state, groups, nodes_key, verdict, memo, cluster.cloud)
    _claims(state, workloads, verdict)
    memo.remember(cluster, nodes_key, given, operators, infrastructure, verdict)
    return verdict


def _gather(cluster: model.Cluster, given: Mapping[str, Sequence[Fact]]) -> _Given:
    state = _Given()
    state.classes.update(facts.BUILTIN_STORAGE_CLASSES[cluster.cloud])
    for path, found in given.items():
        for fact in found:
            kind, name, namespace = fact["type"], fact.get("name", ""), fact.get("namespace", "")
            if kind == "workload":
                state.workloads.append((path, fact))
            elif kind == "refused":
                state.refused.append((path, fact))
            elif kind == "TrainJob":
                state.trainjobs.append((path, fact))
            elif kind == "ClusterTrainingRuntime":
                state.runtimes[("", name)] = fact
            elif kind == "TrainingRuntime":
                state.runtimes[(namespace, name)] = fact
            elif kind == "PersistentVolumeClaim":
                if not fact.get("madeByHand") or (namespace, name) not in state.claims:
                    state.claims[(namespace, name)] = (path, fact)  # the tree's own first
            elif kind == "StorageClass":
                state.classes[name] = fact.get("provisioner")
            elif kind == "ServiceAccount":
                state.accounts.add((namespace, name))
            elif kind == "LocalQueue":
                state.local_queues[(namespace, name)] = fact
            elif kind == "ClusterQueue":
                state.cluster_queues[name] = fact
            elif kind == "ResourceFlavor":
                state.flavors[name] = fact
                state.flavor_paths[name] = path
            elif kind == "PriorityClass":
                state.priority_classes.add(name)
            elif kind == "Topology":
                state.topologies[name] = list(fact.get("levels") or ())
    return state


def _trainjob_workloads(state: _Given, verdict: Verdict) -> list[tuple[str, Fact]]:
    """A TrainJob's pods, from the runtime it names (controllers.pod_groups)."""
    found = []
    runtimes = {name: fact["object"] for (_, name), fact in state.runtimes.items()}
    for path, fact in state.trainjobs:
        trainjob = fact["object"]
        name = f"TrainJob/{fact['name']}"
        try:
            groups = controllers.pod_groups(trainjob, runtimes)
        except controllers.MissingRuntime as missing:
            verdict.findings.append(
                Finding(
                    path,
                    name,
                    "spec.runtimeRef.name",
                    f"names the training runtime {missing.args[0]!r}, which this cluster is "
                    "not given: its pods are never created (generate the runtime, or name "
                    "one the cluster has)",
                    REFERENCES,
                )
            )
            continue
        except controllers.ControllerRefuses as refused:
            verdict.findings.append(
                Finding(path, name, "spec", f"its controller creates no pods: {refused}", PLACEMENT)
            )
            continue
        except controllers.NotModelled:
            continue  # behaviour the model does not follow: given the benefit of the doubt
        found.append(
            (
                path,
                workload_fact(trainjob, [(g.role, g.count, g.spec, g.annotations) for g in groups]),
            )
        )
    return found


def _waived(fact: Fact, rule: str) -> bool:
    return rule in fact.get("waived", ())


def _workload(
    path: str,
    fact: Fact,
    state: _Given,
    groups: Sequence[NodeGroup],
    nodes_key: str,
    verdict: Verdict,
    memo: Memo,
    cloud: str,
) -> None:
    name, namespace = f"{fact['kind']}/{fact['name']}", fact["namespace"]
    by_name = {g.name: g for g in groups}
    pod_sets = []
    for p in fact["podSets"]:
        asks = p.get("topology")
        topology = (str(asks[0]), str(asks[1])) if asks else None
        shape = memo.shape(p["shape"], cloud)
        pod_sets.append(admission.PodSet(p["name"], p["count"], shape, topology))
    flavors: dict[str, str] = {}
    if fact.get("queue"):
        admitted = _admit(path, fact, pod_sets, state, verdict)
        if admitted is None:
            for pod_set in pod_sets:
                verdict.landings.append(
                    Landing(
                        path,
                        name,
                        namespace,
                        pod_set.name,
                        pod_set.count,
                        None,
                        None,
                        "never admitted by Kueue",
                    )
                )
            return
        flavors = admitted
    for pod_set in pod_sets:
        shape = pod_set.shape
        flavor = flavors.get(pod_set.name)
        spec = state.flavors[flavor].get("spec") or {} if flavor is not None else {}
        if flavor is not None:
            shape = shape.with_flavor(spec.get("nodeLabels") or {}, spec.get("tolerations") or ())
        _references(path, fact, pod_set, state, verdict)
        # Kueue's TAS admits a pod set that requires the hostname level only onto one node
        # with room for all its pods (pkg/cache/scheduler/tas_flavor_snapshot.go), and
        # JobSet's exclusive placement on the hostname puts a Job's pods on one node.
        on_one_node = shape.colocated or (
            flavor is not None and pod_set.topology == ("required", HOSTNAME)
        )
        per_node = pod_set.count if on_one_node else 1
        group_name, reasons = _placed(memo, nodes_key, pod_set, shape, spec, groups, per_node)
        packed_only = False  # each pod has a node, all of them together have none
        if group_name is None and per_node > 1 and not shape.colocated:
            alone, alone_reasons = _placed(memo, nodes_key, pod_set, shape, spec, groups, 1)
            packed_only = alone is not None
            if not packed_only:
                reasons = alone_reasons  # a pod alone fits no node: that is the problem
        group = by_name.get(group_name) if group_name else None
        why = None if group else _why(reasons)
        verdict.landings.append(
            Landing(
                path,
                name,
                namespace,
                pod_set.name,
                pod_set.count,
                group.name if group else None,
                flavor,
                why,
            )
        )
        split = group is not None and _split_by_tas(pod_set, spec, groups, shape)
        if split and not _waived(fact, TOPOLOGY):
            verdict.findings.append(
                Finding(
                    path,
                    name,
                    f"pods {pod_set.name!r}",
                    f"must share one node (required pod affinity on {HOSTNAME}), and "
                    f"flavor {flavor!r} is topology-aware: Kueue picks each pod's node "
                    "without reading pod affinity (kueue v0.17.6 pkg/cache/scheduler TAS) "
                    "and may spread them over several, where the others never start: "
                    "give the workload topology: {required: node}",
                    TOPOLOGY,
                )
            )
        if group is None and packed_only:
            if not _waived(fact, TOPOLOGY):
                verdict.findings.append(
                    Finding(
                        path,
                        name,
                        f"pods {pod_set.name!r}",
                        f"require topology {HOSTNAME} in flavor {flavor!r}: Kueue admits "
                        f"the {pod_set.count} pods only onto one node, and no node of cluster "
                        f"{verdict.cluster!r} holds them all: {why} (ask for a wider level, "
                        "or preferred)",
                        TOPOLOGY,
                    )
                )
            continue
        if group is None and not _waived(fact, PLACEMENT):
            admitted_to = f" as Kueue admits them to flavor {flavor!r}," if flavor else ""
            verdict.findings.append(
                Finding(
                    path,
                    name,
                    f"pods {pod_set.name!r}",
                    f"{pod_set.count} pod(s){admitted_to} fit no node of cluster "
                    f"{verdict.cluster!r}: {why}",
                    PLACEMENT,
                )
            )


def _split_by_tas(
    pod_set: admission.PodSet,
    flavor_spec: Mapping[str, Any],
    groups: Sequence[NodeGroup],
    shape: PodShape,
) -> bool:
    """Co-located pods that Kueue's TAS places node by node on more than one node."""
    if not (flavor_spec.get("topologyName") and shape.colocated and pod_set.count > 1):
        return False
    if pod_set.topology == ("required", HOSTNAME):
        return False
    return sum(g.nodes for g in groups if not selection_problems(shape, g)) > 1


def _placed(
    memo: Memo,
    nodes_key: str,
    pod_set: admission.PodSet,
    shape: PodShape,
    spec: Mapping[str, Any],
    groups: Sequence[NodeGroup],
    per_node: int,
) -> tuple[str | None, dict[str, list[str]]]:
    """The group that takes `per_node` pods of the set on one node, once per shape."""
    key = (nodes_key, id(pod_set.shape), repr(spec), per_node)
    if key not in memo.places:
        found, reasons = place(shape, groups, per_node)
        memo.places[key] = (found.name if found else None, reasons)
    return memo.places[key]


def _why(reasons: Mapping[str, list[str]]) -> str:
    if not reasons:
        return "the cluster has no nodes"
    return "; ".join(f"node group {g!r}: {', '.join(r)}" for g, r in reasons.items())


def _admit(
    path: str, fact: Fact, pod_sets: list[admission.PodSet], state: _Given, verdict: Verdict
) -> dict[str, str] | None:
    name, namespace, queue = f"{fact['kind']}/{fact['name']}", fact["namespace"], fact["queue"]
    local = state.local_queues.get((namespace, queue))
    problem = None
    if local is None:
        problem = (
            f"waits in LocalQueue {queue!r}, which namespace {namespace!r} does not have "
            "on this cluster: it stays suspended forever",
            REFERENCES,
        )
    else:
        cq_name = local.get("clusterQueue")
        cq_fact = state.cluster_queues.get(str(cq_name))
        if cq_fact is None:
            problem = (
                f"LocalQueue {queue!r} points at ClusterQueue {cq_name!r}, which this "
                "cluster does not have: the workload is never admitted",
                REFERENCES,
            )
        else:
            queue_obj = {"metadata": {"name": cq_name}, "spec": cq_fact.get("spec") or {}}
            cluster_queue = admission.cluster_queue_of(queue_obj)
            if cluster_queue.namespaces is not None and namespace not in cluster_queue.namespaces:
                problem = (
                    f"ClusterQueue {cq_name!r} does not select namespace {namespace!r}: "
                    "Kueue admits nothing from its LocalQueue",
                    REFERENCES,
                )
            else:
                flavors = {
                    n: admission.flavor_of({"metadata": {"name": n}, "spec": f.get("spec") or {}})
                    for n, f in state.flavors.items()
                }
                result = admission.admit(pod_sets, cluster_queue, flavors, state.topologies)
                if result.problem is None:
                    return result.flavors
                problem = (result.problem, TOPOLOGY if result.topology else ADMISSION)
    message, rule = problem
    if not _waived(fact, rule):
        verdict.findings.append(Finding(path, name, "metadata.labels", message, rule))
    return None


def _references(
    path: str, fact: Fact, pod_set: admission.PodSet, state: _Given, verdict: Verdict
) -> None:
    if _waived(fact, REFERENCES):
        return
    name, namespace, shape = f"{fact['kind']}/{fact['name']}", fact["namespace"], pod_set.shape
    account = shape.service_account
    if account != "default" and (namespace, account) not in state.accounts:
        verdict.findings.append(
            Finding(
                path,
                name,
                f"pods {pod_set.name!r}",
                f"run as ServiceAccount {account!r}, which namespace {namespace!r} does "
                "not have on this cluster: the pods are never created",
                REFERENCES,
            )
        )
    priority = shape.priority_class
    if priority and priority not in state.priority_classes | BUILTIN_PRIORITY_CLASSES:
        verdict.findings.append(
            Finding(
                path,
                name,
                f"pods {pod_set.name!r}",
                f"use PriorityClass {priority!r}, which this cluster does not have: the "
                "pods are refused",
                REFERENCES,
            )
        )


def _claims(state: _Given, workloads: Sequence[tuple[str, Fact]], verdict: Verdict) -> None:
    mounted: dict[tuple[str, str], list[tuple[str, Fact, int, bool]]] = {}
    for path, fact in workloads:
        for pod_set in fact["podSets"]:
            shape = pod_set["shape"]
            for claim in shape["claims"]:
                mounted.setdefault((fact["namespace"], claim), []).append(
                    (path, fact, pod_set["count"], bool(shape["colocated"]))
                )
    for (namespace, claim), users in sorted(mounted.items()):
        path, fact = users[0][0], users[0][1]
        name = f"{fact['kind']}/{fact['name']}"
        if (namespace, claim) not in state.claims:
            if not _waived(fact, REFERENCES):
                verdict.findings.append(
                    Finding(
                        path,
                        name,
                        "volumes",
                        f"mounts PersistentVolumeClaim {claim!r}, which namespace "
                        f"{namespace!r} does not have on this cluster: the pods stay Pending",
                        REFERENCES,
                    )
                )
            continue
        claim_path, claim_fact = state.claims[(namespace, claim)]
        if claim_fact.get("madeByHand"):
            continue  # made outside the tree (a pvc: source): nothing is known of it
        problems = _claim_problems(state, claim_fact)
        pods = sum(count for _, _, count, _ in users)
        modes = set(claim_fact.get("accessModes") or ())
        shared = modes <= {"ReadWriteOnce", "ReadWriteOncePod"} and pods > 1
        if shared and not all(colocated for *_, colocated in users):
            problems.append(
                f"is {'/'.join(sorted(modes))} but mounted by {pods} pods that may run on "
                "different nodes: only the pods on the node that holds it start (use a "
                "ReadWriteMany class, or co-locate the pods)"
            )
        for problem in problems:
            verdict.findings.append(
                Finding(claim_path, f"PersistentVolumeClaim/{claim}", "spec", problem, STORAGE)
            )


def _claim_problems(state: _Given, claim: Fact) -> list[str]:
    wanted = claim.get("storageClass")
    if not wanted:
        return []  # the cluster's default class decides
    if wanted not in state.classes:
        known = ", ".join(sorted(state.classes))
        return [
            f"asks for StorageClass {wanted!r}, which this cluster does not have "
            f"(it has {known}): the claim stays Pending"
        ]
    driver = facts.PROVISIONERS.get(str(state.classes[wanted]))
    if driver is None:
        return []
    found = []
    unsupported = sorted(set(claim.get("accessModes") or ()) - driver.access_modes)
    if unsupported:
        found.append(
            f"asks for {', '.join(unsupported)}, which StorageClass {wanted!r} "
            f"({state.classes[wanted]}) does not give: {driver.source}"
        )
    size = claim.get("size")
    if size and driver.minimum and memory_bytes(size) < driver.minimum:
        found.append(
            f"asks for {size}, less than StorageClass {wanted!r} provisions ({driver.source})"
        )
    return found


def _system_pods(
    cluster: model.Cluster,
    state: _Given,
    groups: Sequence[NodeGroup],
    operators: Sequence[str],
    addons: set[str],
    where: str,
    verdict: Verdict,
) -> None:
    needed = [facts.DNS_PODS[cluster.cloud]]
    needed += [facts.ADDON_SYSTEM_PODS[a] for a in sorted(addons) if a in facts.ADDON_SYSTEM_PODS]
    provisioners = set(state.classes.values())
    if cluster.cloud == "eks":
        needed.append(facts.EBS_CSI_CONTROLLER)
        if "efs.csi.aws.com" in provisioners:
            needed.append(facts.EFS_CSI_CONTROLLER)
    needed += [facts.OPERATOR_PODS[name] for name in operators if name in facts.OPERATOR_PODS]
    for pod in needed:
        shape = PodShape(
            nodes.Amounts(pod.millicores, pod.memory, 0),
            dict(pod.node_selector),
            tolerations=pod.tolerations,
        )
        group, reasons = place(shape, groups)
        if group is None:
            verdict.findings.append(
                Finding(
                    where,
                    f"Cluster/{cluster.name}",
                    "nodes",
                    f"no node can run {pod.namespace}/{pod.name} ({pod.why}): "
                    f"{_why(reasons)}; give the cluster untainted nodes it fits on",
                    SYSTEM_PODS,
                )
            )


def _flavors(state: _Given, groups: Sequence[NodeGroup], where: str, verdict: Verdict) -> None:
    """Every flavor a ClusterQueue offers selects nodes that exist, and declares the taints
    of the nodes it selects (else Kueue hands it to pods that cannot run there)."""
    used = {
        flavor["name"]
        for queue in state.cluster_queues.values()
        for group in (queue.get("spec") or {}).get("resourceGroups") or []
        for flavor in group.get("flavors") or []
    }
    for name in sorted(used & set(state.flavors)):
        spec = state.flavors[name].get("spec") or {}
        flavor = admission.flavor_of({"metadata": {"name": name}, "spec": spec})
        selected = [
            g for g in groups if all(g.labels.get(k) == v for k, v in flavor.node_labels.items())
        ]
        path = state.flavor_paths.get(name, where)
        obj = f"ResourceFlavor/{name}"
        if not selected or all(g.nodes == 0 for g in selected):
            labels = ", ".join(f"{k}={v}" for k, v in sorted(flavor.node_labels.items()))
            known = ", ".join(g.name for g in groups)
            verdict.findings.append(
                Finding(
                    path,
                    obj,
                    "spec.nodeLabels",
                    f"selects nodes labelled {labels}, and no node of cluster "
                    f"{verdict.cluster!r} has them (its groups: {known}): workloads Kueue "
                    "admits to it stay Pending",
                    FLAVOR_NODES,
                )
            )
            continue
        _flavor_topology(state, name, flavor, selected, path, verdict)
        undeclared = {
            group.name: [
                t
                for t in group.taints
                if t.effect in ("NoSchedule", "NoExecute")
                and t not in flavor.node_taints
                and not tolerates(t, flavor.tolerations)
            ]
            for group in selected
            if group.nodes
        }
        if all(undeclared.values()):  # no node it selects takes pods without the taints
            for group_name, taints in undeclared.items():
                for taint in taints:
                    verdict.findings.append(
                        Finding(
                            path,
                            obj,
                            "spec.nodeTaints",
                            f"selects node group {group_name!r}, tainted "
                            f"{taint.key}={taint.value}:{taint.effect}, without declaring the "
                            "taint: Kueue admits pods that do not tolerate it here and they "
                            "stay Pending (add it to nodeTaints)",
                            FLAVOR_TAINTS,
                        )
                    )


def _flavor_topology(
    state: _Given,
    name: str,
    flavor: admission.Flavor,
    selected: Sequence[NodeGroup],
    path: str,
    verdict: Verdict,
) -> None:
    """A TAS flavor's Topology exists, and the nodes it selects carry every level's label:
    Kueue counts only nodes that have them all (kueue v0.17.6 pkg/util/tas/node.go
    NodeMatchesFlavor), so a level they lack leaves the flavor without capacity."""
    if flavor.topology is None:
        return
    obj = f"ResourceFlavor/{name}"
    levels = state.topologies.get(flavor.topology)
    if levels is None:
        verdict.findings.append(
            Finding(
                path,
                obj,
                "spec.topologyName",
                f"names Topology {flavor.topology!r}, which cluster {verdict.cluster!r} is "
                "not given: Kueue admits nothing to this flavor",
                TOPOLOGY,
            )
        )
        return
    for group in selected:
        missing = [
            level for level in levels if level != HOSTNAME and level not in group.topology_labels
        ]
        if missing and group.nodes:
            verdict.findings.append(
                Finding(
                    path,
                    obj,
                    "spec.topologyName",
                    f"Topology {flavor.topology!r} has level(s) {', '.join(missing)}, which "
                    f"the nodes of group {group.name!r} ({group.machine}) do not carry: "
                    "Kueue's Topology-Aware Scheduling does not see them",
                    TOPOLOGY,
                )
            )


def _renamed(verdict: Verdict, old: str, new: str) -> Verdict:
    """Another cluster's verdict, in this one's names (cluster names are DNS labels, so
    `clusters/<name>/`, `Cluster/<name>` and `cluster '<name>'` are unambiguous)."""

    def path(text: str) -> str:
        before = f"clusters/{old}/"
        if text.startswith(before):
            return f"clusters/{new}/" + text.removeprefix(before)
        return text

    def words(text: str) -> str:
        return text.replace(f"cluster {old!r}", f"cluster {new!r}")

    return Verdict(
        new,
        [
            Landing(
                path(x.path),
                x.workload,
                x.namespace,
                x.pod_set,
                x.pods,
                x.node_group,
                x.flavor,
                x.why_not,
            )
            for x in verdict.landings
        ],
        [
            Finding(
                path(f.path),
                f"Cluster/{new}" if f.object == f"Cluster/{old}" else f.object,
                f.field,
                words(f.message),
                f.rule,
            )
            for f in verdict.findings
        ],
    )
