"""`mlgitops diff`: a config committed in a temporary git repository, one field edited in
the working tree, and exactly that field's consequences per cluster."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import CONFIGS, SEEDS

from generator.cli import main
from generator.diff import ABSENT, FieldChange, field_changes, format_text, use_color

IMAGE = "registry.example.com/ml/resnet-train"
CLUSTERS = ["eks-training", "gke-training", "local"]
RESNET = "Job/distributed-training/resnet-ddp"
BERT = "Job/ml-workloads/bert-finetune"


def git(repo: Path, *arguments: str) -> str:
    run = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose one commit holds the seeds config as mlgitops.yaml."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "mlgitops.yaml").write_text(SEEDS.read_text())
    git(root, "add", "mlgitops.yaml")
    git(root, "commit", "-q", "-m", "seeds")
    return root


def edit(repo: Path, old: str, new: str) -> None:
    config = repo / "mlgitops.yaml"
    text = config.read_text()
    assert text.count(old) == 1, f"{old!r} is not in the config exactly once"
    config.write_text(text.replace(old, new))


def run_diff(repo: Path, *arguments: str) -> Result:
    config = str(repo / "mlgitops.yaml")
    return CliRunner().invoke(main, ["diff", "--config", config, *arguments])


def as_json(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def changes(document: dict[str, Any]) -> dict[str, dict[str, list[tuple[str, Any, Any]]]]:
    """{target: {Kind/namespace/name: [(field, old, new)]}} of the changed objects."""
    found: dict[str, dict[str, list[tuple[str, Any, Any]]]] = {}
    for target in document["targets"]:
        assert not target["added"] and not target["removed"], target["name"]
        found[target["name"]] = {
            f"{c['kind']}/{c['namespace']}/{c['name']}": [
                (f["path"], f.get("old"), f.get("new")) for f in c["fields"]
            ]
            for c in target["changed"]
        }
    return found


def test_an_edited_image_changes_that_field_of_that_job_on_every_cluster(repo: Path) -> None:
    edit(repo, f"{IMAGE}:1.4.2", f"{IMAGE}:1.5.0")
    result = run_diff(repo, "--output", "json")
    assert result.exit_code == 1, result.output
    field = ("spec.template.spec.containers[0].image", f"{IMAGE}:1.4.2", f"{IMAGE}:1.5.0")
    assert changes(as_json(result)) == {cluster: {RESNET: [field]} for cluster in CLUSTERS}
    assert as_json(result)["targets"][0]["changed"][0]["path"] == (
        "clusters/eks-training/workloads/namespaces/distributed-training"
    )


def test_text_output_names_each_cluster_object_and_field(repo: Path) -> None:
    edit(repo, f"{IMAGE}:1.4.2", f"{IMAGE}:1.5.0")
    result = run_diff(repo)
    assert result.exit_code == 1
    block = (
        f"  ~ {RESNET}\n"
        f'      ~ spec.template.spec.containers[0].image: "{IMAGE}:1.4.2" -> "{IMAGE}:1.5.0"\n'
    )
    assert result.stdout == "".join(f"cluster {c}\n{block}" for c in CLUSTERS)
    assert "\x1b[" not in result.stdout  # not a terminal: no color
    assert "3 cluster(s) differ: 3 object(s) changed, 0 added, 0 removed" in result.stderr


def test_more_workers_change_the_job_size_and_the_rendezvous(repo: Path) -> None:
    edit(repo, "    workers: 3\n", "    workers: 4\n")
    result = run_diff(repo, "--output", "json")
    assert result.exit_code == 1, result.output
    fields = [
        ("spec.completions", 3, 4),
        ("spec.parallelism", 3, 4),
        ("spec.template.spec.containers[0].args[0]", "--nnodes=3", "--nnodes=4"),
    ]
    assert changes(as_json(result)) == {cluster: {RESNET: fields} for cluster in CLUSTERS}


def test_resources_reach_only_the_clouds_whose_patches_keep_them(repo: Path) -> None:
    """Local clusters get laptop-sized resources from their overlay's patch: the real
    kustomize build shows that a changed CPU request does not reach them."""
    edit(repo, 'resources: {cpu: "2", memory: 8Gi}', 'resources: {cpu: "3", memory: 8Gi}')
    result = run_diff(repo, "--output", "json")
    assert result.exit_code == 1, result.output
    container = "spec.template.spec.containers[0].resources"
    fields = [(f"{container}.limits.cpu", "2", "3"), (f"{container}.requests.cpu", "2", "3")]
    assert changes(as_json(result)) == {
        "eks-training": {BERT: fields},
        "gke-training": {BERT: fields},
    }


def test_a_new_namespace_adds_its_objects_its_application_and_a_project_destination(
    repo: Path,
) -> None:
    edit(
        repo,
        "clusters:\n",
        "  - name: tiny\n    namespace: tiny-ns\n    framework: pytorch\n"
        "    image: registry.example.com/ml/tiny:1\n    command: [python, t.py]\n"
        "    workers: 1\n    resources: {cpu: '1', memory: 1Gi}\n    clusters: [local]\n\n"
        "clusters:\n",
    )
    document = as_json(run_diff(repo, "--output", "json"))
    summary = {
        target["name"]: {
            "added": sorted(f"{o['kind']}/{o['namespace']}/{o['name']}" for o in target["added"]),
            "changed": [f"{o['kind']}/{o['name']}" for o in target["changed"]],
            "removed": target["removed"],
        }
        for target in document["targets"]
    }
    assert summary == {
        "local": {
            "added": [
                "Application/argocd/local-workloads-tiny-ns",
                "Job/tiny-ns/tiny",
                "Namespace/None/tiny-ns",
                "NetworkPolicy/tiny-ns/allow-dns",
                "NetworkPolicy/tiny-ns/default-deny",
                "NetworkPolicy/tiny-ns/tiny-allow-intra-job",
                "Service/tiny-ns/tiny",
                "ServiceAccount/tiny-ns/tiny",
            ],
            "changed": [],
            "removed": [],
        },
        "bootstrap/local/local": {
            "added": [],
            "changed": ["AppProject/ml-platform-local"],
            "removed": [],
        },
    }
    added_job = next(o for o in document["targets"][0]["added"] if o["kind"] == "Job")
    assert added_job["object"]["spec"]["completions"] == 1
    project = document["targets"][1]["changed"][0]
    assert [f["path"] for f in project["fields"]] == ["spec.destinations[3]"]
    assert project["fields"][0]["new"]["namespace"] == "tiny-ns"


def test_a_kind_cluster_config_is_compared_too(repo: Path) -> None:
    edit(repo, "    cloud: local\n    workers: 2\n", "    cloud: local\n    workers: 3\n")
    result = run_diff(repo)
    assert result.exit_code == 1
    assert result.stdout == (
        "cluster local\n"
        "  ~ Cluster/local\n"
        '      + nodes[3]: {"role": "worker", "image": "kindest/node:v1.33.1@sha256:'
        '050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"}\n'  # a worker more
    )


def test_flux_bootstrap_objects_are_compared(tmp_path: Path) -> None:
    root = tmp_path / "flux"
    root.mkdir()
    git(root, "init", "-q")
    (root / "mlgitops.yaml").write_text((CONFIGS / "vision-flux.yaml").read_text())
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "flux")
    edit(root, "revision: release-2}", "revision: release-3}")
    result = run_diff(root, "--output", "json")
    assert result.exit_code == 1, result.output
    assert changes(as_json(result)) == {
        "bootstrap/fleet": {
            "GitRepository/flux-system/vision-lab": [("spec.ref.branch", "release-2", "release-3")]
        }
    }


def test_no_change_exits_0_and_prints_nothing(repo: Path) -> None:
    result = run_diff(repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "no differences between HEAD:mlgitops.yaml and" in result.stderr
    json_result = run_diff(repo, "--output", "json")
    assert json_result.exit_code == 0
    assert as_json(json_result)["differences"] is False


def test_an_edit_that_renders_the_same_exits_0(repo: Path) -> None:
    edit(repo, "gitops: argocd ", "gitops: argocd # the engine\n#")
    assert run_diff(repo).exit_code == 0


def test_another_revision_and_a_config_in_a_subfolder(repo: Path) -> None:
    sub = repo / "platform"
    sub.mkdir()
    git(repo, "mv", "mlgitops.yaml", "platform/mlgitops.yaml")
    git(repo, "commit", "-q", "-m", "move")
    config = sub / "mlgitops.yaml"
    config.write_text(config.read_text().replace(f"{IMAGE}:1.4.2", f"{IMAGE}:1.5.0"))
    git(repo, "commit", "-q", "-am", "new image")
    runner = CliRunner()
    assert runner.invoke(main, ["diff", "--config", str(config)]).exit_code == 0
    against = runner.invoke(main, ["diff", "--config", str(config), "--against", "HEAD~1"])
    assert against.exit_code == 1, against.output
    assert "HEAD~1:platform/mlgitops.yaml -> " in against.stderr


def test_an_unknown_revision_exits_2(repo: Path) -> None:
    result = run_diff(repo, "--against", "no-such-branch")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"mlgitops: unknown revision 'no-such-branch' in {repo.resolve()}\n"


def test_an_option_as_revision_is_refused(repo: Path) -> None:
    result = run_diff(repo, "--against", "--output=json")
    assert result.exit_code == 2
    assert "'--output=json' is not a revision" in result.stderr


def test_a_config_missing_at_the_revision_exits_2(repo: Path) -> None:
    other = repo / "other.yaml"
    other.write_text(SEEDS.read_text())
    result = CliRunner().invoke(main, ["diff", "--config", str(other)])
    assert result.exit_code == 2
    assert result.stderr == "mlgitops: other.yaml does not exist at HEAD\n"


def test_outside_a_git_repository_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "mlgitops.yaml"
    config.write_text(SEEDS.read_text())
    result = CliRunner(env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}).invoke(
        main, ["diff", "--config", str(config)]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mlgitops: {config}: not a git repository")


def test_a_missing_working_tree_config_exits_2(repo: Path) -> None:
    result = CliRunner().invoke(main, ["diff", "--config", str(repo / "nothing.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"mlgitops: {repo / 'nothing.yaml'}: no such config file\n"


def test_an_invalid_config_at_the_revision_is_located_there(repo: Path) -> None:
    edit(repo, "    workers: 3\n", "    workers: 0\n")
    git(repo, "commit", "-q", "-am", "broken")
    edit(repo, "    workers: 0\n", "    workers: 3\n")
    result = run_diff(repo)
    assert result.exit_code == 2
    assert result.stderr.startswith("HEAD:mlgitops.yaml:18:14: workloads[0].workers: ")


def test_color_only_at_a_terminal_without_no_color() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_color(Terminal(), {})
    assert use_color(Terminal(), {"NO_COLOR": ""})
    assert not use_color(Terminal(), {"NO_COLOR": "1"})
    assert not use_color(io.StringIO(), {})


def test_field_paths_quote_keys_that_are_not_words() -> None:
    old = {"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "1"}}}
    new = {"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "2"}}}
    assert field_changes(old, new) == [
        FieldChange('metadata.annotations["argocd.argoproj.io/sync-wave"]', "1", "2")
    ]


def test_field_values_keep_their_types() -> None:
    assert field_changes({"a": 1}, {"a": True}) == [FieldChange("a", 1, True)]
    assert field_changes({"a": "1"}, {"a": 1}) == [FieldChange("a", "1", 1)]
    assert field_changes({"a": 1}, {"a": 1.0}) == [FieldChange("a", 1, 1.0)]
    assert field_changes({"a": [1, 2]}, {"a": [1, 2]}) == []


def test_an_inserted_list_item_is_one_addition() -> None:
    old = {"env": [{"name": "A"}, {"name": "C"}]}
    new = {"env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}
    assert field_changes(old, new) == [FieldChange("env[1]", ABSENT, {"name": "B"})]
    assert field_changes(new, old) == [FieldChange("env[1]", {"name": "B"}, ABSENT)]


def test_text_of_several_lines_shows_the_changed_lines() -> None:
    from generator.diff import FleetDiff, Located, ObjectChange, ObjectId, TargetDiff

    old = {"data": {"run.sh": "set -e\necho 1\nexit 0\n"}}
    new = {"data": {"run.sh": "set -e\necho 2\nexit 0\n"}}
    change = ObjectChange(
        ObjectId("ConfigMap", "ns", "script"), "p", old, new, "p", field_changes(old, new)
    )
    diff = FleetDiff("HEAD", "mlgitops.yaml", [TargetDiff("cluster", "c", changed=[change])])
    assert format_text(diff) == (
        "cluster c\n"
        "  ~ ConfigMap/ns/script\n"
        '      ~ data["run.sh"]:\n'
        "          set -e\n"
        "      -   echo 1\n"
        "      +   echo 2\n"
        "          exit 0\n"
    )
    colored = format_text(diff, color=True)
    assert "\x1b[32m+   echo 2\x1b[0m" in colored
    assert Located("p", new).manifest is new
