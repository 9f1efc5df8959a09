"""Exact error output of `mlgitops generate` for invalid configs.

A config error helps only if it points at the right line and column, names the field
and says what to write instead. The corpus in tests/invalid_configs/ pins, for each
invalid config `NAME.yaml`, the whole of stderr in `NAME.expected`, so a regression in
any of the three shows up as a diff. Each case runs against a real generated tree and
checks that the run exits 2, prints no traceback and leaves every file as it was.

Most cases are BASE (a small valid config) with a few substitutions. To add one, write
the config, run with MLGITOPS_UPDATE_GOLDEN=1 to record its output, and read the
.expected file before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator.cli import main

CONFIG = "mlgitops.yaml"

BASE = """\
name: ml-platform
repo:
  url: https://github.com/acme/ml-platform-gitops.git
kubernetesVersion: "1.33"
workloads:
  - name: resnet-ddp
    namespace: training
    framework: pytorch
    image: registry.example.com/ml/resnet:1.4.2
    command: [python, train.py, --epochs, "10"]
    workers: 3
    port: 29500
    resources: {cpu: "4", memory: 16Gi, gpu: 1}
  - name: bert
    namespace: nlp
    framework: tensorflow
    image: registry.example.com/ml/bert:2.0.1
    command: [python, finetune.py]
    workers: 2
    parameterServers: 1
    resources: {cpu: "2", memory: 8Gi}
    checkpoint: {size: 10Gi, mountPath: /var/ml_model}
    env: {LOG_LEVEL: info}
    network:
      egressTo:
        - cidr: 10.20.0.0/16
          ports: [443, 5432]
clusters:
  - name: eks-training
    cloud: eks
    region: us-west-2
    efsFileSystemId: fs-0123456789abcdef0
    version: "1.33"
    nodeGroups:
      - name: gpu
        instanceTypes: [g5.2xlarge]
        minSize: 1
        desiredSize: 2
        maxSize: 3
  - name: gke-training
    cloud: gke
    project: acme-ml
    location: us-central1
    nodePools:
      - {name: pool, machineType: n1-standard-8, nodeCount: 1, accelerator: {type: nvidia-tesla-t4, count: 1}}
  - name: laptop
    cloud: local
"""

LONG_64 = "a" * 64
LONG_62 = "b" * 62


def _edit(*replacements: tuple[str, str]) -> str:
    """BASE with each `old` (which must occur exactly once) replaced by `new`."""
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in BASE"
        text = text.replace(old, new)
    return text


def _generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str | bytes) -> Result:
    monkeypatch.chdir(tmp_path)
    (tmp_path / CONFIG).write_bytes(config.encode() if isinstance(config, str) else config)
    out = tmp_path / "out"
    return CliRunner().invoke(main, ["generate", "--config", CONFIG, "--out", str(out)])


def _assert_rejected(result: Result, tmp_path: Path, expected: list[str]) -> None:
    assert result.stderr == "".join(f"{line}\n" for line in expected)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG]


CORPUS = Path(__file__).resolve().parent / "invalid_configs"
LOCATED = re.compile(r"mlgitops\.yaml:[0-9]+:[0-9]+: \S")


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under `folder` with its bytes and mtime (None for folders)."""
    return {
        str(path.relative_to(folder)): None
        if path.is_dir()
        else (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def generated_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tree generated from BASE: what an invalid config must leave untouched."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / CONFIG).write_text(BASE)
    result = CliRunner().invoke(
        main, ["generate", "--config", str(folder / CONFIG), "--out", str(folder / "out")]
    )
    assert result.exit_code == 0, result.output
    return folder / "out"


@pytest.mark.parametrize("case", sorted(CORPUS.glob("*.yaml")), ids=lambda case: case.stem)
def test_invalid_config_is_reported_exactly(
    case: Path, generated_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(generated_tree, tmp_path / "out")
    shutil.copyfile(case, tmp_path / CONFIG)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate", "--config", CONFIG, "--out", "out"])
    expected = case.with_suffix(".expected")
    if os.environ.get("MLGITOPS_UPDATE_GOLDEN"):
        expected.write_text(result.stderr)
    assert result.stderr == expected.read_text()
    assert all(LOCATED.match(line) for line in result.stderr.splitlines()), result.stderr
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stdout == ""
    assert _snapshot(tmp_path) == before


def test_base_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _generate(tmp_path, monkeypatch, BASE)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").is_dir()


def test_merge_key_does_not_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _edit(
        ('resources: {cpu: "4", memory: 16Gi, gpu: 1}', 'resources: &r {cpu: "4", memory: 16Gi}'),
        ('resources: {cpu: "2", memory: 8Gi}', "resources: {<<: *r, gpu: 2}"),
    )
    result = _generate(tmp_path, monkeypatch, config)
    assert result.exit_code in (0, 2), result.exception


@pytest.mark.parametrize(
    ("is_directory", "message"),
    [
        pytest.param(True, "mlgitops: configs: is a directory, not a config file", id="directory"),
        pytest.param(False, "mlgitops: configs: no such config file", id="missing"),
    ],
)
def test_unreadable_config_path_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, is_directory: bool, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if is_directory:
        (tmp_path / "configs").mkdir()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", "--config", "configs", "--out", str(out)])
    assert result.stderr == f"{message}\n"
    assert result.exit_code == 2
    assert not out.exists()


def test_a_file_over_the_size_limit_is_refused_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    padding = "# " + "x" * 1022 + "\n"
    result = _generate(tmp_path, monkeypatch, BASE + padding * (16 * 1024 + 1))
    _assert_rejected(
        result,
        tmp_path,
        ["mlgitops.yaml:1:1: the file is larger than 16 MiB, the most a config may be"],
    )


def test_a_file_that_never_ends_is_read_only_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate", "--config", "/dev/zero", "--out", "out"])
    assert (
        result.stderr == "/dev/zero:1:1: the file is larger than 16 MiB, the most a config may be\n"
    )
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_a_byte_order_mark_and_windows_line_ends_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = "\ufeff" + BASE.replace("\n", "\r\n")
    result = _generate(tmp_path, monkeypatch, config.encode())
    assert result.exit_code == 0, result.output


def test_a_file_wrong_everywhere_shows_the_first_problems_and_a_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ", ".join(f"bad-{i:03}: x" for i in range(250))
    result = _generate(tmp_path, monkeypatch, _edit(("{LOG_LEVEL: info}", f"{{{env}}}")))
    lines = result.stderr.splitlines()
    assert len(lines) == 201
    assert lines[0].startswith("mlgitops.yaml:23:11: workloads[1].env.bad-000: 'bad-000' is not")
    assert lines[199].startswith("mlgitops.yaml:23:")
    assert "workloads[1].env.bad-199:" in lines[199]
    assert lines[200] == "mlgitops.yaml: 50 more problems not shown"
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "replacements",
    [
        pytest.param(
            [("region: us-west-2", "region: us-middle-1\n    allowUnlistedRegion: true")],
            id="aws-region-newer-than-the-list",
        ),
        pytest.param(
            [("location: us-central1", "location: us-middle1-a\n    allowUnlistedRegion: true")],
            id="gcp-region-newer-than-the-list",
        ),
        pytest.param(
            [
                (
                    "url: https://github.com/acme/ml-platform-gitops.git",
                    "url: ssh://git@github.com/acme/ml-platform-gitops.git\n"
                    "  revision: refs/tags/v1.2.0",
                )
            ],
            id="ssh-user-and-tag-reference",
        ),
        pytest.param(
            [
                (
                    "url: https://github.com/acme/ml-platform-gitops.git",
                    "url: https://github.com/acme/ml-platform-gitops.git\n"
                    "  revision: 4362341f0c2a9d1e5b7a8c6d3e2f1a0b9c8d7e6f",
                )
            ],
            id="commit-sha-revision",
        ),
        pytest.param(
            [("image: registry.example.com/ml/bert:2.0.1", "image: 10.0.0.5:5000/ml/bert:2.0.1")],
            id="registry-by-address-and-port",
        ),
    ],
)
def test_what_the_stricter_checks_still_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replacements: list[tuple[str, str]]
) -> None:
    result = _generate(tmp_path, monkeypatch, _edit(*replacements))
    assert result.exit_code == 0, result.output
