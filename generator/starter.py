"""The commented starter config `mlgitops init` writes: one PyTorch workload and a
cluster per chosen cloud, every line explained, ready to edit and to generate from.

Pure text: no disk, no prompts (the CLI asks and writes). The first line points editors
at the config's JSON Schema (`mlgitops schema`), written beside the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.config.schema import SCHEMA_FILE

CLOUDS = ("eks", "gke", "local")
COMMENT_COLUMN = 41
ENGINES = ("argocd", "flux")


@dataclass(frozen=True)
class Answers:
    name: str = "ml-platform"
    repo_url: str = "https://github.com/acme/ml-platform-gitops.git"
    clouds: tuple[str, ...] = field(default=("local",))
    gitops: str = "argocd"


HEADER = """\
# yaml-language-server: $schema={schema}
# mlgitops config. `mlgitops generate` turns it into base/, overlays/, clusters/ and
# bootstrap/; commit them with this file and let {engine} sync the clusters.
# Every field: `mlgitops schema`, or the README's "The config".
{name_line}# prefix for names and labels (a DNS label)
repo:
  url: {repo_url}
  revision: main                         # branch, tag (refs/tags/v1.2.0) or commit
{gitops_line}# argocd | flux
kubernetesVersion: "1.33"                # quoted: YAML reads 1.30 as the number 1.3

workloads:
  # Distributed PyTorch: three pods that find each other by DNS and run torchrun.
  - name: train
    namespace: training
    framework: pytorch                   # pytorch | tensorflow
    image: registry.example.com/ml/train:1.0.0   # pinned by tag or digest, never :latest
    command: [python, train.py]
    workers: 3
    resources: {{cpu: "2", memory: 8Gi{gpu}}}
    # runtime: job                       # job | pytorchjob | tfjob | jobset | trainjob
    # checkpoint: {{size: 10Gi, mountPath: /checkpoints}}
    # network:
    #   egressTo: [{{cidr: 10.20.0.0/16, ports: [443]}}]

clusters:
"""

CLUSTERS = {
    "eks": """\
  # Amazon EKS, created through ACK from the management cluster.
  - name: eks-training
    cloud: eks
    region: us-west-2
{account}    nodeGroups:
      - name: gpu
        instanceTypes: [g5.xlarge]       # a GPU family gets the NVIDIA AMI and a taint
        minSize: 0
        desiredSize: 3
        maxSize: 3
      - name: system
        instanceTypes: [m6i.large]       # CPU nodes: CoreDNS, the operators, CPU pods
        minSize: 1
        desiredSize: 2
        maxSize: 3
""",
    "gke": """\
  # Google GKE, created through Config Connector from the management cluster.
  - name: gke-training
    cloud: gke
    project: my-gcp-project              # your Google Cloud project id
    location: us-central1
    nodePools:
      - name: gpu
        machineType: n1-standard-8
        nodeCount: 1
        accelerator: {type: nvidia-tesla-t4, count: 1}
""",
    "local": """\
  # A kind cluster on your machine:
  #   kind create cluster --config clusters/local/kind-cluster.yaml
  - name: local
    cloud: local
    workers: 1
""",
}


def starter_config(answers: Answers) -> str:
    """The starter text; GPUs only when some chosen cloud has GPU nodes."""
    has_gpus = any(cloud != "local" for cloud in answers.clouds)
    text = HEADER.format(
        schema=SCHEMA_FILE,
        engine="Argo CD" if answers.gitops == "argocd" else "Flux",
        name_line=f"name: {answers.name}".ljust(COMMENT_COLUMN),
        repo_url=answers.repo_url,
        gitops_line=f"gitops: {answers.gitops}".ljust(COMMENT_COLUMN),
        gpu=", gpu: 1" if has_gpus else "",
    )
    account = (
        '    accountId: "123456789012"           # your AWS account: Flux reaches EKS by ARN\n'
        if answers.gitops == "flux"
        else ""
    )
    clusters = [CLUSTERS[cloud] for cloud in CLOUDS if cloud in answers.clouds]
    return text + "".join(c.replace("{account}", account) for c in clusters)
