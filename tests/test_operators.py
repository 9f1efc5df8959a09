"""Every operator the engines install runs its release image at the pinned version.

Kueue's and JobSet's `config/default` at their release tags name the staging image
(`us-central1-docker.pkg.dev/k8s-staging-images/...`; Kueue's with tag `main`), so the
engine must set the release one. The image each install resolves to is computed here
the way the engine computes it: the real kustomize applies the override the generated
Application (`source.kustomize.images`) or Kustomization (`spec.images`) carries to what
the upstream path at the tag builds.

Offline, the upstream build is stood in for by its images (operator_facts.upstream_images,
read off `kustomize build` of each path at its tag). With `MLGITOPS_UPSTREAM` naming a
folder of git mirrors (`<owner>+<name>/repo`, bare), the upstream paths themselves are
built at their tags and every container image they run is checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import CONFIGS, generated_from_text, kustomize_build

from generator import operator_facts
from generator.operator_facts import Operator

RUNTIMES_CONFIG = CONFIGS / "runtimes.yaml"
# Registries whose images are not releases: the projects' staging registry.
STAGING = "us-central1-docker.pkg.dev/k8s-staging-images/"
INSTALLED = [
    operator_facts.TRAINING_OPERATOR,
    operator_facts.TRAINER,
    operator_facts.JOBSET,
    operator_facts.KUEUE,
    operator_facts.NVIDIA_DEVICE_PLUGIN,
    operator_facts.DCGM_EXPORTER,
]


def generate(tmp_path: Path, engine: str, workloads_runtime: str | None = None) -> Path:
    text = RUNTIMES_CONFIG.read_text().replace("gitops: flux", f"gitops: {engine}")
    if workloads_runtime:  # JobSet alone is installed only where no TrainJob brings it
        text = text.replace("runtime: trainjob", f"runtime: {workloads_runtime}")
    return generated_from_text(tmp_path, text, engine)


def sync_objects(tree: Path, cluster: str) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((tree / f"clusters/{cluster}/gitops").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
        and (doc["kind"], doc["apiVersion"])
        in (
            ("Application", "argoproj.io/v1alpha1"),
            ("Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
        )
    ]


def overrides_of(sync: dict[str, Any]) -> list[dict[str, str]]:
    """The image override an engine applies, as a kustomization's `images` entries."""
    if sync["kind"] == "Application":
        found = []
        for entry in sync["spec"]["source"].get("kustomize", {}).get("images", []):
            name, _, new = entry.partition("=")
            new_name, _, new_tag = new.rpartition(":")
            found.append({"name": name, "newName": new_name, "newTag": new_tag})
        return found
    images: list[dict[str, str]] = sync["spec"].get("images", [])
    return images


def resolve(images: list[str], overrides: list[dict[str, str]], work: Path) -> set[str]:
    """What kustomize makes of containers running `images` under `overrides`."""
    work.mkdir(parents=True)
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "upstream"},
        "spec": {
            "selector": {"matchLabels": {"app": "upstream"}},
            "template": {
                "metadata": {"labels": {"app": "upstream"}},
                "spec": {"containers": containers},
            },
        },
    }
    (work / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    kustomization: dict[str, Any] = {"resources": ["deployment.yaml"]}
    if overrides:
        kustomization["images"] = overrides
    (work / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return {c["image"] for o in kustomize_build(work) for c in container_specs(o)}


def container_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") not in ("Deployment", "DaemonSet", "StatefulSet"):
        return []
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_the_release_images_are_releases_at_the_pinned_version() -> None:
    for operator in INSTALLED:
        assert operator.release_images, operator.name
        for image in operator.release_images:
            assert not image.startswith(STAGING), (operator.name, image)
            assert not image.endswith((":main", ":latest")), (operator.name, image)
        for override in operator.images:
            assert override.new_tag == operator.tag, operator.name


@pytest.mark.parametrize("engine", ["argocd", "flux"])
@pytest.mark.parametrize("runtime", [None, "jobset"], ids=["with-trainer", "with-jobset"])
def test_each_install_resolves_to_its_release_images(
    engine: str, runtime: str | None, tmp_path: Path
) -> None:
    tree = generate(tmp_path, engine, runtime)
    installed = {
        sync["metadata"]["name"].removeprefix("eks-a-"): sync
        for sync in sync_objects(tree, "eks-a")
    }
    expected = {
        "training-operator",
        "kueue",
        "nvidia-device-plugin",
        "dcgm-exporter",
        "trainer" if runtime is None else "jobset",
    }
    by_name = {op.name: op for op in INSTALLED}
    assert expected <= set(installed)
    for name in sorted(expected):
        operator = by_name[name]
        resolved = resolve(
            list(operator.upstream_images), overrides_of(installed[name]), tmp_path / name
        )
        assert resolved == set(operator.release_images), name


def test_without_the_override_kueue_would_run_its_staging_image(tmp_path: Path) -> None:
    """The failing case the override exists for: the upstream build as it is."""
    resolved = resolve(list(operator_facts.KUEUE.upstream_images), [], tmp_path / "bare")
    assert resolved == {"us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:main"}


def test_the_device_plugin_runs_only_on_gpu_nodes_with_flux(tmp_path: Path) -> None:
    """Flux applies the plugin's static manifest (the only file its source keeps) with the
    node affinity the upstream chart uses for Argo CD: on a node without GPUs the plugin
    exits (failOnInitError), so it must not be scheduled there."""
    tree = generate(tmp_path, "flux")
    (sync,) = [s for s in sync_objects(tree, "eks-a") if s["metadata"]["name"].endswith("plugin")]
    assert sync["spec"]["path"] == "./deployments/static"
    sources = yaml.safe_load_all((tree / "bootstrap/fleet/source/gitrepository.yaml").read_text())
    (source,) = [s for s in sources if s and s["metadata"]["name"] == "nvidia-device-plugin"]
    kept = keep_with_gitignore(
        source["spec"]["ignore"],
        [
            "deployments/static/nvidia-device-plugin.yml",
            "deployments/static/nvidia-device-plugin-compat-with-cpumanager.yml",
            "deployments/static/gpu-feature-discovery-daemonset.yaml",
            "deployments/helm/nvidia-device-plugin/Chart.yaml",
            "README.md",
        ],
    )
    assert kept == ["deployments/static/nvidia-device-plugin.yml"]
    ((patch,),) = [[p for p in sync["spec"]["patches"]]]
    body = yaml.safe_load(patch["patch"])
    affinity = body["spec"]["template"]["spec"]["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
            ]
        }
    ]
    # ...a label mlgitops puts on every EKS GPU node group, and on no other.
    infrastructure = kustomize_build(tree / "clusters/eks-a/infrastructure")
    labelled = {
        o["spec"]["name"]: o["spec"].get("labels", {}).get("nvidia.com/gpu.present")
        for o in infrastructure
        if o["kind"] == "Nodegroup"
    }
    assert labelled == {"gpu": "true", "cpu": None}


def keep_with_gitignore(patterns: str, paths: list[str]) -> list[str]:
    """What git's own ignore rules leave of `paths` (as Flux's source applies them)."""
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"mlgitops-ignore-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        (work / ".git/info/exclude").write_text(patterns)
        for path in paths:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text("x\n")
        listed = subprocess.run(
            ["git", "-C", str(work), "ls-files", "--others", "--exclude-standard"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return sorted(listed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- against the upstream repositories themselves, where a mirror is at hand -------------

UPSTREAM = os.environ.get("MLGITOPS_UPSTREAM")
MIRRORS = {
    operator_facts.TRAINING_OPERATOR.name: "kubeflow+trainer",
    operator_facts.JOBSET.name: "kubernetes-sigs+jobset",
    operator_facts.KUEUE.name: "kubernetes-sigs+kueue",
}


@pytest.mark.skipif(not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors")
@pytest.mark.parametrize("name", sorted(MIRRORS))
def test_the_upstream_build_with_the_override_runs_only_release_images(
    name: str, tmp_path: Path
) -> None:
    operator: Operator = {op.name: op for op in INSTALLED}[name]
    mirror = Path(UPSTREAM or "") / MIRRORS[name] / "repo"
    checkout = tmp_path / "upstream"
    checkout.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(mirror), "archive", operator.tag, operator.path.split("/")[0]],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    upstream = {
        c["image"] for o in kustomize_build(checkout / operator.path) for c in container_specs(o)
    }
    assert upstream == set(operator.upstream_images)
    wrapper = tmp_path / "engine"
    wrapper.mkdir()
    kustomization: dict[str, Any] = {
        "resources": [os.path.relpath(checkout / operator.path, wrapper)]
    }
    if operator.images:
        kustomization["images"] = [
            {"name": i.name, "newName": i.new_name, "newTag": i.new_tag} for i in operator.images
        ]
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    resolved = {c["image"] for o in kustomize_build(wrapper) for c in container_specs(o)}
    assert resolved == set(operator.release_images)
