"""What each cluster is given, as `generate` renders it: every synced path's objects
composed from the rendered units with the patches mlgitops itself writes applied (JSON
6902 operations, and the strategic-merge additions to pod specs), so that `generate`
can ask the cluster model about the tree it is about to write without running
kustomize. People's own patches (the custom/ Components) are not known here: `validate`
builds the real tree, theirs included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from generator.cluster import evaluate, inventory
from generator.config import model
from generator.operator_facts import Operator
from generator.render.gitops import sync_paths
from generator.render.objects import Manifest, Patch, Unit

CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "StorageClass",
        "ClusterQueue",
        "ResourceFlavor",
        "Topology",
        "ClusterTrainingRuntime",
        "PriorityClass",
    }
)


def verdicts(config: model.Config, units: Mapping[str, Unit]) -> list[evaluate.Verdict]:
    found = []
    known: dict[str, list[inventory.Fact]] = {}  # by what a path is made of: many are alike
    memo = evaluate.Memo()
    for cluster in config.clusters:
        given: dict[str, list[inventory.Fact]] = {}
        operators: list[Operator] = []
        infrastructure = None
        for path in sync_paths(config, cluster, dict(units)):
            if path.operator:
                operators.append(path.operator)
                continue
            recipe = _recipe(units, path.path)
            if recipe not in known:
                known[recipe] = [
                    fact for obj in view(units, path.path) for fact in inventory.facts_of(obj)
                ]
            if path.on_management:
                infrastructure = (path.path, known[recipe])
            else:
                given[path.path] = known[recipe]
        found.append(
            evaluate.evaluate(cluster, given, [op.name for op in operators], infrastructure, memo)
        )
    return found


def _recipe(units: Mapping[str, Unit], folder: str) -> str:
    """What a path's build is made of, less its own folder's name and the empty custom/
    Components: two clusters' namespace paths that include the same units with the same
    patches build the same objects."""
    unit = units[folder]
    return json.dumps(
        [
            unit.objects,
            unit.includes,
            [c for c in unit.components if not units[c].seed],
            [[p.target, p.body] for p in unit.patches],
            unit.namespace,
        ],
        sort_keys=True,
        default=str,
    )


def view(units: Mapping[str, Unit], folder: str) -> list[Manifest]:
    """`kustomize build folder`, for the units mlgitops renders. The objects may be the
    units' own: a patch or a namespace copies the object it changes, never the unit's."""
    unit = units[folder]
    objects = list(unit.objects)
    for included in unit.includes:
        objects += view(units, included)
    for component in unit.components:
        mixed = units[component]
        objects += mixed.objects
        for patch in mixed.patches:
            objects = apply(patch, objects)
    for patch in unit.patches:
        objects = apply(patch, objects)
    if unit.namespace:
        objects = [_in_namespace(obj, unit.namespace) for obj in objects]
    return objects


def _in_namespace(obj: Manifest, namespace: str) -> Manifest:
    if obj["kind"] in CLUSTER_SCOPED or obj["metadata"].get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}


def apply(patch: Patch, objects: list[Manifest]) -> list[Manifest]:
    return [_patched(patch, obj) if selects(patch.target, obj) else obj for obj in objects]


def _patched(patch: Patch, obj: Manifest) -> Manifest:
    """A changed copy: only what lies on the patched paths is copied, the rest is shared."""
    if isinstance(patch.body, list):
        changed: Any = obj
        for operation in patch.body:
            parts = [
                p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]
            ]
            changed = _with_operation(changed, parts, operation)
        result: Manifest = changed
        return result
    patched = {**obj, "spec": merged(obj.get("spec") or {}, patch.body.get("spec") or {})}
    annotations = (patch.body.get("metadata") or {}).get("annotations")
    if annotations:  # e.g. a namespace's hand-made claims (render/datasets.py)
        meta = obj["metadata"]
        patched["metadata"] = {
            **meta,
            "annotations": {**meta.get("annotations", {}), **annotations},
        }
    return patched


def _with_operation(node: Any, parts: list[str], operation: Mapping[str, Any]) -> Any:
    """`node` with one RFC 6902 operation (add, replace, remove) applied, as a copy."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        copied = list(node)
        index = len(copied) if head == "-" else int(head)
        if rest:
            copied[index] = _with_operation(copied[index], rest, operation)
        elif operation["op"] == "remove":
            del copied[index]
        elif operation["op"] == "add":
            copied.insert(index, operation["value"])
        else:
            copied[index] = operation["value"]
        return copied
    mapping = dict(node or {})
    if rest:
        mapping[head] = _with_operation(mapping.get(head), rest, operation)
    elif operation["op"] == "remove":
        mapping.pop(head, None)
    else:
        mapping[head] = operation["value"]
    return mapping


def selects(target: Mapping[str, str], obj: Manifest) -> bool:
    meta = obj["metadata"]
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and meta["name"] != target["name"]:
        return False
    if "labelSelector" in target:
        key, _, value = target["labelSelector"].partition("=")
        return (meta.get("labels") or {}).get(key) == value
    return True


def merged(into: Mapping[str, Any], addition: Mapping[str, Any]) -> dict[str, Any]:
    """A strategic merge of maps, as a copy (lists are replaced: the pod spec lists
    mlgitops patches, tolerations, have no merge key)."""
    result = dict(into)
    for key, value in addition.items():
        both = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = merged(result[key], value) if both else value
    return result
