"""Health in the Argo CD UI: Lua health checks for the kinds mlgitops deploys that Argo CD
has none for.

Argo CD knows a Job's health, but not a JobSet's, a PyTorchJob's, a TFJob's or a
TrainJob's: without a check it shows them Healthy the moment they exist, whether they
run, wait for Kueue or failed an hour ago. Nor does it assess its own Applications any
more (removed in Argo CD 1.8), and a root app-of-apps needs that for its sync waves to
wait: the Applications of wave 1 (operators) are then applied only once those of wave 0
are Healthy, not merely created.

Each check reads the conditions the kind's controller sets at the release mlgitops pins:

- JobSet (JobSet v0.12.0, api/jobset/v1alpha2): Completed, Failed, Suspended,
  RestartingJobSet.
- PyTorchJob and TFJob (Training Operator v1.9.4, kubeflow.org/v1 JobConditionType):
  Created, Running, Restarting, Succeeded, Suspended, Failed.
- TrainJob (Trainer v2.3.0, trainer.kubeflow.org/v1alpha1): Complete and Failed (copied
  from its JobSet's), Suspended.

A run is Progressing while it waits, is suspended (queued in Kueue, or held) or runs,
Healthy once it completed and Degraded once it failed; the message is the controller's.

They reach Argo CD as `resource.customizations.health.<group>_<kind>` keys of its
`argocd-cm` ConfigMap, in `bootstrap/argocd-health/`: a kustomize Component for an Argo
CD installed with kustomize, whose patch file is also a whole ConfigMap that
`kubectl apply --server-side` merges into a running install (README: Health in the Argo
CD UI). Argo CD reads the keys as they change: no restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.config import model
from generator.render.objects import Manifest, Patch, Unit

HEALTH_FOLDER = "bootstrap/argocd-health"
PATCH_FILE = "argocd-cm.yaml"
ARGOCD_CM = "argocd-cm"
ARGOCD_NAMESPACE = "argocd"
KEY_PREFIX = "resource.customizations.health."

# Every script starts with these: `condition(type)` is the condition of that type when its
# status is "True", and `health(...)` the result, with the condition's message if it has one.
PRELUDE = """\
local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name and c.status == "True" then
      return c
    end
  end
  return nil
end

local function health(status, c, fallback)
  local message = fallback
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    message = c.message
  end
  return {status = status, message = message}
end
"""

SUSPENDED = "suspended: waiting to be admitted (Kueue) or resumed"


@dataclass(frozen=True)
class Rule:
    """When the condition is True: this health, and this message if it has none."""

    condition: str
    status: str
    message: str


@dataclass(frozen=True)
class JobCheck:
    group: str
    kind: str
    source: str  # where its conditions are defined, at the pinned release
    rules: tuple[Rule, ...]  # the first whose condition is True decides
    otherwise: str  # the message of Progressing when none is
    running: str = ""  # Lua that may return a better Progressing message than `otherwise`

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.group}_{self.kind}"

    def script(self) -> str:
        lines = [f"-- {self.kind} health from its conditions ({self.source}).", PRELUDE]
        for number, rule in enumerate(self.rules):
            local = "local c" if number == 0 else "c"
            lines += [
                f'{local} = condition("{rule.condition}")',
                "if c ~= nil then",
                f'  return health("{rule.status}", c, "{rule.message}")',
                "end",
            ]
        if self.running:
            lines.append(self.running.rstrip("\n"))
        lines.append(f'return {{status = "Progressing", message = "{self.otherwise}"}}')
        return "\n".join(lines) + "\n"


def _kubeflow_v1(kind: str) -> JobCheck:
    return JobCheck(
        "kubeflow.org",
        kind,
        "Training Operator v1.9.4, kubeflow.org/v1 JobConditionType",
        (
            Rule("Failed", "Degraded", "failed"),
            Rule("Succeeded", "Healthy", "succeeded"),
            Rule("Suspended", "Progressing", SUSPENDED),
            Rule("Restarting", "Progressing", "restarting"),
            Rule("Running", "Progressing", "running"),
            Rule("Created", "Progressing", "created: waiting for its pods"),
        ),
        "waiting for the Training Operator",
    )


JOBSET = JobCheck(
    "jobset.x-k8s.io",
    "JobSet",
    "JobSet v0.12.0, jobset.x-k8s.io/v1alpha2 JobSetConditionType",
    (
        Rule("Failed", "Degraded", "failed"),
        Rule("Completed", "Healthy", "completed"),
        Rule("Suspended", "Progressing", SUSPENDED),
        Rule("RestartingJobSet", "Progressing", "restarting"),
    ),
    "running",
)
PYTORCHJOB = _kubeflow_v1("PyTorchJob")
TFJOB = _kubeflow_v1("TFJob")
# Trainer sets no Running condition: the active Jobs of its JobSet say it runs.
TRAINJOB_RUNNING = """\
local active = 0
if obj.status ~= nil and obj.status.jobsStatus ~= nil then
  for _, job in ipairs(obj.status.jobsStatus) do
    if job.active ~= nil then
      active = active + job.active
    end
  end
end
if active > 0 then
  return {status = "Progressing", message = "running: " .. active .. " active job(s)"}
end
"""
TRAINJOB = JobCheck(
    "trainer.kubeflow.org",
    "TrainJob",
    "Trainer v2.3.0, trainer.kubeflow.org/v1alpha1 TrainJob conditions",
    (
        Rule("Failed", "Degraded", "failed"),
        Rule("Complete", "Healthy", "complete"),
        Rule("Suspended", "Progressing", SUSPENDED),
    ),
    "waiting for its JobSet",
    TRAINJOB_RUNNING,
)
# What each runtime deploys that Argo CD has no check for (a `job` is a batch Job, which
# it knows). A TrainJob runs as a JobSet, which the UI shows beneath it.
BY_RUNTIME: dict[str, tuple[JobCheck, ...]] = {
    "job": (),
    "pytorchjob": (PYTORCHJOB,),
    "tfjob": (TFJOB,),
    "jobset": (JOBSET,),
    "trainjob": (TRAINJOB, JOBSET),
}

APPLICATION_KEY = f"{KEY_PREFIX}argoproj.io_Application"
# An Application is as healthy as its own status says; until its controller has assessed
# it, Progressing (so a sync wave waits for it rather than passing it).
APPLICATION_SCRIPT = """\
-- Application health from its own status: what the Application shows in Argo CD.
if obj.status ~= nil and obj.status.health ~= nil and obj.status.health.status ~= nil then
  local message = obj.status.health.message
  if message == nil then
    message = ""
  end
  return {status = obj.status.health.status, message = message}
end
return {status = "Progressing", message = "waiting for the Application to be assessed"}
"""


def job_checks(config: model.Config) -> list[JobCheck]:
    """The checks for the kinds the config's workloads deploy, each once."""
    found: dict[str, JobCheck] = {}
    for workload in config.workloads:
        for check in BY_RUNTIME[workload.runtime]:
            found.setdefault(check.key, check)
    return [found[key] for key in sorted(found)]


def health_scripts(config: model.Config) -> dict[str, str]:
    scripts = {check.key: check.script() for check in job_checks(config)}
    scripts[APPLICATION_KEY] = APPLICATION_SCRIPT
    return dict(sorted(scripts.items()))


def argocd_cm(config: model.Config) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ARGOCD_CM,
            "namespace": ARGOCD_NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": ARGOCD_CM,
                "app.kubernetes.io/part-of": "argocd",
            },
        },
        "data": health_scripts(config),
    }


def render_health_units(config: model.Config) -> list[Unit]:
    if config.gitops != "argocd":
        return []
    patch = Patch(PATCH_FILE, {"kind": "ConfigMap", "name": ARGOCD_CM}, argocd_cm(config))
    return [Unit(HEALTH_FOLDER, patches=[patch], is_component=True)]
