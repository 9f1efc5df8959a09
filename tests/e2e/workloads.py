"""The seeds' training workloads, built as the local cluster runs them, and breakages of them.

The issue's shapes are pinned on a copy of the seeds config (PyTorch: 3 workers;
TensorFlow: 2 workers and 1 parameter server), so a later edit of the seeds cannot
quietly shrink what these tests prove. The copy is generated with the real CLI and each
namespace is built with the real kustomize, exactly as Argo CD or Flux would build the
path `clusters/local/workloads/namespaces/<namespace>`.
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

CLUSTER = "local"
IMAGE_FOLDER = Path(__file__).resolve().parent / "image"
SHAPES = {"pytorch": {"workers": 3}, "tensorflow": {"workers": 2, "parameterServers": 1}}


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
    config_file = folder / "mlgitops.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    tree = folder / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(config_file), "--out", str(tree)]
    )
    assert result.exit_code == 0, result.output
    built = {}
    for framework, workload in chosen.items():
        path = tree / "clusters" / CLUSTER / "workloads" / "namespaces" / workload["namespace"]
        built[framework] = Workload(
            workload["name"], workload["namespace"], kustomize_build(path), workload
        )
    return built


def with_trainer_edited(
    workload: Workload, edit: Callable[[dict[str, Any]], None]
) -> list[kube.Manifest]:
    """A copy of the built objects whose Job's trainer container `edit` has changed."""
    objects = copy.deepcopy(workload.objects)
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
