"""The scheduler's and Kueue's rules as the cluster model applies them, case by case
against what the upstream code does (cited in generator/cluster/placement.py and
admission.py), and the node facts against the clouds' published formulas."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import needs_upstream, upstream_file

from generator.cluster import admission, facts, nodes, webhooks
from generator.cluster.nodes import Amounts, NodeGroup, Taint
from generator.cluster.placement import (
    PodShape,
    fit_problems,
    matches,
    pod_requests,
    shape_of,
    tolerates,
)
from generator.config.load import load_default_config

GPU_TAINT = Taint("nvidia.com/gpu", "true", "NoSchedule")
GIB = 2**30
EKS = next(c for c in load_default_config().clusters if c.cloud == "eks")


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),  # any effect
        ({"operator": "Exists"}, True),  # no key and Exists: every taint
        ({"key": "nvidia.com/gpu", "value": "true"}, True),  # Equal is the default
        ({"key": "nvidia.com/gpu", "value": "present"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"value": "true"}, False),  # no key needs Exists
    ],
)
def test_tolerations_match_taints_as_the_api_does(
    toleration: dict[str, str], tolerated: bool
) -> None:
    assert tolerates(GPU_TAINT, [toleration]) is tolerated


@pytest.mark.parametrize(
    ("operator", "values", "labels", "matched"),
    [
        ("In", ["a", "b"], {"k": "b"}, True),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {}, True),
        ("Exists", [], {"k": ""}, True),
        ("DoesNotExist", [], {"k": "x"}, False),
        ("Gt", ["3"], {"k": "4"}, True),
        ("Lt", ["3"], {"k": "4"}, False),
    ],
)
def test_node_selector_requirements(
    operator: str, values: list[str], labels: dict[str, str], matched: bool
) -> None:
    assert matches({"key": "k", "operator": operator, "values": values}, labels) is matched


def test_requests_sum_containers_take_limits_as_requests_and_the_largest_init() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"resources": {"limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1}}},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}],
    }
    assert pod_requests(spec) == Amounts(4000, 3 * GIB, 1)


def group(taints: tuple[Taint, ...] = (), nodes: int = 1) -> NodeGroup:
    room = Amounts(7775, 31 * GIB, 1)
    labels = {"eks.amazonaws.com/nodegroup": "gpu", "k8s.amazonaws.com/accelerator": "nvidia-l4"}
    return NodeGroup("gpu", "g6.2xlarge", labels, taints, room, room, nodes, "nvidia-l4")


def test_a_pod_fits_only_with_room_labels_and_tolerations() -> None:
    gpu_pod = PodShape(
        Amounts(4000, 16 * GIB, 1),
        affinity=(({"key": "k8s.amazonaws.com/accelerator", "operator": "Exists"},),),
        tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
    )
    assert fit_problems(gpu_pod, group((GPU_TAINT,))) == []
    untolerated = PodShape(Amounts(1000, GIB, 0))
    assert fit_problems(untolerated, group((GPU_TAINT,))) == [
        "it does not tolerate their taint nvidia.com/gpu=true:NoSchedule"
    ]
    assert fit_problems(gpu_pod, group(), pods_per_node=2) == [
        "these pods together ask for 8 CPU, 32Gi memory, 2 GPUs, more than a node gives pods "
        "(7775m CPU, 31Gi memory, 1 GPU)"
    ]
    assert fit_problems(gpu_pod, group(nodes=0)) == ["the group has no nodes (its size is 0)"]


def queue(*flavors: tuple[str, Amounts]) -> admission.ClusterQueue:
    covered = frozenset({"cpu", "memory", "nvidia.com/gpu"})
    return admission.ClusterQueue("q", None, ((covered, flavors),))


def test_kueue_takes_the_first_flavor_with_quota_and_tolerated_taints() -> None:
    flavors = {
        "cpu": admission.Flavor("cpu", {"pool": "cpu"}, (), ()),
        "gpu": admission.Flavor("gpu", {"pool": "gpu"}, (GPU_TAINT,), ()),
    }
    cpu_job = admission.PodSet("main", 2, PodShape(Amounts(2000, GIB, 0)))
    both = queue(("cpu", Amounts(8000, 64 * GIB, 0)), ("gpu", Amounts(8000, 64 * GIB, 4)))
    assert admission.admit([cpu_job], both, flavors).flavors == {"main": "cpu"}
    # The CPU flavor full: the GPU flavor's taint keeps the CPU job out of it.
    full = queue(("cpu", Amounts(1000, GIB, 0)), ("gpu", Amounts(8000, 64 * GIB, 4)))
    refused = admission.admit([cpu_job], full, flavors)
    assert refused.problem == (
        "no flavor of ClusterQueue 'q' can ever admit pod set 'main' (cpu: its cpu quota is "
        "1, the pods ask for 4; gpu: its nodes' taint nvidia.com/gpu=true:NoSchedule is not "
        "tolerated)"
    )
    # Pod sets of one workload use quota up in order.
    two = [cpu_job, admission.PodSet("more", 2, PodShape(Amounts(2000, GIB, 0)))]
    half = queue(("cpu", Amounts(4000, 64 * GIB, 0)))
    assert admission.admit(two, half, flavors).problem is not None


def test_a_resource_no_group_covers_is_never_admitted() -> None:
    cpu_only = admission.ClusterQueue(
        "q", None, ((frozenset({"cpu", "memory"}), (("cpu", Amounts(8000, 64 * GIB, 0)),)),)
    )
    gpu_job = admission.PodSet("main", 1, PodShape(Amounts(1000, GIB, 1)))
    result = admission.admit([gpu_job], cpu_only, {})
    assert result.problem == (
        "ClusterQueue 'q' covers no nvidia.com/gpu: pod set 'main' is never admitted"
    )


def test_reservations_follow_the_published_formulas() -> None:
    # 6% + 1% + 2 x 0.5% + 4 x 0.25% of a core for an 8-vCPU node.
    assert facts.reserved_millicores(8) == 90
    assert facts.reserved_millicores(1) == 60
    # EKS: 11 MiB per pod and 255 MiB; an xlarge holds 58 pods with the VPC CNI.
    assert facts.eks_reserved_memory("m6i.xlarge") == (11 * 58 + 255) * 2**20
    # GKE on 32 GiB: 25% of 4 + 20% of 4 + 10% of 8 + 6% of 16 GiB.
    assert facts.gke_reserved_memory(32 * GIB) == int((1 + 0.8 + 0.8 + 0.96) * GIB)


def test_sidecars_add_to_the_pod_and_to_the_init_containers_after_them() -> None:
    """KEP-753 (component-helpers PodRequests): a sidecar (restartPolicy Always) runs
    beside the containers and beside every init container that starts after it."""

    def asks(cpu: str, memory: str, **more: str) -> dict[str, Any]:
        return {"resources": {"requests": {"cpu": cpu, "memory": memory}}, **more}

    spec = {
        "containers": [asks("1", "1Gi")],
        "initContainers": [asks("2", "1Gi"), asks("250m", "3Gi", restartPolicy="Always")],
    }
    # Containers and sidecar: 1.25 CPU, 4Gi; the first init container ran before it.
    assert pod_requests(spec) == Amounts(2000, 4 * GIB, 0)
    spec["initContainers"].reverse()
    # Now the 2-CPU init container runs beside the sidecar: 2.25 CPU.
    assert pod_requests(spec) == Amounts(2250, 4 * GIB, 0)


@pytest.mark.parametrize(
    ("annotations", "requests"),
    [
        ({"gke-gcsfuse/volumes": "false"}, None),
        ({}, None),
        ({"gke-gcsfuse/volumes": "True"}, {"cpu": "250m", "memory": "256Mi"}),
        (
            {
                "gke-gcsfuse/volumes": "true",
                "gke-gcsfuse/cpu-request": "1",
                "gke-gcsfuse/memory-limit": "2Gi",
            },
            {"cpu": "1", "memory": "2Gi"},
        ),
        # A zero limit is unlimited: the request is the default; a zero request is none.
        (
            {
                "gke-gcsfuse/volumes": "true",
                "gke-gcsfuse/cpu-limit": "0",
                "gke-gcsfuse/memory-request": "0",
            },
            {"cpu": "250m"},
        ),
    ],
)
def test_the_fuse_sidecar_asks_what_the_webhook_gives_it(
    annotations: dict[str, str], requests: dict[str, str] | None
) -> None:
    sidecar = webhooks.gcsfuse_sidecar(annotations)
    if requests is None:
        assert sidecar is None
        return
    assert sidecar == {
        "name": "gke-gcsfuse-sidecar",
        "restartPolicy": "Always",
        "resources": {"requests": requests},
    }


def test_only_gke_adds_the_fuse_sidecar_to_the_pod() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}]}
    shape = shape_of(spec, {"gke-gcsfuse/volumes": "true", "gke-gcsfuse/cpu-request": "1"})
    assert shape.requests == Amounts(4000, 16 * GIB, 0)
    assert shape.on_cloud("eks").requests == Amounts(4000, 16 * GIB, 0)
    on_gke = shape.on_cloud("gke")
    assert on_gke.requests == Amounts(5000, 16 * GIB + 256 * 2**20, 0)
    assert PodShape.from_data(shape.as_data()) == shape
    room = Amounts(4500, 32 * GIB, 0)
    cpu_group = NodeGroup("cpu", "e2-standard-8", {}, (), room, room, 1, None)
    assert fit_problems(shape, cpu_group) == []
    assert fit_problems(on_gke, cpu_group) == [
        "it asks for 5 CPU, 16.2Gi memory (1 CPU, 256Mi memory of it for the "
        "gke-gcsfuse-sidecar GKE injects), more than a node gives pods (4500m CPU, 32Gi "
        "memory)"
    ]


def test_an_eks_addon_daemon_set_takes_its_share_of_every_node() -> None:
    room = Amounts(7775, 31 * GIB, 1)
    gpu = NodeGroup("gpu", "g5.2xlarge", {}, (), room, room, 2, "nvidia-a10g")
    addon = [{"type": "Addon", "name": facts.MOUNTPOINT_ADDON}]
    (less,) = nodes.as_built(EKS, [gpu], addon)
    assert less.allocatable == Amounts(7775 - 30, 31 * GIB - 120 * 2**20, 1)
    assert nodes.as_built(EKS, [gpu], [{"type": "Addon", "name": "vpc-cni"}]) == [gpu]


@needs_upstream
def test_the_csi_drivers_facts_are_their_sources() -> None:
    """The facts of webhooks.py and facts.py, read again at the tags they cite."""
    fuse = "GoogleCloudPlatform+gcs-fuse-csi-driver"
    deployment = upstream_file(fuse, "v1.24.4", "deploy/base/webhook/deployment.yaml")
    for resource, default in webhooks.GCSFUSE_DEFAULT_REQUESTS.items():
        assert f"- --sidecar-{resource}-request={default}" in deployment
    hook = upstream_file(fuse, "v1.24.4", "pkg/webhook/mutatingwebhook.go")
    assert (
        f'GcsFuseVolumeEnableAnnotation                    = "{webhooks.GCSFUSE_ENABLE_ANNOTATION}"'
        in hook
    )
    injection = upstream_file(fuse, "v1.24.4", "pkg/webhook/injection.go")
    assert f'GcsFuseSidecarName:          "{webhooks.GCSFUSE_PREFIX}"' in injection
    assert "containerSpec.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)" in injection
    spec = upstream_file(fuse, "v1.24.4", "pkg/webhook/sidecar_spec.go")
    assert (
        f'GcsFuseSidecarName                                   = "{webhooks.GCSFUSE_SIDECAR}"'
        in spec
    )
    chart = "charts/aws-mountpoint-s3-csi-driver"
    s3 = "awslabs+mountpoint-s3-csi-driver"
    values = upstream_file(s3, "v2.7.0", f"{chart}/values.yaml")
    assert "  resources:\n    requests:\n      cpu: 10m\n      memory: 40Mi\n" in values
    assert "  tolerateAllTaints: true\n" in values
    node = upstream_file(s3, "v2.7.0", f"{chart}/templates/node.yaml")
    assert node.count("with default .Values.node.resources .Values.sidecars.") == 2
    assert node.count("{{- with .Values.node.resources }}") == 1
    pod = facts.ADDON_DAEMON_PODS[facts.MOUNTPOINT_ADDON]
    assert (pod.millicores, pod.memory) == (3 * 10, 3 * 40 * 2**20)
    controller = upstream_file(s3, "v2.7.0", f"{chart}/templates/controller.yaml")
    assert "  replicas: 1\n" in controller and "name: s3-csi-controller\n" in controller
    assert (
        "controller:\n" in values
        and "resources" not in values.split("controller:\n")[1].split("mountpointPod:")[0]
    )
