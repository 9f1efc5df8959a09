"""The CI workflow of the generated repository (GitHub Actions), so the tree is guarded
from its first commit: on every pull request and every push to the tracked branch it
installs the same mlgitops version that wrote the tree, fails when the tree is not what
the config generates (`generate --check`), and validates every build (`validate`), with
custom resources checked against the community CRDs catalog. With `ci.kubeconform` it
also runs the same objects through kubeconform, for teams that standardise on it.

Hardened as the workflow scanners ask: no permission at the top, the job only reads the
repository, checkout keeps no credentials in the working copy, and every action is
pinned to the full commit of a release, its tag in a comment (a tag can be moved to
other code; a commit cannot).
"""

from __future__ import annotations

from typing import Any

from generator import __version__
from generator.config import model
from generator.render.gitops.flux import git_reference
from generator.render.objects import Document

WORKFLOW_PATH = ".github/workflows/mlgitops.yaml"
# (action, commit, the release tag that names that commit)
CHECKOUT = ("actions/checkout", "11d5960a326750d5838078e36cf38b85af677262", "v4.4.0")
SETUP_PYTHON = ("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0")
ACTIONS = (CHECKOUT, SETUP_PYTHON)
KUBECONFORM_VERSION = "v0.6.7"
CRDS_CATALOG = (
    "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/"
    "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
)
COMMENT = """\
# Checks that this repository is exactly what mlgitops.yaml generates and that every
# build is valid. To go without it, set `ci: {workflow: false}` in mlgitops.yaml.
"""


def render_ci_units(config: model.Config) -> list[Document]:
    if not config.ci.workflow:
        return []
    notes = tuple((uses(action), action[2]) for action in ACTIONS)
    return [Document(WORKFLOW_PATH, [render_workflow(config)], comment=COMMENT, notes=notes)]


def render_workflow(config: model.Config) -> dict[str, Any]:
    triggers: dict[str, Any] = {"pull_request": {}}
    branch = git_reference(config.repo.revision).get("branch")
    triggers["push"] = {"branches": [branch]} if branch else {}
    steps: list[dict[str, Any]] = [
        {"uses": uses(CHECKOUT), "with": {"persist-credentials": False}},
        {"uses": uses(SETUP_PYTHON), "with": {"python-version": "3.11"}},
        {
            "name": "Install mlgitops",
            "run": f'pip install "mlgitops[kubectl]=={__version__}"',
        },
        {"name": "The tree is what the config generates", "run": "mlgitops generate --check"},
        {
            "name": "Every build is valid",
            "run": f"mlgitops validate --schema-location '{CRDS_CATALOG}'",
        },
    ]
    if config.ci.kubeconform:
        release = (
            "https://github.com/yannh/kubeconform/releases/download/"
            f"{KUBECONFORM_VERSION}/kubeconform-linux-amd64.tar.gz"
        )
        steps += [
            {
                "name": "Install kubeconform",
                "run": f"curl -sSfL {release} | tar -xz -C /usr/local/bin kubeconform",
            },
            {
                "name": "Every object passes kubeconform",
                "run": (
                    f"mlgitops validate --engine kubeconform --schema-location '{CRDS_CATALOG}'"
                ),
            },
        ]
    return {
        "name": "mlgitops",
        "on": triggers,
        "permissions": {},
        "jobs": {
            "check": {
                "runs-on": "ubuntu-latest",
                "permissions": {"contents": "read"},
                "steps": steps,
            }
        },
    }


def uses(action: tuple[str, str, str]) -> str:
    """`owner/name@<commit>`; the file notes the tag after it (`render_ci_units`)."""
    name, commit, _ = action
    return f"{name}@{commit}"
