"""The CI workflow of the generated repository (GitHub Actions), so the tree is guarded
from its first commit: on every pull request and every push to the tracked branch it
installs the same mlgitops version that wrote the tree, fails when the tree is not what
the config generates (`generate --check`), and validates every build (`validate`, with
custom resources checked against the CRDs of the pinned operator releases and the CRDs
catalog at a pinned commit). With `ci.kubeconform` it also runs the same objects
through kubeconform, a pinned release whose checksum is verified, for teams that
standardise on it.

`validate` keeps its results and its downloaded schemas under ~/.cache/mlgitops
($XDG_CACHE_HOME, which the hosted runners leave unset); the workflow carries that
folder from run to run with actions/cache. The cache key is a hash of the tree, and a
run whose key is new restores the newest entry of the same mlgitops version (the
restore-keys prefix): the results in it are keyed by the content of each build's
inputs, so an older cache is always safe to start from, and a pull request that
changes one workload builds that workload's paths again and reads the rest.

On a pull request a second job posts what each cluster would get differently
(`mlgitops diff --against origin/<base>`) as one comment, found again by a hidden
marker and edited in place on every push. That job alone may write to pull requests;
the check job only reads. Nothing from the event is written into a script: the base
branch and the pull request's number reach the shell as environment variables.

Hardened as the workflow scanners ask (zizmor finds nothing in it): no permission at
the top, each job only what it needs, checkout keeps no credentials in the working
copy, and every action is pinned to the full commit of a release, its tag in a comment
(a tag can be moved to other code; a commit cannot).
"""

from __future__ import annotations

from typing import Any

from generator import __version__
from generator.config import model
from generator.render.gitops.flux import git_reference
from generator.render.objects import Document

WORKFLOW_PATH = ".github/workflows/mlgitops.yaml"
# (action, commit, the release tag that names that commit: `git rev-parse <tag>^{commit}`
# in a clone of the action's repository)
CHECKOUT = ("actions/checkout", "11d5960a326750d5838078e36cf38b85af677262", "v4.4.0")
SETUP_PYTHON = ("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0")
CACHE = ("actions/cache", "0057852bfaa89a56745cba8c7296529d2fc39830", "v4.3.0")
ACTIONS = (CHECKOUT, SETUP_PYTHON, CACHE)
KUBECONFORM_VERSION = "v0.6.7"
KUBECONFORM_ASSET = "kubeconform-linux-amd64.tar.gz"
# The SHA-256 of that asset, as the release's CHECKSUMS file states it.
KUBECONFORM_SHA256 = "95f14e87aa28c09d5941f11bd024c1d02fdc0303ccaa23f61cef67bc92619d73"
KUBECONFORM_URL = (
    f"https://github.com/yannh/kubeconform/releases/download/{KUBECONFORM_VERSION}/"
    f"{KUBECONFORM_ASSET}"
)
# Where validate keeps its results and schemas when XDG_CACHE_HOME is unset.
CACHE_FOLDER = "~/.cache/mlgitops"
CACHE_PREFIX = f"mlgitops-validate-{__version__}-${{{{ runner.os }}}}-"
# The first line of the diff comment: how the job finds its own comment again.
DIFF_MARKER = "<!-- mlgitops-diff -->"
# GitHub refuses a comment body over 65536 characters; the rest is in the job summary.
MAX_DIFF_BYTES = 60000
BOT = "github-actions[bot]"
COMMENT = """\
# Checks that this repository is exactly what mlgitops.yaml generates and that every
# build is valid; on a pull request, comments what each cluster would get differently.
# To go without it, set `ci: {workflow: false}` in mlgitops.yaml.
"""

DIFF_SCRIPT = f"""\
status=0
: >"$RUNNER_TEMP/diff.txt"
if git cat-file -e "origin/$BASE_REF:mlgitops.yaml" 2>/dev/null; then
  mlgitops diff --against "origin/$BASE_REF" >"$RUNNER_TEMP/diff.txt" \\
    2>"$RUNNER_TEMP/diff.err" || status=$?
  cat "$RUNNER_TEMP/diff.err" >&2
  if [ "$status" -gt 1 ]; then exit "$status"; fi
  summary=$(grep '^mlgitops: ' "$RUNNER_TEMP/diff.err" | tail -n 1 | sed 's/^mlgitops: //')
else
  summary="mlgitops.yaml is new: origin/$BASE_REF has none to compare with"
fi
size=$(wc -c <"$RUNNER_TEMP/diff.txt")
{{
  echo '{DIFF_MARKER}'
  echo '### mlgitops diff'
  echo
  echo "$summary"
  if [ "$size" -gt 0 ]; then
    echo
    echo '````text'
    head -c {MAX_DIFF_BYTES} "$RUNNER_TEMP/diff.txt"
    if [ "$size" -gt {MAX_DIFF_BYTES} ]; then
      echo
      echo "[cut at {MAX_DIFF_BYTES} of $size bytes: the job summary has it all]"
    fi
    echo '````'
  fi
}} >"$RUNNER_TEMP/comment.md"
{{
  echo "$summary"
  echo
  echo '````text'
  cat "$RUNNER_TEMP/diff.txt"
  echo '````'
}} >>"$GITHUB_STEP_SUMMARY"
"""

COMMENT_SCRIPT = f"""\
comments="repos/$REPOSITORY/issues/$PULL_REQUEST/comments"
found=$(gh api --paginate "$comments" --jq \\
  '.[] | select(.user.login == "{BOT}" and (.body | startswith("{DIFF_MARKER}"))) | .id' \\
  | head -n 1)
if [ -n "$found" ]; then
  gh api --method PATCH "repos/$REPOSITORY/issues/comments/$found" \\
    -F "body=@$RUNNER_TEMP/comment.md" >/dev/null
else
  gh api --method POST "$comments" -F "body=@$RUNNER_TEMP/comment.md" >/dev/null
fi
"""

KUBECONFORM_SCRIPT = f"""\
mkdir -p "$RUNNER_TEMP/bin"
curl -sSfL -o "$RUNNER_TEMP/{KUBECONFORM_ASSET}" {KUBECONFORM_URL}
echo "{KUBECONFORM_SHA256}  $RUNNER_TEMP/{KUBECONFORM_ASSET}" | sha256sum --check --strict
tar -xzf "$RUNNER_TEMP/{KUBECONFORM_ASSET}" -C "$RUNNER_TEMP/bin" kubeconform
echo "$RUNNER_TEMP/bin" >>"$GITHUB_PATH"
"""


def render_ci_units(config: model.Config) -> list[Document]:
    if not config.ci.workflow:
        return []
    notes = tuple((uses(action), action[2]) for action in ACTIONS)
    # The one write permission of the workflow, explained where it is granted.
    notes += (("write", "to comment the diff on the pull request"),)
    return [Document(WORKFLOW_PATH, [render_workflow(config)], comment=COMMENT, notes=notes)]


def render_workflow(config: model.Config) -> dict[str, Any]:
    triggers: dict[str, Any] = {"pull_request": {}}
    branch = git_reference(config.repo.revision).get("branch")
    triggers["push"] = {"branches": [branch]} if branch else {}
    return {
        "name": "mlgitops",
        "on": triggers,
        "permissions": {},
        # A newer push supersedes a running check, and an older diff never overwrites
        # the comment of a newer one.
        "concurrency": {
            "group": "${{ github.workflow }}-${{ github.ref }}",
            "cancel-in-progress": True,
        },
        "jobs": {"check": check_job(config), "diff": diff_job()},
    }


def _setup(checkout: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"uses": uses(CHECKOUT), "with": {"persist-credentials": False, **checkout}},
        {"uses": uses(SETUP_PYTHON), "with": {"python-version": "3.11"}},
        {
            "name": "Install mlgitops",
            "run": f'pip install "mlgitops[kubectl]=={__version__}"',
        },
    ]


def check_job(config: model.Config) -> dict[str, Any]:
    steps = [
        *_setup({}),
        {"name": "The tree is what the config generates", "run": "mlgitops generate --check"},
        {
            "name": "Keep validate's results and schemas between runs",
            "uses": uses(CACHE),
            "with": {
                "path": CACHE_FOLDER,
                "key": CACHE_PREFIX + "${{ hashFiles('**/*.yaml', '**/*.json') }}",
                "restore-keys": CACHE_PREFIX,
            },
        },
        {"name": "Every build is valid", "run": "mlgitops validate"},
    ]
    if config.ci.kubeconform:
        steps += [
            {"name": f"Install kubeconform {KUBECONFORM_VERSION}", "run": KUBECONFORM_SCRIPT},
            {
                "name": "Every object passes kubeconform",
                "run": "mlgitops validate --engine kubeconform",
            },
        ]
    return {
        "name": "generate --check and validate",
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read"},
        "steps": steps,
    }


def diff_job() -> dict[str, Any]:
    """`mlgitops diff` reads the config at the base branch from git: the checkout
    fetches every branch (fetch-depth 0), so `origin/<base>` is there. A pull request
    from a fork gets a token that cannot comment; its diff is in the job summary."""
    return {
        "name": "diff against the base branch",
        "if": "github.event_name == 'pull_request'",
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read", "pull-requests": "write"},
        "steps": [
            *_setup({"fetch-depth": 0}),
            {
                "name": "What each cluster would get differently",
                "env": {"BASE_REF": "${{ github.base_ref }}"},
                "run": DIFF_SCRIPT,
            },
            {
                "name": "Comment it on the pull request, once",
                "if": "github.event.pull_request.head.repo.full_name == github.repository",
                "env": {
                    "GH_TOKEN": "${{ github.token }}",
                    "REPOSITORY": "${{ github.repository }}",
                    "PULL_REQUEST": "${{ github.event.pull_request.number }}",
                },
                "run": COMMENT_SCRIPT,
            },
        ],
    }


def uses(action: tuple[str, str, str]) -> str:
    """`owner/name@<commit>`; the file notes the tag after it (`render_ci_units`)."""
    name, commit, _ = action
    return f"{name}@{commit}"
