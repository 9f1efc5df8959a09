"""Exact error output of `mlgitops generate` for invalid configs.

A config error helps only if it points at the right line and column, names the field
and says what to write instead. These tests pin whole lines of stderr, so a regression
in any of the three shows up as a diff, and they check that an invalid config exits 2
without writing anything.

Every case is BASE (a small valid config) with a few substitutions; the positions in
the expected lines are those of the edited file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator.cli import main

CONFIG = "mlgitops.yaml"

BASE = """\
name: ml-platform
repo:
  url: https://github.com/acme/ml-platform-gitops.git
kubernetesVersion: "1.33"
workloads:
  - name: resnet-ddp
    namespace: training
    framework: pytorch
    image: registry.example.com/ml/resnet:1.4.2
    command: [python, train.py, --epochs, "10"]
    workers: 3
    port: 29500
    resources: {cpu: "4", memory: 16Gi, gpu: 1}
  - name: bert
    namespace: nlp
    framework: tensorflow
    image: registry.example.com/ml/bert:2.0.1
    command: [python, finetune.py]
    workers: 2
    parameterServers: 1
    resources: {cpu: "2", memory: 8Gi}
    checkpoint: {size: 10Gi, mountPath: /var/ml_model}
    env: {LOG_LEVEL: info}
    network:
      egressTo:
        - cidr: 10.20.0.0/16
          ports: [443, 5432]
clusters:
  - name: eks-training
    cloud: eks
    region: us-west-2
    version: "1.33"
    nodeGroups:
      - name: gpu
        instanceTypes: [g5.xlarge]
        minSize: 1
        desiredSize: 2
        maxSize: 3
  - name: gke-training
    cloud: gke
    project: acme-ml
    location: us-central1
    nodePools:
      - {name: pool, machineType: n1-standard-4, nodeCount: 1, accelerator: {type: nvidia-tesla-t4, count: 1}}
  - name: laptop
    cloud: local
"""

LONG_64 = "a" * 64
LONG_62 = "b" * 62


def _edit(*replacements: tuple[str, str]) -> str:
    """BASE with each `old` (which must occur exactly once) replaced by `new`."""
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in BASE"
        text = text.replace(old, new)
    return text


def _generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str | bytes) -> Result:
    monkeypatch.chdir(tmp_path)
    (tmp_path / CONFIG).write_bytes(config.encode() if isinstance(config, str) else config)
    out = tmp_path / "out"
    return CliRunner().invoke(main, ["generate", "--config", CONFIG, "--out", str(out)])


def _assert_rejected(result: Result, tmp_path: Path, expected: list[str]) -> None:
    assert result.stderr == "".join(f"{line}\n" for line in expected)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG]


CASES = [
    pytest.param(
        _edit(
            ("cidr: 10.20.0.0/16", "cidr: 10.0.0.0/33"),
            ("    framework: tensorflow", "    framwork: tensorflow"),
            ("memory: 8Gi", "memory: 10GB"),
        ),
        [
            "mlgitops.yaml:16:5: workloads[1].framwork: "
            "unknown field 'framwork' (did you mean 'framework'?)",
            "mlgitops.yaml:21:35: workloads[1].resources.memory: "
            "'10GB' is not a Kubernetes quantity (did you mean '10Gi' or '10G'?)",
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.0.0.0/33' is not a valid CIDR: the prefix length must be 0 to 32 "
            "(e.g. 10.0.0.0/16)",
        ],
        id="issue-cidr-misspelled-key-quantity",
    ),
    pytest.param(
        _edit(("    port: 29500", "    prot: 29500")),
        ["mlgitops.yaml:12:5: workloads[0].prot: unknown field 'prot' (did you mean 'port'?)"],
        id="unknown-key-near-match",
    ),
    pytest.param(
        _edit(("kubernetesVersion:", "k8sVersion:")),
        [
            "mlgitops.yaml:4:1: k8sVersion: "
            "unknown field 'k8sVersion' (did you mean 'kubernetesVersion'?)"
        ],
        id="unknown-top-level-key-near-match",
    ),
    pytest.param(
        _edit(("    port: 29500", "    colour: blue")),
        [
            "mlgitops.yaml:12:5: workloads[0].colour: unknown field 'colour' (allowed: "
            "checkpoint, clusters, command, env, framework, image, name, namespace, network, "
            "overrides, parameterServers, port, resources, runAsUser, workers)"
        ],
        id="unknown-key-no-near-match",
    ),
    pytest.param(
        _edit(("    image: registry.example.com/ml/resnet:1.4.2\n", "")),
        ["mlgitops.yaml:6:5: workloads[0]: missing required field 'image'"],
        id="missing-image",
    ),
    pytest.param(
        _edit(("  url: https://github.com/acme/ml-platform-gitops.git", "  revision: main")),
        ["mlgitops.yaml:3:3: repo: missing required field 'url'"],
        id="missing-repo-url",
    ),
    pytest.param(
        _edit(("    cloud: local", '    version: "1.33"')),
        [
            "mlgitops.yaml:45:5: clusters[2]: "
            "missing required field 'cloud' (one of eks, gke, local)"
        ],
        id="missing-cloud",
    ),
    pytest.param(
        _edit(("workers: 3", "workers: three")),
        ["mlgitops.yaml:11:14: workloads[0].workers: expected an integer, got a string"],
        id="string-for-int",
    ),
    pytest.param(
        _edit(("workers: 3", "workers: true")),
        ["mlgitops.yaml:11:14: workloads[0].workers: expected an integer, got a boolean"],
        id="boolean-for-int",
    ),
    pytest.param(
        _edit(("command: [python, finetune.py]", "command: 5")),
        ["mlgitops.yaml:18:14: workloads[1].command: expected a list, got an integer"],
        id="int-for-list",
    ),
    pytest.param(
        _edit(('resources: {cpu: "2", memory: 8Gi}', "resources: [2, 8Gi]")),
        ["mlgitops.yaml:21:16: workloads[1].resources: expected a mapping, got a list"],
        id="list-for-mapping",
    ),
    pytest.param(
        _edit(("clusters:\n", "clusters:\n  local:\n")),
        ["mlgitops.yaml:29:3: clusters: expected a list, got a mapping"],
        id="mapping-for-list",
    ),
    pytest.param(
        _edit(("command: [python, finetune.py]", "command: [python, finetune.py, --epochs, 10]")),
        [
            "mlgitops.yaml:18:46: workloads[1].command[3]: "
            'expected a string, got an integer (quote it: "10")'
        ],
        id="unquoted-number-in-command",
    ),
    pytest.param(
        _edit(("command: [python, finetune.py]", "command: []")),
        ["mlgitops.yaml:18:14: workloads[1].command: needs at least 1 item"],
        id="empty-command",
    ),
    pytest.param(
        _edit(("workers: 3", "workers: 0")),
        ["mlgitops.yaml:11:14: workloads[0].workers: 0 is too small (at least 1)"],
        id="workers-zero",
    ),
    pytest.param(
        _edit(("workers: 3", "workers: 100000")),
        ["mlgitops.yaml:11:14: workloads[0].workers: 100000 is too large (at most 1000)"],
        id="workers-too-many",
    ),
    pytest.param(
        _edit(("gpu: 1", "gpu: 17")),
        ["mlgitops.yaml:13:46: workloads[0].resources.gpu: 17 is too large (at most 16)"],
        id="gpu-too-many",
    ),
    pytest.param(
        _edit(("port: 29500", "port: 0")),
        ["mlgitops.yaml:12:11: workloads[0].port: 0 is not a port (1 to 65535)"],
        id="port-zero",
    ),
    pytest.param(
        _edit(("port: 29500", "port: 70000")),
        ["mlgitops.yaml:12:11: workloads[0].port: 70000 is not a port (1 to 65535)"],
        id="port-too-large",
    ),
    pytest.param(
        _edit(("ports: [443, 5432]", "ports: [443, 0]")),
        [
            "mlgitops.yaml:27:24: workloads[1].network.egressTo[0].ports[1]: "
            "0 is not a port (1 to 65535)"
        ],
        id="egress-port-zero",
    ),
    pytest.param(
        _edit(("ports: [443, 5432]", "ports: [443, 443]")),
        [
            "mlgitops.yaml:27:24: workloads[1].network.egressTo[0].ports[1]: "
            "port 443 is listed twice"
        ],
        id="egress-port-twice",
    ),
    pytest.param(
        _edit(("memory: 8Gi", "memory: 10GB")),
        [
            "mlgitops.yaml:21:35: workloads[1].resources.memory: "
            "'10GB' is not a Kubernetes quantity (did you mean '10Gi' or '10G'?)"
        ],
        id="quantity-10GB",
    ),
    pytest.param(
        _edit(("memory: 8Gi", "memory: 8GiB")),
        [
            "mlgitops.yaml:21:35: workloads[1].resources.memory: "
            "'8GiB' is not a Kubernetes quantity (did you mean '8Gi'?)"
        ],
        id="quantity-8GiB",
    ),
    pytest.param(
        _edit(("memory: 8Gi", "memory: 1.5.0Gi")),
        [
            "mlgitops.yaml:21:35: workloads[1].resources.memory: "
            "'1.5.0Gi' is not a Kubernetes quantity (e.g. 500m, 4, 16Gi, 10G)"
        ],
        id="quantity-two-dots",
    ),
    pytest.param(
        _edit(('cpu: "2"', "cpu: 0")),
        ["mlgitops.yaml:21:22: workloads[1].resources.cpu: '0' must be greater than zero"],
        id="quantity-zero",
    ),
    pytest.param(
        _edit(("size: 10Gi", "size: -1Gi")),
        ["mlgitops.yaml:22:24: workloads[1].checkpoint.size: '-1Gi' must be greater than zero"],
        id="quantity-negative",
    ),
    pytest.param(
        _edit(("namespace: nlp", "namespace: NLP")),
        [
            "mlgitops.yaml:15:16: workloads[1].namespace: 'NLP' is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ],
        id="namespace-uppercase",
    ),
    pytest.param(
        _edit(("namespace: nlp", "namespace: ml_team")),
        [
            "mlgitops.yaml:15:16: workloads[1].namespace: 'ml_team' is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ],
        id="namespace-underscore",
    ),
    pytest.param(
        _edit(("namespace: nlp", f"namespace: {LONG_64}")),
        [f"mlgitops.yaml:15:16: workloads[1].namespace: '{LONG_64}' is longer than 63 characters"],
        id="namespace-too-long",
    ),
    pytest.param(
        _edit(("name: ml-platform", "name: ML-Platform")),
        [
            "mlgitops.yaml:1:7: name: 'ML-Platform' is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ],
        id="platform-name-uppercase",
    ),
    pytest.param(
        _edit(("name: eks-training", "name: eks_training")),
        [
            "mlgitops.yaml:29:11: clusters[0].name: 'eks_training' is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ],
        id="cluster-name-underscore",
    ),
    pytest.param(
        _edit(("name: bert", "name: Bert")),
        [
            "mlgitops.yaml:14:11: workloads[1].name: 'Bert' is not a valid name (lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or "
            "digit: it also names a Service)"
        ],
        id="workload-name-uppercase",
    ),
    pytest.param(
        _edit(("name: bert", "name: 1bert")),
        [
            "mlgitops.yaml:14:11: workloads[1].name: '1bert' is not a valid name (lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or "
            "digit: it also names a Service)"
        ],
        id="workload-name-leading-digit",
    ),
    pytest.param(
        _edit(("name: bert", f"name: {LONG_64}")),
        [f"mlgitops.yaml:14:11: workloads[1].name: '{LONG_64}' is longer than 63 characters"],
        id="workload-name-too-long",
    ),
    pytest.param(
        _edit(("name: bert", f"name: {LONG_62}")),
        [
            f"mlgitops.yaml:14:11: workloads[1].name: '{LONG_62}' is too long: pod hostnames "
            f"such as '{LONG_62}-2' must fit in 63 characters (at most 61 characters here)"
        ],
        id="workload-name-too-long-for-hostnames",
    ),
    pytest.param(
        _edit(("name: bert", "name: namespaces")),
        [
            "mlgitops.yaml:14:11: workloads[1].name: "
            "'namespaces' is reserved (base/namespaces/ is generated)"
        ],
        id="workload-name-reserved",
    ),
    pytest.param(
        _edit(("namespace: nlp", "namespace: kube-system")),
        [
            "mlgitops.yaml:15:16: workloads[1].namespace: "
            "'kube-system' is a system namespace: give the workload its own"
        ],
        id="system-namespace",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", "cidr: 10.20.0/16")),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.20.0/16' is not a valid CIDR: '10.20.0' is not an IP address"
        ],
        id="cidr-bad-address",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", "cidr: datastore")),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'datastore' is not a valid CIDR: 'datastore' is not an IP address"
        ],
        id="cidr-not-an-address",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", "cidr: 10.20.0.1")),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.20.0.1' is not a CIDR: it needs a prefix length (e.g. 10.20.0.1/32)"
        ],
        id="cidr-without-prefix",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", 'cidr: ""')),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "a CIDR must not be empty (e.g. 10.20.0.0/16)"
        ],
        id="cidr-empty",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", "cidr: 10.20.1.5/16")),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.20.1.5/16' has host bits set (did you mean 10.20.0.0/16?)"
        ],
        id="cidr-host-bits",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", 'cidr: "fd00::1/64"')),
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'fd00::1/64' has host bits set (did you mean fd00::/64?)"
        ],
        id="cidr-ipv6-host-bits",
    ),
    pytest.param(
        _edit(("cidr: 10.20.0.0/16", "cidr:")),
        [
            "mlgitops.yaml:26:11: workloads[1].network.egressTo[0].cidr: "
            "expected a string, got nothing (null)"
        ],
        id="cidr-null-position",
    ),
    pytest.param(
        _edit(("name: ml-platform", "name:")),
        ["mlgitops.yaml:1:1: name: expected a string, got nothing (null)"],
        id="null-name-position",
    ),
    pytest.param(
        _edit(("name: bert", "name: resnet-ddp")),
        [
            "mlgitops.yaml:14:11: workloads[1].name: "
            "duplicate workload name 'resnet-ddp' (also workloads[0])"
        ],
        id="duplicate-workload",
    ),
    pytest.param(
        _edit(("name: laptop", "name: eks-training")),
        [
            "mlgitops.yaml:45:11: clusters[2].name: "
            "duplicate cluster name 'eks-training' (also clusters[0])"
        ],
        id="duplicate-cluster",
    ),
    pytest.param(
        _edit(("    port: 29500", "    port: 29500\n    parameterServers: 1")),
        [
            "mlgitops.yaml:13:23: workloads[0].parameterServers: "
            "parameter servers need framework tensorflow, not pytorch"
        ],
        id="parameter-servers-with-pytorch",
    ),
    pytest.param(
        _edit(("framework: pytorch", "framework: pytorh")),
        [
            "mlgitops.yaml:8:16: workloads[0].framework: "
            "'pytorh' is not one of pytorch | tensorflow (did you mean 'pytorch'?)"
        ],
        id="framework-near-miss",
    ),
    pytest.param(
        _edit(("framework: pytorch", "framework: jax")),
        ["mlgitops.yaml:8:16: workloads[0].framework: 'jax' is not one of pytorch | tensorflow"],
        id="framework-unknown",
    ),
    pytest.param(
        _edit(("cloud: local", "cloud: azure")),
        ["mlgitops.yaml:46:12: clusters[2].cloud: 'azure' is not one of eks | gke | local"],
        id="cloud-unknown",
    ),
    pytest.param(
        _edit(("cloud: local", "cloud: locl")),
        [
            "mlgitops.yaml:46:12: clusters[2].cloud: "
            "'locl' is not one of eks | gke | local (did you mean 'local'?)"
        ],
        id="cloud-near-miss",
    ),
    pytest.param(
        _edit(('kubernetesVersion: "1.33"', 'gitops: fluxcd\nkubernetesVersion: "1.33"')),
        ["mlgitops.yaml:4:9: gitops: 'fluxcd' is not one of argocd | flux (did you mean 'flux'?)"],
        id="gitops-near-miss",
    ),
    pytest.param(
        _edit(('kubernetesVersion: "1.33"', "kubernetesVersion: 1.30")),
        [
            'mlgitops.yaml:4:20: kubernetesVersion: write the version as a quoted string: "1.30" '
            "(YAML reads an unquoted 1.30 as a number: 1.3)"
        ],
        id="version-bare-float-1.30",
    ),
    pytest.param(
        _edit(('version: "1.33"', "version: 1.33")),
        [
            "mlgitops.yaml:32:14: clusters[0].version: "
            'write the version as a quoted string: "1.33" '
            "(YAML reads an unquoted 1.33 as a number)"
        ],
        id="cluster-version-bare-float",
    ),
    pytest.param(
        _edit(('kubernetesVersion: "1.33"', 'kubernetesVersion: "1.20"')),
        ["mlgitops.yaml:4:20: kubernetesVersion: Kubernetes 1.20 is not supported (1.25 to 1.37)"],
        id="version-unsupported",
    ),
    pytest.param(
        _edit(('kubernetesVersion: "1.33"', "kubernetesVersion: v1.33")),
        [
            "mlgitops.yaml:4:20: kubernetesVersion: "
            "'v1.33' is not a Kubernetes version (write it as a string, e.g. \"1.33\")"
        ],
        id="version-with-v",
    ),
    pytest.param(
        _edit(("ml/bert:2.0.1", "ml/bert")),
        [
            "mlgitops.yaml:17:12: workloads[1].image: 'registry.example.com/ml/bert' is not "
            "pinned: add a tag or digest (e.g. registry.example.com/ml/bert:1.0.0)"
        ],
        id="image-without-tag",
    ),
    pytest.param(
        _edit(("ml/bert:2.0.1", "ml/bert:latest")),
        [
            "mlgitops.yaml:17:12: workloads[1].image: 'registry.example.com/ml/bert:latest' "
            "uses the moving tag 'latest': pin a version or digest"
        ],
        id="image-latest",
    ),
    pytest.param(
        _edit(("ml/bert:2.0.1", "ml/bert@sha256:abc")),
        [
            "mlgitops.yaml:17:12: workloads[1].image: 'registry.example.com/ml/bert@sha256:abc': "
            "the digest must look like sha256:<64 hex digits>"
        ],
        id="image-short-digest",
    ),
    pytest.param(
        _edit(("minSize: 1", "minSize: 3")),
        [
            "mlgitops.yaml:37:22: clusters[0].nodeGroups[0].desiredSize: "
            "sizes must satisfy minSize <= desiredSize <= maxSize (got 3, 2, 3)"
        ],
        id="eks-min-above-desired",
    ),
    pytest.param(
        _edit(("desiredSize: 2", "desiredSize: 5")),
        [
            "mlgitops.yaml:37:22: clusters[0].nodeGroups[0].desiredSize: "
            "sizes must satisfy minSize <= desiredSize <= maxSize (got 1, 5, 3)"
        ],
        id="eks-desired-above-max",
    ),
    pytest.param(
        _edit(('version: "1.33"', 'version: "1.33"\n    subnets: [subnet-0a1b2c3d]')),
        [
            "mlgitops.yaml:33:14: clusters[0].subnets: "
            "EKS needs subnets in at least two availability zones"
        ],
        id="eks-one-subnet",
    ),
    pytest.param(
        _edit(("env: {LOG_LEVEL: info}", "env: {LOG_LEVEL: info, TF_CONFIG: x}")),
        [
            "mlgitops.yaml:23:39: workloads[1].env.TF_CONFIG: "
            "TF_CONFIG is set by the generator and cannot be overridden"
        ],
        id="env-reserved",
    ),
    pytest.param(
        _edit(("env: {LOG_LEVEL: info}", "env: {LOG-LEVEL: info}")),
        [
            "mlgitops.yaml:23:11: workloads[1].env.LOG-LEVEL: "
            "'LOG-LEVEL' is not a valid environment variable name (letters, digits and '_')"
        ],
        id="env-bad-name",
    ),
    pytest.param(
        _edit(("namespace: nlp", "namespace: nlp: x")),
        ["mlgitops.yaml:15:19: invalid YAML: mapping values are not allowed in this context"],
        id="yaml-syntax-error",
    ),
    pytest.param(
        _edit(("    workers: 2\n", "    workers: 2\n    workers: 4\n")),
        [
            "mlgitops.yaml:20:5: workloads[1].workers: written twice (first at 19:5); keep one"
        ],
        id="duplicate-key",
    ),
    pytest.param(
        _edit(("    workers: 2\n", "\tworkers: 2\n")),
        [
            "mlgitops.yaml:19:1: invalid YAML: a tab character; indent with spaces"
        ],
        id="tab-indentation",
    ),
    pytest.param(
        "",
        [
            "mlgitops.yaml:1:1: the config is empty: "
            "expected a mapping with name, repo, workloads and clusters"
        ],
        id="empty-file",
    ),
    pytest.param(
        "# nothing yet\n",
        [
            "mlgitops.yaml:1:1: the config is empty: "
            "expected a mapping with name, repo, workloads and clusters"
        ],
        id="comments-only",
    ),
    pytest.param(
        "- name: resnet-ddp\n- name: bert\n",
        ["mlgitops.yaml:1:1: the config must be a mapping, not a list"],
        id="top-level-list",
    ),
    pytest.param(
        "# caf\xe9\n".encode("latin-1") + BASE.encode(),
        ["mlgitops.yaml:1:6: the file is not UTF-8 text"],
        id="not-utf8",
    ),
]


def test_base_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _generate(tmp_path, monkeypatch, BASE)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").is_dir()


@pytest.mark.parametrize(("config", "expected"), CASES)
def test_invalid_config_is_reported_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str | bytes, expected: list[str]
) -> None:
    _assert_rejected(_generate(tmp_path, monkeypatch, config), tmp_path, expected)


def test_all_problems_are_reported_in_one_run_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _edit(
        ("cloud: local", "cloud: kind"),
        ("nodeCount: 1", "nodeCount: one"),
        ("region: us-west-2", "region: us-west"),
        ("cidr: 10.20.0.0/16", "cidr: 10.20.1.0/16"),
        ("workers: 2", "workers: 0"),
        ("gpu: 1", "gpu: -1"),
        ("namespace: training", "namespace: Training"),
    )
    _assert_rejected(
        _generate(tmp_path, monkeypatch, config),
        tmp_path,
        [
            "mlgitops.yaml:7:16: workloads[0].namespace: 'Training' is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)",
            "mlgitops.yaml:13:46: workloads[0].resources.gpu: -1 is too small (at least 0)",
            "mlgitops.yaml:19:14: workloads[1].workers: 0 is too small (at least 1)",
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.20.1.0/16' has host bits set (did you mean 10.20.0.0/16?)",
            "mlgitops.yaml:31:13: clusters[0].region: 'us-west' is not an AWS region "
            "(e.g. us-west-2)",
            "mlgitops.yaml:44:61: clusters[1].nodePools[0].nodeCount: "
            "expected an integer, got a string",
            "mlgitops.yaml:46:12: clusters[2].cloud: 'kind' is not one of eks | gke | local",
        ],
    )


def test_all_cross_field_problems_are_reported_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _edit(
        ("name: laptop", "name: gke-training"),
        ("desiredSize: 2", "desiredSize: 9"),
        ("name: bert", "name: resnet-ddp"),
        ("    port: 29500", "    port: 29500\n    parameterServers: 1"),
    )
    _assert_rejected(
        _generate(tmp_path, monkeypatch, config),
        tmp_path,
        [
            "mlgitops.yaml:13:23: workloads[0].parameterServers: "
            "parameter servers need framework tensorflow, not pytorch",
            "mlgitops.yaml:15:11: workloads[1].name: "
            "duplicate workload name 'resnet-ddp' (also workloads[0])",
            "mlgitops.yaml:38:22: clusters[0].nodeGroups[0].desiredSize: "
            "sizes must satisfy minSize <= desiredSize <= maxSize (got 1, 9, 3)",
            "mlgitops.yaml:46:11: clusters[2].name: "
            "duplicate cluster name 'gke-training' (also clusters[1])",
        ],
    )


def test_field_and_cross_field_problems_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _edit(
        ("cidr: 10.20.0.0/16", "cidr: 10.0.0.0/33"),
        ("name: laptop", "name: eks-training"),
    )
    _assert_rejected(
        _generate(tmp_path, monkeypatch, config),
        tmp_path,
        [
            "mlgitops.yaml:26:17: workloads[1].network.egressTo[0].cidr: "
            "'10.0.0.0/33' is not a valid CIDR: the prefix length must be 0 to 32 "
            "(e.g. 10.0.0.0/16)",
            "mlgitops.yaml:45:11: clusters[2].name: "
            "duplicate cluster name 'eks-training' (also clusters[0])",
        ],
    )


def test_merge_key_does_not_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _edit(
        ('resources: {cpu: "4", memory: 16Gi, gpu: 1}', 'resources: &r {cpu: "4", memory: 16Gi}'),
        ('resources: {cpu: "2", memory: 8Gi}', "resources: {<<: *r, gpu: 2}"),
    )
    result = _generate(tmp_path, monkeypatch, config)
    assert result.exit_code in (0, 2), result.exception


@pytest.mark.parametrize(
    ("is_directory", "message"),
    [
        pytest.param(True, "configs: is a directory, not a config file", id="directory"),
        pytest.param(False, "configs: no such config file", id="missing"),
    ],
)
def test_unreadable_config_path_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, is_directory: bool, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if is_directory:
        (tmp_path / "configs").mkdir()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", "--config", "configs", "--out", str(out)])
    assert result.stderr == f"{message}\n"
    assert result.exit_code == 2
    assert not out.exists()
