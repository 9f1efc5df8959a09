"""`mlgitops init`: a commented starter config that loads and generates, from options,
from answers in a terminal, or the default; never over an existing config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import build_and_validate

from generator import cli
from generator.cli import main
from generator.config.load import load_config_file
from generator.config.schema import config_schema


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, answers: str = "") -> Result:
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["init", *args], input=answers)


@pytest.mark.parametrize(
    "clouds", [("eks",), ("gke",), ("local",), ("eks", "gke", "local")], ids="-".join
)
@pytest.mark.parametrize("gitops", ["argocd", "flux"])
def test_the_starter_loads_and_generates_a_tree_that_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clouds: tuple[str, ...], gitops: str
) -> None:
    options = [arg for cloud in clouds for arg in ("--cloud", cloud)]
    result = _init(tmp_path, monkeypatch, *options, "--gitops", gitops, "--name", "vision")
    assert result.exit_code == 0, result.output
    config = load_config_file(tmp_path / "mlgitops.yaml")
    assert (config.name, config.gitops) == ("vision", gitops)
    assert sorted(c.cloud for c in config.clusters) == sorted(clouds)
    text = (tmp_path / "mlgitops.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=mlgitops.schema.json\n")
    assert json.loads((tmp_path / "mlgitops.schema.json").read_text()) == config_schema()
    generated = CliRunner().invoke(main, ["generate", "--out", "tree"])
    assert generated.exit_code == 0, generated.output
    if clouds == ("eks", "gke", "local"):
        build_and_validate(tmp_path / "tree")


def test_without_options_or_terminal_it_writes_the_default_starter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _init(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    config = load_config_file(tmp_path / "mlgitops.yaml")
    assert (config.name, config.gitops, [c.cloud for c in config.clusters]) == (
        "ml-platform",
        "argocd",
        ["local"],
    )


def test_in_a_terminal_it_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_in_a_terminal", lambda: True)
    answers = "vision\n\nlocal, azure\neks,local\nflux\n"  # one wrong answer, asked again
    result = _init(tmp_path, monkeypatch, answers=answers)
    assert result.exit_code == 0, result.output
    assert "Error: choose from eks, gke, local" in result.output
    config = load_config_file(tmp_path / "mlgitops.yaml")
    assert config.name == "vision"
    assert config.repo.url == "https://github.com/acme/ml-platform-gitops.git"
    assert [c.cloud for c in config.clusters] == ["eks", "local"]
    assert config.gitops == "flux"


def test_an_existing_config_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mlgitops.yaml").write_text("# mine\n")
    result = _init(tmp_path, monkeypatch, "--cloud", "eks")
    assert result.exit_code == 2
    assert result.stderr == (
        "mlgitops: mlgitops.yaml: already exists; mlgitops init never overwrites a config\n"
    )
    assert (tmp_path / "mlgitops.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlgitops.yaml"]


def test_bad_answers_are_reported_where_they_would_land_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _init(tmp_path, monkeypatch, "--name", "ML_Platform", "--repo-url", "gitops")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "mlgitops.yaml:5:7: name: 'ML_Platform' is not a valid DNS label (lowercase letters, "
        "digits and '-', starting and ending with a letter or digit)",
        "mlgitops.yaml:7:8: repo.url: 'gitops' is not a Git URL (https://…, ssh://… or "
        "git@host:path)",
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_answer_is_asked_again_where_it_was_given_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_in_a_terminal", lambda: True)
    answers = "ML_Platform\nvision\nhttps://tok@github.com/acme/x.git\n\ngke\nweave\nargocd\n"
    result = _init(tmp_path, monkeypatch, answers=answers)
    assert result.exit_code == 0, result.output
    assert result.output.count("Platform name") == 2
    assert "name: 'ML_Platform' is not a valid DNS label" in result.output
    assert result.output.count("Git repository the tree is pushed to") == 2
    refused = [line for line in result.output.splitlines() if "holds a credential" in line]
    assert refused and "tok@" not in refused[0]  # the message masks the credential
    assert result.output.count("Sync engine") == 2
    config = load_config_file(tmp_path / "mlgitops.yaml")
    assert config.name == "vision"
    assert config.repo.url == "https://github.com/acme/ml-platform-gitops.git"
    assert [c.cloud for c in config.clusters] == ["gke"]
    assert config.gitops == "argocd"


@pytest.mark.parametrize(
    ("where", "command"),
    [
        ("mlgitops.yaml", "mlgitops generate`"),
        ("fleet.yaml", "mlgitops generate --config fleet.yaml`"),
        ("conf/fleet.yaml", "mlgitops generate --config conf/fleet.yaml`"),
    ],
)
def test_init_prints_the_command_that_generates_from_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, command: str
) -> None:
    (tmp_path / "conf").mkdir()
    result = _init(tmp_path, monkeypatch, "--config", where, "--cloud", "local")
    assert result.exit_code == 0, result.output
    assert result.stderr.endswith(f"edit it, then run `{command}\n")
    printed = result.stderr.rsplit("`", 2)[1].split()[1:]
    generated = CliRunner().invoke(main, [*printed, "--out", "tree"])
    assert generated.exit_code == 0, generated.output
    assert (tmp_path / "tree" / "clusters").is_dir()
