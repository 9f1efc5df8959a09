"""Runs that are disrupted and restart, for the end-to-end harness.

What the controllers decide when pods fail is the product's model
(generator/cluster/controllers.py: `job_outcome` for the Job controller and its pod
failure policy, `jobset_outcome` for JobSet's failure policy), the same model `validate`
relies on; this module applies those decisions over time to pods that run as processes
(jobrun.py, sandbox.py):

- a disruption is what an eviction or a preemption does to a pod: the pod gets the
  `DisruptionTarget` condition, then its container's main process (PID 1 of the
  container: here torchrun) gets SIGTERM, and SIGKILL once the pod's
  `terminationGracePeriodSeconds` have passed; the pod has failed with whatever its
  process exited with, and the condition;
- when the Job controller replaces a pod (an ignored failure) the new pod gets a network
  of its own and the old pod's DNS name (the hosts files are written again);
- when JobSet restarts the set, every Job is deleted (their pods get SIGTERM and the
  grace period, as when a finished run stops them) and recreated, labelled with the new
  restart number; the pods of the new run start once the old ones are gone, with the
  claims as they were.

The test chooses when to disrupt by what the pods have said (a line in a log), never by
time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import kube
from jobrun import POLL_SECONDS, Image, JobRun, PodRun, dns_records, start_pod
from sandbox import Host, Sandbox

from generator.cluster import controllers

NODE_NAME = "e2e-node"


@dataclass(frozen=True)
class Disruption:
    """Disrupt the pod at `pod` (its position in the run's pods) of run `attempt`, once
    `when(logs)` holds: `logs` is the run's folder of pod logs, `<hostname>-<n>.log`
    (n: 0, then one more for each replacement)."""

    pod: int
    when: Callable[[Path], bool]
    attempt: int = 0


@dataclass(frozen=True)
class RestartedRun:
    """Every run of the workload (one per JobSet restart, or the Job's one run with its
    replaced pods), what the controllers decided after each, and how it ended."""

    outcome: str  # Completed, Complete, or the failure's reason/action, or DeadlineExceeded
    runs: list[JobRun]
    decisions: list[str] = field(default_factory=list)

    @property
    def pods(self) -> list[PodRun]:
        return [pod for run in self.runs for pod in run.pods]

    def describe(self) -> str:
        lines = [f"outcome {self.outcome}, decisions {self.decisions}"]
        for number, run in enumerate(self.runs):
            lines.append(f"=== run {number}")
            lines.append(run.describe())
        return "\n".join(lines)


@dataclass
class _Running:
    pod: kube.Pod
    host: Host
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    disrupted: bool = False

    def end(self) -> controllers.PodEnd | None:
        code = self.process.poll()
        return None if code is None else controllers.PodEnd(code, self.disrupted)


def run_jobset(
    objects: Sequence[kube.Manifest],
    name: str,
    image: Image,
    folder: Path,
    deadline_seconds: float,
    disruptions: Sequence[Disruption] = (),
    max_runs: int = 5,
) -> RestartedRun:
    """Run the JobSet, restarting it as its failure policy decides (at most `max_runs`
    runs: a policy that never stops restarting is a failure of its own)."""
    jobset = kube.find(objects, "JobSet", name)
    restarts = controllers.JobSetRestarts(total=0, counted=0)
    claims = folder / "claims"
    runs: list[JobRun] = []
    decisions: list[str] = []
    until = time.monotonic() + deadline_seconds
    while len(runs) < max_runs:
        attempt = len(runs)
        jobs = controllers.jobset_child_jobs(jobset, restarts.total)
        pods = controllers.jobset_pods(jobset, restarts.total)
        wanted = [d for d in disruptions if d.attempt == attempt]
        every = [*objects, *controllers.services(jobset)]

        def decide(
            running: list[_Running],
            jobs: list[kube.Manifest] = jobs,
            restarts: controllers.JobSetRestarts = restarts,
        ) -> str | None:
            return _jobset_decision(jobset, jobs, restarts, running)

        run, decided = _run(
            every, pods, decide, image, folder / f"run-{attempt}", claims, wanted, until
        )
        action, _, counts = decided.partition("/")
        runs.append(replace(run, outcome=action))
        if decided in ("Completed", "DeadlineExceeded"):
            return RestartedRun(decided, runs, decisions)
        total, counted = counts.split("/")
        decisions.append(action)
        if action in ("FailJobSet", "ReachedMaxRestarts", "FailedJobs"):
            return RestartedRun(action, runs, decisions)
        restarts = controllers.JobSetRestarts(int(total), int(counted))
    return RestartedRun("TooManyRestarts", runs, decisions)


def _jobset_decision(
    jobset: kube.Manifest,
    jobs: Sequence[kube.Manifest],
    restarts: controllers.JobSetRestarts,
    running: Sequence[_Running],
) -> str | None:
    """Each Job's outcome (the Job controller), then the JobSet's decision: its failure
    policy's once a Job has failed, `Completed` once its success policy holds.
    Returned as `<action>/<restarts>/<counted restarts>`."""
    ends = {id(r.pod): r.end() for r in running}
    failed = []
    finished = []
    for job in jobs:
        mine = [r.pod for r in running if r.pod.job == job["metadata"]["name"]]
        outcome = controllers.job_outcome(job, [ends[id(p)] for p in mine])
        if outcome.failed:
            failed.append((job, outcome))
        elif all(ends[id(p)] == controllers.PodEnd(0) for p in mine):
            finished.append(job)
    if failed:
        decision = controllers.jobset_outcome(jobset, failed, restarts)
        return f"{decision.action}/{decision.total}/{decision.counted}"
    return "Completed" if _succeeded(jobset, finished) else None


def _succeeded(jobset: kube.Manifest, finished: Sequence[kube.Manifest]) -> bool:
    """JobSet's success policy (`executeSuccessPolicy`): `All` Jobs of the target
    replicated jobs (all of them when none is named) have completed."""
    spec = controllers.jobset_defaulted(jobset)["spec"]
    policy = spec["successPolicy"]
    assert policy["operator"] == "All", "only the All success policy is used here"
    targets = policy.get("targetReplicatedJobs") or [r["name"] for r in spec["replicatedJobs"]]
    needed = sum(int(r["replicas"]) for r in spec["replicatedJobs"] if r["name"] in targets)
    done = [
        j
        for j in finished
        if j["metadata"]["labels"][controllers.REPLICATED_JOB_NAME_KEY] in targets
    ]
    return len(done) >= needed


def run_job(
    objects: Sequence[kube.Manifest],
    name: str,
    image: Image,
    folder: Path,
    deadline_seconds: float,
    disruptions: Sequence[Disruption] = (),
    max_replacements: int = 5,
) -> RestartedRun:
    """Run the Indexed Job, replacing the pods its pod failure policy ignores."""
    job = kube.find(objects, "Job", name)
    pods = kube.indexed_job_pods(job)
    claims = folder / "claims"
    until = time.monotonic() + deadline_seconds
    replaced = {pod.index: 0 for pod in pods}

    def decide(running: list[_Running]) -> str | None:
        current = running[-len(pods) :]  # the newest pod of each index, in index order
        outcome = controllers.job_outcome(job, [r.end() for r in current])
        if outcome.failed:
            return outcome.failed
        if outcome.replace:
            return "Replace:" + ",".join(str(i) for i in outcome.replace)
        if all(r.end() == controllers.PodEnd(0) for r in current):
            return "Complete"
        return None

    run, decided = _run(
        objects, pods, decide, image, folder / "run-0", claims, disruptions, until, job, replaced
    )
    decisions = [] if decided in ("Complete",) else [decided]
    if sum(replaced.values()) > max_replacements:
        return RestartedRun("TooManyReplacements", [run], decisions)
    return RestartedRun(decided, [run], decisions)


def _run(
    objects: Sequence[kube.Manifest],
    pods: Sequence[kube.Pod],
    decide: Callable[[list[_Running]], str | None],
    image: Image,
    folder: Path,
    claims: Path,
    disruptions: Sequence[Disruption],
    until: float,
    job: kube.Manifest | None = None,
    replaced: dict[int, int] | None = None,
) -> tuple[JobRun, str]:
    """Start `pods`, disrupt them as `disruptions` say, replace the pods of an Indexed
    `job` its controller replaces, and stop everything once `decide` has decided."""
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    begin = time.monotonic()
    pending = list(disruptions)
    with Sandbox(folder / "pods") as sandbox:
        hosts = [sandbox.add_host(pod.hostname) for pod in pods]
        records = dns_records(objects, pods, hosts)
        running = [
            _launch(pod, host, objects, records, image, logs, claims, 0)
            for pod, host in zip(pods, hosts, strict=True)
        ]
        while True:
            for disruption in list(pending):
                if disruption.when(logs):
                    pending.remove(disruption)
                    _disrupt(running[disruption.pod])
            decided = decide(running)
            if (
                decided
                and decided.startswith("Replace:")
                and job is not None
                and replaced is not None
            ):
                for index in (int(i) for i in decided.removeprefix("Replace:").split(",")):
                    replaced[index] += 1
                    pod = controllers.job_replacement_pod(job, index, replaced[index])
                    hosts[index] = sandbox.add_host(pod.hostname)
                    current = [r.pod for r in running[-len(pods) :]]
                    current[index] = pod
                    records = dns_records(objects, current, hosts)
                    running.append(
                        _launch(
                            pod,
                            hosts[index],
                            objects,
                            records,
                            image,
                            logs,
                            claims,
                            replaced[index],
                        )
                    )
                # Keep the newest pod of each index last, in index order.
                newest = {r.pod.index: r for r in running}
                running = [r for r in running if newest[r.pod.index] is not r] + [
                    newest[i] for i in sorted(newest)
                ]
                continue
            if decided:
                break
            if time.monotonic() > until:
                decided = "DeadlineExceeded"
                break
            time.sleep(POLL_SECONDS)
        codes = [r.process.poll() for r in running]
        seconds = time.monotonic() - begin
    return (
        JobRun(
            outcome=decided,
            seconds=seconds,
            pods=[
                PodRun(r.pod, r.host.address, r.argv, code, r.log.read_text(errors="replace"))
                for r, code in zip(running, codes, strict=True)
            ],
        ),
        decided,
    )


def _launch(
    pod: kube.Pod,
    host: Host,
    objects: Sequence[kube.Manifest],
    records: dict[str, list[str]],
    image: Image,
    logs: Path,
    claims: Path,
    generation: int,
) -> _Running:
    process = kube.container_process(pod, host.address, NODE_NAME)
    log = logs / f"{pod.hostname}-{generation}.log"
    started = start_pod(pod, host, process, objects, records, image, log, claims)
    return _Running(pod, host, process.argv, log, started)


def _disrupt(target: _Running) -> None:
    """The eviction: the condition, SIGTERM to the container's main process, SIGKILL to
    what is left once the grace period is over."""
    target.disrupted = True
    if target.process.poll() is not None:
        return
    os.kill(target.process.pid, signal.SIGTERM)
    grace = float(target.pod.spec.get("terminationGracePeriodSeconds", 30))
    try:
        target.process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(target.process.pid, signal.SIGKILL)
        target.process.wait()
