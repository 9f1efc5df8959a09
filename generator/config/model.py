"""The typed config model. The loader fills it; everything after loading trusts it.

Each field's YAML key, bounds and documentation live in its metadata (see `spec`), and
its value checks follow from its type (see `generator.config.checks`), so the loader and
the JSON Schema are both derived from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NewType

# Value types: each is checked by the function of the same name in checks.py.
DnsLabel = NewType("DnsLabel", str)  # RFC 1123 label: namespaces, node pools, platform name
WorkloadName = NewType("WorkloadName", str)  # RFC 1035 label: it names a Service too
Quantity = NewType("Quantity", str)  # Kubernetes resource quantity: 500m, 16Gi, 4
Cidr = NewType("Cidr", str)  # IPv4 or IPv6 network, e.g. 10.20.0.0/16
Port = NewType("Port", int)  # 1..65535
ExitCode = NewType("ExitCode", int)  # a container's exit code that is not success: 1..255
Image = NewType("Image", str)  # container image reference, pinned by tag or digest
AbsolutePath = NewType("AbsolutePath", str)  # absolute path inside a container
EnvName = NewType("EnvName", str)  # environment variable name
LabelKey = NewType("LabelKey", str)  # Kubernetes label key, optionally prefixed
LabelValue = NewType("LabelValue", str)  # Kubernetes label value
KubernetesVersion = NewType("KubernetesVersion", str)  # "1.33"
GitUrl = NewType("GitUrl", str)  # https://, ssh:// or git@host:path
AwsRegion = NewType("AwsRegion", str)  # us-west-2
AwsSubnetId = NewType("AwsSubnetId", str)  # subnet-0123abcd
GcpProject = NewType("GcpProject", str)  # acme-ml
GcpLocation = NewType("GcpLocation", str)  # us-central1 or us-central1-a
NonEmptyString = NewType("NonEmptyString", str)
ImageRegistry = NewType("ImageRegistry", str)  # host[:port][/path], no scheme
EfsFileSystemId = NewType("EfsFileSystemId", str)  # fs-0123abcd
IamPolicyArn = NewType("IamPolicyArn", str)  # arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess
GcpRole = NewType("GcpRole", str)  # roles/storage.objectViewer
GcpServiceAccountName = NewType("GcpServiceAccountName", str)  # 6-30 characters
IamPrincipalArn = NewType("IamPrincipalArn", str)  # arn:aws:iam::123456789012:role/platform
AwsAccountId = NewType("AwsAccountId", str)  # 123456789012
GitRevision = NewType("GitRevision", str)  # main, refs/tags/v1.2.0 or a commit SHA
SecretPath = NewType("SecretPath", str)  # a secret's name in the cloud's secret store
DataSource = NewType("DataSource", str)  # s3://bucket/prefix, gs://bucket/prefix or pvc:claim
Duration = NewType("Duration", str)  # a Go duration such as 1h or 15m
GcpServiceAccountEmail = NewType(
    "GcpServiceAccountEmail", str
)  # name@project.iam.gserviceaccount.com


def spec(
    key: str | None = None,
    *,
    doc: str,
    minimum: int | None = None,
    maximum: int | None = None,
    min_items: int | None = None,
) -> dict[str, Any]:
    """Field metadata: the YAML key (when it is not the Python name), bounds and docs."""
    return {"key": key, "doc": doc, "minimum": minimum, "maximum": maximum, "min_items": min_items}


MAX_PODS_PER_WORKLOAD = 1000


@dataclass(frozen=True)
class Resources:
    cpu: Quantity = field(metadata=spec(doc="CPU per pod, request and limit (e.g. 4 or 500m)"))
    memory: Quantity = field(metadata=spec(doc="memory per pod, request and limit (e.g. 16Gi)"))
    gpu: int = field(
        default=0, metadata=spec(doc="NVIDIA GPUs per pod (nvidia.com/gpu)", minimum=0, maximum=16)
    )


@dataclass(frozen=True)
class Checkpoint:
    size: Quantity = field(metadata=spec(doc="size of the checkpoint volume (e.g. 10Gi)"))
    mount_path: AbsolutePath = field(
        metadata=spec("mountPath", doc="where the volume is mounted in every pod")
    )


@dataclass(frozen=True)
class IngressSource:
    pod_labels: dict[LabelKey, LabelValue] = field(
        metadata=spec("podLabels", doc="labels of the pods allowed to connect", min_items=1)
    )
    namespace_labels: dict[LabelKey, LabelValue] | None = field(
        default=None,
        metadata=spec(
            "namespaceLabels",
            doc="labels of the namespaces those pods run in (default: the workload's namespace)",
        ),
    )
    ports: tuple[Port, ...] = field(
        default=(), metadata=spec(doc="TCP ports they may reach (default: all ports)")
    )


@dataclass(frozen=True)
class EgressDestination:
    cidr: Cidr = field(metadata=spec(doc="network the pods may reach, e.g. 10.20.0.0/16"))
    ports: tuple[Port, ...] = field(
        default=(), metadata=spec(doc="TCP ports they may reach there (default: all ports)")
    )


@dataclass(frozen=True)
class Network:
    ingress_from: tuple[IngressSource, ...] = field(
        default=(), metadata=spec("ingressFrom", doc="pods allowed to connect to the workload")
    )
    egress_to: tuple[EgressDestination, ...] = field(
        default=(), metadata=spec("egressTo", doc="networks outside the cluster the pods may reach")
    )


@dataclass(frozen=True)
class ResourceOverride:
    cpu: Quantity | None = field(default=None, metadata=spec(doc="CPU per pod on this cloud"))
    memory: Quantity | None = field(default=None, metadata=spec(doc="memory per pod on this cloud"))
    gpu: int | None = field(
        default=None, metadata=spec(doc="GPUs per pod on this cloud", minimum=0, maximum=16)
    )


@dataclass(frozen=True)
class CloudOverride:
    resources: ResourceOverride = field(
        default_factory=ResourceOverride, metadata=spec(doc="resources on this cloud")
    )


@dataclass(frozen=True)
class WorkloadOverrides:
    """Per-cloud differences from the workload's own values; they land in that cloud's
    overlay. On local clusters resources default to LAPTOP_RESOURCES."""

    eks: CloudOverride | None = field(default=None, metadata=spec(doc="on EKS clusters"))
    gke: CloudOverride | None = field(default=None, metadata=spec(doc="on GKE clusters"))
    local: CloudOverride | None = field(default=None, metadata=spec(doc="on local clusters"))

    def for_cloud(self, cloud: str) -> CloudOverride | None:
        override: CloudOverride | None = getattr(self, cloud)
        return override


Framework = Literal["pytorch", "tensorflow"]
# How a workload runs: a plain Indexed Job (needs nothing installed), the Kubeflow
# Training Operator's PyTorchJob or TFJob, a JobSet, or a Kubeflow Trainer TrainJob.
Runtime = Literal["job", "pytorchjob", "tfjob", "jobset", "trainjob"]
RUNTIMES_THAT_RESTART = ("pytorchjob", "tfjob", "jobset", "trainjob")
KUBEFLOW_V1_RUNTIMES = ("pytorchjob", "tfjob")
DEFAULT_TRAINING_RUNTIME = "torch-distributed"


@dataclass(frozen=True)
class ElasticPolicy:
    min_replicas: int = field(
        metadata=spec("minReplicas", doc="fewest workers the job keeps running", minimum=1)
    )
    max_replicas: int = field(
        metadata=spec("maxReplicas", doc="most workers", minimum=1, maximum=MAX_PODS_PER_WORKLOAD)
    )


TopologyLevel = Literal[
    "node", "host", "subblock", "block", "layer-1", "layer-2", "layer-3", "layer-4"
]


@dataclass(frozen=True)
class TopologyRequest:
    """Where in the network a workload's pods run close together: one of `required` or
    `preferred` (Kueue's Topology-Aware Scheduling; the workload needs a queue) or
    `exclusive` (a jobset or trainjob: JobSet gives each Job a domain of its own). Levels
    per cloud: cloud_facts.TOPOLOGY_LEVELS."""

    required: TopologyLevel | None = field(
        default=None,
        metadata=spec(
            doc="Kueue admits the pods of each role only within one domain of this level"
        ),
    )
    preferred: TopologyLevel | None = field(
        default=None,
        metadata=spec(doc="Kueue tries one domain of this level, then wider ones, then any"),
    )
    exclusive: TopologyLevel | None = field(
        default=None,
        metadata=spec(
            doc="jobset, trainjob: each Job of the set in a domain of this level of its own"
        ),
    )


DEFAULT_PORTS: dict[str, int] = {"pytorch": 29500, "tensorflow": 2222}
# Above the 10000 floor of the common Kubernetes scanners (Checkov CKV_K8S_40, kube-score,
# kubesec), so it matches no user of a node's own /etc/passwd; not 65534 (nobody).
DEFAULT_RUN_AS_USER = 10001


@dataclass(frozen=True)
class WorkloadSecret:
    """A credential the pods need, read from the cloud's secret store by the External
    Secrets Operator (EKS, GKE) or created by hand (local): a Kubernetes Secret `name`
    with one key, `name`, given to the trainer as `env` or as the file
    `<mountPath>/<name>`."""

    name: DnsLabel = field(metadata=spec(doc="the Kubernetes Secret (and its one key)"))
    source: SecretPath = field(
        metadata=spec(
            "from",
            doc="the secret in the cloud's store: AWS Secrets Manager name, Google Secret "
            "Manager secret id",
        )
    )
    env: EnvName | None = field(
        default=None, metadata=spec(doc="environment variable the value is given as")
    )
    mount_path: AbsolutePath | None = field(
        default=None,
        metadata=spec("mountPath", doc="folder the value is a read-only file in (<name>)"),
    )


@dataclass(frozen=True)
class PullSecret:
    """Registry credentials (a `.dockerconfigjson`) for pulling a private image."""

    name: DnsLabel = field(metadata=spec(doc="the kubernetes.io/dockerconfigjson Secret"))
    source: SecretPath = field(
        metadata=spec("from", doc="the secret in the cloud's store holding .dockerconfigjson")
    )


@dataclass(frozen=True)
class DataSources:
    """A dataset's source per cloud, where the clouds keep it in different stores."""

    eks: DataSource | None = field(default=None, metadata=spec(doc="on EKS: s3:// or pvc:"))
    gke: DataSource | None = field(default=None, metadata=spec(doc="on GKE: gs:// or pvc:"))
    local: DataSource | None = field(
        default=None,
        metadata=spec(doc="on local clusters: pvc: (default: a claim you fill)"),
    )

    def on(self, cloud: str) -> DataSource | None:
        found: DataSource | None = getattr(self, cloud)
        return found


# What a local cluster's claim for a dataset from a bucket asks for (the claim you fill).
DEFAULT_LOCAL_DATA_SIZE = "10Gi"


@dataclass(frozen=True)
class Dataset:
    """Data the trainer reads: a bucket prefix (S3 on EKS through Mountpoint, Cloud
    Storage on GKE through Cloud Storage FUSE) or an existing claim, mounted at
    `mountPath`; on local clusters a claim you fill (render/datasets.py)."""

    name: DnsLabel = field(
        metadata=spec(doc="names the volume data-<name> and MLGITOPS_DATA_<NAME>")
    )
    mount_path: AbsolutePath = field(
        metadata=spec("mountPath", doc="folder the trainer reads the data in")
    )
    source: DataSource | None = field(
        default=None,
        metadata=spec(doc="s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or pvc:CLAIM, on every cloud"),
    )
    sources: DataSources | None = field(
        default=None,
        metadata=spec(doc="the source per cloud instead: {eks?, gke?, local?}"),
    )
    read_only: bool = field(
        default=True, metadata=spec("readOnly", doc="mounted read-only (default true)")
    )
    local_size: Quantity = field(
        default=Quantity(DEFAULT_LOCAL_DATA_SIZE),
        metadata=spec(
            "localSize",
            doc=f"size of the claim a local cluster gets for a bucket (default "
            f"{DEFAULT_LOCAL_DATA_SIZE})",
        ),
    )

    def source_on(self, cloud: str) -> DataSource | None:
        """Where the data comes from on a cloud (None: a local claim you fill)."""
        found = self.sources.on(cloud) if self.sources else self.source
        if cloud == "local" and found is not None and not found.startswith("pvc:"):
            return None  # a bucket on a laptop: the claim you fill with its data
        return found


# Long enough for a training program to write a checkpoint once it is told to stop
# (SIGTERM) before the kubelet kills it (render/disruption.py).
DEFAULT_TERMINATION_GRACE_SECONDS = 120


NcclDebug = Literal["VERSION", "WARN", "INFO", "TRACE"]


@dataclass(frozen=True)
class NcclSettings:
    debug: NcclDebug = field(
        default="WARN",
        metadata=spec(doc="NCCL_DEBUG: VERSION, WARN (default), INFO (what NCCL chose) or TRACE"),
    )


DispatchMode = Literal["multikueue"]
# Every runtime mlgitops generates can be dispatched: each has a MultiKueue adapter in
# Kueue v0.17.6 (pkg/controller/jobs/job/job_multikueue_adapter.go,
# jobset/jobset_multikueue_adapter.go, kubeflow/jobs/pytorchjob/pytorch_multikueue_adapter.go,
# kubeflow/jobs/tfjob/tfjob_multikueue_adapter.go, trainjob/trainjob_multikueue_adapter.go).
# A trainjob's runtime is copied, cloud-neutral, to the manager, whose Kueue builds its pod
# sets from it (render/dispatch.py). A runtime added to `Runtime` needs its adapter checked.


@dataclass(frozen=True)
class Dispatch:
    """Submit the run once, on the management cluster, and let Kueue's MultiKueue give it
    to the first of `clusters` that admits it (render/dispatch.py)."""

    mode: DispatchMode = field(metadata=spec(doc="multikueue: Kueue MultiKueue on the manager"))
    clusters: tuple[DnsLabel, ...] = field(
        metadata=spec(doc="the worker clusters it may run on (EKS or GKE)", min_items=1)
    )


@dataclass(frozen=True)
class Workload:
    name: WorkloadName = field(metadata=spec(doc="names the Job, its Service and its base folder"))
    namespace: DnsLabel = field(metadata=spec(doc="namespace the workload runs in"))
    framework: Framework = field(metadata=spec(doc="pytorch (torchrun) or tensorflow (TF_CONFIG)"))
    image: Image = field(metadata=spec(doc="training image, pinned by tag or digest"))
    command: tuple[NonEmptyString, ...] = field(
        metadata=spec(doc="the training program, e.g. [python, train.py]", min_items=1)
    )
    workers: int = field(
        metadata=spec(
            doc="number of worker pods that compute (with parameterServers the chief that "
            "coordinates them is one pod more)",
            minimum=1,
            maximum=MAX_PODS_PER_WORKLOAD,
        )
    )
    resources: Resources = field(metadata=spec(doc="what every pod of the workload gets"))
    port: Port | None = field(
        default=None,
        metadata=spec(doc="rendezvous (pytorch, default 29500) or gRPC (tensorflow, default 2222)"),
    )
    parameter_servers: int = field(
        default=0,
        metadata=spec(
            "parameterServers",
            doc="TensorFlow parameter-server pods; with any, a chief pod coordinates the "
            "training (ParameterServerStrategy)",
            minimum=0,
            maximum=MAX_PODS_PER_WORKLOAD,
        ),
    )
    checkpoint: Checkpoint | None = field(
        default=None, metadata=spec(doc="a persistent volume for checkpoints, shared by all pods")
    )
    network: Network = field(
        default_factory=Network, metadata=spec(doc="traffic allowed beyond the job's own pods")
    )
    env: dict[EnvName, str] = field(
        default_factory=dict, metadata=spec(doc="extra environment variables for every pod")
    )
    run_as_user: int = field(
        default=DEFAULT_RUN_AS_USER,
        metadata=spec(
            "runAsUser",
            doc="non-root user (and group) id the containers run as; scanners want 10000 or more",
            minimum=1,
            maximum=2**31 - 1,  # the API's int32
        ),
    )
    clusters: tuple[DnsLabel, ...] = field(
        default=(), metadata=spec(doc="the clusters that run it (default: every cluster)")
    )
    overrides: WorkloadOverrides = field(
        default_factory=WorkloadOverrides,
        metadata=spec(doc="per-cloud differences, e.g. {eks: {resources: {gpu: 4}}}"),
    )
    runtime: Runtime = field(
        default="job",
        metadata=spec(doc="job (default) | pytorchjob | tfjob | jobset | trainjob"),
    )
    queue: DnsLabel | None = field(
        default=None,
        metadata=spec(doc="Kueue LocalQueue: the workload starts suspended until admitted"),
    )
    max_restarts: int = field(
        default=0,
        metadata=spec(
            "maxRestarts",
            doc="restarts of the whole run after a failure (not with runtime job)",
            minimum=0,
            maximum=100,
        ),
    )
    ttl_seconds_after_finished: int | None = field(
        default=None,
        metadata=spec(
            "ttlSecondsAfterFinished",
            doc="delete the finished job after this many seconds",
            minimum=0,
        ),
    )
    clean_pod_policy: Literal["All", "Running", "None"] | None = field(
        default=None,
        metadata=spec(
            "cleanPodPolicy",
            doc="pods deleted when a pytorchjob (default None) or tfjob (default Running) ends",
        ),
    )
    elastic: ElasticPolicy | None = field(
        default=None,
        metadata=spec(doc="pytorchjob only: let the worker count vary between these bounds"),
    )
    training_runtime: DnsLabel | None = field(
        default=None,
        metadata=spec(
            "trainingRuntime",
            doc=f"trainjob only: the ClusterTrainingRuntime (default {DEFAULT_TRAINING_RUNTIME})",
        ),
    )
    termination_grace_period_seconds: int = field(
        default=DEFAULT_TERMINATION_GRACE_SECONDS,
        metadata=spec(
            "terminationGracePeriodSeconds",
            doc="time a stopped pod has to save a checkpoint between SIGTERM and SIGKILL",
            minimum=1,
            maximum=86400,
        ),
    )
    fail_on_exit_codes: tuple[ExitCode, ...] | None = field(
        default=None,
        metadata=spec(
            "failOnExitCodes",
            doc="exit codes that mean a bug: the run fails at once, without a restart "
            "(job, jobset, trainjob; default [2, 126, 127])",
        ),
    )
    priority: DnsLabel | None = field(
        default=None,
        metadata=spec(doc="one of priorityClasses: Kueue's order (queued) or the scheduler's"),
    )
    nccl: NcclSettings = field(
        default_factory=NcclSettings,
        metadata=spec(doc="NCCL settings of GPU pods (any of their variables in env wins)"),
    )
    topology: TopologyRequest | None = field(
        default=None,
        metadata=spec(
            doc="place the pods close in the network: {required|preferred|exclusive: LEVEL} "
            "(node; eks: layer-1..layer-4; gke: block, subblock, host)"
        ),
    )
    secrets: tuple[WorkloadSecret, ...] = field(
        default=(),
        metadata=spec(doc="credentials from the cloud's secret store, as env or a file"),
    )
    image_pull_secrets: tuple[PullSecret, ...] = field(
        default=(),
        metadata=spec("imagePullSecrets", doc="registry credentials for a private image"),
    )
    data: tuple[Dataset, ...] = field(
        default=(),
        metadata=spec(doc="datasets: [{name, source | sources, mountPath, readOnly?}]"),
    )
    dispatch: Dispatch | None = field(
        default=None,
        metadata=spec(
            doc="submit on the management cluster; MultiKueue runs it on one of these "
            "clusters: {mode: multikueue, clusters: [...]} (needs queue)"
        ),
    )

    def runs_on(self, cluster: str) -> bool:
        """Whether the cluster holds the workload's namespace: for a dispatched workload,
        each worker it may land on (its training object itself is on the manager)."""
        if self.dispatch is not None:
            return cluster in self.dispatch.clusters
        return not self.clusters or cluster in self.clusters

    def resources_on(self, cloud: str) -> Resources:
        """The resources this workload's pods get on a cloud: its own, with that cloud's
        overrides on top; on local clusters a laptop's unless overridden."""
        base = LAPTOP_RESOURCES if cloud == "local" else self.resources
        override = self.overrides.for_cloud(cloud)
        if override is None:
            return base
        wanted = override.resources
        return Resources(
            cpu=wanted.cpu or base.cpu,
            memory=wanted.memory or base.memory,
            gpu=base.gpu if wanted.gpu is None else wanted.gpu,
        )

    @property
    def rendezvous_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.framework]

    @property
    def pod_count(self) -> int:
        """Every pod of the run. With parameter servers TensorFlow's ParameterServerStrategy
        needs a coordinator, the chief, besides the `workers` that compute: one pod more
        on every runtime (the Kubeflow TFJob counts its Chief the same way)."""
        chief = 1 if self.parameter_servers else 0
        return chief + self.workers + self.parameter_servers


@dataclass(frozen=True)
class NodeCapacity:
    """One node's capacity, for Kueue quotas on types mlgitops has no figures for."""

    cpu: int = field(metadata=spec(doc="vCPUs per node", minimum=1))
    memory: Quantity = field(metadata=spec(doc="memory per node, e.g. 64Gi"))
    gpus: int = field(default=0, metadata=spec(doc="GPUs per node", minimum=0, maximum=16))


@dataclass(frozen=True)
class EksNodeGroup:
    name: DnsLabel = field(metadata=spec(doc="node group name"))
    instance_types: tuple[NonEmptyString, ...] = field(
        metadata=spec("instanceTypes", doc="EC2 instance types, e.g. [g5.xlarge]", min_items=1)
    )
    min_size: int = field(metadata=spec("minSize", doc="fewest nodes", minimum=0, maximum=1000))
    desired_size: int = field(
        metadata=spec("desiredSize", doc="nodes to start with", minimum=0, maximum=1000)
    )
    max_size: int = field(metadata=spec("maxSize", doc="most nodes", minimum=1, maximum=1000))
    capacity: NodeCapacity | None = field(
        default=None,
        metadata=spec(doc="one node's capacity, for queue quotas (default: from the type)"),
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = field(
        default="ON_DEMAND", metadata=spec("capacityType", doc="ON_DEMAND or SPOT instances")
    )
    efa: bool | None = field(
        default=None,
        metadata=spec(doc="EFA interfaces on the nodes (default: on for GPU types that have EFA)"),
    )
    placement_group: NonEmptyString | None = field(
        default=None,
        metadata=spec(
            "placementGroup", doc="an existing EC2 cluster placement group for the EFA nodes"
        ),
    )


@dataclass(frozen=True)
class EksWorkloadIdentity:
    policies: tuple[IamPolicyArn, ...] = field(
        default=(),
        metadata=spec(
            doc="managed policies for the training pods' IAM role (datasets add their own "
            "S3 grants)"
        ),
    )


@dataclass(frozen=True)
class EksCluster:
    name: DnsLabel = field(metadata=spec(doc="cluster name"))
    cloud: Literal["eks"] = field(metadata=spec(doc="Amazon EKS, managed through ACK"))
    region: AwsRegion = field(metadata=spec(doc="AWS region, e.g. us-west-2"))
    node_groups: tuple[EksNodeGroup, ...] = field(
        metadata=spec("nodeGroups", doc="managed node groups", min_items=1)
    )
    version: KubernetesVersion | None = field(
        default=None, metadata=spec(doc="Kubernetes version (default: kubernetesVersion)")
    )
    subnets: tuple[AwsSubnetId, ...] = field(
        default=(),
        metadata=spec(doc="existing subnets in two or more zones (default: create a VPC)"),
    )
    availability_zones: tuple[NonEmptyString, ...] = field(
        default=(),
        metadata=spec(
            "availabilityZones",
            doc="two zones for the VPC created when no subnets are given (default: <region>a, b)",
        ),
    )
    vpc_cidr: Cidr = field(
        default=Cidr("10.0.0.0/16"),
        metadata=spec("vpcCidr", doc="address range of the VPC created when no subnets are given"),
    )
    efs_file_system_id: EfsFileSystemId | None = field(
        default=None,
        metadata=spec(
            "efsFileSystemId",
            doc="EFS file system behind the efs-sc class for ReadWriteMany checkpoints",
        ),
    )
    image_registry: ImageRegistry | None = field(
        default=None,
        metadata=spec("imageRegistry", doc="pull every workload image from here, e.g. ECR"),
    )
    workload_identity: EksWorkloadIdentity | None = field(
        default=None,
        metadata=spec(
            "workloadIdentity", doc="an IAM role for the training pods, through EKS Pod Identity"
        ),
    )
    admin_principals: tuple[IamPrincipalArn, ...] = field(
        default=(),
        metadata=spec(
            "adminPrincipals",
            doc="IAM roles or users given cluster-admin through EKS access entries",
        ),
    )
    allow_unlisted_region: bool = field(
        default=False,
        metadata=spec(
            "allowUnlistedRegion",
            doc="accept a region newer than mlgitops' list of AWS regions",
        ),
    )
    account_id: AwsAccountId | None = field(
        default=None,
        metadata=spec(
            "accountId",
            doc="the cluster's AWS account (Flux needs its ARN to reach it from the fleet)",
        ),
    )


@dataclass(frozen=True)
class GkeAccelerator:
    type: NonEmptyString = field(metadata=spec(doc="GPU type, e.g. nvidia-tesla-t4 or nvidia-l4"))
    count: int = field(metadata=spec(doc="GPUs per node", minimum=1, maximum=16))


@dataclass(frozen=True)
class GkeAutoscaling:
    min_nodes: int = field(
        metadata=spec("minNodes", doc="fewest nodes per zone", minimum=0, maximum=1000)
    )
    max_nodes: int = field(
        metadata=spec("maxNodes", doc="most nodes per zone", minimum=1, maximum=1000)
    )


@dataclass(frozen=True)
class GkeNodePool:
    name: DnsLabel = field(metadata=spec(doc="node pool name"))
    machine_type: NonEmptyString = field(
        metadata=spec("machineType", doc="Compute Engine machine type, e.g. n1-standard-4")
    )
    node_count: int = field(
        metadata=spec("nodeCount", doc="nodes per zone", minimum=0, maximum=1000)
    )
    accelerator: GkeAccelerator | None = field(
        default=None, metadata=spec(doc="GPUs attached to each node")
    )
    autoscaling: GkeAutoscaling | None = field(
        default=None, metadata=spec(doc="let GKE scale the pool between these bounds")
    )
    capacity: NodeCapacity | None = field(
        default=None,
        metadata=spec(doc="one node's capacity, for queue quotas (default: from the type)"),
    )
    gpu_direct: Literal["tcpx", "tcpxo", "rdma"] | None = field(
        default=None,
        metadata=spec(
            "gpuDirect", doc="GPUDirect-TCPX/TCPXO/RDMA: refused (needs privileged pods)"
        ),
    )


@dataclass(frozen=True)
class GkeWorkloadIdentity:
    roles: tuple[GcpRole, ...] = field(
        default=(),
        metadata=spec(
            doc="project roles for the training pods' service account (datasets add their "
            "own bucket grants)"
        ),
    )
    service_account: GcpServiceAccountName | None = field(
        default=None,
        metadata=spec(
            "serviceAccount", doc="Google service account name (default: <cluster>-training)"
        ),
    )


@dataclass(frozen=True)
class GkeCluster:
    name: DnsLabel = field(metadata=spec(doc="cluster name"))
    cloud: Literal["gke"] = field(metadata=spec(doc="Google GKE, managed through Config Connector"))
    project: GcpProject = field(metadata=spec(doc="Google Cloud project id"))
    location: GcpLocation = field(metadata=spec(doc="region or zone, e.g. us-central1"))
    node_pools: tuple[GkeNodePool, ...] = field(
        metadata=spec("nodePools", doc="node pools", min_items=1)
    )
    version: KubernetesVersion | None = field(
        default=None, metadata=spec(doc="Kubernetes version (default: kubernetesVersion)")
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = field(
        default="REGULAR", metadata=spec("releaseChannel", doc="GKE release channel")
    )
    image_registry: ImageRegistry | None = field(
        default=None,
        metadata=spec(
            "imageRegistry", doc="pull every workload image from here, e.g. Artifact Registry"
        ),
    )
    workload_identity: GkeWorkloadIdentity | None = field(
        default=None,
        metadata=spec(
            "workloadIdentity",
            doc="a Google service account for the training pods, through Workload Identity",
        ),
    )

    allow_unlisted_region: bool = field(
        default=False,
        metadata=spec(
            "allowUnlistedRegion",
            doc="accept a location in a region newer than mlgitops' list of Google Cloud regions",
        ),
    )
    config_connector_service_account: GcpServiceAccountEmail | None = field(
        default=None,
        metadata=spec(
            "configConnectorServiceAccount",
            doc="Google service account Config Connector acts as for this cluster's "
            "resources (default: config-connector@<project>.iam.gserviceaccount.com)",
        ),
    )

    def config_connector_account(self) -> str:
        return (
            self.config_connector_service_account
            or f"config-connector@{self.project}.iam.gserviceaccount.com"
        )

    def training_service_account(self) -> str:
        identity = self.workload_identity
        if identity and identity.service_account:
            return identity.service_account
        return f"{self.name}-training"


@dataclass(frozen=True)
class LocalCluster:
    name: DnsLabel = field(metadata=spec(doc="cluster name"))
    cloud: Literal["local"] = field(metadata=spec(doc="a kind cluster on a laptop"))
    workers: int = field(default=1, metadata=spec(doc="kind worker nodes", minimum=0, maximum=10))
    version: KubernetesVersion | None = field(
        default=None, metadata=spec(doc="Kubernetes version (default: kubernetesVersion)")
    )
    image_registry: ImageRegistry | None = field(
        default=None,
        metadata=spec(
            "imageRegistry", doc="pull every workload image from here, e.g. localhost:5001"
        ),
    )


Cluster = EksCluster | GkeCluster | LocalCluster
CLUSTER_KINDS: dict[str, type[EksCluster] | type[GkeCluster] | type[LocalCluster]] = {
    "eks": EksCluster,
    "gke": GkeCluster,
    "local": LocalCluster,
}


@dataclass(frozen=True)
class Repo:
    url: GitUrl = field(metadata=spec(doc="the Git repository this tree is pushed to"))
    revision: GitRevision = field(
        default=GitRevision("main"),
        metadata=spec(doc="branch, commit SHA, or full reference such as refs/tags/v1.2.0"),
    )


@dataclass(frozen=True)
class CiSettings:
    """The CI workflow generated for the repository (GitHub Actions)."""

    workflow: bool = field(
        default=True,
        metadata=spec(doc="write .github/workflows/mlgitops.yaml: generate --check and validate"),
    )
    kubeconform: bool = field(
        default=False,
        metadata=spec(doc="also check every object with kubeconform and the CRDs catalog"),
    )


@dataclass(frozen=True)
class ImageSettings:
    """How the workloads' images must be pinned."""

    require_digest: bool = field(
        default=False,
        metadata=spec(
            "requireDigest",
            doc="refuse an image without a digest (name:tag@sha256:...); pulled IfNotPresent",
        ),
    )


@dataclass(frozen=True)
class PriorityClass:
    """A priority workloads name: a Kueue WorkloadPriorityClass for queued workloads, a
    scheduling PriorityClass for the others (render/queues.py)."""

    name: DnsLabel = field(metadata=spec(doc="what workloads name in `priority`"))
    value: int = field(
        metadata=spec(
            doc="higher runs first and may preempt lower",
            minimum=-(2**31),
            maximum=1_000_000_000,  # the most a PriorityClass not named system- may have
        )
    )
    description: str | None = field(default=None, metadata=spec(doc="what the class is for"))


@dataclass(frozen=True)
class QueueSettings:
    """How Kueue admits the queued workloads of every cluster (render/kueue_config.py)."""

    gang_admission: bool = field(
        default=True,
        metadata=spec(
            "gangAdmission",
            doc="Kueue waitForPodsReady: an admitted workload whose pods are not all Ready "
            "within podsReadyTimeoutMinutes is evicted and requeued",
        ),
    )
    pods_ready_timeout_minutes: int = field(
        default=10,
        metadata=spec(
            "podsReadyTimeoutMinutes",
            doc="how long an admitted workload's pods have to be all Ready (node scale-up "
            "and image pulls included)",
            minimum=1,
            maximum=1440,
        ),
    )


@dataclass(frozen=True)
class MetricsSettings:
    """What the clusters export about the training pods."""

    gpu: bool = field(
        default=True,
        metadata=spec(
            doc="per-pod GPU metrics where GPUs exist: NVIDIA dcgm-exporter on EKS, "
            "GKE's managed DCGM metrics on GKE"
        ),
    )


@dataclass(frozen=True)
class Config:
    name: DnsLabel = field(metadata=spec(doc="the platform's name: prefix for names and labels"))
    repo: Repo = field(metadata=spec(doc="where the generated tree lives"))
    workloads: tuple[Workload, ...] = field(metadata=spec(doc="training workloads", min_items=1))
    clusters: tuple[Cluster, ...] = field(metadata=spec(doc="clusters of the fleet", min_items=1))
    gitops: Literal["argocd", "flux"] = field(
        default="argocd", metadata=spec(doc="the engine that syncs the repo")
    )
    kubernetes_version: KubernetesVersion = field(
        default=KubernetesVersion("1.33"),
        metadata=spec("kubernetesVersion", doc="default cluster version; schemas for validate"),
    )
    ci: CiSettings = field(
        default_factory=CiSettings, metadata=spec(doc="the CI workflow of the generated repo")
    )
    images: ImageSettings = field(
        default_factory=ImageSettings, metadata=spec(doc="how workload images must be pinned")
    )
    priority_classes: tuple[PriorityClass, ...] = field(
        default=(),
        metadata=spec("priorityClasses", doc="priorities the workloads may name"),
    )
    queues: QueueSettings = field(
        default_factory=QueueSettings,
        metadata=spec(doc="how Kueue admits queued workloads (gang admission)"),
    )
    metrics: MetricsSettings = field(
        default_factory=MetricsSettings,
        metadata=spec(doc="what the clusters export about the training pods"),
    )
    secret_refresh_interval: Duration = field(
        default=Duration("1h"),
        metadata=spec(
            "secretRefreshInterval",
            doc="how often the External Secrets Operator reads each secret again",
        ),
    )

    def cluster_version(self, cluster: Cluster) -> str:
        return cluster.version or self.kubernetes_version

    def workloads_on(self, cluster: Cluster) -> list[Workload]:
        return [w for w in self.workloads if w.runs_on(cluster.name)]

    def clouds(self) -> list[str]:
        """The clouds some cluster uses, in a fixed order."""
        used = {c.cloud for c in self.clusters}
        return [cloud for cloud in CLUSTER_KINDS if cloud in used]


# What a workload gets on a local cluster unless its overrides say otherwise.
LAPTOP_RESOURCES = Resources(cpu=Quantity("1"), memory=Quantity("2Gi"), gpu=0)
