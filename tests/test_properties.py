"""Property tests: any valid config yields a tree that builds and validates; any config
made invalid gets located errors, exit 2, no traceback and an untouched tree.

Configs are drawn across the whole schema: every workload and cluster field, both
frameworks, all three clouds, both GitOps engines, shared namespaces, placement, per-cloud
overrides and GPUs. The draw keeps the cross-field rules (a workload that needs GPUs runs
only where there are GPU nodes), so every drawn config must load: a rejection is a bug in
the loader or in this strategy, and the test says which config it was.

The runs are derandomized (the same examples on every machine) and bounded; set
MLGITOPS_PROPERTY_EXAMPLES to explore that many random examples per test locally.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import SEEDS, schema_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.cloud_facts import EKS_END_OF_EXTENDED_SUPPORT, KIND_NODE_IMAGES
from generator.cluster import nodes
from generator.config import model
from generator.config.load import load_config_text

Config = dict[str, Any]

EXAMPLES = int(os.environ.get("MLGITOPS_PROPERTY_EXAMPLES", "0"))
SETTINGS = {
    "derandomize": not EXAMPLES,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

VERSIONS = sorted(set(EKS_END_OF_EXTENDED_SUPPORT) & set(KIND_NODE_IMAGES))  # everywhere
# Instance types of one node group carry the same GPU (or none).
GPU_INSTANCES = [["g5.xlarge", "g5.2xlarge"], ["g6.2xlarge"], ["p4d.24xlarge"]]
CPU_INSTANCES = [["m6i.large", "m6i.xlarge"], ["c6i.2xlarge", "m6i.large"]]
CIDRS = ["10.20.0.0/16", "192.168.1.0/24", "172.16.0.0/12", "10.0.0.5/32", "fd00::/64"]

short_suffix = st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True)


def _label(prefix: str) -> st.SearchStrategy[str]:
    return short_suffix.map(lambda suffix: f"{prefix}{suffix}")


@st.composite
def resources(draw: st.DrawFn) -> Config:
    return {
        "cpu": draw(st.sampled_from(["500m", "1", "2", "4"])),
        "memory": draw(st.sampled_from(["512Mi", "2Gi", "16Gi", "1G"])),
        **({"gpu": draw(st.integers(1, 4))} if draw(st.booleans()) else {}),
    }


@st.composite
def network(draw: st.DrawFn) -> Config:
    ports = st.lists(st.integers(1, 65535), max_size=3, unique=True)
    ingress = st.fixed_dictionaries(
        {"podLabels": st.dictionaries(st.sampled_from(["app", "team"]), _label("v"), min_size=1)},
        optional={
            "namespaceLabels": st.dictionaries(
                st.just("kubernetes.io/metadata.name"), _label("ns"), min_size=1
            ),
            "ports": ports,
        },
    )
    egress = st.fixed_dictionaries({"cidr": st.sampled_from(CIDRS)}, optional={"ports": ports})
    result: Config = {}
    if draw(st.booleans()):
        result["ingressFrom"] = draw(st.lists(ingress, min_size=1, max_size=2))
    if draw(st.booleans()):
        result["egressTo"] = draw(st.lists(egress, min_size=1, max_size=2))
    return result


@st.composite
def workload(draw: st.DrawFn, name: str, cluster_names: list[str]) -> Config:
    framework = draw(st.sampled_from(["pytorch", "tensorflow"]))
    digest = "@sha256:" + "ab" * 32
    image = draw(st.sampled_from(["ghcr.io/acme/train:1.0", "registry.local:5000/ml/x" + digest]))
    spec: Config = {
        "name": name,
        "namespace": draw(st.sampled_from(["training", "nlp", "team-a"])),
        "framework": framework,
        "image": image,
        "command": draw(st.sampled_from([["python", "train.py"], ["python", "-m", "t", "--e=1"]])),
        "workers": draw(st.integers(1, 4)),
        "resources": draw(resources()),
    }
    if framework == "tensorflow" and draw(st.booleans()):
        spec["parameterServers"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        spec["port"] = draw(st.integers(1024, 65535))
    if draw(st.booleans()):
        spec["checkpoint"] = {
            "size": draw(st.sampled_from(["1Gi", "50Gi"])),
            "mountPath": draw(st.sampled_from(["/ckpt", "/var/ml/checkpoints"])),
        }
    if draw(st.booleans()):
        spec["data"] = draw(data())
    if draw(st.booleans()):
        spec["network"] = draw(network())
    if draw(st.booleans()):
        spec["env"] = draw(
            st.dictionaries(
                st.sampled_from(["LOG_LEVEL", "EPOCHS", "NCCL_DEBUG"]), st.sampled_from(["1", "x"])
            )
        )
    if draw(st.booleans()):
        spec["runAsUser"] = draw(st.integers(1, 65535))
    if draw(st.booleans()):
        spec["clusters"] = draw(st.lists(st.sampled_from(cluster_names), min_size=1, unique=True))
    spec |= draw(runtime_settings(framework, spec["workers"]))
    overrides = {
        cloud: {"resources": draw(resources_override(cloud))}
        for cloud in draw(st.lists(st.sampled_from(["eks", "gke", "local"]), unique=True))
    }
    if overrides:
        spec["overrides"] = overrides
    return spec


@st.composite
def data(draw: st.DrawFn) -> list[Config]:
    """Datasets from a bucket on each cloud (local: a claim you fill), read-only or not,
    with or without a prefix."""
    found = []
    for name in draw(
        st.lists(st.sampled_from(["imagenet", "coco", "c4"]), min_size=1, unique=True)
    ):
        prefix = draw(st.sampled_from(["", f"/{name}", f"/sets/{name}/v1"]))
        dataset: Config = {"name": name, "mountPath": f"/data/{name}"}
        if draw(st.booleans()):
            dataset["sources"] = {
                "eks": f"s3://acme-data{prefix}",
                "gke": f"gs://acme-data{prefix}",
            }
        else:
            dataset["sources"] = {
                "eks": f"s3://acme-{name}.bucket{prefix}",
                "gke": f"gs://acme_{name}{prefix}",
            }
        if draw(st.booleans()):
            dataset["readOnly"] = draw(st.booleans())
        found.append(dataset)
    return found


RUNTIMES = {
    "pytorch": ["job", "pytorchjob", "jobset", "trainjob"],
    "tensorflow": ["job", "tfjob", "jobset"],
}


@st.composite
def runtime_settings(draw: st.DrawFn, framework: str, workers: int) -> Config:
    """How the workload runs, and the settings its runtime can honour."""
    runtime = draw(st.sampled_from(RUNTIMES[framework]))
    settings: Config = {"runtime": runtime}
    if runtime != "job" and draw(st.booleans()):
        settings["maxRestarts"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        settings["ttlSecondsAfterFinished"] = draw(st.integers(0, 86400))
    if runtime in ("pytorchjob", "tfjob") and draw(st.booleans()):
        settings["cleanPodPolicy"] = draw(st.sampled_from(["All", "Running", "None"]))
    if runtime == "pytorchjob" and draw(st.booleans()):
        low = draw(st.integers(1, workers))
        settings["elastic"] = {"minReplicas": low, "maxReplicas": draw(st.integers(workers, 8))}
    if draw(st.booleans()):
        settings["queue"] = draw(st.sampled_from(["gpu-jobs", "batch"]))
    return settings


@st.composite
def resources_override(draw: st.DrawFn, cloud: str) -> Config:
    wanted: Config = {}
    if draw(st.booleans()):
        wanted["cpu"] = draw(st.sampled_from(["250m", "8"]))
    if draw(st.booleans()):
        wanted["memory"] = draw(st.sampled_from(["1Gi", "32Gi"]))
    if draw(st.booleans()):
        wanted["gpu"] = 0 if cloud == "local" else draw(st.integers(0, 2))
    return wanted


@st.composite
def eks_cluster(draw: st.DrawFn, name: str) -> Config:
    groups = []
    for index in range(draw(st.integers(1, 2))):
        low, high = sorted(draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
        family = draw(st.sampled_from(GPU_INSTANCES if draw(st.booleans()) else CPU_INSTANCES))
        group: Config = {
            "name": f"ng{index}",
            "instanceTypes": family[: draw(st.integers(1, len(family)))],
            "minSize": low,
            # Nodes exist (no autoscaler adds them): pods and CoreDNS need some.
            "desiredSize": draw(st.integers(max(low, 1), max(high, 1))),
            "maxSize": max(high, 1),
        }
        if draw(st.booleans()):
            group["capacityType"] = draw(st.sampled_from(["ON_DEMAND", "SPOT"]))
        if draw(st.booleans()):
            group["capacity"] = {"cpu": 16, "memory": "64Gi", "gpus": draw(st.integers(0, 4))}
        groups.append(group)
    spec: Config = {
        "name": name,
        "cloud": "eks",
        "region": draw(st.sampled_from(["us-west-2", "eu-central-1"])),
        "nodeGroups": groups,
    }
    if draw(st.booleans()):
        spec["version"] = draw(st.sampled_from(VERSIONS))
    if draw(st.booleans()):
        spec["subnets"] = ["subnet-0123abcd", "subnet-0123456789abcdef0"]
    elif draw(st.booleans()):
        spec["vpcCidr"] = "10.42.0.0/16"
    if draw(st.booleans()):
        spec["efsFileSystemId"] = "fs-0123abcd"
    if draw(st.booleans()):
        spec["imageRegistry"] = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ml"
    if draw(st.booleans()):
        spec["workloadIdentity"] = {"policies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]}
    if draw(st.booleans()):
        spec["adminPrincipals"] = ["arn:aws:iam::123456789012:role/platform-admins"]
    if draw(st.booleans()):
        spec["accountId"] = "123456789012"
    return spec


@st.composite
def gke_cluster(draw: st.DrawFn, name: str) -> Config:
    pools = []
    for index in range(draw(st.integers(1, 2))):
        pool: Config = {"name": f"pool{index}", "machineType": "n1-standard-8", "nodeCount": 1}
        if draw(st.booleans()):
            pool["accelerator"] = {"type": "nvidia-tesla-t4", "count": draw(st.integers(1, 4))}
        if draw(st.booleans()):
            pool["autoscaling"] = {"minNodes": 0, "maxNodes": draw(st.integers(1, 8))}
        pools.append(pool)
    spec: Config = {
        "name": name,
        "cloud": "gke",
        "project": "acme-ml-prod",
        "location": draw(st.sampled_from(["us-central1", "europe-west4-a"])),
        "nodePools": pools,
    }
    if draw(st.booleans()):
        spec["version"] = draw(st.sampled_from(VERSIONS))
    if draw(st.booleans()):
        spec["releaseChannel"] = draw(st.sampled_from(["RAPID", "REGULAR", "STABLE"]))
    if draw(st.booleans()):
        spec["imageRegistry"] = "us-docker.pkg.dev/acme-ml-prod/train"
    if draw(st.booleans()):
        identity: Config = {"roles": ["roles/storage.objectViewer"]}
        if draw(st.booleans()):
            identity["serviceAccount"] = "trainer-sa"
        spec["workloadIdentity"] = identity
    if draw(st.booleans()):
        spec["configConnectorServiceAccount"] = "cnrm-fleet@acme-ml-prod.iam.gserviceaccount.com"
    return spec


@st.composite
def local_cluster(draw: st.DrawFn, name: str) -> Config:
    spec: Config = {"name": name, "cloud": "local"}
    if draw(st.booleans()):
        spec["workers"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        spec["version"] = draw(st.sampled_from(VERSIONS))
    if draw(st.booleans()):
        spec["imageRegistry"] = "localhost:5001"
    return spec


CLUSTER_STRATEGIES = {"eks": eks_cluster, "gke": gke_cluster, "local": local_cluster}


def _node_groups(cluster: Config) -> list[nodes.NodeGroup]:
    """The nodes the generator's model says a drawn cluster has."""
    text = yaml.safe_dump(
        {
            "name": "p",
            "repo": {"url": "https://github.com/acme/ml-gitops.git"},
            "workloads": [SMALL_WORKLOAD],
            "clusters": [cluster],
        }
    )
    return nodes.node_groups(load_config_text(text, "drawn.yaml").clusters[0])


SMALL_WORKLOAD: Config = {
    "name": "w",
    "namespace": "w",
    "framework": "pytorch",
    "image": "r/i:1",
    "command": ["python", "t.py"],
    "workers": 1,
    "resources": {"cpu": "100m", "memory": "64Mi"},
}


def _pods_fit(spec: Config, cluster: Config, pods: int = 1) -> bool:
    """Some node of the cluster can hold one of the workload's pods (with `pods`, some
    group's nodes together can hold that many: Kueue's quota for a flavor is its group's
    nodes): GPU pods on GPU nodes, others on untainted ones (a size the model does not
    know counts as fitting)."""
    if cluster["cloud"] == "local":
        return True
    cloud = cluster["cloud"]
    override = spec.get("overrides", {}).get(cloud, {}).get("resources", {})
    wanted = {**spec["resources"], **override}
    pod = nodes.pod_amounts(
        model.Resources(wanted["cpu"], wanted["memory"], int(wanted.get("gpu", 0)))
    )
    if cloud == "gke" and spec.get("data"):  # the gcsfuse sidecar's requests too
        pod = nodes.Amounts(pod.millicores + 1000, pod.memory + 2 * 2**30, pod.gpus)
    groups = [g for g in _node_groups(cluster) if (g.gpu_type if pod.gpus else not g.tainted)]
    if pods > 1:
        return any(
            g.allocatable is None or g.allocatable.times(g.nodes).holds(pod.times(pods))
            for g in groups
        )
    return any(g.allocatable is None or g.allocatable.holds(pod) for g in groups)


def _queue_only_where_admitted(spec: Config, clusters: list[Config]) -> None:
    """Kueue never admits a queued run larger than a flavor's quota (its group's nodes):
    such a run is not queued here (generate warns of it; test_cluster_model shows it)."""
    if "queue" not in spec:
        return
    servers = spec.get("parameterServers", 0)
    pods = spec["workers"] + servers + (1 if servers else 0)
    runs_on = [c for c in clusters if c["name"] in spec.get("clusters", [c["name"]])]
    if not all(_pods_fit(spec, c, pods) for c in runs_on):
        del spec["queue"]


def _shares_a_checkpoint(spec: Config, cluster: Config) -> bool:
    pods = spec["workers"] + spec.get("parameterServers", 0)
    runs_here = cluster["name"] in spec.get("clusters", [cluster["name"]])
    return runs_here and "checkpoint" in spec and pods > 1


def _place_gpu_workloads(spec: Config, clusters: list[Config]) -> None:
    """Run a workload only where its pods fit a node (its GPUs among them); with no such
    cluster, make it a small CPU workload, which fits any node drawn."""
    runs_on = [c for c in clusters if c["name"] in spec.get("clusters", [c["name"]])]
    able = [c["name"] for c in runs_on if _pods_fit(spec, c)]
    if able and len(able) < len(runs_on):
        spec["clusters"] = able
    elif not able:
        spec["resources"] = {"cpu": "500m", "memory": "512Mi"}
        spec.pop("overrides", None)


@st.composite
def valid_configs(draw: st.DrawFn) -> Config:
    clouds = draw(st.lists(st.sampled_from(["eks", "gke", "local"]), min_size=1, max_size=3))
    clusters = [
        draw(CLUSTER_STRATEGIES[cloud](f"{cloud}-{index}")) for index, cloud in enumerate(clouds)
    ]
    names = [c["name"] for c in clusters]
    workload_names = draw(st.lists(_label("w"), min_size=1, max_size=3, unique=True))
    workloads = [draw(workload(name, names)) for name in workload_names]
    for spec in workloads:
        _place_gpu_workloads(spec, clusters)
        _queue_only_where_admitted(spec, clusters)
    gitops = draw(st.sampled_from(["argocd", "flux"]))
    for cluster in clusters:
        if gitops == "flux" and cluster["cloud"] == "eks":
            cluster["accountId"] = "123456789012"  # Flux reaches EKS clusters by ARN
        if cluster["cloud"] == "eks" and any(
            _shares_a_checkpoint(spec, cluster) for spec in workloads
        ):
            cluster["efsFileSystemId"] = "fs-0123abcd"  # ReadWriteMany on EKS is EFS
        if cluster["cloud"] != "local" and any(
            spec.get("data") and cluster["name"] in spec.get("clusters", [cluster["name"]])
            for spec in workloads
        ):
            cluster.setdefault("workloadIdentity", {})  # who reads the datasets' buckets
    config: Config = {
        "name": draw(_label("p")),
        "repo": {"url": "https://github.com/acme/ml-gitops.git"},
        "gitops": gitops,
        "kubernetesVersion": draw(st.sampled_from(VERSIONS)),
        "workloads": workloads,
        "clusters": clusters,
    }
    if draw(st.booleans()):
        config["repo"]["revision"] = draw(st.sampled_from(["main", "refs/tags/v1.2.0"]))
    if draw(st.booleans()):
        config["ci"] = {"kubeconform": draw(st.booleans()), "workflow": draw(st.booleans())}
    return config


def _run(folder: Path, config: Config | str, *args: str) -> Result:
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    (folder / "mlgitops.yaml").write_text(text)
    return CliRunner().invoke(
        main, ["generate", "--config", str(folder / "mlgitops.yaml"), *args, "--out", "out"]
    )


@settings(max_examples=EXAMPLES or 8, **SETTINGS)
@given(config=valid_configs())
def test_every_valid_config_builds_and_passes_strict_schemas_and_policies(
    config: Config, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path_factory.mktemp("valid")
    monkeypatch.chdir(folder)
    generated = _run(folder, config)
    dumped = yaml.safe_dump(config, sort_keys=False)
    assert generated.exit_code == 0, f"{generated.output}\nfor the config:\n{dumped}"
    validated = CliRunner().invoke(
        main,
        [
            "validate",
            "out",
            "--config",
            "mlgitops.yaml",  # the cluster model places every pod on the config's nodes
            *schema_args(),
            "--output",
            "text",
        ],
    )
    assert validated.exit_code == 0, f"{validated.output}\nfor the config:\n{dumped}"
    shutil.rmtree(folder)


# Mutations that make any valid config invalid, each with the field path it breaks (or a
# line number for text-level mutations), so the test can check the error points there.

REQUIRED = {
    "workloads": ["name", "namespace", "framework", "image", "command", "workers", "resources"],
    "eks": ["name", "region", "nodeGroups"],
    "gke": ["name", "project", "location", "nodePools"],
    "local": ["name"],
}
FREE_FORM = {"env", "podLabels", "namespaceLabels"}


def _mappings(node: Any, path: str = "") -> list[tuple[str, Config]]:
    """Every mapping of the config with its path, except free-form ones (env, labels)."""
    found: list[tuple[str, Config]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            if key not in FREE_FORM:
                found += _mappings(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _mappings(item, f"{path}[{index}]")
    return found


def _leaves(node: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every (path, parent, key) of the config's values below the top level."""
    found: list[tuple[str, Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(node, dict):
            child = f"{path}.{key}" if path else str(key)
        else:
            child = f"{path}[{key}]"
        found.append((child, node, key))
        if isinstance(value, dict | list):
            found += _leaves(value, child)
    return found


@st.composite
def invalid_configs(draw: st.DrawFn) -> tuple[str, str, int | None]:
    """(config text, field path the error must name, line it must point at)."""
    config = copy.deepcopy(draw(valid_configs()))
    kind = draw(
        st.sampled_from(
            [
                "unknown-key",
                "wrong-type",
                "missing",
                "range",
                "name",
                "digits",
                "version",
                "tab",
                "twice",
            ]
        )
    )
    if kind == "unknown-key":
        path, mapping = draw(st.sampled_from(_mappings(config)))
        mapping["zzUnknown"] = 1
        return _dump(config), f"{path}.zzUnknown" if path else "zzUnknown", None
    if kind == "wrong-type":
        path, parent, key = draw(st.sampled_from(_leaves(config)))
        value = parent[key]
        parent[key] = 7 if isinstance(value, list | dict) else [value, value]
        return _dump(config), path, None
    if kind == "missing":
        if draw(st.booleans()):
            index = draw(st.integers(0, len(config["workloads"]) - 1))
            key = draw(st.sampled_from(REQUIRED["workloads"]))
            del config["workloads"][index][key]
            return _dump(config), f"workloads[{index}]", None
        index = draw(st.integers(0, len(config["clusters"]) - 1))
        key = draw(st.sampled_from(REQUIRED[config["clusters"][index]["cloud"]]))
        del config["clusters"][index][key]
        return _dump(config), f"clusters[{index}]", None
    if kind == "range":
        index = draw(st.integers(0, len(config["workloads"]) - 1))
        key, value = draw(
            st.sampled_from([("workers", 0), ("workers", 100000), ("port", 0), ("port", 70000)])
        )
        config["workloads"][index][key] = value
        return _dump(config), f"workloads[{index}].{key}", None
    if kind == "name":
        index = draw(st.integers(0, len(config["workloads"]) - 1))
        key = draw(st.sampled_from(["name", "namespace"]))
        bad = ["Upper", "under_score", "-x", "train\n", "team-\u0661", "team-\uff11"]
        if key == "namespace":
            bad += ["kube-system", "default", "argocd", "flux-system", "kueue-system"]
            bad += [f"infra-{config['clusters'][0]['name']}", "kube-team"]
        config["workloads"][index][key] = draw(st.sampled_from(bad))
        return _dump(config), f"workloads[{index}].{key}", None
    if kind == "digits":
        index = draw(st.integers(0, len(config["workloads"]) - 1))
        key, value = draw(
            st.sampled_from([("cpu", "\uff14"), ("memory", "\u0661\u0666Gi"), ("memory", "16Gi\n")])
        )
        config["workloads"][index]["resources"][key] = value
        return _dump(config), f"workloads[{index}].resources.{key}", None
    if kind == "version":
        config["kubernetesVersion"] = draw(
            st.sampled_from(["1.\uff13\uff13", "1.33\n", "1.\u0663"])
        )
        return _dump(config), "kubernetesVersion", None
    lines = _dump(config).splitlines(keepends=True)
    if kind == "tab":
        indented = [i for i, line in enumerate(lines) if line.startswith(" ")]
        line = draw(st.sampled_from(indented))
        lines[line] = "\t" + lines[line]
        return "".join(lines), "", line + 1
    top_level = [i for i, line in enumerate(lines) if re.match(r"[a-zA-Z]", line)]
    line = draw(st.sampled_from(top_level))
    key = lines[line].split(":", 1)[0]
    return "".join(lines) + f"{key}: again\n", key, len(lines) + 1


def _dump(config: Config) -> str:
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture(scope="module")
def existing_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("existing")
    result = CliRunner().invoke(
        main, ["generate", "--config", str(SEEDS), "--out", str(folder / "out")]
    )
    assert result.exit_code == 0, result.output
    return folder / "out"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@settings(max_examples=EXAMPLES or 60, **SETTINGS)
@given(case=invalid_configs())
def test_every_invalid_config_is_located_and_changes_nothing(
    case: tuple[str, str, int | None],
    existing_tree: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text, field_path, line = case
    folder = tmp_path_factory.mktemp("invalid")
    shutil.copytree(existing_tree, folder / "out")
    before = _snapshot(folder / "out")
    monkeypatch.chdir(folder)
    result = _run(folder, text)
    config_file = str(folder / "mlgitops.yaml")
    problems = result.stderr.splitlines()
    assert result.exit_code == 2, f"{result.output}\nfor the config:\n{text}"
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert problems, text
    for problem in problems:
        assert re.match(re.escape(config_file) + r":[0-9]+:[0-9]+: ", problem), problem
    if line is not None:
        assert any(p.startswith(f"{config_file}:{line}:") for p in problems), result.stderr
    else:
        named = [p for p in problems if f": {field_path}" in p]
        assert named, f"no problem names {field_path}:\n{result.stderr}\n{text}"
    assert _snapshot(folder / "out") == before
    shutil.rmtree(folder)
