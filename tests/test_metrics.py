"""Gang admission (Kueue's waitForPodsReady) and GPU metrics, read back from generated
trees.

The Kueue patches are applied the way both engines apply them: appended to the
`patches` of the synced path's own kustomization.yaml, then built by the real kustomize.
Offline, Kueue's `config/default` is stood in for by a build of the same shape (the
manager component's ConfigMap generator without a name hash, the parent's `kueue-`
prefix and namespace); with `MLGITOPS_UPSTREAM` naming a folder of git mirrors
(`<owner>+<name>/repo`, bare), the upstream path itself is built at its tag.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import CONFIGS, generated_from_text, kustomize_build, upstream_file

from generator.operator_facts import DCGM_EXPORTER, DCGM_EXPORTER_POD_LABELS, KUEUE
from generator.render import kueue_config

RUNTIMES_CONFIG = CONFIGS / "runtimes.yaml"
UPSTREAM = os.environ.get("MLGITOPS_UPSTREAM")


def generate(tmp_path: Path, engine: str, extra: str = "") -> Path:
    text = RUNTIMES_CONFIG.read_text().replace("gitops: flux", f"gitops: {engine}") + extra
    return generated_from_text(tmp_path, text, engine)


def sync_objects(tree: Path, cluster: str) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((tree / f"clusters/{cluster}/gitops").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") in {"Application", "Kustomization"} and "spec" in doc
    ]


def kueue_sync(tree: Path, cluster: str) -> dict[str, Any]:
    (sync,) = [o for o in sync_objects(tree, cluster) if o["metadata"]["name"].endswith("-kueue")]
    return sync


def engine_patches(sync: dict[str, Any]) -> list[dict[str, Any]]:
    """The patches the engine adds to the path's kustomization.yaml."""
    if sync["kind"] == "Application":
        return list(sync["spec"]["source"].get("kustomize", {}).get("patches", []))
    return list(sync["spec"].get("patches", []))


# One of config/default's own patches, by the component's names as upstream writes them.
UPSTREAMS_OWN_PATCH = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "controller-manager", "namespace": "system"},
    "spec": {"template": {"spec": {"terminationGracePeriodSeconds": 10}}},
}


def stand_in(folder: Path) -> Path:
    """A build shaped like Kueue's config/default at v0.17.6: the manager component
    generates `manager-config` from the upstream file (no hash), the parent prefixes
    `kueue-` and sets the namespace."""
    manager = folder / "components/manager"
    manager.mkdir(parents=True)
    (manager / kueue_config.CONFIG_KEY).write_text(
        kueue_config.configuration_text(kueue_config.UPSTREAM_SETTINGS)
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "controller-manager", "namespace": "system"},
        "spec": {
            "selector": {"matchLabels": {"control-plane": "controller-manager"}},
            "template": {
                "metadata": {"labels": {"control-plane": "controller-manager"}},
                "spec": {"containers": [{"name": "manager", "image": "controller:latest"}]},
            },
        },
    }
    (manager / "manager.yaml").write_text(yaml.safe_dump(deployment))
    (manager / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["manager.yaml"],
                "generatorOptions": {"disableNameSuffixHash": True},
                "configMapGenerator": [
                    {"name": "manager-config", "files": [kueue_config.CONFIG_KEY]}
                ],
            }
        )
    )
    default = folder / "default"
    default.mkdir()
    (default / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": "kueue-system",
                "namePrefix": "kueue-",
                "resources": ["../components/manager"],
                "patches": [{"patch": yaml.safe_dump(UPSTREAMS_OWN_PATCH)}],
            }
        )
    )
    return default


def build_as_the_engine(path: Path, patches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append the patches to the path's own kustomization.yaml (argo-cd
    util/kustomize/kustomize.go; fluxcd/pkg kustomize generator) and build it."""
    file = path / "kustomization.yaml"
    kustomization = yaml.safe_load(file.read_text())
    kustomization["patches"] = [*kustomization.get("patches", []), *patches]
    file.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return kustomize_build(path)


def built_configuration(objects: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    (config_map,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kueue-manager-config"
    ]
    assert config_map["metadata"]["namespace"] == "kueue-system"
    text = config_map["data"][kueue_config.CONFIG_KEY]
    return text, yaml.safe_load(text)


def controller_annotations(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "kueue-controller-manager"
    ]
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"].get("annotations", {})
    return annotations


def go_duration(text: str) -> datetime.timedelta:
    """metav1.Duration as Go's time.ParseDuration reads the forms written here."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return datetime.timedelta(seconds=sum(int(n) * units[u] for n, u in parts))


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_the_built_kueue_configuration_waits_for_pods_ready(engine: str, tmp_path: Path) -> None:
    tree = generate(tmp_path, engine)
    for cluster in ("eks-a", "gke-b", "laptop"):
        patches = engine_patches(kueue_sync(tree, cluster))
        assert len(patches) == 2
        objects = build_as_the_engine(stand_in(tmp_path / cluster), patches)
        text, configuration = built_configuration(objects)
        assert configuration["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
        assert configuration["kind"] == "Configuration"
        wait = configuration["waitForPodsReady"]
        assert go_duration(wait["timeout"]) == datetime.timedelta(minutes=10)
        assert go_duration(wait["recoveryTimeout"]) == datetime.timedelta(minutes=10)
        assert wait["blockAdmission"] is False
        assert wait["requeuingStrategy"]["timestamp"] in {"Eviction", "Creation"}
        # Every other setting is upstream's, unchanged.
        rest = {k: v for k, v in configuration.items() if k != "waitForPodsReady"}
        assert rest == kueue_config.UPSTREAM_SETTINGS
        # The controller's pod template carries the hash of exactly the file it mounts.
        digest = hashlib.sha256(text.encode()).hexdigest()
        assert controller_annotations(objects)[kueue_config.CONFIG_HASH_ANNOTATION] == digest


def test_a_new_timeout_rolls_the_controller_and_off_keeps_upstreams_file(
    tmp_path: Path,
) -> None:
    default = generate(tmp_path / "a", "flux")
    longer = generate(tmp_path / "b", "flux", "queues:\n  podsReadyTimeoutMinutes: 25\n")
    off = generate(tmp_path / "c", "flux", "queues:\n  gangAdmission: false\n")
    built = {}
    for name, tree in (("default", default), ("longer", longer)):
        objects = build_as_the_engine(
            stand_in(tmp_path / f"build-{name}"), engine_patches(kueue_sync(tree, "eks-a"))
        )
        built[name] = (built_configuration(objects)[1], controller_annotations(objects))
    assert go_duration(built["longer"][0]["waitForPodsReady"]["timeout"]) == datetime.timedelta(
        minutes=25
    )
    hashes = {n: a[kueue_config.CONFIG_HASH_ANNOTATION] for n, (_, a) in built.items()}
    assert hashes["default"] != hashes["longer"]
    assert engine_patches(kueue_sync(off, "eks-a")) == []
    objects = build_as_the_engine(stand_in(tmp_path / "build-off"), [])
    assert "waitForPodsReady" not in built_configuration(objects)[1]
    assert kueue_config.CONFIG_HASH_ANNOTATION not in controller_annotations(objects)


# --- against Kueue's repository itself, where a mirror is at hand ------------------------


def _upstream_checkout(tmp_path: Path) -> Path:
    mirror = Path(UPSTREAM or "") / "kubernetes-sigs+kueue" / "repo"
    checkout = tmp_path / "upstream"
    checkout.mkdir()
    archive = subprocess.run(
        ["git", "--git-dir", str(mirror), "archive", KUEUE.tag, "config", "apis/config"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    return checkout


def _struct_fields(go_source: str, struct: str) -> set[str]:
    """The JSON names of a Go struct's fields."""
    body = re.search(rf"type {struct} struct {{(.*?)\n}}", go_source, re.S)
    assert body, struct
    return set(re.findall(r'json:"([A-Za-z0-9]+)[,"]', body.group(1)))


@pytest.mark.skipif(not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors")
@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_the_upstream_kueue_build_with_the_patches(engine: str, tmp_path: Path) -> None:
    checkout = _upstream_checkout(tmp_path)
    upstream_file = checkout / "config/components/manager" / kueue_config.CONFIG_KEY
    assert yaml.safe_load(upstream_file.read_text()) == kueue_config.UPSTREAM_SETTINGS
    tree = generate(tmp_path, engine)
    objects = build_as_the_engine(checkout / KUEUE.path, engine_patches(kueue_sync(tree, "eks-a")))
    text, configuration = built_configuration(objects)
    version = configuration["apiVersion"].rpartition("/")[2]
    types = (checkout / f"apis/config/{version}/configuration_types.go").read_text()
    # Kueue decodes strictly: what mlgitops adds uses only the fields of its structs.
    assert "waitForPodsReady" in _struct_fields(types, "Configuration")
    wait = configuration["waitForPodsReady"]
    assert set(wait) <= _struct_fields(types, "WaitForPodsReady")
    assert set(wait["requeuingStrategy"]) <= _struct_fields(types, "RequeuingStrategy")
    assert configuration["waitForPodsReady"]["timeout"] == "10m"
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert controller_annotations(objects)[kueue_config.CONFIG_HASH_ANNOTATION] == digest
    # The upstream manager still mounts this ConfigMap and reads it with --config.
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (manager,) = deployment["spec"]["template"]["spec"]["containers"]
    assert f"--config=/{kueue_config.CONFIG_KEY}" in manager["args"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "manager-config", "configMap": {"name": "kueue-manager-config"}} in volumes


# --- GPU metrics ---------------------------------------------------------------------------


def built_unit(tree: Path, folder: str) -> list[dict[str, Any]]:
    return kustomize_build(tree / folder)


def sync_named(tree: Path, cluster: str, suffix: str) -> dict[str, Any] | None:
    found = [o for o in sync_objects(tree, cluster) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) <= 1
    return found[0] if found else None


def container_cluster(tree: Path, cluster: str) -> dict[str, Any]:
    (obj,) = [
        o
        for o in built_unit(tree, f"clusters/{cluster}/infrastructure")
        if o["kind"] == "ContainerCluster"
    ]
    return obj


def test_the_exporter_runs_where_gpus_are_and_gke_uses_its_own(tmp_path: Path) -> None:
    for engine in ("argocd", "flux"):
        tree = generate(tmp_path / engine, engine)
        assert sync_named(tree, "eks-a", "-dcgm-exporter") is not None
        assert sync_named(tree, "eks-a", "-gpu-metrics") is not None
        for cluster in ("gke-b", "laptop"):  # GKE: managed DCGM; kind: no GPUs
            assert sync_named(tree, cluster, "-dcgm-exporter") is None
            assert not (tree / f"clusters/{cluster}/gpu-metrics").exists()
        monitoring = container_cluster(tree, "gke-b")["spec"]["monitoringConfig"]
        assert "DCGM" in monitoring["enableComponents"]
        assert "SYSTEM_COMPONENTS" in monitoring["enableComponents"]
        assert monitoring["managedPrometheus"] == {"enabled": True}
        # GKE's DCGM metrics need GKE-managed drivers on the GPU pools.
        pools = [
            o
            for o in built_unit(tree, "clusters/gke-b/infrastructure")
            if o["kind"] == "ContainerNodePool" and "guestAccelerator" in o["spec"]["nodeConfig"]
        ]
        assert pools
        for pool in pools:
            for accelerator in pool["spec"]["nodeConfig"]["guestAccelerator"]:
                assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] in {
                    "DEFAULT",
                    "LATEST",
                }


def test_gpu_metrics_off(tmp_path: Path) -> None:
    tree = generate(tmp_path, "flux", "metrics:\n  gpu: false\n")
    assert sync_named(tree, "eks-a", "-dcgm-exporter") is None
    assert not (tree / "clusters/eks-a/gpu-metrics").exists()
    assert "monitoringConfig" not in container_cluster(tree, "gke-b")["spec"]


def test_nothing_waits_for_the_exporter(tmp_path: Path) -> None:
    tree = generate(tmp_path, "flux")
    syncs = sync_objects(tree, "eks-a")
    exporter = sync_named(tree, "eks-a", "-dcgm-exporter")
    assert exporter is not None
    assert {"name": "eks-a-gpu-metrics"} in exporter["spec"]["dependsOn"]
    for sync in syncs:
        assert {"name": exporter["metadata"]["name"]} not in sync["spec"].get("dependsOn", [])


def test_the_exporter_runs_in_kube_system_behind_its_own_policies(tmp_path: Path) -> None:
    tree = generate(tmp_path, "flux")
    objects = built_unit(tree, "clusters/eks-a/gpu-metrics")
    # root, SYS_ADMIN and a hostPath: nothing below "privileged" admits the exporter, so
    # it runs in kube-system, and the tree has no Namespace below "restricted".
    assert "Namespace" not in {o["kind"] for o in objects}
    namespaced = [o for o in objects if not o["kind"].startswith("ClusterRole")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"kube-system"}
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    exporter_pods = {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}}
    # Each selects the exporter's pods alone: kube-system's own pods keep their traffic.
    assert {name: spec["podSelector"] for name, spec in policies.items()} == dict.fromkeys(
        [
            "dcgm-exporter-default-deny",
            "dcgm-exporter-allow-metrics-scrape",
            "dcgm-exporter-allow-api-server",
        ],
        exporter_pods,
    )
    assert policies["dcgm-exporter-default-deny"] == {
        "podSelector": exporter_pods,
        "policyTypes": ["Ingress", "Egress"],
    }
    opened = sorted(
        (direction, p["port"])
        for spec in policies.values()
        for direction in ("ingress", "egress")
        for rule in spec.get(direction, [])
        for p in rule["ports"]
    )
    assert opened == [("egress", 443), ("ingress", 9400)]
    # With Flux, the pod reader the static manifest lacks.
    (binding,) = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    (role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "dcgm-exporter", "namespace": "kube-system"}
    ]
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]} in role[
        "rules"
    ]
    argocd = generate(tmp_path / "argocd", "argocd")
    kinds = {o["kind"] for o in built_unit(argocd, "clusters/eks-a/gpu-metrics")}
    assert kinds == {"NetworkPolicy"}  # the chart brings its own reader


@pytest.mark.skipif(not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors")
def test_the_exporter_policies_select_the_pods_of_the_manifest_and_the_chart() -> None:
    """The policies' selector is a label of the pods in dcgm-exporter.yaml (what Flux
    applies) and among the chart's selector labels (what Argo CD renders), at the tag."""

    def at_tag(path: str) -> str:
        return upstream_file("NVIDIA+dcgm-exporter", DCGM_EXPORTER.tag, path)

    (daemonset,) = [
        d
        for d in yaml.safe_load_all(at_tag("dcgm-exporter.yaml"))
        if d and d["kind"] == "DaemonSet"
    ]
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.items() >= DCGM_EXPORTER_POD_LABELS.items()
    helpers = at_tag("deployment/templates/_helpers.tpl")
    selector = helpers[helpers.index('define "dcgm-exporter.selectorLabels"') :].split("{{- end")[0]
    assert 'app.kubernetes.io/name: {{ include "dcgm-exporter.name" . }}' in selector
    chart = yaml.safe_load(at_tag("deployment/Chart.yaml"))
    assert chart["name"] == DCGM_EXPORTER_POD_LABELS["app.kubernetes.io/name"]


def _allowlist(sync: dict[str, Any]) -> list[str]:
    if sync["kind"] == "Application":
        values = sync["spec"]["source"]["helm"]["valuesObject"]
        assert values["kubernetes"]["enablePodLabels"] is True
        assert values["kubernetes"]["rbac"]["create"] is True  # else no token is mounted
        assert values["serviceMonitor"]["enabled"] is False  # no Prometheus Operator here
        patterns: list[str] = values["kubernetes"]["podLabelAllowlistRegex"]
        return patterns
    (patch,) = sync["spec"]["patches"]
    daemonset = yaml.safe_load(patch["patch"])
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS"] == "true"
    return env["DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX"].split(",")


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_gpu_metrics_carry_the_job_labels(engine: str, tmp_path: Path) -> None:
    """The pod labels kept are those naming the workload, whichever controller made it."""
    from generator.cluster import controllers
    from generator.render import labels, runtimes

    tree = generate(tmp_path, engine)
    exporter = sync_named(tree, "eks-a", "-dcgm-exporter")
    assert exporter is not None
    patterns = [re.compile(p) for p in _allowlist(exporter)]
    wanted = {
        labels.NAME,
        labels.QUEUE_LABEL,
        controllers.JOB_NAME_LABEL,
        controllers.REPLICATED_JOB_NAME_KEY,
        controllers.KUBEFLOW_JOB_NAME_LABEL,
        controllers.REPLICA_TYPE_LABEL,
        controllers.REPLICA_INDEX_LABEL,
        *runtimes.POD_NAME_LABELS.values(),
    }
    for label in wanted:
        assert any(p.search(label) for p in patterns), label
    for label in ("controller-uid", "batch.kubernetes.io/controller-uid", "pod-template-hash"):
        assert not any(p.search(label) for p in patterns), label


def stand_in_exporter(folder: Path) -> Path:
    """The static manifest's DaemonSet as it names itself and its container (no
    namespace, no service account)."""
    folder.mkdir(parents=True)
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "dcgm-exporter"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "dcgm-exporter"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "dcgm-exporter",
                            "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless",
                            "env": [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"}],
                        }
                    ],
                },
            },
        },
    }
    (folder / "dcgm-exporter.yaml").write_text(yaml.safe_dump(daemonset))
    return folder


def build_as_flux(folder: Path, sync: dict[str, Any]) -> list[dict[str, Any]]:
    """What kustomize-controller builds for a folder without a kustomization.yaml: every
    manifest, in the target namespace, with the Kustomization's patches."""
    kustomization = {
        "resources": sorted(p.name for p in folder.glob("*.yaml")),
        "namespace": sync["spec"]["targetNamespace"],
        "patches": sync["spec"]["patches"],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kustomize_build(folder)


def _check_patched_exporter(objects: list[dict[str, Any]]) -> None:
    (daemonset,) = [o for o in objects if o["kind"] == "DaemonSet"]
    assert daemonset["metadata"]["namespace"] == "kube-system"
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dcgm-exporter"
    assert pod["automountServiceAccountToken"] is True
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
    ]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"  # upstream's, kept
    assert env["DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS"] == "true"


def test_flux_builds_the_exporter_patched(tmp_path: Path) -> None:
    tree = generate(tmp_path, "flux")
    sync = sync_named(tree, "eks-a", "-dcgm-exporter")
    assert sync is not None
    _check_patched_exporter(build_as_flux(stand_in_exporter(tmp_path / "exporter"), sync))


@pytest.mark.skipif(not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors")
def test_flux_builds_the_upstream_exporter_patched(tmp_path: Path) -> None:
    from generator.operator_facts import DCGM_EXPORTER

    assert DCGM_EXPORTER.flux is not None
    mirror = Path(UPSTREAM or "") / "NVIDIA+dcgm-exporter" / "repo"
    folder = tmp_path / "exporter"
    folder.mkdir()
    text = subprocess.run(
        ["git", "--git-dir", str(mirror), "show", f"{DCGM_EXPORTER.tag}:{DCGM_EXPORTER.flux.keep}"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    (folder / "dcgm-exporter.yaml").write_text(text)
    tree = generate(tmp_path, "flux")
    sync = sync_named(tree, "eks-a", "-dcgm-exporter")
    assert sync is not None
    objects = build_as_flux(folder, sync)
    _check_patched_exporter(objects)
    images = {
        c["image"]
        for o in objects
        if o["kind"] == "DaemonSet"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == set(DCGM_EXPORTER.release_images)
    # The upstream pod still mounts the kubelet's pod-resources folder it maps GPUs with.
    (daemonset,) = [o for o in objects if o["kind"] == "DaemonSet"]
    volumes = daemonset["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "pod-gpu-resources",
        "hostPath": {"path": "/var/lib/kubelet/pod-resources"},
    } in volumes


def test_flux_keeps_only_the_static_manifest(tmp_path: Path) -> None:
    from test_operators import keep_with_gitignore

    tree = generate(tmp_path, "flux")
    sources = yaml.safe_load_all((tree / "bootstrap/fleet/source/gitrepository.yaml").read_text())
    (source,) = [s for s in sources if s and s["metadata"]["name"] == "dcgm-exporter"]
    kept = keep_with_gitignore(
        source["spec"]["ignore"],
        ["dcgm-exporter.yaml", "service-monitor.yaml", ".golangci.yml", "deployment/Chart.yaml"],
    )
    assert kept == ["dcgm-exporter.yaml"]
    sync = sync_named(tree, "eks-a", "-dcgm-exporter")
    assert sync is not None
    assert sync["spec"]["path"] == "./"


def _key_paths(values: Any, at: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every mapping key path of a values tree (lists and their contents are leaves)."""
    if not isinstance(values, dict) or not values:
        return {at} if at else set()
    return {p for key, item in values.items() for p in _key_paths(item, (*at, key))}


@pytest.mark.skipif(not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors")
def test_the_chart_values_are_the_charts_own(tmp_path: Path) -> None:
    """Helm ignores a value the chart does not read: each one set must be in the chart's
    values.yaml at the tag (affinity's contents are the chart's to pass through)."""
    from generator.operator_facts import DCGM_EXPORTER

    assert DCGM_EXPORTER.helm_values is not None
    mirror = Path(UPSTREAM or "") / "NVIDIA+dcgm-exporter" / "repo"
    text = subprocess.run(
        ["git", "--git-dir", str(mirror), "show", f"{DCGM_EXPORTER.tag}:deployment/values.yaml"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    chart = yaml.safe_load(text)
    ours = {k: v for k, v in DCGM_EXPORTER.helm_values.items() if k != "affinity"}
    assert "affinity" in chart
    assert _key_paths(ours) <= _key_paths(chart)
    assert chart["image"]["repository"] + ":" + chart["image"]["tag"] in set(
        DCGM_EXPORTER.release_images
    )
