"""`mlgitops generate` end to end: golden trees, real kustomize builds, strict schemas,
determinism, and the repository's own committed tree."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, ROOT, SEEDS, build_and_validate, kustomize_build

from generator import __version__
from generator.cli import main
from generator.config.load import load_config_file, load_default_config
from generator.layout import layout
from generator.render import render

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_CONFIGS = sorted(CONFIGS.glob("*.yaml"))


def generate(config: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(
        main, ["generate", "--config", str(config), "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    return None


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_help_and_version() -> None:
    runner = CliRunner()
    assert "generate" in runner.invoke(main, ["-h"]).output
    assert "--check" in runner.invoke(main, ["generate", "--help"]).output
    assert runner.invoke(main, ["--version"]).output == f"mlgitops, version {__version__}\n"


def test_generate_without_config_uses_the_builtin_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 0, result.output
    assert "using the built-in default config" in result.stderr
    files = layout(render(load_default_config()))
    created = len(files.files) + len(files.seeds)
    assert f"{created} created, 0 changed, 0 deleted, 0 unchanged" in result.stderr
    assert (tmp_path / "base" / "resnet-ddp" / "job.yaml").is_file()
    assert (tmp_path / "base" / "bert-finetune" / "persistentvolumeclaim.yaml").is_file()


def test_generate_reads_mlgitops_yaml_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(CONFIGS / "vision-flux.yaml", tmp_path / "mlgitops.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 0, result.output
    assert "built-in default" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == [
        "detr-train",
        "namespaces",
        "single-node-finetune",
    ]


@pytest.mark.parametrize("config", GOLDEN_CONFIGS, ids=lambda p: p.stem)
def test_golden_tree(config: Path, tmp_path: Path) -> None:
    generate(config, tmp_path)
    golden = GOLDEN / config.stem
    if os.environ.get("MLGITOPS_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(tmp_path, golden)
    expected, actual = tree_files(golden), tree_files(tmp_path)
    assert sorted(actual) == sorted(expected), "files differ from the golden tree"
    for path, content in expected.items():
        if actual[path] != content:
            diff = difflib.unified_diff(
                content.decode().splitlines(),
                actual[path].decode().splitlines(),
                f"golden/{path}",
                f"generated/{path}",
                lineterm="",
            )
            pytest.fail("\n".join(list(diff)[:40]))


@pytest.mark.parametrize("config", [SEEDS, *GOLDEN_CONFIGS], ids=lambda p: p.stem)
def test_every_kustomization_builds_and_passes_strict_schemas(config: Path, tmp_path: Path) -> None:
    generate(config, tmp_path)
    built = build_and_validate(tmp_path, "1.33")
    kinds = {obj["kind"] for objects in built.values() for obj in objects}
    assert {"Job", "Namespace", "NetworkPolicy", "Service", "ServiceAccount"} <= kinds


def test_seeds_bases_hold_what_the_scenario_needs(tmp_path: Path) -> None:
    generate(SEEDS, tmp_path)
    built = build_and_validate(tmp_path)
    by_folder = {str(folder.relative_to(tmp_path)): objs for folder, objs in built.items()}
    assert sorted(f for f in by_folder if f.startswith("base/")) == [
        "base/bert-finetune",
        "base/namespaces/distributed-training",
        "base/namespaces/ml-workloads",
        "base/resnet-ddp",
    ]
    job = next(o for o in by_folder["base/resnet-ddp"] if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert job["spec"]["completionMode"] == "Indexed"
    assert pod["subdomain"] == "resnet-ddp"
    trainer = pod["containers"][0]
    assert trainer["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1}
    service = next(o for o in by_folder["base/resnet-ddp"] if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert (
        service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    )
    claim = next(o for o in by_folder["base/bert-finetune"] if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    egress = next(
        o
        for o in by_folder["base/bert-finetune"]
        if o["metadata"]["name"] == "bert-finetune-allow-egress"
    )
    assert egress["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 5432}],
        }
    ]


def test_a_shared_namespace_is_emitted_once(tmp_path: Path) -> None:
    generate(CONFIGS / "recsys-tensorflow.yaml", tmp_path)
    namespaces = list((tmp_path / "base").rglob("namespace.yaml"))
    assert [str(p.relative_to(tmp_path)) for p in namespaces] == [
        "base/namespaces/recsys-train/namespace.yaml"
    ]


def test_two_runs_write_the_same_bytes_and_touch_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    generate(SEEDS, first)
    generate(SEEDS, second)
    assert tree_files(first) == tree_files(second)
    mtimes = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["generate", "--config", str(SEEDS), "--out", str(first)])
    assert result.exit_code == 0
    owned = len(layout(render(load_config_file(SEEDS))).files)
    assert f"0 created, 0 changed, 0 deleted, {owned} unchanged" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == mtimes


def test_the_repository_tree_is_generated_from_its_own_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["generate", "--check"])
    assert result.exit_code == 0, result.stderr
    assert (ROOT / "mlgitops.yaml").read_text() == (
        ROOT / "generator" / "defaults" / "mlgitops.yaml"
    ).read_text()


def test_builtin_default_is_the_reference_scenario() -> None:
    from generator.config.load import load_config_file, load_default_config

    assert load_default_config() == load_config_file(SEEDS)


def test_the_builtin_example_generates_without_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer's first run: no config, the built-in example, nothing to act on."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def fleet_config(tmp_path: Path, extra_workload: dict[str, Any] | None = None) -> Path:
    """The seeds scenario on two EKS clusters and a kind cluster, with `resnet-ddp` on
    the first EKS cluster only."""
    config = yaml.safe_load(SEEDS.read_text())
    eks = next(c for c in config["clusters"] if c["cloud"] == "eks")
    config["clusters"] = [
        eks,
        {**eks, "name": "eks-second"},
        {"name": "local", "cloud": "local"},
    ]
    config["workloads"][0]["clusters"] = [eks["name"]]
    if extra_workload:
        config["workloads"].append(extra_workload)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_namespace_lists_its_workloads_once_per_cloud_and_each_cluster_adds_its_own(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    generate(fleet_config(tmp_path), out)

    def listed(folder: str) -> list[str]:
        text = (out / folder / "kustomization.yaml").read_text()
        return yaml.safe_load(text)["resources"]

    assert listed("overlays/eks/namespaces/ml-workloads") == [
        "../../../../base/namespaces/ml-workloads",
        "../../../../base/bert-finetune",
    ]
    for cluster in ("eks-training", "eks-second"):
        # and the cluster's own secret store and ExternalSecrets (render/secrets.py)
        assert listed(f"clusters/{cluster}/workloads/namespaces/ml-workloads") == [
            "../../../../../overlays/eks/namespaces/ml-workloads",
            "externalsecret.yaml",
            "secretstore.yaml",
        ]
    # resnet-ddp runs on one EKS cluster only: no cloud-wide list, and only there.
    assert not (out / "overlays/eks/namespaces/distributed-training").exists()
    # (its EKS overlay: the S3 volume and claim of its dataset)
    assert listed("clusters/eks-training/workloads/namespaces/distributed-training") == [
        "../../../../../base/namespaces/distributed-training",
        "../../../../../overlays/eks/workloads/resnet-ddp",
        "externalsecret.yaml",
        "secretstore.yaml",
    ]
    assert not (out / "clusters/eks-second/workloads/namespaces/distributed-training").exists()
    built = kustomize_build(out / "clusters/eks-second/workloads")
    jobs = sorted(o["metadata"]["name"] for o in built if o["kind"] == "Job")
    assert jobs == ["bert-finetune"]
    built = kustomize_build(out / "clusters/eks-training/workloads")
    jobs = sorted(o["metadata"]["name"] for o in built if o["kind"] == "Job")
    assert jobs == ["bert-finetune", "resnet-ddp"]


def test_adding_a_workload_touches_its_own_files_and_the_lists_that_name_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    generate(fleet_config(tmp_path), out)
    before = tree_files(out)
    workload = {
        "name": "gpt-small",
        "namespace": "ml-workloads",
        "framework": "pytorch",
        "image": "registry.example.com/ml/gpt:1.0.0",
        "command": ["python", "train.py"],
        "workers": 2,
        "resources": {"cpu": "2", "memory": "8Gi"},
    }
    generate(fleet_config(tmp_path, workload), out)
    after = tree_files(out)
    changed = {p for p in after if before.get(p) != after[p]} | (before.keys() - after.keys())
    own = {p for p in changed if p.startswith(("base/gpt-small/", "overlays/local/workloads/"))}
    assert own and all("gpt-small" in p for p in own)
    # and, the EKS clusters having workload identity (the seeds' dataset is read through
    # it), the association of its ServiceAccount with the training role on each
    assert changed - own == {
        ".mlgitops-state.json",
        "overlays/eks/namespaces/ml-workloads/kustomization.yaml",
        "overlays/local/namespaces/ml-workloads/kustomization.yaml",
        "clusters/eks-training/infrastructure/podidentityassociation.yaml",
        "clusters/eks-second/infrastructure/podidentityassociation.yaml",
    }
