"""The fabric, read back from generated trees: NCCL's defaults in the pods, EFA on EKS
(launch templates, node groups, pod requests, the device plugin) and gVNIC on GKE, each
object checked against the strict schemas of the pinned releases, and the cluster
model placing EFA pods only where nodes offer EFA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import CONFIGS, kustomize_build, schema_args, schema_errors

from generator import cloud_facts
from generator.cli import main
from generator.cluster.nodes import Amounts, NodeGroup
from generator.cluster.placement import PodShape, describe, fit_problems, shape_of
from generator.render.runtimes import pod_specs

EFA = cloud_facts.EFA_RESOURCE

P5_CONFIG = """\
name: llm
repo: {url: "https://github.com/acme/llm-gitops.git"}
gitops: GITOPS
workloads:
  - name: pretrain
    namespace: llm
    framework: pytorch
    image: registry.example.com/llm/pretrain:1.0
    command: [python, train.py]
    workers: 2
    resources: {cpu: "96", memory: 1000Gi, gpu: GPUS}
    runtime: RUNTIME
    ENV
  - name: tf-small
    namespace: llm
    framework: tensorflow
    image: registry.example.com/llm/tf:1.0
    command: [python, tf.py]
    workers: 2
    resources: {cpu: "8", memory: 64Gi, gpu: 1}
clusters:
  - name: eks-p5
    cloud: eks
    region: us-east-1
    accountId: "123456789012"
    nodeGroups:
      - {name: system, instanceTypes: [m6i.2xlarge], minSize: 1, desiredSize: 2, maxSize: 3}
      - name: h100
        instanceTypes: [p5.48xlarge]
        minSize: 0
        desiredSize: 2
        maxSize: 4
        EFA_FIELDS
  - name: gke-a3
    cloud: gke
    project: acme-llm
    location: us-central1-a
    nodePools:
      - {name: cpu, machineType: e2-standard-8, nodeCount: 1}
      - name: a3
        machineType: a3-highgpu-8g
        nodeCount: 2
        accelerator: {type: nvidia-h100-80gb, count: 8}
"""


def generate(
    tmp_path: Path,
    gitops: str = "argocd",
    gpus: int = 8,
    env: str = "",
    efa_fields: str = "placementGroup: llm-h100",
    runtime: str = "job",
) -> tuple[Path, str]:
    text = (
        P5_CONFIG.replace("GITOPS", gitops)
        .replace("RUNTIME", runtime)
        .replace("GPUS", str(gpus))
        .replace("    ENV\n", f"    {env}\n" if env else "")
        .replace("        EFA_FIELDS\n", f"        {efa_fields}\n" if efa_fields else "")
    )
    config = tmp_path / "mlgitops.yaml"
    config.write_text(text)
    out = tmp_path / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def read(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def built(tree: Path, cluster: str, namespace: str) -> dict[str, dict[str, Any]]:
    folder = tree / f"clusters/{cluster}/workloads/namespaces/{namespace}"
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in kustomize_build(folder)}


def trainer(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_a_pod_with_all_gpus_of_a_p5_takes_all_its_efa_interfaces(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path)
    objects = built(tree, "eks-p5", "llm")
    pod = trainer(objects["Job/pretrain"])
    assert pod["resources"]["requests"][EFA] == 32
    assert pod["resources"]["limits"][EFA] == 32
    env = env_of(pod)
    assert env["FI_PROVIDER"] == "efa"
    assert env["FI_EFA_USE_DEVICE_RDMA"] == "1"  # p5 has GPUDirect RDMA
    assert env["NCCL_SOCKET_IFNAME"] == "eth0"
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    assert env["NCCL_DEBUG"] == "WARN"
    # Still Pod Security "restricted": nothing added to the security context.
    assert pod["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in pod["securityContext"]
    # TensorFlow's GPU pod with 1 of 8 GPUs gets its share: 32 x 1 / 8.
    tf = trainer(objects["Job/tf-small"])
    assert tf["resources"]["limits"][EFA] == 4
    assert "TORCH_NCCL_ASYNC_ERROR_HANDLING" not in env_of(tf)
    # Off EKS no EFA: the GKE build of the same Job has none.
    gke = trainer(built(tree, "gke-a3", "llm")["Job/pretrain"])
    assert EFA not in gke["resources"]["limits"]
    assert "FI_PROVIDER" not in env_of(gke)


def test_half_a_node_takes_half_its_interfaces(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path, gpus=4)
    pod = trainer(built(tree, "eks-p5", "llm")["Job/pretrain"])
    assert pod["resources"]["limits"][EFA] == 16


def test_the_launch_template_has_one_efa_per_network_card(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path)
    infra = tree / "clusters/eks-p5/infrastructure"
    [template] = read(infra / "launchtemplate.yaml")
    assert schema_errors(template) == []
    interfaces = template["spec"]["data"]["networkInterfaces"]
    assert len(interfaces) == cloud_facts.ec2_efa_interfaces("p5.48xlarge") == 32
    assert [i["networkCardIndex"] for i in interfaces] == list(range(32))
    assert [i["deviceIndex"] for i in interfaces] == [0] + [1] * 31
    assert {i["interfaceType"] for i in interfaces} == {"efa"}
    # A managed node group's launch template names no subnet, no security group, no
    # instance type and no AMI (EKS would refuse or override them).
    assert not any("subnetID" in i or "groups" in i for i in interfaces)
    assert not {"instanceType", "imageID", "iamInstanceProfile"} & set(template["spec"]["data"])
    assert template["spec"]["data"]["placement"] == {"groupName": "llm-h100"}
    groups = {g["spec"]["name"]: g for g in read(infra / "nodegroup.yaml")}
    for group in groups.values():
        assert schema_errors(group) == []
    h100 = groups["h100"]["spec"]
    assert h100["launchTemplate"] == {"name": template["spec"]["name"]}
    assert h100["instanceTypes"] == ["p5.48xlarge"]
    assert len(h100["subnetRefs"]) == 1  # one zone for EFA and its placement group
    assert "launchTemplate" not in groups["system"]["spec"]
    assert len(groups["system"]["spec"]["subnetRefs"]) == 2


def test_the_efa_device_plugin_is_synced_and_tolerates_the_gpu_taint(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path)
    apps = {
        d["metadata"]["name"]: d for d in read(tree / "clusters/eks-p5/gitops/application.yaml")
    }
    plugin = apps["eks-p5-efa-device-plugin"]
    assert schema_errors(plugin) == []
    source = plugin["spec"]["source"]
    assert source["repoURL"] == "https://github.com/aws/eks-charts.git"
    assert source["path"] == "stable/aws-efa-k8s-device-plugin"
    assert len(source["targetRevision"]) == 40  # a commit: the chart has no tags
    tolerations = source["helm"]["valuesObject"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert plugin["spec"]["destination"]["namespace"] == "kube-system"
    # The GKE cluster installs no EFA plugin.
    gke = [d["metadata"]["name"] for d in read(tree / "clusters/gke-a3/gitops/application.yaml")]
    assert not [name for name in gke if "efa" in name]


def test_the_workloads_own_env_and_debug_level_win(tmp_path: Path) -> None:
    env = "nccl: {debug: INFO}\n    env: {FI_PROVIDER: tcp, NCCL_SOCKET_IFNAME: ens5}"
    tree, _ = generate(tmp_path, env=env)
    pod = trainer(built(tree, "eks-p5", "llm")["Job/pretrain"])
    names = [e["name"] for e in pod["env"]]
    assert len(names) == len(set(names))
    found = env_of(pod)
    assert found["NCCL_DEBUG"] == "INFO"
    assert found["FI_PROVIDER"] == "tcp"
    assert found["NCCL_SOCKET_IFNAME"] == "ens5"
    assert found["FI_EFA_USE_HUGE_PAGE"] == "0"  # the other defaults stay


def test_efa_off_leaves_node_group_and_pods_alone(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path, efa_fields="efa: false")
    infra = tree / "clusters/eks-p5/infrastructure"
    assert not (infra / "launchtemplate.yaml").exists()
    assert all("launchTemplate" not in g["spec"] for g in read(infra / "nodegroup.yaml"))
    pod = trainer(built(tree, "eks-p5", "llm")["Job/pretrain"])
    assert EFA not in pod["resources"]["limits"]
    assert "FI_PROVIDER" not in env_of(pod)
    apps = read(tree / "clusters/eks-p5/gitops/application.yaml")
    assert not [a for a in apps if "efa" in a["metadata"]["name"]]


def test_flux_installs_no_efa_plugin_so_pods_ask_for_none(tmp_path: Path) -> None:
    tree, output = generate(tmp_path, gitops="flux", efa_fields="")
    assert "Flux does not install the EFA device plugin" in output
    assert (tree / "clusters/eks-p5/infrastructure/launchtemplate.yaml").exists()
    pod = trainer(built(tree, "eks-p5", "llm")["Job/pretrain"])
    assert EFA not in pod["resources"]["limits"]


def test_gke_gpu_pools_get_gvnic_and_cpu_pools_do_not(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path)
    pools = {
        p["spec"]["resourceID"]: p
        for p in read(tree / "clusters/gke-a3/infrastructure/containernodepool.yaml")
    }
    for pool in pools.values():
        assert schema_errors(pool) == []
    assert pools["a3"]["spec"]["nodeConfig"]["gvnic"] == {"enabled": True}
    assert "gvnic" not in pools["cpu"]["spec"]["nodeConfig"]


def test_validate_places_the_efa_pods_on_the_efa_nodes(tmp_path: Path) -> None:
    tree, _ = generate(tmp_path)
    (tree / "mlgitops.yaml").write_text((tmp_path / "mlgitops.yaml").read_text())
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args()])
    assert result.exit_code == 0, result.output


def test_a_pod_asking_for_efa_fits_only_nodes_that_offer_it() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": 8, EFA: 32}}}
        ]
    }
    shape: PodShape = shape_of(spec)
    assert shape.requests.efa == 32
    roomy = Amounts(190_000, 2000 * 2**30, 8)

    def group(efa: int) -> NodeGroup:
        room = Amounts(roomy.millicores, roomy.memory, roomy.gpus, efa)
        return NodeGroup("g", "p5.48xlarge", {}, (), room, room, 1, "nvidia-h100")

    assert fit_problems(shape, group(32)) == []
    [problem] = fit_problems(shape, group(0))
    assert "32 EFA interfaces" in problem and describe(shape.requests) in problem
    assert PodShape.from_data(shape.as_data()) == shape


def test_the_golden_tree_carries_efa_for_the_g6_group() -> None:
    """tests/configs/recsys-tensorflow.yaml: g6.12xlarge has one EFA interface."""
    golden = CONFIGS.parent / "golden/recsys-tensorflow/clusters/eks-recsys"
    [template] = read(golden / "infrastructure/launchtemplate.yaml")
    assert len(template["spec"]["data"]["networkInterfaces"]) == 1
    patch = read(golden / "workloads/namespaces/recsys-train/efa-wide-deep.yaml")[0]
    adds = {op["path"]: op.get("value") for op in patch}
    assert adds["/spec/template/spec/containers/0/resources/limits/vpc.amazonaws.com~1efa"] == 1


@pytest.mark.parametrize(
    ("instance", "interfaces", "rdma"),
    [("p4d.24xlarge", 4, True), ("p5en.48xlarge", 16, True), ("g5.48xlarge", 1, False)],
)
def test_efa_table(instance: str, interfaces: int, rdma: bool) -> None:
    assert cloud_facts.ec2_efa_interfaces(instance) == interfaces
    assert cloud_facts.ec2_efa_rdma(instance) is rdma
    assert cloud_facts.ec2_efa_interfaces("g5.2xlarge") == 0


@pytest.mark.parametrize(
    ("runtime", "kind"),
    [("pytorchjob", "PyTorchJob"), ("jobset", "JobSet"), ("trainjob", "TrainJob")],
)
def test_every_runtime_gets_efa_in_every_pod(tmp_path: Path, runtime: str, kind: str) -> None:
    tree, _ = generate(tmp_path, runtime=runtime)
    obj = built(tree, "eks-p5", "llm")[f"{kind}/pretrain"]
    if kind == "TrainJob":
        # The processes' resources are the TrainJob's; the pod is its runtime's, which
        # is the cluster's own.
        resources = obj["spec"]["trainer"]["resourcesPerNode"]
        assert resources["limits"][EFA] == resources["requests"][EFA] == 32
        runtimes = read(tree / "clusters/eks-p5/platform/clustertrainingruntime.yaml")
        [runtime_obj] = [r for r in runtimes if r["metadata"]["name"] == "llm-pretrain"]
        assert schema_errors(runtime_obj) == []
        job = runtime_obj["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]
        specs = [job["spec"]["template"]["spec"]]
        gke_runtimes = read(tree / "clusters/gke-a3/platform/clustertrainingruntime.yaml")
        gke_pod = gke_runtimes[0]["spec"]["template"]["spec"]["replicatedJobs"][0]
        assert "FI_PROVIDER" not in str(gke_pod)
    else:
        assert schema_errors(obj) == []
        specs = pod_specs(obj)
    assert specs
    for spec in specs:
        for container in spec["containers"]:
            assert container["resources"]["limits"][EFA] == 32
            env = env_of(container)
            assert env["FI_PROVIDER"] == "efa"
            assert env["NCCL_SOCKET_IFNAME"] == "eth0"


def test_a_queued_workload_asks_for_efa_and_its_cluster_queue_covers_it(
    tmp_path: Path,
) -> None:
    """Kueue admits only what its ClusterQueue covers: the EFA resource is covered, with
    each flavor's quota what its nodes offer, and the model admits the pods."""
    text = (
        P5_CONFIG.replace("GITOPS", "argocd")
        .replace("RUNTIME", "job")
        .replace("GPUS", "8")
        .replace("    ENV\n", "    queue: gpu-jobs\n    clusters: [eks-p5]\n")
        .replace("        EFA_FIELDS\n", "")
        .replace(
            '    workers: 2\n    resources: {cpu: "8"',
            '    clusters: [gke-a3]\n    workers: 2\n    resources: {cpu: "8"',
        )
    )
    (tmp_path / "mlgitops.yaml").write_text(
        text.replace(
            "namespace: llm\n    framework: tensorflow",
            "namespace: llm-tf\n    framework: tensorflow",
        )
    )
    out = tmp_path / "tree"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tmp_path / "mlgitops.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    tree, output = out, result.output
    assert "NCCL talks over TCP" not in output
    pod = trainer(built(tree, "eks-p5", "llm")["Job/pretrain"])
    assert pod["resources"]["limits"][EFA] == 32
    (queue,) = [
        o
        for o in read(tree / "clusters/eks-p5/platform/clusterqueue.yaml")
        if o["kind"] == "ClusterQueue"
    ]
    assert schema_errors(queue) == []
    (group,) = queue["spec"]["resourceGroups"]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu", EFA]
    quotas = {
        f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]
    }
    assert quotas["system"][EFA] == 0
    assert quotas["h100"][EFA] == 2 * 32  # two p5 nodes, 32 interfaces each
    (tree / "mlgitops.yaml").write_text((tmp_path / "mlgitops.yaml").read_text())
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args()])
    assert result.exit_code == 0, result.output
    # Without the EFA quota the model, like Kueue, never admits the pods.
    flavors = tree / "clusters/eks-p5/platform/clusterqueue.yaml"
    documents = read(flavors)
    for document in documents:
        for group in document["spec"]["resourceGroups"]:
            group["coveredResources"].remove(EFA)
            for flavor in group["flavors"]:
                flavor["resources"] = [r for r in flavor["resources"] if r["name"] != EFA]
    flavors.write_text(yaml.safe_dump_all(documents))
    result = CliRunner().invoke(main, ["validate", str(tree), *schema_args()])
    assert result.exit_code == 1
    assert f"covers no {EFA}" in result.output
