"""Would some worker ever admit each dispatched run? (render/dispatch.py)

A run the management cluster holds goes, through its LocalQueue, ClusterQueue and
MultiKueue AdmissionCheck, to the workers its MultiKueueConfig lists; MultiKueue creates
it on the first worker whose own Kueue admits it (kubernetes-sigs/kueue@v0.17.6
site/content/en/docs/concepts/multikueue.md "Job Flow"). So each run is evaluated on every
one of those workers as if that worker's tree held it (its nodes, queues, flavors, claims,
ServiceAccounts: evaluate.py), and reported only when none of them could ever run it: a
worker that cannot just never admits it, and the run goes to another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.cluster import evaluate
from generator.cluster.inventory import QUEUE_LABEL, Fact
from generator.config import model
from generator.render.dispatch import MULTIKUEUE_CONTROLLER

DISPATCH = "MLG032"


@dataclass(frozen=True)
class ClusterInput:
    """What evaluate.evaluate is given for one cluster."""

    given: Mapping[str, Sequence[Fact]]
    operators: Sequence[str]
    infrastructure: tuple[str, Sequence[Fact]] | None


def dispatched_findings(
    clusters: Sequence[model.Cluster],
    inputs: Mapping[str, ClusterInput],
    manager: Mapping[str, Sequence[Fact]],
) -> list[evaluate.Finding]:
    """`manager`: the facts of each path synced to the management cluster."""
    every = [fact for found in manager.values() for fact in found]
    runs = [
        (path, fact)
        for path, found in manager.items()
        for fact in found
        if fact.get("type") == "workload" and fact.get("queue")
    ]
    if not runs:
        return []
    workers_of = {_key(fact): _workers(fact, every) for _, fact in runs}
    by_name: dict[str, model.Cluster] = {c.name: c for c in clusters}
    reasons: dict[tuple[str, str, str], list[str]] = {_key(f): [] for _, f in runs}
    for name in sorted({w for ws in workers_of.values() for w in ws}):
        cluster, given = by_name.get(name), inputs.get(name)
        if cluster is None or given is None:
            continue
        sent = [(path, fact) for path, fact in runs if name in workers_of[_key(fact)]]
        extra: dict[str, list[Fact]] = {}
        for path, fact in sent:
            extra.setdefault(f"{path} (on {name})", []).append(fact)
        verdict = evaluate.evaluate(
            cluster, {**given.given, **extra}, given.operators, given.infrastructure
        )
        for path, fact in sent:
            objects = f"{fact['kind']}/{fact['name']}"
            found = [
                f.message
                for f in verdict.findings
                if f.path == f"{path} (on {name})" and f.object == objects
            ]
            reasons[_key(fact)].append(f"{name!r}: {found[0]}" if found else "")
    findings = []
    for path, fact in runs:
        workers, why = workers_of[_key(fact)], reasons[_key(fact)]
        where = f"{fact['kind']}/{fact['name']}"
        if not workers:
            findings.append(
                evaluate.Finding(
                    path,
                    where,
                    f"metadata.labels.{QUEUE_LABEL}",
                    f"its queue {fact['queue']!r} reaches no worker: no LocalQueue, "
                    "ClusterQueue with a MultiKueue AdmissionCheck and MultiKueueConfig "
                    "lead from it to a cluster, so it is never dispatched",
                    DISPATCH,
                )
            )
        elif why and all(why):
            findings.append(
                evaluate.Finding(
                    path,
                    where,
                    "spec",
                    "no worker could ever admit it, so it waits forever: " + "; ".join(why),
                    DISPATCH,
                )
            )
    return findings


def _key(fact: Fact) -> tuple[str, str, str]:
    return (str(fact.get("kind")), str(fact.get("namespace")), str(fact.get("name")))


def _workers(run: Fact, manager: Sequence[Fact]) -> list[str]:
    """LocalQueue -> ClusterQueue -> its MultiKueue AdmissionChecks -> their
    MultiKueueConfigs' clusters."""
    by = {(f.get("type"), f.get("namespace"), f.get("name")): f for f in manager}
    local = by.get(("LocalQueue", run.get("namespace"), run.get("queue")))
    if local is None:
        return []
    queue = next(
        (
            f
            for f in manager
            if f.get("type") == "ClusterQueue" and f.get("name") == local.get("clusterQueue")
        ),
        None,
    )
    if queue is None:
        return []
    strategy = (queue.get("spec") or {}).get("admissionChecksStrategy") or {}
    names = [c.get("name") for c in strategy.get("admissionChecks") or []]
    found: list[str] = []
    for check in manager:
        if check.get("type") != "AdmissionCheck" or check.get("name") not in names:
            continue
        spec = check.get("spec") or {}
        parameters = spec.get("parameters") or {}
        if spec.get("controllerName") != MULTIKUEUE_CONTROLLER:
            continue
        for config in manager:
            if config.get("type") == "MultiKueueConfig" and config.get("name") == parameters.get(
                "name"
            ):
                found += [str(c) for c in config.get("clusters") or []]
    return found
