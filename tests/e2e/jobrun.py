"""Run a built training workload: one local process per pod, in a sandbox, with the
semantics of the controller that owns the pods.

The product's controller model (generator/cluster/controllers.py) says which pods each
controller creates and which Services it adds; the harness's status models say when its
object has finished: an Indexed Job (kube.py: the first failed pod fails it, it succeeds
when every index, or its `successPolicy`'s, has), a JobSet (jobset.py) or a PyTorchJob
(kubeflow.py). Once finished, the remaining pods are stopped. A run that finishes neither
way within the deadline has hung, which for a training job that cannot rendezvous is the
usual way to fail.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jobset
import kube
import kubeflow
from sandbox import Host, Sandbox, Volume

from generator.cluster import controllers

POLL_SECONDS = 0.2
LOG_TAIL_LINES = 25
NODE_NAME = "e2e-node"  # what spec.nodeName reads: all pods share the one machine


@dataclass(frozen=True)
class Image:
    """What the container image would bring: programs on PATH, a workdir, its own env."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)


def image_folders(image: Image, cwd: Path) -> list[Path]:
    """What the image brings: its workdir, the Python environment its programs are
    (this one: the tests run the real frameworks), and the folders on its PATH."""
    path = image.env.get("PATH", "")
    programs = [Path(p) for p in path.split(":") if p]
    return [cwd, image.workdir, Path(sys.prefix), Path(sys.base_prefix), *programs]


@dataclass(frozen=True)
class PodRun:
    pod: kube.Pod
    address: str
    argv: list[str]
    exit_code: int | None  # None: still running when the Job finished, then stopped
    output: str


# The finished condition of each kind of workload, by its controller.
SUCCESS = ("Complete", "SuccessCriteriaMet", "Completed", "Succeeded")
# What a controller model decides from the pods' exit codes (None: still running).
Status = Callable[[Sequence[int | None]], str | None]


@dataclass(frozen=True)
class JobRun:
    # Job: Complete | SuccessCriteriaMet | Failed; JobSet: Completed | Failed;
    # PyTorchJob: Succeeded | Failed; any: DeadlineExceeded
    outcome: str
    seconds: float
    pods: list[PodRun]

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESS

    def describe(self) -> str:
        """The outcome and each pod's exit and last lines, for assertion messages."""
        lines = [f"job {self.outcome} after {self.seconds:.1f} s"]
        for run in self.pods:
            status = "stopped" if run.exit_code is None else f"exit {run.exit_code}"
            lines.append(f"--- pod {run.pod.hostname} ({run.address}): {status}")
            lines.append(f"    argv: {run.argv}")
            lines.extend(f"    {line}" for line in run.output.splitlines()[-LOG_TAIL_LINES:])
        return "\n".join(lines)


def hosts_file(
    own: kube.Pod, own_address: str, own_fqdn: str | None, records: Mapping[str, Sequence[str]]
) -> str:
    """The kubelet's hosts file for `own` (its address under its FQDN, if a Service gives
    it one, and its hostname), then the cluster DNS records of the workload, each under
    every name the pod's search list completes (glibc does not apply the search list to
    /etc/hosts, a resolver asking cluster DNS does). The kubelet's line comes first, so a
    reverse lookup of the pod's address finds what it would in a cluster."""
    own_names = [own_fqdn, own.hostname] if own_fqdn else [own.hostname]
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{own_address}\t{' '.join(own_names)}",
    ]
    searches = kube.search_list(own.namespace)
    for fqdn, addresses in records.items():
        names = " ".join(kube.names_resolving_to(fqdn, searches))
        lines.extend(f"{address}\t{names}" for address in addresses)
    return "\n".join(lines) + "\n"


def resolv_conf(pod: kube.Pod) -> str:
    """The search list and options of a ClusterFirst pod. No nameserver: every name the
    pods may use is in the hosts file, and any other lookup fails at once on loopback."""
    return f"search {' '.join(kube.search_list(pod.namespace))}\noptions ndots:5\n"


def run_indexed_job(
    objects: Sequence[kube.Manifest],
    job_name: str,
    image: Image,
    folder: Path,
    deadline_seconds: float,
) -> JobRun:
    """Start every pod of the Job at once and wait for the Job's outcome."""
    job = kube.find(objects, "Job", job_name)
    pods = kube.indexed_job_pods(job)
    return run_pods(
        objects,
        pods,
        lambda exits: kube.job_status(job, pods, exits),
        image,
        folder,
        deadline_seconds,
    )


def run_jobset(
    objects: Sequence[kube.Manifest],
    name: str,
    image: Image,
    folder: Path,
    deadline_seconds: float,
) -> JobRun:
    """Start every pod of every Job of the JobSet at once; wait for the JobSet's outcome."""
    js = kube.find(objects, "JobSet", name)
    pods = controllers.pods(js)
    return run_pods(
        [*objects, *controllers.services(js)],
        pods,
        lambda exits: jobset.status(js, pods, exits),
        image,
        folder,
        deadline_seconds,
    )


def run_pytorchjob(
    objects: Sequence[kube.Manifest],
    name: str,
    image: Image,
    folder: Path,
    deadline_seconds: float,
) -> JobRun:
    """Start every pod the Training Operator creates at once; wait for the job's outcome."""
    job = kube.find(objects, "PyTorchJob", name)
    pods = controllers.pods(job)
    return run_pods(
        [*objects, *controllers.services(job)],
        pods,
        lambda exits: kubeflow.status(job, pods, exits),
        image,
        folder,
        deadline_seconds,
    )


def run_pods(
    objects: Sequence[kube.Manifest],
    pods: Sequence[kube.Pod],
    status: Status,
    image: Image,
    folder: Path,
    deadline_seconds: float,
) -> JobRun:
    """Start `pods` at once, each in its own network, with the cluster DNS `objects` (the
    build and what the controller created) give them; stop when `status` says the
    workload has finished, or at the deadline."""
    assert status([None] * len(pods)) is None, "the workload has finished before it started"
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with Sandbox(folder / "pods") as sandbox:
        hosts = [sandbox.add_host(pod.hostname) for pod in pods]
        records = dns_records(objects, pods, hosts)
        processes = [
            kube.container_process(pod, host.address, NODE_NAME)
            for pod, host in zip(pods, hosts, strict=True)
        ]
        started = [
            start_pod(pod, host, process, objects, records, image, logs / f"{pod.hostname}.log")
            for pod, host, process in zip(pods, hosts, processes, strict=True)
        ]
        begin = time.monotonic()
        outcome = _wait(started, status, begin + deadline_seconds)
        seconds = time.monotonic() - begin
        codes = [process.poll() for process in started]
    return JobRun(
        outcome=outcome,
        seconds=seconds,
        pods=[
            PodRun(pod, host.address, process.argv, code, _read(logs / f"{pod.hostname}.log"))
            for pod, host, process, code in zip(pods, hosts, processes, codes, strict=True)
        ],
    )


def dns_records(
    objects: Sequence[kube.Manifest], pods: Sequence[kube.Pod], hosts: Sequence[Host]
) -> dict[str, list[str]]:
    """Cluster DNS for these pods: each name a Service gives them -> their addresses
    (a pod's own FQDN, and every headless Service's name)."""
    address = {id(pod): host.address for pod, host in zip(pods, hosts, strict=True)}
    records: dict[str, list[str]] = {}
    for pod in pods:
        fqdn = kube.pod_fqdn(objects, pod)
        if fqdn:
            records[fqdn] = [address[id(pod)]]
    for fqdn, selected in kube.service_fqdns(objects, pods).items():
        records.setdefault(fqdn, [address[id(pod)] for pod in selected])
    return records


def start_pod(
    pod: kube.Pod,
    host: Host,
    process: kube.Process,
    objects: Sequence[kube.Manifest],
    records: Mapping[str, Sequence[str]],
    image: Image,
    log_path: Path,
    claims: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The kubelet's files for the pod, then its container's process. Each claim is a
    folder of `claims` (by default beside the logs), shared by the pods, as a claim is."""
    own_fqdn = kube.pod_fqdn(objects, pod)
    host.provide("/etc/hosts", hosts_file(pod, host.address, own_fqdn, records))
    host.provide("/etc/hostname", pod.hostname + "\n")
    host.provide("/etc/resolv.conf", resolv_conf(pod))
    claims = claims or log_path.parent.parent / "claims"
    volumes = [
        Volume(m.path, None if m.claim is None else claims / m.claim, m.read_only)
        for m in process.mounts
    ]
    cwd = Path(process.working_dir) if process.working_dir else image.workdir
    host.lay_out_files(process.read_only_root, volumes, image_folders(image, cwd))
    with log_path.open("wb") as log:
        return host.start(process.argv, {**image.env, **process.env}, cwd, log)


def _wait(started: Sequence[subprocess.Popen[bytes]], status: Status, until: float) -> str:
    while True:
        outcome = status([process.poll() for process in started])
        if outcome is not None:
            return outcome
        if time.monotonic() > until:
            return "DeadlineExceeded"
        time.sleep(POLL_SECONDS)


def _read(path: Path) -> str:
    return path.read_text(errors="replace")
