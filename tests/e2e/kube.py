"""What Kubernetes does with a built training workload that the end-to-end harness must
reproduce to run its pods as processes, without a cluster.

Which pods each controller creates (names, hostnames, subdomain, labels, annotations, the
environment it injects) is the product's own model, generator/cluster/controllers.py,
which `mlgitops validate` uses too; this module re-exports the pieces the harness uses
(`Pod`, `indexed_job_pods`) and adds what happens once a pod runs, which only the harness
needs:

- the kubelet resolves the environment in order (a `$(VAR)` in a value sees only the
  variables listed before it), then expands `$(VAR)` in command and args against the whole
  environment, leaving references to unknown variables as they are (`$$` escapes);
- the container runtime adds `HOSTNAME`, and lays out the container's files: the image's
  root filesystem, read-only with `readOnlyRootFilesystem`, and each volume mount on top
  (an `emptyDir` fresh and empty per pod, a claim the same folder for every pod), read-only
  where the mount says `readOnly` or the claim's volume source does (the kubelet's
  makeMounts, pkg/kubelet/kubelet_pods.go: `ReadOnly: mount.ReadOnly || mustMountRO`, the
  latter the volume's own read-only attribute, which a claim's `readOnly` sets);
- cluster DNS answers `<hostname>.<subdomain>.<namespace>.svc.cluster.local` for a pod only
  when a headless Service named like the subdomain, in the pod's namespace, selects it,
  and `<service>.<namespace>.svc.cluster.local` with the address of every pod a headless
  Service selects; the pod's resolver completes shorter names through its search list;
- with `backoffLimit: 0` the first failed pod fails the Job; it completes when every
  index has succeeded, or, with a `successPolicy`, when its indexes have
  (pkg/controller/job/success_policy.go, `matchSuccessPolicy`): the Job then gets
  `SuccessCriteriaMet` and the controller terminates the pods still running, such as
  TensorFlow's workers and parameter servers once its chief has succeeded.

What the Job and JobSet controllers decide when pods fail (pod failure policies,
failure policies) is the product's model too (`controllers.job_outcome`,
`controllers.jobset_outcome`), which restarts.py applies to runs that are disrupted.
The status models (this one, and JobSet's and the Training Operator's in jobset.py and
kubeflow.py) stay in the harness: they say when a run has finished from its pods' exit
codes, which is about runs, not about the objects a controller creates, and nothing in
the product asks it. Everything here reads the built manifests; nothing rewrites them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from generator.cluster.controllers import (
    COMPLETION_INDEX_ENV,
    COMPLETION_INDEX_KEY,
    Manifest,
    Pod,
    job_active_pods,
    job_is_indexed,
    job_pods,
)

__all__ = ["COMPLETION_INDEX_ENV", "COMPLETION_INDEX_KEY", "Manifest", "Pod"]

CLUSTER_DOMAIN = "cluster.local"
_FIELD_WITH_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


@dataclass(frozen=True)
class Mount:
    """A volume mounted into the container: `claim` names the persistent volume claim it
    is, None for an `emptyDir` (new and empty for each pod); `read_only` as the kubelet
    mounts it."""

    path: str
    claim: str | None
    read_only: bool = False


@dataclass(frozen=True)
class Process:
    """What the container runtime starts for a pod's single container."""

    argv: list[str]
    env: dict[str, str]
    working_dir: str | None
    read_only_root: bool = False
    mounts: tuple[Mount, ...] = ()


def find(objects: Sequence[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name} in the build, found {len(matches)}"
    return matches[0]


def indexed_job_pods(job: Manifest) -> list[Pod]:
    """Every pod of an Indexed Job that runs all its indexes at once (the controller
    model's pods).

    A static rendezvous needs every pod up together, so a Job whose parallelism is below
    its completions cannot form the group: that is refused here rather than simulated."""
    assert job_is_indexed(job), "only Indexed Jobs give pods an index"
    completions = int(job["spec"]["completions"])
    assert job_active_pods(job) == completions, "every index must run at once"
    return job_pods(job)


def container_process(pod: Pod, pod_ip: str, node_name: str) -> Process:
    """The process the kubelet starts for the pod's one container (the trainer)."""
    containers = pod.spec["containers"]
    assert len(containers) == 1, "a training pod runs exactly one container"
    container = containers[0]
    assert "envFrom" not in container, "envFrom is not modelled by this harness"
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        env[variable["name"]] = _env_value(variable, env, pod, pod_ip, node_name)
    command = [expand(part, env) for part in container.get("command", [])]
    args = [expand(part, env) for part in container.get("args", [])]
    assert command, "the test image has no entrypoint: the container must set a command"
    context = container.get("securityContext") or {}
    return Process(
        argv=command + args,
        env={"HOSTNAME": pod.hostname, **env},
        working_dir=container.get("workingDir"),
        read_only_root=context.get("readOnlyRootFilesystem") is True,
        mounts=volume_mounts(pod, container),
    )


# What of a volumeMount the harness follows; anything else (subPath, mount propagation,
# recursiveReadOnly) is refused rather than run as if it were not there.
MOUNT_FIELDS = frozenset({"name", "mountPath", "readOnly"})
CLAIM_FIELDS = frozenset({"claimName", "readOnly"})


def volume_mounts(pod: Pod, container: Manifest) -> tuple[Mount, ...]:
    """The container's volume mounts, each with what its volume is and whether the
    kubelet mounts it read-only: the mount's `readOnly`, or a claim's whose volume source
    says `readOnly`, which overrides the mount's (kubelet_pods.go makeMounts): a write
    there fails with EROFS."""
    volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
    mounts = []
    for mount in container.get("volumeMounts", []):
        assert set(mount) <= MOUNT_FIELDS, f"{mount}: not modelled"
        volume = volumes[mount["name"]]
        read_only = mount.get("readOnly") is True
        if "emptyDir" in volume:
            mounts.append(Mount(mount["mountPath"], None, read_only))
            continue
        assert set(volume) == {"name", "persistentVolumeClaim"}, f"{volume}: not modelled"
        claim = volume["persistentVolumeClaim"]
        assert set(claim) <= CLAIM_FIELDS, f"{volume}: not modelled"
        read_only = read_only or claim.get("readOnly") is True
        mounts.append(Mount(mount["mountPath"], claim["claimName"], read_only))
    return tuple(mounts)


def _env_value(
    variable: Manifest, earlier: Mapping[str, str], pod: Pod, pod_ip: str, node_name: str
) -> str:
    source = variable.get("valueFrom")
    if source is None:
        return expand(str(variable.get("value", "")), earlier)
    assert set(source) == {"fieldRef"}, f"{variable['name']}: only fieldRef is modelled"
    return field_value(source["fieldRef"]["fieldPath"], pod, pod_ip, node_name)


def field_value(path: str, pod: Pod, pod_ip: str, node_name: str) -> str:
    """The downward API's value for `path` (the fields a training pod might read)."""
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: pod.name,
        "metadata.namespace": lambda: pod.namespace,
        "spec.nodeName": lambda: node_name,
        "spec.serviceAccountName": lambda: str(pod.spec.get("serviceAccountName", "default")),
        "status.podIP": lambda: pod_ip,
        "status.podIPs": lambda: pod_ip,
        "status.hostIP": lambda: pod_ip,
    }
    if path in simple:
        return simple[path]()
    keyed = _FIELD_WITH_KEY.match(path)
    assert keyed, f"fieldRef {path!r} is not modelled by this harness"
    values = pod.labels if keyed.group(1) == "labels" else pod.annotations
    return values.get(keyed.group(2), "")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known names are replaced, unknown ones and
    unterminated references stay as written, `$$` is a literal `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(" and ")" in text[i + 2 :]:
            end = text.index(")", i + 2)
            name = text[i + 2 : end]
            out.append(variables.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


def pod_fqdn(objects: Sequence[Manifest], pod: Pod) -> str | None:
    """The pod's DNS name, if a headless Service gives it one (else cluster DNS has none)."""
    if not (pod.hostname and pod.subdomain):
        return None
    for service in objects:
        if (
            service["kind"] == "Service"
            and service["metadata"]["name"] == pod.subdomain
            and service["metadata"].get("namespace", "default") == pod.namespace
            and service["spec"].get("clusterIP") == "None"
            and _selects(service["spec"].get("selector") or {}, pod.labels)
        ):
            return f"{pod.hostname}.{pod.subdomain}.{pod.namespace}.svc.{CLUSTER_DOMAIN}"
    return None


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_fqdns(objects: Sequence[Manifest], pods: Sequence[Pod]) -> dict[str, list[Pod]]:
    """Each headless Service's DNS name and the pods it answers with, in order.

    Every pod counts as ready from its start: the generated pods have no readiness probe,
    so a Service that does not publish not-ready addresses still lists a started pod."""
    names: dict[str, list[Pod]] = {}
    for service in objects:
        if service["kind"] != "Service" or service["spec"].get("clusterIP") != "None":
            continue
        namespace = service["metadata"].get("namespace", "default")
        selector = service["spec"].get("selector") or {}
        selected = [p for p in pods if p.namespace == namespace and _selects(selector, p.labels)]
        if selected:
            fqdn = f"{service['metadata']['name']}.{namespace}.svc.{CLUSTER_DOMAIN}"
            names[fqdn] = selected
    return names


def search_list(namespace: str) -> list[str]:
    """The resolver search list the kubelet writes for a pod with ClusterFirst DNS."""
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def names_resolving_to(fqdn: str, searches: Sequence[str]) -> list[str]:
    """`fqdn` and every shorter name the search list completes into it."""
    names = [fqdn]
    for domain in searches:
        if fqdn.endswith(f".{domain}"):
            names.append(fqdn[: -len(domain) - 1])
    return names


def job_status(job: Manifest, pods: Sequence[Pod], exits: Sequence[int | None]) -> str | None:
    """The Job's finished condition once its pods have exited as `exits` say (None:
    still running), for `backoffLimit: 0` and `restartPolicy: Never`; None while it runs."""
    assert job["spec"].get("backoffLimit") == 0, "only backoffLimit 0 is modelled"
    assert job["spec"]["template"]["spec"].get("restartPolicy") == "Never"
    if any(code not in (None, 0) for code in exits):
        return "Failed"
    succeeded = {pod.index for pod, code in zip(pods, exits, strict=True) if code == 0}
    if succeeded == {pod.index for pod in pods}:
        return "Complete"
    needed = succeeded_indexes(job)
    if needed is not None and needed <= succeeded:
        return "SuccessCriteriaMet"
    return None


def succeeded_indexes(job: Manifest) -> set[int] | None:
    """The indexes whose success completes the Job early (its successPolicy), if any."""
    rules = job["spec"].get("successPolicy", {}).get("rules", [])
    if not rules:
        return None
    assert len(rules) == 1 and set(rules[0]) == {"succeededIndexes"}, "one index rule only"
    indexes: set[int] = set()
    for part in rules[0]["succeededIndexes"].split(","):
        first, _, last = part.partition("-")
        indexes.update(range(int(first), int(last or first) + 1))
    return indexes
