"""Run a built Indexed Job: one local process per pod, in a sandbox, with Job semantics.

The outcome follows the Job controller for `backoffLimit: 0` and `restartPolicy: Never`:
the first pod that fails fails the Job; the Job succeeds when every index has succeeded,
or, with a `successPolicy`, when its indexes have; then the remaining pods are stopped.
A run that reaches neither within the deadline has hung, which for a training job that
cannot rendezvous is the usual way to fail.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import kube
from sandbox import Host, Sandbox

POLL_SECONDS = 0.2
LOG_TAIL_LINES = 25
NODE_NAME = "e2e-node"  # what spec.nodeName reads: all pods share the one machine


@dataclass(frozen=True)
class Image:
    """What the container image would bring: programs on PATH, a workdir, its own env."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodRun:
    pod: kube.Pod
    address: str
    argv: list[str]
    exit_code: int | None  # None: still running when the Job finished, then stopped
    output: str


@dataclass(frozen=True)
class JobRun:
    outcome: str  # Complete | SuccessCriteriaMet | Failed | DeadlineExceeded
    seconds: float
    pods: list[PodRun]

    @property
    def succeeded(self) -> bool:
        return self.outcome in ("Complete", "SuccessCriteriaMet")

    def describe(self) -> str:
        """The outcome and each pod's exit and last lines, for assertion messages."""
        lines = [f"job {self.outcome} after {self.seconds:.1f} s"]
        for run in self.pods:
            status = "stopped" if run.exit_code is None else f"exit {run.exit_code}"
            lines.append(f"--- pod {run.pod.hostname} ({run.address}): {status}")
            lines.append(f"    argv: {run.argv}")
            lines.extend(f"    {line}" for line in run.output.splitlines()[-LOG_TAIL_LINES:])
        return "\n".join(lines)


def hosts_file(own: kube.Pod, own_address: str, records: Mapping[str, str]) -> str:
    """The kubelet's hosts file for `own`, plus the cluster DNS records of the job's pods
    under every name the pod's search list completes (glibc does not apply the search
    list to /etc/hosts, a resolver asking cluster DNS does)."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    searches = kube.search_list(own.namespace)
    for fqdn, address in records.items():
        names = kube.names_resolving_to(fqdn, searches)
        if address == own_address:
            names.append(own.hostname)
        lines.append(f"{address}\t{' '.join(names)}")
    if own_address not in records.values():
        lines.append(f"{own_address}\t{own.hostname}")
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
    assert job["spec"].get("backoffLimit") == 0, "only backoffLimit 0 is modelled"
    assert job["spec"]["template"]["spec"].get("restartPolicy") == "Never"
    pods = kube.indexed_job_pods(job)
    success_indexes = kube.succeeded_indexes(job) or {p.index for p in pods}
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
            _start(pod, host, process, records, image, logs / f"{pod.hostname}.log")
            for pod, host, process in zip(pods, hosts, processes, strict=True)
        ]
        begin = time.monotonic()
        outcome = _wait(started, success_indexes, begin + deadline_seconds)
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
) -> dict[str, str]:
    """Cluster DNS for these pods: FQDN -> address, for the pods a Service names."""
    records = {}
    for pod, host in zip(pods, hosts, strict=True):
        fqdn = kube.pod_fqdn(objects, pod)
        if fqdn:
            records[fqdn] = host.address
    return records


def _start(
    pod: kube.Pod,
    host: Host,
    process: kube.Process,
    records: Mapping[str, str],
    image: Image,
    log_path: Path,
) -> subprocess.Popen[bytes]:
    """The kubelet's files for the pod, then its container's process."""
    host.provide("/etc/hosts", hosts_file(pod, host.address, records))
    host.provide("/etc/hostname", pod.hostname + "\n")
    host.provide("/etc/resolv.conf", resolv_conf(pod))
    cwd = Path(process.working_dir) if process.working_dir else image.workdir
    with log_path.open("wb") as log:
        return host.start(process.argv, {**image.env, **process.env}, cwd, log)


def _wait(started: Sequence[subprocess.Popen[bytes]], success: set[int], until: float) -> str:
    while True:
        codes = [process.poll() for process in started]
        if any(code not in (None, 0) for code in codes):
            return "Failed"
        if all(codes[i] == 0 for i in success):
            return "Complete" if all(code == 0 for code in codes) else "SuccessCriteriaMet"
        if time.monotonic() > until:
            return "DeadlineExceeded"
        time.sleep(POLL_SECONDS)


def _read(path: Path) -> str:
    return path.read_text(errors="replace")
