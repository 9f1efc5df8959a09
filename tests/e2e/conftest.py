"""Fixtures of the end-to-end tests: the built seeds workloads (as Jobs, and under the
other runtimes) and the training image."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from jobrun import Image
from sandbox import unavailable_reason
from workloads import IMAGE_FOLDER, Workload, build_runtime_workloads, build_seeds_workloads


@pytest.fixture(scope="session")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip, saying why, where the machine cannot create network namespaces and links."""
    reason = unavailable_reason(tmp_path_factory.mktemp("probe"))
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def seeds_workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workload]:
    return build_seeds_workloads(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="session")
def runtime_workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workload]:
    return build_runtime_workloads(tmp_path_factory.mktemp("runtimes"))


@pytest.fixture(scope="session")
def image() -> Image:
    """The training image: this environment's Python (torch, torchrun, TensorFlow) on
    PATH and the programs of `image/` in the working directory."""
    programs = Path(sys.executable).parent
    for program in ("python", "torchrun"):
        assert (programs / program).exists(), (
            f"no {program} in {programs}: pip install -e '.[test]'"
        )
    return Image(
        workdir=IMAGE_FOLDER,
        env={
            "PATH": f"{programs}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
        },
    )
