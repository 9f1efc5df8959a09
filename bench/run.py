#!/usr/bin/env python3
"""Benchmark mlgitops on fleet-sized configs and print figures, each next to a reference
measured in the same run on the same machine:

- generate: wall time, peak memory, files, bytes and objects written for N workloads on
  30 clusters, against serialising the same objects with PyYAML's C dumper alone (the
  floor for a Python generator); growth from the smallest to the largest fleet;
- a no-change regenerate (`--check`) of the largest fleet, and `mlgitops --help`;
- review: the files one changed and one added workload touch, and how much of the
  tree is repeated per cluster;
- kustomize: one build of a whole cluster against the per-namespace builds the GitOps
  engine applies and the per-workload builds, for the same objects;
- validate: objects per second of the schema stage against the `kubernetes-validate`
  command on the same rendered YAML; a full `mlgitops validate` of a 300-workload,
  30-cluster fleet with an empty cache, again with nothing changed, and after one
  workload changed.

    .venv/bin/python bench/run.py [--workloads 100 300 1000] [--clusters 30] [--skip-validate]

The fleets come from bench/make_fleet.py. Needs kubectl or kustomize for the kustomize
and validate figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: `python bench/run.py` finds the package
MAKE_FLEET = ROOT / "bench" / "make_fleet.py"
SCHEMAS = ROOT.parent / "shared" / "schemas"
MLGITOPS = [
    sys.executable,
    "-c",
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from generator.cli import main; main()",
]
VALIDATE_WORKLOADS = 300


def fleet_config(folder: Path, workloads: int, clusters: int) -> Path:
    path = folder / f"fleet-{workloads}x{clusters}.yaml"
    with path.open("w") as out:
        subprocess.run(
            [
                sys.executable,
                str(MAKE_FLEET),
                "--workloads",
                str(workloads),
                "--clusters",
                str(clusters),
            ],
            stdout=out,
            check=True,
        )
    return path


Run = subprocess.CompletedProcess[str]


def timed(command: list[str]) -> tuple[float, int, Run]:
    """Wall seconds and peak memory (KiB) of one child process."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        code = os.waitstatus_to_exitcode(status)
        run = subprocess.CompletedProcess(command, code, stdout.read(), stderr.read())
    return elapsed, usage.ru_maxrss, run


def cpu_seconds(command: list[str]) -> float:
    """User and system seconds of one child process: its own work, whatever else runs."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise RuntimeError(f"{command} failed: {stderr.read().decode()}")
    return usage.ru_utime + usage.ru_stime


def total_cpu_seconds(commands: list[list[str]]) -> float:
    """The CPU seconds of many builds, run a few at a time to save wall time."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return sum(pool.map(cpu_seconds, commands))


def serialisation_floor(config: Path) -> tuple[float, int]:
    """Seconds to dump every rendered object with PyYAML's C dumper, and the object count."""
    from generator.config.load import load_config_file
    from generator.render import render
    from generator.render.objects import Unit

    rendered = render(load_config_file(config))
    objects = [obj for unit in rendered for obj in unit.objects]
    objects += [p.body for u in rendered if isinstance(u, Unit) for p in u.patches]
    started = time.perf_counter()
    yaml.dump_all(objects, Dumper=yaml.CSafeDumper, sort_keys=False)
    return time.perf_counter() - started, len(objects)


def generate(config: Path, out: Path, *extra: str) -> tuple[float, int, Run]:
    return timed([*MLGITOPS, "generate", "--config", str(config), "--out", str(out), *extra])


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".mlgitops-state")
    }


def bench_generate(folder: Path, sizes: list[int], clusters: int) -> dict[int, Path]:
    print(f"generate, {clusters} clusters")
    print(
        f"{'workloads':>9} {'seconds':>8} {'peak MiB':>8} {'files':>6} {'KiB':>7} "
        f"{'objects':>8} {'floor s':>8} {'x floor':>7}"
    )
    seconds, trees = {}, {}
    for workloads in sizes:
        config = fleet_config(folder, workloads, clusters)
        out = folder / f"out-{workloads}"
        elapsed, peak, run = generate(config, out)
        assert run.returncode == 0, run.stderr
        floor, objects = serialisation_floor(config)
        files = [p for p in out.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        seconds[workloads], trees[workloads] = elapsed, out
        print(
            f"{workloads:>9} {elapsed:>8.2f} {peak / 1024:>8.0f} {len(files):>6} "
            f"{size / 1024:>7.0f} {objects:>8} {floor:>8.2f} {elapsed / floor:>7.1f}"
        )
    small, large = min(sizes), max(sizes)
    print(f"growth: {large / small:.0f}x workloads -> {seconds[large] / seconds[small]:.1f}x time")
    config = folder / f"fleet-{large}x{clusters}.yaml"
    elapsed, _, run = generate(config, trees[large], "--check")
    assert run.returncode == 0, run.stderr
    print(f"no-change regenerate (--check) of {large} workloads: {elapsed:.2f} s")
    elapsed, _, _ = timed([*MLGITOPS, "--help"])
    print(f"mlgitops --help: {elapsed:.2f} s")
    return trees


def edited_config(config: Path, target: Path, change: str) -> Path:
    """The fleet with one workload's image tag changed, or one workload added."""
    document = yaml.safe_load(config.read_text())
    workloads = document["workloads"]
    if change == "change":
        middle = workloads[len(workloads) // 2]
        middle["image"] = middle["image"].rsplit(":", 1)[0] + ":9.9.9"
    else:
        workloads.append({**workloads[1], "name": "job-added"})
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def bench_review(folder: Path, tree: Path, workloads: int, clusters: int) -> None:
    """What a pull request for one workload shows, and what is repeated per cluster."""
    config = folder / f"fleet-{workloads}x{clusters}.yaml"
    copy = folder / "review"
    shutil.copytree(tree, copy)
    before = tree_files(copy)
    for change, done in (("change", "changed"), ("add", "added")):
        edited = edited_config(config, folder / f"{change}.yaml", change)
        _, _, run = generate(edited, copy)
        assert run.returncode == 0, run.stderr
        after = tree_files(copy)
        touched = sorted(p for p in after.keys() | before.keys() if before.get(p) != after.get(p))
        folders = collections.Counter(_shape(p) for p in touched)
        shapes = ", ".join(f"{n} in {shape}" for shape, n in sorted(folders.items()))
        print(f"one workload {done}, of {workloads}: {len(touched)} files ({shapes})")
        generate(config, copy)
        before = tree_files(copy)
    per_cluster = {p: c for p, c in before.items() if p.startswith("clusters/")}
    repeated = collections.Counter(per_cluster.values())
    copies = sum(n - 1 for n in repeated.values() if n > 1)
    copied_bytes = sum(len(c) * (n - 1) for c, n in repeated.items() if n > 1)
    total = sum(len(c) for c in before.values())
    naming = sum(1 for c in per_cluster.values() if re.search(rb"/base/job-\d+", c))
    print(
        f"per-cluster files: {len(per_cluster)}, {copies} byte-identical to another "
        f"cluster's ({copied_bytes / 1024:.0f} KiB of {total / 1024:.0f} KiB), "
        f"{naming} name a workload"
    )


def _shape(path: str) -> str:
    """The folder of a path, with workload, namespace, cloud and cluster generalised."""
    shape = re.sub(r"job-(\d+|added)", "<workload>", path.rsplit("/", 1)[0] + "/")
    shape = re.sub(r"team-\d+", "<ns>", shape)
    shape = re.sub(r"^overlays/(eks|gke|local)/namespaces/", "overlays/<cloud>/namespaces/", shape)
    return re.sub(r"^clusters/[^/]+", "clusters/<cluster>", shape)


def kustomize() -> list[str]:
    from generator.validate.kustomize import kustomize_command

    return kustomize_command()


def bench_kustomize(trees: dict[int, Path]) -> None:
    """One build of everything a cluster runs, against the builds the layout makes."""
    command = kustomize()
    print(
        "kustomize CPU seconds for one EKS cluster's workloads, one build vs the "
        "per-namespace builds (what GitOps applies) vs the per-workload builds"
    )
    print(f"{'workloads':>9} {'objects':>8} {'one build':>9} {'per ns':>7} {'per workload':>12}")
    for workloads, tree in sorted(trees.items()):
        cluster = next(p for p in sorted((tree / "clusters").iterdir()) if p.name.startswith("eks"))
        whole = subprocess.run(
            [*command, str(cluster / "workloads")], capture_output=True, text=True, check=True
        )
        objects = sum(1 for line in whole.stdout.splitlines() if line.startswith("kind: "))
        one = cpu_seconds([*command, str(cluster / "workloads")])
        paths = [cluster / "workloads" / "storage"]
        paths += sorted((cluster / "workloads" / "namespaces").iterdir())
        per_namespace = total_cpu_seconds([[*command, str(p)] for p in paths])
        bases = [p for p in sorted((tree / "base").iterdir()) if p.name != "namespaces"]
        bases += sorted((tree / "base" / "namespaces").iterdir())
        per_workload = total_cpu_seconds([[*command, str(p)] for p in bases])
        print(
            f"{workloads:>9} {objects:>8} {one:>9.2f} {per_namespace:>7.2f} {per_workload:>12.2f}"
        )


def bench_schema_stage(folder: Path, tree: Path) -> None:
    """The same rendered built-in objects through both validators."""
    from generator.validate.schemas import SchemaSet

    documents = [
        d
        for p in sorted((tree / "base").rglob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in yaml.safe_load_all(p.read_text())
        if d
    ][:600]
    stream = folder / "objects.yaml"
    stream.write_text(yaml.safe_dump_all(documents))
    schemas = SchemaSet([])
    started = time.perf_counter()
    problems = sum(1 for d in documents for _ in schemas.errors(d, "1.33"))
    ours = time.perf_counter() - started
    assert problems == 0
    cli = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    assert cli, "kubernetes-validate is installed with mlgitops"
    started = time.perf_counter()
    subprocess.run([cli, "--strict", "-k", "1.33", str(stream)], check=True, capture_output=True)
    theirs = time.perf_counter() - started
    print(
        f"schema stage, {len(documents)} objects: mlgitops {len(documents) / ours:,.0f}/s, "
        f"kubernetes-validate {len(documents) / theirs:,.0f}/s: {theirs / ours:.0f}x faster"
    )


def bench_validate(folder: Path, tree: Path, workloads: int, clusters: int) -> None:
    config = folder / f"fleet-{workloads}x{clusters}.yaml"
    shutil.copy(config, tree / "mlgitops.yaml")
    cache = folder / "validate-cache"
    command = [*MLGITOPS, "validate", str(tree), "--schema-location", str(SCHEMAS)]
    command += ["--cache-dir", str(cache)]
    print(f"validate, {workloads} workloads on {clusters} clusters, {os.cpu_count()} cores:")
    for label in ("empty cache", "nothing changed", "one workload changed"):
        if label == "one workload changed":
            _, _, run = generate(edited_config(config, folder / "one.yaml", "change"), tree)
            assert run.returncode == 0, run.stderr
        elapsed, peak, run = timed(command)
        assert run.returncode == 0, run.stdout + run.stderr
        summary = run.stderr.strip().splitlines()[-1].removeprefix("mlgitops: ")
        print(f"  {label:<21} {elapsed:>6.1f} s, peak {peak / 1024:.0f} MiB: {summary}")


def bench_cluster_model(folder: Path, tree: Path, workloads: int, clusters: int) -> None:
    """What the cluster model adds to a validate run whose builds all come from the cache:
    the same cached run with the model and without it (`--no-cluster-model`), best of
    three each, after one run that fills the cache."""
    config = folder / f"fleet-{workloads}x{clusters}.yaml"
    shutil.copy(config, tree / "mlgitops.yaml")
    cache = folder / "model-cache"
    command = [*MLGITOPS, "validate", str(tree), "--schema-location", str(SCHEMAS)]
    command += ["--cache-dir", str(cache)]
    _, _, run = timed(command)
    assert run.returncode == 0, run.stdout + run.stderr
    with_model = min(timed(command)[0] for _ in range(3))
    without = min(timed([*command, "--no-cluster-model"])[0] for _ in range(3))
    print(
        f"cluster model, {workloads} workloads on {clusters} clusters, cached validate: "
        f"{with_model:.2f} s with it, {without:.2f} s without: "
        f"+{100 * (with_model - without) / without:.1f}% (target: under 10%)"
    )


def describe_machine() -> None:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    binary = kustomize()[0]
    asked = [binary, "version"] + (["--client"] if Path(binary).name == "kubectl" else [])
    versions = subprocess.run(asked, capture_output=True, text=True).stdout.splitlines()
    print(
        f"machine: {os.cpu_count()} cores, {model}, Python {platform.python_version()}, "
        f"{'; '.join(versions)} ({binary})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--clusters", type=int, default=30)
    parser.add_argument("--skip-validate", action="store_true")
    args = parser.parse_args()
    describe_machine()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="mlgitops-bench-") as scratch:
        folder = Path(scratch)
        sizes = sorted(args.workloads)
        trees = bench_generate(folder, sizes, args.clusters)
        bench_review(folder, trees[max(sizes)], max(sizes), args.clusters)
        if not args.skip_validate:
            bench_kustomize(trees)
            bench_schema_stage(folder, trees[min(sizes)])
            size = VALIDATE_WORKLOADS if VALIDATE_WORKLOADS in trees else min(sizes)
            bench_validate(folder, trees[size], size, args.clusters)
            largest = max(sizes)
            bench_cluster_model(folder, trees[largest], largest, args.clusters)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
