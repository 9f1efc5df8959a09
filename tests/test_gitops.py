"""The GitOps wiring syncs exactly the generated tree, in order, with least privilege.

Read from the real `kustomize build` of every bootstrap scope, for the reference scenario,
both golden configs and a fleet with two EKS clusters, each with Argo CD and with Flux:

- every path an Application or Flux Kustomization syncs exists, builds and passes the strict
  schemas, from this repository and this repository's GitRepository;
- each Argo CD AppProject allows exactly the kinds, clusters and namespaces its
  Applications deploy: nothing missing, nothing extra, no wildcard;
- infrastructure applies before storage, storage before workloads, each to the right
  cluster (the management cluster for cloud resources, the workload cluster by name);
- training Jobs are recreated when their immutable spec changes, by each engine's own means,
  and nothing else is;
- EKS clusters with GPU nodes get the NVIDIA device plugin from its pinned upstream release;
- names never collide across clusters, and an SSH remote becomes a URL Flux can read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS, kustomize_build, schema_errors

from generator import cloud_facts
from generator.cli import main
from generator.operator_facts import (
    DCGM_EXPORTER,
    EFA_DEVICE_PLUGIN,
    EXTERNAL_SECRETS,
    NVIDIA_DEVICE_PLUGIN,
    Operator,
)

Obj = dict[str, Any]
Kind = tuple[str, str]  # (API group, kind)
Destination = tuple[str, str, str]  # (server, cluster name, namespace)

ARGO_API = "argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
IN_CLUSTER = "https://kubernetes.default.svc"
ARGOCD_NAMESPACE = "argocd"
FLUX_NAMESPACE = "flux-system"
JOB_SYNC_OPTIONS = "Force=true,Replace=true"
# Kubernetes' own cluster-scoped kinds that a generated tree could contain; every build
# below checks that exactly these come out of kustomize without a namespace.
CLUSTER_SCOPED: set[Kind] = {
    ("", "Namespace"),
    ("", "PersistentVolume"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
}
SECOND_EKS = """\
  # A second EKS cluster in another region, with a network of its own.
  - name: eks-training-eu
    cloud: eks
    region: eu-west-1
    accountId: "123456789012"
    efsFileSystemId: fs-0fedcba9876543210
    workloadIdentity: {}                 # the seeds' dataset is read through it
    nodeGroups:
      - name: gpu-workers
        instanceTypes: [g5.2xlarge]
        minSize: 1
        desiredSize: 1
        maxSize: 2
"""


# --- the configs, each generated once -------------------------------------------------------


def replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once"
    return text.replace(old, new)


def seeds_text() -> str:
    return SEEDS.read_text()


def with_accounts(text: str) -> str:
    """Flux reaches an EKS cluster by its ARN, so each one names its account."""
    text = re.sub(r"(?m)^    accountId: .*\n", "", text)
    return text.replace("    cloud: eks\n", '    cloud: eks\n    accountId: "123456789012"\n')


def without_secrets(text: str) -> str:
    """Secrets on cloud clusters need the External Secrets Operator, which mlgitops
    installs through Argo CD only (config/rules.py): the Flux variants run without them."""
    return re.sub(r"(?m)^    (secrets|imagePullSecrets):\n(      - .*\n)+", "", text)


def for_flux(text: str) -> str:
    return with_accounts(without_secrets(replaced(text, ARGO_LINE, FLUX_LINE)))


def multi_text() -> str:
    text = seeds_text()
    assert text.endswith("    workers: 2\n"), "the seeds must end with the local cluster"
    return text + SECOND_EKS


def recsys_text() -> str:
    text = (CONFIGS / "recsys-tensorflow.yaml").read_text()
    assert "gitops:" not in text
    return text


def vision_text() -> str:
    return (CONFIGS / "vision-flux.yaml").read_text()


ARGO_LINE, FLUX_LINE = "\ngitops: argocd ", "\ngitops: flux "
VARIANTS: dict[str, tuple[str, Callable[[], str] | None]] = {
    "seeds-argocd": ("argocd", None),  # seeds.yaml itself
    "seeds-flux": ("flux", lambda: for_flux(seeds_text())),
    "recsys-argocd": ("argocd", None),  # the default engine
    "recsys-flux": (
        "flux",
        lambda: with_accounts(without_secrets(recsys_text())) + "gitops: flux\n",
    ),
    "vision-argocd": (
        "argocd",
        lambda: replaced(vision_text(), "\ngitops: flux\n", "\ngitops: argocd\n"),
    ),
    "vision-flux": ("flux", None),
    "multi-argocd": ("argocd", multi_text),
    "multi-flux": ("flux", lambda: for_flux(multi_text())),
}
SOURCES = {
    "seeds-argocd": SEEDS,
    "recsys-argocd": CONFIGS / "recsys-tensorflow.yaml",
    "vision-flux": CONFIGS / "vision-flux.yaml",
}
ALL = list(VARIANTS)
ARGOCD = [v for v, (engine, _) in VARIANTS.items() if engine == "argocd"]
FLUX = [v for v, (engine, _) in VARIANTS.items() if engine == "flux"]
MULTI = ["multi-argocd", "multi-flux"]


@dataclass(frozen=True)
class Cluster:
    name: str
    cloud: str
    version: str
    jobs: frozenset[tuple[str, str]]  # (namespace, workload)
    gpu_nodes: bool = False  # an EKS node group of GPU instances
    efa_nodes: bool = False  # an EKS node group of GPU instances with EFA, under Argo CD
    secrets: bool = False  # a cloud cluster running a workload with secrets

    @property
    def operators(self) -> list[str]:
        """The operators synced from their own repositories: the NVIDIA device plugin,
        which EKS GPU nodes need (GKE brings its own), the EFA device plugin where node
        groups have EFA (Argo CD renders its chart; Flux does not install it), and the
        GPU metrics exporter (GKE has its own DCGM metrics), and the External Secrets
        Operator where workloads read secrets from the cloud's store."""
        return [*self.first_operators, *self.exporters]

    @property
    def first_operators(self) -> list[str]:
        """Those of the layer after infrastructure."""
        found = [f"{self.name}-nvidia-device-plugin"] if self.gpu_nodes else []
        found += [f"{self.name}-efa-device-plugin"] if self.efa_nodes else []
        return found + ([f"{self.name}-external-secrets"] if self.secrets else [])

    @property
    def exporters(self) -> list[str]:
        """After its namespace; nothing waits for it."""
        return [f"{self.name}-dcgm-exporter"] if self.gpu_nodes else []

    @property
    def gpu_metrics(self) -> str | None:
        return f"clusters/{self.name}/gpu-metrics" if self.gpu_nodes else None

    @property
    def remote(self) -> bool:
        return self.cloud != "local"

    @property
    def scope(self) -> str:
        return "bootstrap/fleet" if self.remote else f"bootstrap/local/{self.name}"

    @property
    def namespaces(self) -> list[str]:
        return sorted({namespace for namespace, _ in self.jobs})

    @property
    def infrastructure(self) -> str:
        return f"clusters/{self.name}/infrastructure"

    @property
    def storage(self) -> str | None:
        return f"clusters/{self.name}/workloads/storage" if self.cloud == "eks" else None

    def workloads(self, namespace: str) -> str:
        return f"clusters/{self.name}/workloads/namespaces/{namespace}"

    def paths(self) -> list[str]:
        """What the engine syncs for this cluster, in the order it must apply."""
        paths = [self.infrastructure] if self.remote else []
        paths += [self.storage] if self.storage else []
        paths += [self.gpu_metrics] if self.gpu_metrics else []
        return paths + [self.workloads(namespace) for namespace in self.namespaces]


@dataclass(frozen=True)
class Tree:
    root: Path
    engine: str
    name: str
    repo_url: str
    revision: str
    clusters: tuple[Cluster, ...]

    def cluster(self, name: str) -> Cluster:
        (found,) = [c for c in self.clusters if c.name == name]
        return found

    def scopes(self) -> list[str]:
        return sorted({c.scope for c in self.clusters})

    def clusters_of(self, scope: str) -> list[Cluster]:
        return [c for c in self.clusters if c.scope == scope]

    def version_of(self, path: str) -> str:
        """The Kubernetes version of the cluster a path belongs to."""
        parts = path.split("/")
        if parts[0] == "clusters":
            return self.cluster(parts[1]).version
        return self.clusters[0].version


def _has_efa(group: Obj) -> bool:
    """EFA is on for GPU types that all have it, unless `efa: false`."""
    types = group["instanceTypes"]
    has = all(cloud_facts.EC2_EFA_INTERFACES.get(t, 0) for t in types)
    return has and group.get("efa", bool(cloud_facts.ec2_gpu(types[0])))


def facts(config: Obj) -> tuple[Cluster, ...]:
    default_version = str(config.get("kubernetesVersion", "1.33"))
    return tuple(
        Cluster(
            name=c["name"],
            cloud=c["cloud"],
            version=str(c.get("version", default_version)),
            jobs=frozenset(
                (w["namespace"], w["name"])
                for w in config["workloads"]
                if c["name"] in w.get("clusters", [c["name"]])
            ),
            gpu_nodes=c["cloud"] == "eks"
            and any(cloud_facts.ec2_gpu(g["instanceTypes"][0]) for g in c["nodeGroups"]),
            efa_nodes=c["cloud"] == "eks"
            and config.get("gitops", "argocd") == "argocd"
            and any(_has_efa(g) for g in c["nodeGroups"]),
            secrets=c["cloud"] != "local"
            and any(
                w.get("secrets") or w.get("imagePullSecrets")
                for w in config["workloads"]
                if c["name"] in w.get("clusters", [c["name"]])
            ),
        )
        for c in config["clusters"]
    )


class Trees:
    """Generates each variant once, on first use, with the CLI in-process."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.made: dict[str, Tree] = {}

    def __getitem__(self, variant: str) -> Tree:
        if variant not in self.made:
            self.made[variant] = self.generate(variant)
        return self.made[variant]

    def generate(self, variant: str) -> Tree:
        engine, make_text = VARIANTS[variant]
        work = self.factory.mktemp(variant)
        if make_text is None:
            config = SOURCES[variant]
        else:
            config = work / "config.yaml"
            config.write_text(make_text())
        out = work / "out"
        result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
        assert result.exit_code == 0, result.output
        data = yaml.safe_load(config.read_text())
        assert data.get("gitops", "argocd") == engine
        repo = data["repo"]
        tree = Tree(
            out, engine, data["name"], repo["url"], repo.get("revision", "main"), facts(data)
        )
        prebuild(tree)
        return tree


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return Trees(tmp_path_factory)


# --- builds, each once ----------------------------------------------------------------------


@functools.cache
def build(folder: Path) -> list[Obj]:
    return kustomize_build(folder)


def prebuild(tree: Tree) -> None:
    """Build every bootstrap scope and every expected synced path, in parallel."""
    folders = [tree.root / scope for scope in tree.scopes()]
    folders += [tree.root / scope / sub for scope in tree.scopes() for sub in ("apps", "project")]
    folders += [tree.root / path for c in tree.clusters for path in c.paths()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(build, [f for f in folders if (f / "kustomization.yaml").is_file()]))


def built(tree: Tree, path: str) -> list[Obj]:
    return build(tree.root / path)


def group(obj: Obj) -> str:
    api: str = obj["apiVersion"]
    return api.rpartition("/")[0]


def kind_of(obj: Obj) -> Kind:
    return (group(obj), obj["kind"])


def of_kind(objects: Iterable[Obj], api: str, kind: str) -> list[Obj]:
    return [o for o in objects if o["apiVersion"] == api and o["kind"] == kind]


def name(obj: Obj) -> str:
    found: str = obj["metadata"]["name"]
    return found


def syncs(tree: Tree, scope: str) -> list[Obj]:
    """The root Application or Kustomization of a scope, then everything its apps hold."""
    api, kind = (
        (ARGO_API, "Application")
        if tree.engine == "argocd"
        else (FLUX_KUSTOMIZE_API, "Kustomization")
    )
    (root,) = of_kind(built(tree, scope), api, kind)
    return [root, *of_kind(built(tree, f"{scope}/apps"), api, kind)]


def children(tree: Tree, scope: str) -> list[Obj]:
    """The per-cluster syncs of a scope of this repository's paths, without its root."""
    return [obj for obj in syncs(tree, scope)[1:] if from_this_repository(tree, obj)]


# The device plugins, by the first word of their sync's name (<cluster>-<word>-device-plugin).
def operator_syncs(tree: Tree, scope: str) -> list[Obj]:
    """The syncs of a scope that apply an operator from its own repository."""
    return [obj for obj in syncs(tree, scope) if not from_this_repository(tree, obj)]


def operator_facts(sync: Obj) -> Operator:
    """The operator a sync installs, by its name `<cluster>-<operator>`."""
    (found,) = [
        op
        for op in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, DCGM_EXPORTER, EXTERNAL_SECRETS)
        if name(sync).endswith(f"-{op.name}")
    ]
    return found


def from_this_repository(tree: Tree, obj: Obj) -> bool:
    if obj["kind"] == "Application":
        return bool(obj["spec"]["source"]["repoURL"] == tree.repo_url)
    return bool(obj["spec"]["sourceRef"]["name"] == tree.name)


def synced_path(obj: Obj) -> str:
    if obj["kind"] == "Application":
        path: str = obj["spec"]["source"]["path"]
        return path
    path = obj["spec"]["path"]
    assert path.startswith("./"), f"{name(obj)}: Flux paths are relative to the source root"
    return path.removeprefix("./")


def scope_folders(tree: Tree) -> list[str]:
    """The scopes the tree holds on disk: bootstrap/fleet and bootstrap/local/<cluster>."""
    bootstrap = tree.root / "bootstrap"
    found = ["bootstrap/fleet"] if (bootstrap / "fleet").is_dir() else []
    local = bootstrap / "local"
    found += [f"bootstrap/local/{p.name}" for p in local.iterdir()] if local.is_dir() else []
    return sorted(found)


def all_syncs(tree: Tree) -> list[Obj]:
    return [obj for scope in scope_folders(tree) for obj in syncs(tree, scope)]


def operator_facts_named(suffix: str) -> Operator:
    (found,) = [
        op
        for op in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, DCGM_EXPORTER, EXTERNAL_SECRETS)
        if op.name == suffix
    ]
    return found


def annotation(obj: Obj, key: str) -> str | None:
    value: str | None = obj["metadata"].get("annotations", {}).get(key)
    return value


# --- 1: every synced path is real -----------------------------------------------------------


@pytest.mark.parametrize("variant", ALL)
def test_every_synced_path_exists_builds_and_passes_strict_schemas(
    trees: Trees, variant: str
) -> None:
    tree = trees[variant]
    assert scope_folders(tree) == tree.scopes()
    for scope in tree.scopes():
        bootstrap = built(tree, scope) + built(tree, f"{scope}/apps")
        errors = [e for obj in bootstrap for e in schema_errors(obj, tree.version_of(scope))]
        assert not errors, "\n".join(errors)
        synced = [syncs(tree, scope)[0], *children(tree, scope)]
        assert synced_path(synced[0]) == f"{scope}/apps"
        expected = [p for c in tree.clusters_of(scope) for p in c.paths()]
        assert sorted(synced_path(obj) for obj in synced[1:]) == sorted(expected)
        operators = operator_syncs(tree, scope)
        assert sorted(name(o) for o in operators) == sorted(
            n for c in tree.clusters_of(scope) for n in c.operators
        )
        for operator in operators:
            pinned = operator_facts(operator)
            if tree.engine == "argocd":
                source = operator["spec"]["source"]
                assert (source["repoURL"], source["targetRevision"]) == (pinned.repo, pinned.tag)
            else:
                assert operator["spec"]["sourceRef"]["name"] == pinned.name
        sources = {name(o) for o in of_kind(bootstrap, FLUX_SOURCE_API, "GitRepository")}
        for obj in synced:
            path = synced_path(obj)
            assert (tree.root / path / "kustomization.yaml").is_file(), path
            objects = built(tree, path)
            assert objects, f"{path} builds nothing"
            version = tree.version_of(path)
            errors = [e for o in objects for e in schema_errors(o, version)]
            assert not errors, f"{path}:\n" + "\n".join(errors)
            if tree.engine == "argocd":
                assert obj["spec"]["source"]["repoURL"] == tree.repo_url
                assert obj["spec"]["source"]["targetRevision"] == tree.revision
            else:
                assert obj["spec"]["sourceRef"] == {"kind": "GitRepository", "name": tree.name}
                assert tree.name in sources
                assert obj["metadata"]["namespace"] == FLUX_NAMESPACE


# --- 2: the AppProject allows exactly what is deployed -------------------------------------


def destination_of(application: Obj) -> Destination:
    target = application["spec"]["destination"]
    assert set(target) in ({"server", "namespace"}, {"name", "namespace"}), target
    return (target.get("server", ""), target.get("name", ""), target["namespace"])


def kinds(entries: list[dict[str, str]]) -> set[Kind]:
    assert len({(e["group"], e["kind"]) for e in entries}) == len(entries), "duplicates"
    return {(e["group"], e["kind"]) for e in entries}


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("variant", ARGOCD)
def test_each_app_project_allows_exactly_what_its_applications_deploy(
    trees: Trees, variant: str
) -> None:
    tree = trees[variant]
    for scope in tree.scopes():
        (project,) = of_kind(built(tree, f"{scope}/project"), ARGO_API, "AppProject")
        assert of_kind(built(tree, f"{scope}/apps"), ARGO_API, "AppProject") == [project]
        spec = project["spec"]
        operators = operator_syncs(tree, scope)
        repos = sorted({operator_facts(o).repo for o in operators})
        assert spec["sourceRepos"] == [tree.repo_url, *repos]
        assert not [s for s in strings(spec) if "*" in s]

        cluster_kinds: set[Kind] = set()
        namespaced_kinds: set[Kind] = set()
        used: set[Destination] = set()
        for application in syncs(tree, scope):
            assert application["spec"]["project"] == name(project)
            server, cluster, namespace = destination_of(application)
            used.add((server, cluster, namespace))
            if application in operators:
                # What the chart may create (operator_facts), all in the namespace of its
                # destination.
                facts = operator_facts(application)
                assert namespace == facts.namespace
                found = set(facts.kinds or ())
                cluster_kinds |= found & CLUSTER_SCOPED
                namespaced_kinds |= found - CLUSTER_SCOPED
                continue
            for obj in built(tree, synced_path(application)):
                scoped = kind_of(obj) in CLUSTER_SCOPED
                assert ("namespace" in obj["metadata"]) != scoped, (kind_of(obj), name(obj))
                if scoped:
                    cluster_kinds.add(kind_of(obj))
                else:
                    namespaced_kinds.add(kind_of(obj))
                    assert obj["metadata"]["namespace"] == namespace, (name(application), obj)

        assert {destination_of({"spec": {"destination": d}}) for d in spec["destinations"]} == used
        assert len(spec["destinations"]) == len(used)
        assert (IN_CLUSTER, "", ARGOCD_NAMESPACE) in used
        assert kinds(spec["clusterResourceWhitelist"]) == cluster_kinds
        assert kinds(spec["namespaceResourceWhitelist"]) == namespaced_kinds
        assert {("argoproj.io", "Application"), ("argoproj.io", "AppProject")} <= namespaced_kinds


# --- 3: order and destinations -------------------------------------------------------------


@pytest.mark.parametrize("variant", ARGOCD)
def test_argocd_applies_infrastructure_then_storage_then_workloads_to_the_right_cluster(
    trees: Trees, variant: str
) -> None:
    tree = trees[variant]
    for scope in tree.scopes():
        actual = {
            synced_path(app): (
                annotation(app, "argocd.argoproj.io/sync-wave"),
                app["spec"]["destination"],
            )
            for app in children(tree, scope)
        }
        expected: dict[str, tuple[str, dict[str, str]]] = {}
        for c in tree.clusters_of(scope):
            workload_cluster = {"name": c.name} if c.remote else {"server": IN_CLUSTER}
            if c.remote:
                expected[c.infrastructure] = (
                    "0",
                    {"server": IN_CLUSTER, "namespace": f"infra-{c.name}"},
                )
            if c.storage:
                expected[c.storage] = ("1", {**workload_cluster, "namespace": "default"})
            if c.gpu_metrics:
                expected[c.gpu_metrics] = ("1", {**workload_cluster, "namespace": "gpu-metrics"})
            for namespace in c.namespaces:
                expected[c.workloads(namespace)] = (
                    "2",
                    {**workload_cluster, "namespace": namespace},
                )
        assert actual == expected
        operators = {
            name(app): (annotation(app, "argocd.argoproj.io/sync-wave"), app["spec"]["destination"])
            for app in operator_syncs(tree, scope)
        }
        assert operators == {
            **{
                n: (
                    "1",
                    {
                        "name": c.name,
                        "namespace": operator_facts_named(n[len(c.name) + 1 :]).namespace,
                    },
                )
                for c in tree.clusters_of(scope)
                for n in c.first_operators
            },
            **{
                n: ("2", {"name": c.name, "namespace": "gpu-metrics"})
                for c in tree.clusters_of(scope)
                for n in c.exporters
            },
        }


@pytest.mark.parametrize("variant", FLUX)
def test_flux_orders_by_depends_on_and_reaches_workload_clusters_by_kubeconfig(
    trees: Trees, variant: str
) -> None:
    tree = trees[variant]
    for scope in tree.scopes():
        synced = children(tree, scope)
        names = {name(k) for k in synced}
        by_path = {synced_path(k): k["spec"] for k in synced}
        for c in tree.clusters_of(scope):
            kubeconfig = {"configMapRef": {"name": f"{c.name}-cluster"}} if c.remote else None
            earlier: list[str] = []
            if c.remote:
                infrastructure = by_path[c.infrastructure]
                assert "dependsOn" not in infrastructure
                assert "kubeConfig" not in infrastructure
                assert (infrastructure["wait"], infrastructure.get("force")) == (True, None)
                earlier.append(f"{c.name}-infrastructure")
            infrastructure_only = list(earlier)
            earlier += c.first_operators  # the same layer as storage, after infrastructure
            if c.storage:
                storage = by_path[c.storage]
                assert storage["dependsOn"] == [{"name": n} for n in infrastructure_only]
                assert storage["kubeConfig"] == kubeconfig
                assert (storage["wait"], storage.get("force")) == (True, None)
                earlier.append(f"{c.name}-storage")
            if c.gpu_metrics:
                namespace_path = by_path[c.gpu_metrics]
                assert namespace_path["dependsOn"] == [{"name": n} for n in infrastructure_only]
                earlier.append(f"{c.name}-gpu-metrics")
                for exporter in c.exporters:  # after its namespace; nothing waits for it
                    (sync,) = [k for k in operator_syncs(tree, scope) if name(k) == exporter]
                    assert sync["spec"]["dependsOn"] == [{"name": n} for n in earlier]
                    assert sync["spec"]["targetNamespace"] == "gpu-metrics"
            assert set(earlier) - set(c.operators) <= names
            for namespace in c.namespaces:
                workloads = by_path[c.workloads(namespace)]
                assert workloads.get("dependsOn", []) == [{"name": n} for n in earlier]
                assert workloads.get("kubeConfig") == kubeconfig
                # Each training object carries its own force annotation (test 4); the
                # path's claims must never be force-replaced.
                assert (workloads["wait"], workloads.get("force")) == (False, None)
            if c.cloud == "eks":
                assert earlier == [
                    f"{c.name}-infrastructure",
                    *c.first_operators,
                    f"{c.name}-storage",
                    *([f"{c.name}-gpu-metrics"] if c.gpu_metrics else []),
                ]
            if c.remote:
                (where,) = [
                    o for o in built(tree, f"clusters/{c.name}/gitops") if o["kind"] == "ConfigMap"
                ]
                assert name(where) == f"{c.name}-cluster"
                assert where["data"]["provider"] == {"eks": "aws", "gke": "gcp"}[c.cloud]
                assert where["data"]["cluster"].endswith(f"/{c.name}")
        for operator in operator_syncs(tree, scope):
            assert operator["spec"]["dependsOn"][0]["name"].endswith("-infrastructure")


# --- 4: Jobs are recreated on change --------------------------------------------------------


@pytest.mark.parametrize("variant", ALL)
def test_jobs_are_replaced_by_argocd_and_left_to_flux_force(trees: Trees, variant: str) -> None:
    tree = trees[variant]
    jobs = {
        (c.name, namespace): of_kind(built(tree, c.workloads(namespace)), "batch/v1", "Job")
        for c in tree.clusters
        for namespace in c.namespaces
    }
    assert {
        (cluster, job["metadata"]["namespace"], name(job))
        for (cluster, _), found in jobs.items()
        for job in found
    } == {(c.name, namespace, w) for c in tree.clusters for namespace, w in c.jobs}
    for job in (job for found in jobs.values() for job in found):
        annotations = job["metadata"].get("annotations", {})
        # Waivers (a runAsUser below 10000 the config chose) are no sync option.
        annotations = {k: v for k, v in annotations.items() if "/waive-" not in k}
        if tree.engine == "argocd":
            assert annotations == {"argocd.argoproj.io/sync-options": JOB_SYNC_OPTIONS}
        else:
            assert annotations == {"kustomize.toolkit.fluxcd.io/force": "enabled"}
    # Only what changed is replaced: Argo CD syncs only out-of-sync resources of a path
    # that holds Jobs; Flux forces no whole path. Nothing else carries a force.
    for c in tree.clusters:
        for namespace in c.namespaces:
            for obj in built(tree, c.workloads(namespace)):
                if obj["kind"] != "Job":
                    assert "kustomize.toolkit.fluxcd.io/force" not in annotation_keys(obj)
                    assert annotation(obj, "argocd.argoproj.io/sync-options") is None
    for scope in tree.scopes():
        for sync in children(tree, scope):
            holds_jobs = "/workloads/namespaces/" in synced_path(sync)
            if tree.engine == "argocd":
                options = sync["spec"]["syncPolicy"].get("syncOptions", [])
                assert ("ApplyOutOfSyncOnly=true" in options) == holds_jobs, name(sync)
            else:
                assert "force" not in sync["spec"], name(sync)


def annotation_keys(obj: Obj) -> set[str]:
    return set(obj["metadata"].get("annotations", {}))


# --- 5: no collisions between clusters ------------------------------------------------------


@pytest.mark.parametrize("variant", ALL)
def test_every_sync_name_in_the_tree_is_unique(trees: Trees, variant: str) -> None:
    tree = trees[variant]
    names = [name(obj) for obj in all_syncs(tree)]
    assert len(names) == len(set(names)), sorted(names)
    expected = sum(len(c.paths()) + len(c.operators) for c in tree.clusters)
    expected += len(tree.scopes())
    assert len(names) == expected


@pytest.mark.parametrize("variant", MULTI)
def test_two_eks_clusters_get_their_own_syncs_paths_and_namespaces(
    trees: Trees, variant: str
) -> None:
    tree = trees[variant]
    first, second = tree.cluster("eks-training"), tree.cluster("eks-training-eu")
    assert (first.cloud, second.cloud) == ("eks", "eks")
    fleet = {synced_path(obj): name(obj) for obj in children(tree, "bootstrap/fleet")}
    for c in (first, second):
        assert fleet[c.infrastructure] == f"{c.name}-infrastructure"
        assert fleet[c.storage or ""] == f"{c.name}-storage"
    assert first.infrastructure != second.infrastructure

    # Both clusters' cloud resources live side by side on the management cluster.
    identities: list[tuple[str, str, str]] = []
    for c in (first, second):
        objects = built(tree, c.infrastructure)
        namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
        assert namespaces == {f"infra-{c.name}"}
        assert [name(o) for o in objects if o["kind"] == "Namespace"] == [f"infra-{c.name}"]
        identities += [(o["kind"], o["metadata"].get("namespace", ""), name(o)) for o in objects]
    assert len(identities) == len(set(identities))

    # IAM role names are global to the account: the two clusters' roles must not collide.
    roles = [
        o["spec"]["name"]
        for c in (first, second)
        for o in built(tree, c.infrastructure)
        if o["kind"] == "Role"
    ]
    # cluster, node and training pods' role of each (the seeds' dataset is read through the
    # last), and the secret stores' where secrets are read (Argo CD)
    assert len(roles) == len(set(roles)) == (8 if tree.engine == "argocd" else 6)


# --- 6: the Flux source ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "url", "secret"),
    [
        ("vision-flux", "ssh://git@github.com/vision/lab-gitops.git", "vision-lab-git"),
        ("seeds-flux", "https://github.com/acme/ml-platform-gitops.git", None),
        ("recsys-flux", "https://gitlab.example.com/recsys/gitops.git", None),
    ],
)
def test_flux_reads_ssh_remotes_as_ssh_urls_with_a_key_and_https_without(
    trees: Trees, variant: str, url: str, secret: str | None
) -> None:
    tree = trees[variant]
    for scope in tree.scopes():
        sources = of_kind(built(tree, f"{scope}/apps"), FLUX_SOURCE_API, "GitRepository")
        (source,) = [s for s in sources if name(s) == tree.name]
        expected: Obj = {"interval": "1m", "url": url, "ref": {"branch": tree.revision}}
        if secret:
            expected["secretRef"] = {"name": secret}
        assert source["spec"] == expected
        assert source["metadata"]["namespace"] == FLUX_NAMESPACE
        assert of_kind(built(tree, scope), FLUX_SOURCE_API, "GitRepository") == sources
        # Operators' repositories are public and read at a tag, with no credential.
        assert all("secretRef" not in s["spec"] for s in sources if s is not source)


# --- defects found while writing these tests ------------------------------------------------


def generate_text(text: str, work: Path) -> tuple[int, str, Path]:
    config, out = work / "config.yaml", work / "out"
    config.write_text(text)
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    return result.exit_code, result.output, out


def test_flux_kustomization_names_fit_the_label_flux_puts_on_what_they_apply(
    tmp_path: Path,
) -> None:
    cluster, namespace = "gke-training-europe-west4-production", "distributed-training-team-alpha"
    text = (
        "name: p\nrepo: {url: https://example.com/r.git}\ngitops: flux\n"
        f"workloads:\n- {{name: w, namespace: {namespace}, framework: pytorch, image: 'r/i:1', "
        "command: [python, t.py], workers: 1, resources: {cpu: 1, memory: 1Gi}}\n"
        f"clusters:\n- {{name: {cluster}, cloud: gke, project: acme-ml, location: europe-west4, "
        "nodePools: [{name: a, machineType: n1-standard-4, nodeCount: 1}]}\n"
    )
    exit_code, output, out = generate_text(text, tmp_path)
    if exit_code != 0:  # refusing the config is a fix too, as a located config error
        assert exit_code == 2, output
        return
    synced = of_kind(
        kustomize_build(out / "bootstrap/fleet/apps"), FLUX_KUSTOMIZE_API, "Kustomization"
    )
    assert len(synced) == 2
    assert [name(k) for k in synced if len(name(k)) > 63] == []


def test_flux_syncs_a_commit_revision_as_a_commit(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    text = for_flux(seeds_text())
    exit_code, output, out = generate_text(
        replaced(text, "revision: main\n", f"revision: {commit}\n"), tmp_path
    )
    assert exit_code == 0, output
    sources = of_kind(
        kustomize_build(out / "bootstrap/fleet/source"), FLUX_SOURCE_API, "GitRepository"
    )
    (source,) = [s for s in sources if name(s) == "ml-platform"]
    assert source["spec"]["ref"] == {"commit": commit}
