"""The seeds' training workloads, built as the local cluster runs them, and breakages of them.

The issue's shapes are pinned on a copy of the seeds config (PyTorch: 3 workers;
TensorFlow: 2 workers and 1 parameter server, and the chief that coordinates them), so a
later edit of the seeds cannot quietly shrink what these tests prove. The copy is
generated with the real CLI and each namespace is built with the real kustomize, exactly
as Argo CD or Flux would build the path `clusters/local/workloads/namespaces/<namespace>`.

The same workloads under the other runtimes (`RUNTIMES`) come from a second copy of the
seeds whose workloads are those, renamed by runtime, and nothing else.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kube
import yaml
from click.testing import CliRunner
from helpers import SEEDS, kustomize_build

from generator.cli import main
from generator.cluster import controllers

CLUSTER = "local"
IMAGE_FOLDER = Path(__file__).resolve().parent / "image"
SHAPES = {"pytorch": {"workers": 3}, "tensorflow": {"workers": 2, "parameterServers": 1}}
# key: (framework, what changes). The PyTorchJob leaves `elastic` out: its bounds are then
# both `workers`, and its pods do not restart (`restartPolicy: Never`).
RUNTIMES: dict[str, tuple[str, dict[str, Any]]] = {
    "jobset-pytorch": ("pytorch", {"runtime": "jobset", "name": "resnet-ddp-jobset"}),
    "jobset-tensorflow": ("tensorflow", {"runtime": "jobset", "name": "bert-finetune-jobset"}),
    "pytorchjob": ("pytorch", {"runtime": "pytorchjob", "name": "resnet-ddp-elastic"}),
}


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    objects: list[kube.Manifest]
    config: dict[str, Any]


def build_seeds_workloads(folder: Path) -> dict[str, Workload]:
    """The first workload of each framework in the seeds, by framework, built for `local`."""
    config = yaml.safe_load(SEEDS.read_text())
    chosen = {}
    for framework, shape in SHAPES.items():
        workload = next(w for w in config["workloads"] if w["framework"] == framework)
        workload.update(shape)
        chosen[framework] = workload
    return _generate_and_build(config, chosen, folder)


def build_runtime_workloads(
    folder: Path, variants: dict[str, tuple[str, dict[str, Any]]] | None = None
) -> dict[str, Workload]:
    """The seeds' workloads (in their pinned shapes) under each of `variants` (by
    default `RUNTIMES`), by key."""
    config = yaml.safe_load(SEEDS.read_text())
    chosen = {}
    for key, (framework, change) in (variants or RUNTIMES).items():
        workload = next(w for w in config["workloads"] if w["framework"] == framework)
        chosen[key] = {**copy.deepcopy(workload), **SHAPES[framework], **change}
    config["workloads"] = list(chosen.values())
    return _generate_and_build(config, chosen, folder)


def _generate_and_build(
    config: dict[str, Any], chosen: dict[str, dict[str, Any]], folder: Path
) -> dict[str, Workload]:
    # The seeds' secrets come from a cloud store, or on kind from `kubectl create secret`
    # by hand: the pods here run without them.
    for workload in config["workloads"]:
        workload.pop("secrets", None)
        workload.pop("imagePullSecrets", None)
    config_file = folder / "mlgitops.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    tree = folder / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(config_file), "--out", str(tree)]
    )
    assert result.exit_code == 0, result.output
    namespaces = tree / "clusters" / CLUSTER / "workloads" / "namespaces"
    builds = {
        ns: kustomize_build(namespaces / ns) for ns in {w["namespace"] for w in chosen.values()}
    }
    return {
        key: Workload(w["name"], w["namespace"], builds[w["namespace"]], w)
        for key, w in chosen.items()
    }


def workload_object(workload: Workload) -> kube.Manifest:
    """The object the workload's controller creates its pods from (Job, JobSet, ...)."""
    (found,) = [
        o
        for o in workload.objects
        if o["kind"] in controllers.TRAINING_KINDS and o["metadata"]["name"] == workload.name
    ]
    return found


def dataset_claims(workload: Workload) -> dict[str, str]:
    """Each dataset the workload declares -> the claim its built pods mount for it (the
    volume `data-<name>`): on a local cluster, the claim a person fills."""
    names = [d["name"] for d in workload.config.get("data") or []]
    if not names:
        return {}
    claims: dict[str, set[str]] = {name: set() for name in names}
    for pod in controllers.pods(workload_object(workload)):
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        for name in names:
            volume = volumes.get(f"data-{name}")
            assert volume and "persistentVolumeClaim" in volume, f"{pod.name}: no claim for {name}"
            claims[name].add(volume["persistentVolumeClaim"]["claimName"])
    assert all(len(c) == 1 for c in claims.values()), f"pods mount different claims: {claims}"
    return {name: next(iter(c)) for name, c in claims.items()}


def with_trainer_edited(
    workload: Workload, edit: Callable[[dict[str, Any]], None]
) -> list[kube.Manifest]:
    """A copy of the built objects whose trainer containers `edit` has changed: the Job's,
    or each replicated job's of a JobSet."""
    objects = copy.deepcopy(workload.objects)
    if workload.config.get("runtime", "job") == "jobset":
        jobset = kube.find(objects, "JobSet", workload.name)
        for rjob in jobset["spec"]["replicatedJobs"]:
            edit(rjob["template"]["spec"]["template"]["spec"]["containers"][0])
    else:
        job = kube.find(objects, "Job", workload.name)
        edit(job["spec"]["template"]["spec"]["containers"][0])
    return objects


def replace_in_args(workload: Workload, old: str, new: str) -> list[kube.Manifest]:
    def edit(container: dict[str, Any]) -> None:
        assert any(old in arg for arg in container["args"]), f"{old!r} not in the args"
        container["args"] = [arg.replace(old, new) for arg in container["args"]]

    return with_trainer_edited(workload, edit)


def replace_in_command(workload: Workload, old: str, new: str) -> list[kube.Manifest]:
    def edit(container: dict[str, Any]) -> None:
        assert any(old in part for part in container["command"]), f"{old!r} not in the command"
        container["command"] = [part.replace(old, new) for part in container["command"]]

    return with_trainer_edited(workload, edit)
