"""`mlgitops set image`, `add workload|cluster` and `remove workload|cluster`: each edit
changes exactly the lines it is about (compared with difflib against a config commented
everywhere), is checked by the loader before anything is written, and regenerates the
tree unless told not to."""

from __future__ import annotations

import difflib
import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import SEEDS

from generator import edit
from generator.cli import main
from generator.config.load import load_config_file, load_config_text
from generator.starter import Answers, starter_config

COMMENTED = Path(__file__).resolve().parent / "edit_configs" / "commented.yaml"
MARKER = '# {"$imagepolicy": "flux-system:resnet"}'


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mlgitops.yaml"
    path.write_bytes(COMMENTED.read_bytes())
    return path


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines only the original has and the lines only the edited text has."""
    removed: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag != "equal":
            removed += before.splitlines()[a1:a2]
            added += after.splitlines()[b1:b2]
    return removed, added


def edit_cli(config: Path, *args: str) -> Result:
    return run(*args, "--config", str(config), "--out", str(config.parent / "tree"))


def test_the_commented_config_loads_with_its_setter_marker() -> None:
    loaded = load_config_file(COMMENTED)
    assert [w.name for w in loaded.workloads] == ["resnet", "resnet-eval", "bert"]
    assert MARKER in COMMENTED.read_text()
    assert loaded.workloads[2].resources == loaded.workloads[1].resources  # the anchor


def test_set_image_of_a_workload_changes_that_line_only_and_regenerates(config: Path) -> None:
    before = config.read_text()
    result = edit_cli(config, "set", "image", "resnet", "registry.example.com/ml/resnet:1.5.0")
    assert result.exit_code == 0, result.output
    after = config.read_text()
    assert changed_lines(before, after) == (
        [f"    image: registry.example.com/ml/resnet:1.4.2 {MARKER}"],
        [f"    image: registry.example.com/ml/resnet:1.5.0 {MARKER}"],
    )
    assert "workloads[0].image: registry.example.com/ml/resnet:1.4.2 -> " in result.output
    job = (config.parent / "tree" / "base" / "resnet" / "job.yaml").read_text()
    assert "registry.example.com/ml/resnet:1.5.0" in job
    check = edit_cli_generate_check(config)
    assert check.exit_code == 0, check.output


def edit_cli_generate_check(config: Path) -> Result:
    return run("generate", "--check", "--config", str(config), "--out", str(config.parent / "tree"))


def test_set_image_by_name_sets_every_workload_with_that_image_keeping_quotes(
    config: Path,
) -> None:
    before = config.read_text()
    result = edit_cli(
        config,
        "set",
        "image",
        "registry.example.com/ml/resnet=registry.example.com/ml/resnet:1.5.0",
        "--no-generate",
    )
    assert result.exit_code == 0, result.output
    removed, added = changed_lines(before, config.read_text())
    assert removed == [
        f"    image: registry.example.com/ml/resnet:1.4.2 {MARKER}",
        '    image: "registry.example.com/ml/resnet:1.4.2"',
    ]
    assert added == [
        f"    image: registry.example.com/ml/resnet:1.5.0 {MARKER}",
        '    image: "registry.example.com/ml/resnet:1.5.0"',
    ]
    assert not (config.parent / "tree").exists()  # --no-generate


def test_set_image_with_the_new_image_alone_matches_by_its_name(config: Path) -> None:
    before = config.read_text()
    result = edit_cli(config, "set", "image", "registry.example.com/ml/bert:2.1.0", "--no-generate")
    assert result.exit_code == 0, result.output
    assert changed_lines(before, config.read_text()) == (
        ["    image: 'registry.example.com/ml/bert:2.1.0'".replace("2.1.0", "2.0.1")],
        ["    image: 'registry.example.com/ml/bert:2.1.0'"],
    )


def test_a_comment_after_the_image_keeps_its_column_when_there_is_room() -> None:
    text = SEEDS.read_text().replace(
        "resnet-train:1.4.2\n", "resnet-train:1.4.2      # bumped by CI\n", 1
    )
    edited = edit.set_image(text, "x", "resnet-ddp", "registry.example.com/ml/resnet-train:1.10.0")
    line = next(x for x in edited.text.splitlines() if "bumped" in x)
    old = next(x for x in text.splitlines() if "bumped" in x)
    assert line.index("#") == old.index("#")
    assert line == "    image: registry.example.com/ml/resnet-train:1.10.0     # bumped by CI"


def test_round_trip_is_used_when_ruamel_keeps_the_file_and_splice_when_it_cannot() -> None:
    seeds = SEEDS.read_text()
    edited = edit.set_image(seeds, "x", "resnet-ddp", "registry.example.com/ml/resnet-train:1.5")
    assert edited.method == "round-trip"
    assert len(changed_lines(seeds, edited.text)[0]) == 1
    # The commented config has a list not indented under its key, which ruamel's dump
    # would re-indent: the edit falls back to the splice, with the same one-line change.
    commented = COMMENTED.read_text()
    spliced = edit.set_image(commented, "x", "bert", "registry.example.com/ml/bert:2.0.2")
    assert spliced.method == "splice"
    assert changed_lines(commented, spliced.text) == (
        ["    image: 'registry.example.com/ml/bert:2.0.1'"],
        ["    image: 'registry.example.com/ml/bert:2.0.2'"],
    )


def test_flux_setter_update_of_the_marked_line_loads_and_generates(config: Path) -> None:
    """What Flux's Setters strategy does to the file: replace the scalar on the line
    that carries the marker, nothing else."""
    text = config.read_text()
    pattern = re.compile(
        r"^(\s*image: )\S+( # \{\"\$imagepolicy\": \"flux-system:resnet\"\})$", re.M
    )
    updated, count = pattern.subn(r"\g<1>registry.example.com/ml/resnet:1.6.0\g<2>", text)
    assert count == 1
    config.write_text(updated)
    loaded = load_config_text(updated, str(config))
    assert loaded.workloads[0].image == "registry.example.com/ml/resnet:1.6.0"
    result = run("generate", "--config", str(config), "--out", str(config.parent / "tree"))
    assert result.exit_code == 0, result.output
    job = (config.parent / "tree" / "base" / "resnet" / "job.yaml").read_text()
    assert "registry.example.com/ml/resnet:1.6.0" in job
    # and `set image` after it keeps the marker
    again = edit_cli(config, "set", "image", "resnet", "registry.example.com/ml/resnet:1.7.0")
    assert again.exit_code == 0, again.output
    assert f"image: registry.example.com/ml/resnet:1.7.0 {MARKER}" in config.read_text()


def test_add_workload_inserts_its_lines_after_the_last_workload(config: Path) -> None:
    before = config.read_text()
    result = edit_cli(
        config,
        "add",
        "workload",
        "llama-sft",
        "--framework",
        "pytorch",
        "--image",
        "ghcr.io/acme/sft:0.3.0",
        "--command",
        "python sft.py --epochs 10",
        "--workers",
        "2",
        "--memory",
        "12Gi",
        "--clusters",
        "eks-vision,local",
    )
    assert result.exit_code == 0, result.output
    after = config.read_text()
    removed, added = changed_lines(before, after)
    assert removed == [] and added.count("") == 1  # one blank line, as between the others
    assert [line for line in added if line] == [
        "  - name: llama-sft",
        "    namespace: training",
        "    framework: pytorch",
        "    image: ghcr.io/acme/sft:0.3.0",
        '    command: [python, sft.py, --epochs, "10"]',
        "    workers: 2",
        '    resources: {cpu: "2", memory: 12Gi}',
        "    clusters: [eks-vision, local]",
    ]
    # right after bert's last line, before the comment that opens the clusters
    assert "(a commented-out option of this item)\n\n  - name: llama-sft" in after
    assert "clusters: [eks-vision, local]\n\n# Where the workloads run." in after
    loaded = load_config_file(config)
    assert loaded.workloads[-1].command == ("python", "sft.py", "--epochs", "10")
    assert (config.parent / "tree" / "base" / "llama-sft").is_dir()


def test_add_workload_with_defaults_only_makes_a_valid_workload(config: Path) -> None:
    result = edit_cli(
        config, "add", "workload", "t", "--framework", "tensorflow", "--image", "a.io/t:1"
    )
    assert result.exit_code == 0, result.output
    workload = load_config_file(config).workloads[-1]
    assert (workload.namespace, workload.workers, workload.command) == (
        "training",
        3,
        ("python", "train.py"),
    )


@pytest.mark.parametrize(
    ("args", "first_lines"),
    [
        (
            ["--cloud", "gke", "--project", "acme-ml", "--location", "europe-west4"],
            ["  - name: new", "    cloud: gke", "    project: acme-ml"],
        ),
        (
            [
                *["--cloud", "eks", "--region", "us-east-1", "--version", "1.32"],
                *["--instance-type", "m6i.2xlarge"],
            ],
            ["  - name: new", "    cloud: eks", "    region: us-east-1", '    version: "1.32"'],
        ),
        (["--cloud", "local", "--workers", "3"], ["  - name: new", "    cloud: local"]),
    ],
    ids=["gke", "eks", "local"],
)
def test_add_cluster_inserts_the_starters_cluster(
    config: Path, args: list[str], first_lines: list[str]
) -> None:
    before = config.read_text()
    result = edit_cli(config, "add", "cluster", "new", *args)
    assert result.exit_code == 0, result.output
    removed, added = changed_lines(before, config.read_text())
    assert removed == []
    assert added[0] == ""  # spaced like the clusters already there
    assert added[1 : 1 + len(first_lines)] == first_lines
    assert config.read_text().endswith("\n# the end\n")
    cluster = load_config_file(config).clusters[-1]
    assert cluster.name == "new"
    assert (config.parent / "tree" / "clusters" / "new").is_dir()


def test_add_then_remove_gives_back_the_file_byte_for_byte(config: Path) -> None:
    original = config.read_bytes()
    for added, removed in [
        (["workload", "w2", "--framework", "pytorch", "--image", "a.io/w:1"], ["workload", "w2"]),
        (["cluster", "kind2", "--cloud", "local"], ["cluster", "kind2"]),
    ]:
        assert edit_cli(config, "add", *added, "--no-generate").exit_code == 0
        assert config.read_bytes() != original
        result = edit_cli(config, "remove", *removed, "--no-generate")
        assert result.exit_code == 0, result.output
        assert config.read_bytes() == original


def test_remove_workload_drops_it_with_its_comment(config: Path) -> None:
    before = config.read_text()
    result = edit_cli(config, "remove", "workload", "bert")
    assert result.exit_code == 0, result.output
    removed, added = changed_lines(before, config.read_text())
    assert added == []
    assert removed[0] == "" or removed[-1] == ""
    body = [line for line in removed if line]
    assert body[0] == "  # TensorFlow with a parameter server; resources through the anchor above."
    assert body[1] == "  - name: bert"
    assert body[-1].startswith("    # checkpoint:")
    assert len(body) == 11
    assert not (config.parent / "tree" / "base" / "bert").exists()
    assert (config.parent / "tree" / "base" / "resnet").is_dir()


def test_remove_the_first_workload_keeps_the_next_ones_comment(tmp_path: Path) -> None:
    path = tmp_path / "mlgitops.yaml"
    path.write_bytes(SEEDS.read_bytes())
    result = edit_cli(path, "remove", "workload", "resnet-ddp", "--no-generate")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert "workloads:\n  # Stateful training with a checkpoint volume" in text
    assert "Inter-pod communication" not in text
    removed, added = changed_lines(SEEDS.read_text(), text)
    # with its secrets, its dataset and their comments
    assert added == [] and len(removed) == 22


def test_remove_cluster_named_by_a_workload_is_refused(config: Path) -> None:
    before = config.read_bytes()
    result = edit_cli(config, "remove", "cluster", "local")
    assert result.exit_code == 2
    assert result.output.startswith("mlgitops: ")
    assert "cluster 'local' is named in the clusters of resnet-eval (workloads[1].clusters)" in (
        result.output
    )
    assert config.read_bytes() == before
    assert not (config.parent / "tree").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["set", "image", "bert", "registry.example.com/ml/bert:latest"],
            ":43:12: workloads[2].image: 'registry.example.com/ml/bert:latest' uses the moving "
            "tag 'latest'",
        ),
        (
            ["set", "image", "resnet", "registry.example.com/ml/resnet"],
            ":19:12: workloads[0].image: 'registry.example.com/ml/resnet' is not pinned",
        ),
        (
            ["add", "workload", "resnet", "--framework", "pytorch", "--image", "a.io/b:1"],
            ":51:11: workloads[3].name: duplicate workload name 'resnet' (also workloads[0])",
        ),
        (
            [
                *["add", "workload", "w", "--framework", "pytorch", "--image", "a.io/b:1"],
                *["--clusters", "eks-vison"],
            ],
            ":58:16: workloads[3].clusters[0]: no cluster named 'eks-vison' "
            "(did you mean 'eks-vision'?)",
        ),
        (
            ["add", "cluster", "local", "--cloud", "local"],
            ":70:11: clusters[2].name: duplicate cluster name 'local'",
        ),
    ],
    ids=["latest", "unpinned", "duplicate-workload", "unknown-cluster", "duplicate-cluster"],
)
def test_invalid_edits_give_the_loaders_message_and_write_nothing(
    config: Path, args: list[str], message: str
) -> None:
    before = config.read_bytes()
    result = edit_cli(config, *args)
    assert result.exit_code == 2, result.output
    assert f"{config}{message}" in result.output
    assert "not changed: the edit makes it invalid" in result.output
    assert "Traceback" not in result.output
    assert config.read_bytes() == before
    assert not (config.parent / "tree").exists()
    assert sorted(p.name for p in config.parent.iterdir()) == ["mlgitops.yaml"]


@pytest.mark.parametrize("kind", ["workload", "cluster"])
def test_removing_the_last_workload_or_cluster_is_refused_by_the_loader(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "mlgitops.yaml"
    path.write_text(starter_config(Answers()))
    before = path.read_bytes()
    name = "train" if kind == "workload" else "local"
    result = edit_cli(path, "remove", kind, name)
    assert result.exit_code == 2, result.output
    assert re.search(
        rf"{re.escape(str(path))}:\d+:\d+: {kind}s: needs at least 1 item", result.output
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "image", "nope", "a.io/b:1"], "no workload named 'nope' (workloads: resnet,"),
        (["set", "image", "a.io/b:1"], "no workload's image is named 'a.io/b'"),
        (["remove", "workload", "nope"], "no workload named 'nope'"),
        (["add", "cluster", "c", "--cloud", "gke", "--project", "p"], "needs --location"),
        (
            ["add", "cluster", "c", "--cloud", "eks", "--region", "us-east-1", "--project", "p"],
            "--project is for gke clusters, not eks",
        ),
        (
            [
                "add",
                "workload",
                "w",
                "--framework",
                "pytorch",
                "--image",
                "a.io/b:1",
                "--command",
                "python 'unclosed",
            ],
            "--command",
        ),
    ],
    ids=["no-workload", "no-image", "remove-unknown", "gke-location", "wrong-cloud", "command"],
)
def test_impossible_requests_are_usage_errors(config: Path, args: list[str], message: str) -> None:
    before = config.read_bytes()
    result = edit_cli(config, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert config.read_bytes() == before


def test_an_anchor_the_edit_would_break_is_refused(config: Path) -> None:
    """resnet-eval defines the &small anchor bert uses: removing it cannot be done by
    dropping its lines, and is refused rather than rewritten."""
    before = config.read_bytes()
    result = edit_cli(config, "remove", "workload", "resnet-eval")
    assert result.exit_code == 2
    assert "cannot remove workload without changing lines it does not need to" in result.output
    assert config.read_bytes() == before


def test_the_write_is_atomic_keeps_the_mode_and_follows_a_symlink_inside(tmp_path: Path) -> None:
    real = tmp_path / "fleet.yaml"
    real.write_bytes(COMMENTED.read_bytes())
    real.chmod(0o640)
    link = tmp_path / "mlgitops.yaml"
    link.symlink_to("fleet.yaml")
    result = edit_cli(link, "set", "image", "resnet", "registry.example.com/ml/resnet:2.0.0")
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert "resnet:2.0.0" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml", "mlgitops.yaml", "tree"]


def test_a_symlink_to_outside_its_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_bytes(COMMENTED.read_bytes())
    (tmp_path / "repo").mkdir()
    link = tmp_path / "repo" / "mlgitops.yaml"
    link.symlink_to(outside)
    result = edit_cli(link, "set", "image", "resnet", "registry.example.com/ml/resnet:2.0.0")
    assert result.exit_code == 2
    assert f"mlgitops: {link}: a symlink to {outside}, outside its folder" in result.output
    assert outside.read_bytes() == COMMENTED.read_bytes()


def test_a_config_that_cannot_be_written_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_access = os.access
    monkeypatch.setattr(
        edit.os, "access", lambda path, mode: path != config and real_access(path, mode)
    )
    result = edit_cli(config, "set", "image", "resnet", "registry.example.com/ml/resnet:2.0.0")
    assert result.exit_code == 2
    assert result.output.strip() == f"mlgitops: {config}: not writable, so it cannot be edited"
    assert config.read_bytes() == COMMENTED.read_bytes()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_config_is_refused(config: Path) -> None:
    config.chmod(0o444)
    result = edit_cli(config, "set", "image", "resnet", "registry.example.com/ml/resnet:2.0.0")
    assert result.exit_code == 2
    assert "not writable" in result.output


def test_a_missing_config_is_a_clean_error(tmp_path: Path) -> None:
    result = edit_cli(tmp_path / "mlgitops.yaml", "remove", "workload", "x")
    assert result.exit_code == 2
    assert "no such config file" in result.output
    assert not (tmp_path / "mlgitops.yaml").exists()


def test_crlf_line_endings_stay(config: Path) -> None:
    config.write_bytes(COMMENTED.read_bytes().replace(b"\n", b"\r\n"))
    result = edit_cli(config, "add", "cluster", "k2", "--cloud", "local", "--no-generate")
    assert result.exit_code == 0, result.output
    data = config.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"  - name: k2\r\n    cloud: local\r\n" in data


def test_an_unchanged_image_writes_nothing(config: Path) -> None:
    before = config.stat().st_mtime_ns
    result = edit_cli(
        config, "set", "image", "resnet", "registry.example.com/ml/resnet:1.4.2", "--no-generate"
    )
    assert result.exit_code == 0
    assert "already as asked" in result.output
    assert config.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "command",
    [
        ["set", "image"],
        ["add", "workload"],
        ["add", "cluster"],
        ["remove", "workload"],
        ["remove", "cluster"],
    ],
    ids=" ".join,
)
def test_every_subcommand_has_help_with_examples(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert f"mlgitops {' '.join(command)}" in result.output.split("Examples:", 1)[1]
    group = main.commands[command[0]]  # type: ignore[attr-defined]
    assert sorted(group.commands) == sorted(
        {"set": ["image"], "add": ["workload", "cluster"], "remove": ["workload", "cluster"]}[
            command[0]
        ]
    )
