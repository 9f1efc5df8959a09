"""Pure rendering: config in, kustomize units of plain objects out. No I/O of any kind."""

from __future__ import annotations

from generator.config import model
from generator.render.ci import render_ci_units
from generator.render.clusters import render_cluster_units
from generator.render.dispatch import render_dispatch_units
from generator.render.entrypoints import render_entrypoint_units
from generator.render.gitops import render_gitops_units
from generator.render.gpu_metrics import render_gpu_metrics_units
from generator.render.objects import Document, Unit
from generator.render.overlays import render_overlay_units
from generator.render.platform import render_platform_units
from generator.render.workloads import render_namespace_units, render_workload_units


def render(config: model.Config) -> list[Unit | Document]:
    units: list[Unit | Document] = [
        *render_namespace_units(config),
        *render_workload_units(config),
        *render_overlay_units(config),
        *render_entrypoint_units(config),
        *render_cluster_units(config),
        *render_platform_units(config),
        *render_gpu_metrics_units(config),
        *render_dispatch_units(config),
    ]
    return [*units, *render_gitops_units(config, units), *render_ci_units(config)]
