"""The harness's model of Kubernetes, checked against the rules it claims to follow.

The end-to-end runs are only as faithful as this model: these cases pin the kubelet's
`$(VAR)` expansion, the order in which environment variables see each other, what the
Job controller adds to each pod and when it says the Job has finished, and when cluster
DNS has a name for a pod or a Service.
"""

from __future__ import annotations

import copy
from typing import Any

import kube
import pytest

INDEX_LABEL_PATH = f"metadata.labels['{kube.COMPLETION_INDEX_KEY}']"


def field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "train", "namespace": "ml"},
    "spec": {
        "completionMode": "Indexed",
        "completions": 2,
        "parallelism": 2,
        "template": {
            "metadata": {"labels": {"app": "train"}},
            "spec": {
                "subdomain": "train",
                "containers": [
                    {
                        "name": "trainer",
                        "command": ["run", "--rank=$(JOB_COMPLETION_INDEX)"],
                        "args": ["$(GREETING)", "$$(GREETING)", "$(LATER)", "$HOME"],
                        "env": [
                            {"name": "WHO", "value": "world"},
                            {"name": "GREETING", "value": "hello $(WHO) $(LATER)"},
                            {"name": "LATER", "value": "late"},
                            {"name": "RANK_TOO_EARLY", "value": "$(JOB_COMPLETION_INDEX)"},
                            field_env("NS", "metadata.namespace"),
                            field_env("IP", "status.podIP"),
                            field_env("INDEX_LABEL", INDEX_LABEL_PATH),
                        ],
                    }
                ],
            },
        },
    },
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "train", "namespace": "ml"},
    "spec": {"clusterIP": "None", "selector": {"app": "train"}},
}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y2z"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("cost: $", "cost: $"),
        ("$$$(A)", "$1"),
    ],
)
def test_expansion_follows_the_kubelet(text: str, expanded: str) -> None:
    assert kube.expand(text, {"A": "1", "B": "2"}) == expanded


def test_each_pod_gets_its_index_hostname_and_environment() -> None:
    pods = kube.indexed_job_pods(JOB)
    assert [(p.index, p.hostname, p.subdomain) for p in pods] == [
        (0, "train-0", "train"),
        (1, "train-1", "train"),
    ]
    process = kube.container_process(pods[1], "192.0.2.11", "node")
    assert process.argv == [
        "run",
        "--rank=1",
        "hello world $(LATER)",
        "$(GREETING)",
        "late",
        "$HOME",
    ]
    assert process.env == {
        "HOSTNAME": "train-1",
        "WHO": "world",
        # A value sees only the variables listed before it ...
        "GREETING": "hello world $(LATER)",
        "LATER": "late",
        # ... and the Job controller appends JOB_COMPLETION_INDEX after all of them.
        "RANK_TOO_EARLY": "$(JOB_COMPLETION_INDEX)",
        "NS": "ml",
        "IP": "192.0.2.11",
        "INDEX_LABEL": "1",
        "JOB_COMPLETION_INDEX": "1",
    }


def test_cluster_dns_names_a_pod_only_through_a_headless_service_that_selects_it() -> None:
    pod = kube.indexed_job_pods(JOB)[0]
    assert kube.pod_fqdn([JOB, SERVICE], pod) == "train-0.train.ml.svc.cluster.local"
    not_headless = copy.deepcopy(SERVICE)
    not_headless["spec"]["clusterIP"] = "10.0.0.1"
    other_selector = copy.deepcopy(SERVICE)
    other_selector["spec"]["selector"] = {"app": "other"}
    other_namespace = copy.deepcopy(SERVICE)
    other_namespace["metadata"]["namespace"] = "default"
    for service in (not_headless, other_selector, other_namespace):
        assert kube.pod_fqdn([JOB, service], pod) is None


def test_the_search_list_completes_short_names_of_the_namespace() -> None:
    fqdn = "train-0.train.ml.svc.cluster.local"
    assert kube.names_resolving_to(fqdn, kube.search_list("ml")) == [
        fqdn,
        "train-0.train",
        "train-0.train.ml",
        "train-0.train.ml.svc",
    ]
    assert kube.names_resolving_to(fqdn, kube.search_list("other")) == [
        fqdn,
        "train-0.train.ml",
        "train-0.train.ml.svc",
    ]


def test_success_policy_indexes() -> None:
    job = copy.deepcopy(JOB)
    assert kube.succeeded_indexes(job) is None
    job["spec"]["successPolicy"] = {"rules": [{"succeededIndexes": "0-2,5"}]}
    assert kube.succeeded_indexes(job) == {0, 1, 2, 5}


def test_a_headless_service_answers_with_every_pod_it_selects() -> None:
    pods = kube.indexed_job_pods(JOB)
    assert kube.service_fqdns([JOB, SERVICE], pods) == {"train.ml.svc.cluster.local": pods}
    not_headless = copy.deepcopy(SERVICE)
    not_headless["spec"]["clusterIP"] = "10.0.0.1"
    other_selector = copy.deepcopy(SERVICE)
    other_selector["spec"]["selector"] = {"app": "other"}
    for service in (not_headless, other_selector):
        assert kube.service_fqdns([JOB, service], pods) == {}


@pytest.mark.parametrize(
    ("policy", "exits", "status"),
    [
        (None, [None, None], None),
        (None, [0, None], None),
        (None, [0, 0], "Complete"),
        (None, [None, 1], "Failed"),
        ("0", [0, None], "SuccessCriteriaMet"),
        ("0", [None, 0], None),
    ],
)
def test_job_status_follows_backoff_limit_zero_and_the_success_policy(
    policy: str | None, exits: list[int | None], status: str | None
) -> None:
    job = copy.deepcopy(JOB)
    job["spec"]["backoffLimit"] = 0
    job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    if policy:
        job["spec"]["successPolicy"] = {"rules": [{"succeededIndexes": policy}]}
    assert kube.job_status(job, kube.indexed_job_pods(job), exits) == status


def _mounted(volume: dict[str, Any], mount: dict[str, Any]) -> tuple[kube.Mount, ...]:
    job = copy.deepcopy(JOB)
    spec = job["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "data", **volume}]
    spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data", **mount}]
    (pod, _) = kube.indexed_job_pods(job)
    return kube.container_process(pod, "192.0.2.10", "node").mounts


@pytest.mark.parametrize(
    ("claim_read_only", "mount_read_only", "read_only"),
    [
        (None, None, False),
        (False, False, False),
        (None, True, True),
        (True, None, True),
        # The claim's readOnly wins over a mount that says it may write (makeMounts).
        (True, False, True),
        (False, True, True),
    ],
)
def test_a_claim_is_read_only_where_the_mount_or_the_claim_says_so(
    claim_read_only: bool | None, mount_read_only: bool | None, read_only: bool
) -> None:
    claim: dict[str, Any] = {"claimName": "imagenet"}
    if claim_read_only is not None:
        claim["readOnly"] = claim_read_only
    mount = {} if mount_read_only is None else {"readOnly": mount_read_only}
    assert _mounted({"persistentVolumeClaim": claim}, mount) == (
        kube.Mount("/data", "imagenet", read_only),
    )


def test_an_empty_dir_mounted_read_only_is_read_only() -> None:
    assert _mounted({"emptyDir": {}}, {"readOnly": True}) == (kube.Mount("/data", None, True),)


@pytest.mark.parametrize(
    ("volume", "mount"),
    [
        ({"persistentVolumeClaim": {"claimName": "c"}}, {"subPath": "x"}),
        ({"persistentVolumeClaim": {"claimName": "c"}}, {"recursiveReadOnly": "Enabled"}),
        ({"persistentVolumeClaim": {"claimName": "c"}}, {"mountPropagation": "HostToContainer"}),
        ({"csi": {"driver": "gcsfuse.csi.storage.gke.io"}}, {}),
    ],
)
def test_what_the_harness_does_not_model_is_refused(
    volume: dict[str, Any], mount: dict[str, Any]
) -> None:
    with pytest.raises(AssertionError, match="not modelled"):
        _mounted(volume, mount)
