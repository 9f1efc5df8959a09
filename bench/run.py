#!/usr/bin/env python3
"""Benchmark mlgitops on fleet-sized configs and print figures, each next to a reference
measured in the same run on the same machine:

- generate: wall time, peak memory, files and objects written for N workloads on 30
  clusters, against serialising the same objects with PyYAML's C dumper alone (the
  floor for a Python generator); growth from the smallest to the largest fleet;
- a no-change regenerate (`--check`) of the largest fleet;
- validate: objects per second of the schema stage against the `kubernetes-validate`
  command on the same rendered YAML, and the wall time of a full `mlgitops validate`
  of a 200-workload, 6-cluster fleet.

    python bench/run.py [--workloads 100 300 1000] [--clusters 30] [--skip-validate]

Needs ../shared/bench/make_fleet.py beside the project, kubectl or kustomize for validate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAKE_FLEET = ROOT.parent / "shared" / "bench" / "make_fleet.py"
SCHEMAS = ROOT.parent / "shared" / "schemas"
MLGITOPS = [sys.executable, "-c", "from generator.cli import main; main()"]


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
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    stdout, stderr = process.communicate()
    code = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss, subprocess.CompletedProcess(command, code, stdout, stderr)


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


def generated_tree(folder: Path, workloads: int, clusters: int) -> Path:
    """A generated fleet with its config beside it, as a repository holds it."""
    config = fleet_config(folder, workloads, clusters)
    out = folder / f"tree-{workloads}x{clusters}"
    subprocess.run(
        [*MLGITOPS, "generate", "--config", str(config), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    shutil.copy(config, out / "mlgitops.yaml")
    return out


def bench_generate(folder: Path, sizes: list[int], clusters: int) -> None:
    print(f"generate, {clusters} clusters")
    print(
        f"{'workloads':>9} {'seconds':>8} {'peak MiB':>8} {'files':>6} {'objects':>8} "
        f"{'floor s':>8} {'x floor':>7}"
    )
    seconds = {}
    for workloads in sizes:
        config = fleet_config(folder, workloads, clusters)
        out = folder / f"out-{workloads}"
        elapsed, peak, run = timed(
            [*MLGITOPS, "generate", "--config", str(config), "--out", str(out)]
        )
        assert run.returncode == 0, run.stderr
        floor, objects = serialisation_floor(config)
        files = sum(1 for p in out.rglob("*") if p.is_file())
        seconds[workloads] = elapsed
        print(
            f"{workloads:>9} {elapsed:>8.2f} {peak / 1024:>8.0f} {files:>6} {objects:>8} "
            f"{floor:>8.2f} {elapsed / floor:>7.1f}"
        )
    small, large = min(sizes), max(sizes)
    print(f"growth: {large / small:.0f}x workloads -> {seconds[large] / seconds[small]:.1f}x time")
    config = folder / f"fleet-{large}x{clusters}.yaml"
    elapsed, _, run = timed(
        [
            *MLGITOPS,
            "generate",
            "--check",
            "--config",
            str(config),
            "--out",
            str(folder / f"out-{large}"),
        ]
    )
    assert run.returncode == 0, run.stderr
    print(f"no-change regenerate (--check) of {large} workloads: {elapsed:.2f} s")
    elapsed, _, _ = timed([*MLGITOPS, "--help"])
    print(f"mlgitops --help: {elapsed:.2f} s")


def bench_schema_stage(folder: Path) -> None:
    """The same rendered built-in objects through both validators."""
    from generator.validate.schemas import SchemaSet

    out = generated_tree(folder, 100, 3)
    documents = [
        d
        for p in sorted((out / "base").rglob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in yaml.safe_load_all(p.read_text())
        if d
    ]
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


def bench_validate(folder: Path) -> None:
    out = generated_tree(folder, 200, 6)
    elapsed, _, run = timed([*MLGITOPS, "validate", str(out), "--schema-location", str(SCHEMAS)])
    print(
        f"validate, 200 workloads on 6 clusters, {os.cpu_count()} cores: {elapsed:.1f} s "
        f"({run.stderr.strip().splitlines()[-1]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--clusters", type=int, default=30)
    parser.add_argument("--skip-validate", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgitops-bench-") as scratch:
        folder = Path(scratch)
        bench_generate(folder, sorted(args.workloads), args.clusters)
        if not args.skip_validate:
            bench_schema_stage(folder)
            bench_validate(folder)


if __name__ == "__main__":
    main()
