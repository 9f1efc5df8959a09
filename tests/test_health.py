"""Health in the Argo CD UI: the Lua checks mlgitops writes into `argocd-cm`, run with a
real Lua 5.1 (the language of Argo CD's gopher-lua) against the status each controller
writes at the pinned release, a test per kind and state; the Component merged by the
real kustomize into an Argo CD install's `argocd-cm`; and only the kinds deployed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS, kustomize_command

from generator.cli import main

lua51 = pytest.importorskip("lupa.lua51", reason="lupa (a Lua runtime from PyPI) is not installed")

HEALTH = "bootstrap/argocd-health"
KEY = "resource.customizations.health."


def _generate(folder: Path, config_text: str) -> Path:
    folder.mkdir()
    (folder / "mlgitops.yaml").write_text(config_text)
    result = CliRunner().invoke(
        main, ["generate", "--config", str(folder / "mlgitops.yaml"), "--out", str(folder)]
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def every_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every runtime at once (a Job, a PyTorchJob, a TFJob, a JobSet, a TrainJob), on Argo CD."""
    text = (CONFIGS / "runtimes.yaml").read_text().replace("gitops: flux", "gitops: argocd")
    assert "gitops: argocd" in text
    return _generate(tmp_path_factory.mktemp("health") / "repo", text)


@pytest.fixture(scope="module")
def scripts(every_runtime: Path) -> dict[str, str]:
    (config_map,) = yaml.safe_load_all((every_runtime / HEALTH / "argocd-cm.yaml").read_text())
    data: dict[str, str] = config_map["data"]
    return data


def run_check(scripts: dict[str, str], group_kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD does with a health script: `obj` is the live object, the script's
    return value its health."""
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(scripts[KEY + group_kind])
    return {"status": result["status"], "message": result["message"]}


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-30T09:14:02Z",
    }


def with_status(kind: str, api: str, status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "resnet-ddp", "namespace": "ml-workloads"},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    return obj


# ---------------------------------------------------------------- JobSet v0.12.0

JOBSET_API = "jobset.x-k8s.io/v1alpha2"
JOBSET_STATES = {
    # Created and admitted: the controller resumed it, its Jobs run.
    "running": (
        {
            "conditions": [
                condition("Suspended", "False", "ResumeJobs", "jobset is resumed"),
            ],
            "replicatedJobsStatus": [
                {"name": "node", "ready": 1, "active": 1, "succeeded": 0, "failed": 0}
            ],
            "restarts": 0,
        },
        "Progressing",
        "running",
    ),
    "queued": (
        {
            "conditions": [
                condition("Suspended", "True", "SuspendedJobs", "jobset is suspended"),
            ],
            "restarts": 0,
        },
        "Progressing",
        "jobset is suspended",
    ),
    "restarting": (
        {
            "conditions": [
                condition("Suspended", "False", "ResumeJobs", "jobset is resumed"),
                condition(
                    "RestartingJobSet",
                    "True",
                    "DefaultFailurePolicy",
                    "applying RestartJobSet failure policy action",
                ),
            ],
            "restarts": 1,
        },
        "Progressing",
        "applying RestartJobSet failure policy action",
    ),
    "completed": (
        {
            "conditions": [
                condition("Suspended", "False", "ResumeJobs", "jobset is resumed"),
                condition("Completed", "True", "AllJobsCompleted", "jobset completed successfully"),
            ],
            "terminalState": "Completed",
            "restarts": 0,
        },
        "Healthy",
        "jobset completed successfully",
    ),
    "failed": (
        {
            "conditions": [
                condition("Suspended", "False", "ResumeJobs", "jobset is resumed"),
                condition("RestartingJobSet", "False", "JobSetFailed", "jobset failed"),
                condition(
                    "Failed", "True", "FailedJobs", "jobset failed due to one or more job failures"
                ),
            ],
            "terminalState": "Failed",
            "restarts": 0,
        },
        "Degraded",
        "jobset failed due to one or more job failures",
    ),
}


@pytest.mark.parametrize("state", sorted(JOBSET_STATES))
def test_jobset_health(scripts: dict[str, str], state: str) -> None:
    status, expected, message = JOBSET_STATES[state]
    health = run_check(scripts, "jobset.x-k8s.io_JobSet", with_status("JobSet", JOBSET_API, status))
    assert health == {"status": expected, "message": message}


# --------------------------------------------------- Training Operator v1.9.4 (v1)

KUBEFLOW_API = "kubeflow.org/v1"


def kubeflow_states(kind: str, running: str, succeeded: str, failed: str) -> dict[str, Any]:
    """The conditions the Training Operator writes (pkg/util/status.go: a Succeeded or
    Failed condition turns Running to False; Restarting replaces Running)."""
    created = condition("Created", "True", f"{kind}Created", f"{kind} resnet-ddp is created.")
    running_true = condition("Running", "True", f"{kind}Running", running)
    running_false = condition("Running", "False", f"{kind}Running", running)
    return {
        "created": ({"conditions": [created]}, "Progressing", f"{kind} resnet-ddp is created."),
        "queued": (
            {
                "conditions": [
                    created,
                    condition(
                        "Suspended", "True", f"{kind}Suspended", f"{kind} resnet-ddp is suspended."
                    ),
                ]
            },
            "Progressing",
            f"{kind} resnet-ddp is suspended.",
        ),
        "running": (
            {
                "conditions": [
                    created,
                    condition(
                        "Suspended", "False", f"{kind}Resumed", f"{kind} resnet-ddp is resumed."
                    ),
                    running_true,
                ],
                "replicaStatuses": {"Worker": {"active": 3}},
            },
            "Progressing",
            running,
        ),
        "restarting": (
            {
                "conditions": [
                    created,
                    condition(
                        "Restarting",
                        "True",
                        f"{kind}Restarting",
                        f"{kind} resnet-ddp is restarting because 1 Worker replica(s) failed.",
                    ),
                ]
            },
            "Progressing",
            f"{kind} resnet-ddp is restarting because 1 Worker replica(s) failed.",
        ),
        "succeeded": (
            {
                "conditions": [
                    created,
                    running_false,
                    condition("Succeeded", "True", f"{kind}Succeeded", succeeded),
                ],
                "completionTime": "2026-11-30T11:40:00Z",
            },
            "Healthy",
            succeeded,
        ),
        "failed": (
            {
                "conditions": [
                    created,
                    running_false,
                    condition("Failed", "True", f"{kind}Failed", failed),
                ]
            },
            "Degraded",
            failed,
        ),
        "no status yet": (None, "Progressing", "waiting for the Training Operator"),
    }


PYTORCHJOB_STATES = kubeflow_states(
    "PyTorchJob",
    "PyTorchJob ml-workloads/resnet-ddp is running.",
    "PyTorchJob ml-workloads/resnet-ddp successfully completed.",
    "PyTorchJob resnet-ddp is failed because 1 Worker replica(s) failed.",
)
TFJOB_STATES = kubeflow_states(
    "TFJob",
    "TFJob ml-workloads/resnet-ddp is running.",
    "TFJob ml-workloads/resnet-ddp successfully completed.",
    "TFJob ml-workloads/resnet-ddp has failed because 1 Worker replica(s) failed.",
)


@pytest.mark.parametrize("state", sorted(PYTORCHJOB_STATES))
def test_pytorchjob_health(scripts: dict[str, str], state: str) -> None:
    status, expected, message = PYTORCHJOB_STATES[state]
    obj = with_status("PyTorchJob", KUBEFLOW_API, status)
    health = run_check(scripts, "kubeflow.org_PyTorchJob", obj)
    assert health == {"status": expected, "message": message}


@pytest.mark.parametrize("state", sorted(TFJOB_STATES))
def test_tfjob_health(scripts: dict[str, str], state: str) -> None:
    status, expected, message = TFJOB_STATES[state]
    health = run_check(scripts, "kubeflow.org_TFJob", with_status("TFJob", KUBEFLOW_API, status))
    assert health == {"status": expected, "message": message}


# ---------------------------------------------------------------- Trainer v2.3.0

TRAINER_API = "trainer.kubeflow.org/v1alpha1"


def jobs_status(active: int, succeeded: int, failed: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "node",
            "ready": active,
            "active": active,
            "succeeded": succeeded,
            "failed": failed,
            "suspended": 0,
        }
    ]


TRAINJOB_STATES = {
    "queued": (
        {"conditions": [condition("Suspended", "True", "Suspended", "TrainJob is suspended")]},
        "Progressing",
        "TrainJob is suspended",
    ),
    "starting": (
        {"conditions": [condition("Suspended", "False", "Resumed", "TrainJob is resumed")]},
        "Progressing",
        "waiting for its JobSet",
    ),
    "running": (
        {
            "conditions": [condition("Suspended", "False", "Resumed", "TrainJob is resumed")],
            "jobsStatus": jobs_status(active=2, succeeded=0, failed=0),
        },
        "Progressing",
        "running: 2 active job(s)",
    ),
    # Complete and Failed are the JobSet's conditions, copied (jobset plugin Status).
    "complete": (
        {
            "conditions": [
                condition("Complete", "True", "AllJobsCompleted", "jobset completed successfully"),
            ],
            "jobsStatus": jobs_status(active=0, succeeded=2, failed=0),
        },
        "Healthy",
        "jobset completed successfully",
    ),
    "failed": (
        {
            "conditions": [
                condition(
                    "Failed", "True", "FailedJobs", "jobset failed due to one or more job failures"
                ),
            ],
            "jobsStatus": jobs_status(active=0, succeeded=0, failed=1),
        },
        "Degraded",
        "jobset failed due to one or more job failures",
    ),
    "runtime not supported": (
        {
            "conditions": [
                condition(
                    "Failed",
                    "True",
                    "TrainingRuntimeNotSupported",
                    'unsupported runtime "torch-distributed"',
                ),
            ]
        },
        "Degraded",
        'unsupported runtime "torch-distributed"',
    ),
}


@pytest.mark.parametrize("state", sorted(TRAINJOB_STATES))
def test_trainjob_health(scripts: dict[str, str], state: str) -> None:
    status, expected, message = TRAINJOB_STATES[state]
    obj = with_status("TrainJob", TRAINER_API, status)
    health = run_check(scripts, "trainer.kubeflow.org_TrainJob", obj)
    assert health == {"status": expected, "message": message}


# ------------------------------------------------------------ Argo CD Application

APPLICATION_STATES = {
    "healthy": (
        {"health": {"status": "Healthy"}, "sync": {"status": "Synced"}},
        "Healthy",
        "",
    ),
    "progressing": (
        {
            "health": {"status": "Progressing", "message": "Waiting for rollout"},
            "sync": {"status": "Synced"},
        },
        "Progressing",
        "Waiting for rollout",
    ),
    "degraded": (
        {
            "health": {"status": "Degraded", "message": "Job has reached the backoff limit"},
            "sync": {"status": "Synced"},
        },
        "Degraded",
        "Job has reached the backoff limit",
    ),
    "missing": ({"health": {"status": "Missing"}}, "Missing", ""),
    "not assessed yet": (None, "Progressing", "waiting for the Application to be assessed"),
}


@pytest.mark.parametrize("state", sorted(APPLICATION_STATES))
def test_application_health(scripts: dict[str, str], state: str) -> None:
    status, expected, message = APPLICATION_STATES[state]
    obj = with_status("Application", "argoproj.io/v1alpha1", status)
    health = run_check(scripts, "argoproj.io_Application", obj)
    assert health == {"status": expected, "message": message}


# ------------------------------------------------------------------- the file itself


@pytest.mark.parametrize(
    "group_kind",
    [
        "jobset.x-k8s.io_JobSet",
        "kubeflow.org_PyTorchJob",
        "kubeflow.org_TFJob",
        "trainer.kubeflow.org_TrainJob",
        "argoproj.io_Application",
    ],
)
@pytest.mark.parametrize("status", [None, {}, {"conditions": []}])
def test_an_object_without_conditions_is_progressing_never_an_error(
    scripts: dict[str, str], group_kind: str, status: dict[str, Any] | None
) -> None:
    group, _, kind = group_kind.partition("_")
    health = run_check(scripts, group_kind, with_status(kind, f"{group}/v1", status))
    assert health["status"] == "Progressing" and health["message"]


def training_kinds(tree: Path) -> set[str]:
    """`group_kind` of every object the tree runs training with (templates aside)."""
    found = set()
    groups = ("jobset.x-k8s.io", "kubeflow.org", "trainer.kubeflow.org")
    for path in tree.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                continue
            group = str(doc["apiVersion"]).rpartition("/")[0]
            if group in groups and not doc["kind"].endswith("TrainingRuntime"):
                found.add(f"{group}_{doc['kind']}")
    return found


def test_a_check_for_every_kind_deployed_that_argo_cd_lacks(
    every_runtime: Path, scripts: dict[str, str]
) -> None:
    deployed = training_kinds(every_runtime)
    # The TrainJob's JobSet is made by Trainer, not deployed: its check is for the UI's tree.
    assert deployed == {
        "jobset.x-k8s.io_JobSet",
        "kubeflow.org_PyTorchJob",
        "kubeflow.org_TFJob",
        "trainer.kubeflow.org_TrainJob",
    }
    assert set(scripts) == {KEY + k for k in deployed} | {KEY + "argoproj.io_Application"}


def test_only_the_kinds_deployed_and_only_with_argo_cd(tmp_path: Path) -> None:
    # The seeds config runs plain Jobs, which Argo CD knows: only Applications need one.
    seeds = _generate(tmp_path / "seeds", SEEDS.read_text())
    (config_map,) = yaml.safe_load_all((seeds / HEALTH / "argocd-cm.yaml").read_text())
    assert list(config_map["data"]) == [KEY + "argoproj.io_Application"]
    flux = _generate(tmp_path / "flux", (CONFIGS / "runtimes.yaml").read_text())
    assert not (flux / HEALTH).exists()
    assert not list(flux.glob("bootstrap/*health*"))


def test_the_component_merges_into_an_argo_cd_install(every_runtime: Path, tmp_path: Path) -> None:
    """As in an Argo CD installed with kustomize: its own argocd-cm (here with a setting
    of the install's) and the component; the real kustomize builds the result."""
    install = tmp_path / "argocd"
    install.mkdir()
    (install / "argocd-cm.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "argocd-cm",
                    "labels": {
                        "app.kubernetes.io/name": "argocd-cm",
                        "app.kubernetes.io/part-of": "argocd",
                    },
                },
                "data": {"url": "https://argocd.example.com"},
            }
        )
    )
    component = os.path.relpath(every_runtime / HEALTH, install)
    (install / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "argocd",
                "resources": ["argocd-cm.yaml"],
                "components": [component],
            }
        )
    )
    run = subprocess.run(
        [*kustomize_command(), str(install)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    (built,) = [doc for doc in yaml.safe_load_all(run.stdout) if doc]
    (patch,) = yaml.safe_load_all((every_runtime / HEALTH / "argocd-cm.yaml").read_text())
    assert built["metadata"]["namespace"] == "argocd"
    assert built["data"] == {"url": "https://argocd.example.com", **patch["data"]}


def test_the_patch_file_is_a_whole_config_map_for_kubectl_apply(every_runtime: Path) -> None:
    """`kubectl apply --server-side -f` needs a whole object: name, namespace and kind."""
    (config_map,) = yaml.safe_load_all((every_runtime / HEALTH / "argocd-cm.yaml").read_text())
    assert config_map["apiVersion"] == "v1" and config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["metadata"]["namespace"] == "argocd"
    assert all(isinstance(script, str) for script in config_map["data"].values())
