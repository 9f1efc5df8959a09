"""An EKS cluster as AWS Controllers for Kubernetes (ACK) resources, reconciled by the ACK
controllers of a management cluster: IAM roles, a network when none is given, the
cluster, its managed node groups and add-ons. Resources refer to each other by
`*Ref` (ACK resolves them to ARNs and IDs), never by hard-coded IDs."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from generator import cloud_facts
from generator.cluster import nodes
from generator.config import model
from generator.render import datasets, fabric, secrets
from generator.render.clusters.common import (
    Wave,
    infra_metadata,
    protect_from_deletion,
    render_infra_namespace,
)
from generator.render.entrypoints import namespaces_on
from generator.render.objects import Manifest

IAM = "iam.services.k8s.aws/v1alpha1"
EC2 = "ec2.services.k8s.aws/v1alpha1"
EKS = "eks.services.k8s.aws/v1alpha1"
REGION_ANNOTATION = "services.k8s.aws/region"
# ACK keeps the AWS resource when its Kubernetes object is deleted.
DELETION_POLICY = {"services.k8s.aws/deletion-policy": "retain"}

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
# The EBS and EFS CSI drivers run with the node role's permissions.
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
EFS_CSI_POLICY = "service-role/AmazonEFSCSIDriverPolicy"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy(region: str, name: str) -> str:
    return f"arn:{partition(region)}:iam::aws:policy/{name}"


def trust_policy(principal: str, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    """An assume-role policy document, as the compact JSON string IAM stores."""
    statement = {"Effect": "Allow", "Principal": {"Service": principal}, "Action": list(actions)}
    if len(actions) == 1:
        statement["Action"] = actions[0]
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":"))


def ec2_principal(region: str) -> str:
    return "ec2.amazonaws.com.cn" if partition(region) == "aws-cn" else "ec2.amazonaws.com"


def availability_zones(cluster: model.EksCluster) -> list[str]:
    return list(cluster.availability_zones) or [f"{cluster.region}a", f"{cluster.region}b"]


def cluster_role_name(config: model.Config, cluster: model.EksCluster) -> str:
    return f"{config.name}-{cluster.name}-cluster"


def render_eks_infrastructure(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    """Every AWS resource is kept when its object goes (a prune, a removed node group):
    deleting a node group or a NAT gateway would stop every run on the cluster."""
    objects = [
        *_iam_roles(config, cluster),
        *([] if cluster.subnets else _network(config, cluster)),
        _cluster(config, cluster),
        *(_launch_template(config, cluster, group) for group in fabric.efa_groups(cluster)),
        *(_node_group(config, cluster, group) for group in cluster.node_groups),
        *_addons(config, cluster),
        *_pod_identity_associations(config, cluster),
        *_secret_store_identity(config, cluster),
        *_access_entries(config, cluster),
    ]
    for obj in objects:
        protect_from_deletion(config, obj["metadata"], DELETION_POLICY)
        obj["metadata"]["annotations"][REGION_ANNOTATION] = cluster.region
    namespace = render_infra_namespace(
        config, cluster, {"services.k8s.aws/default-region": cluster.region}
    )
    return [namespace, *objects]


def _role(
    config: model.Config,
    cluster: model.EksCluster,
    suffix: str,
    trust: str,
    policies: list[str],
    description: str,
) -> Manifest:
    name = f"{cluster.name}-{suffix}"
    return {
        "apiVersion": IAM,
        "kind": "Role",
        "metadata": infra_metadata(config, cluster, name, Wave.IAM),
        "spec": {
            "name": f"{config.name}-{name}",
            "description": description,
            "assumeRolePolicyDocument": trust,
            "policies": policies,
        },
    }


def _iam_roles(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    region = cluster.region
    node_policies = [*NODE_POLICIES, EBS_CSI_POLICY]
    if cluster.efs_file_system_id:
        node_policies.append(EFS_CSI_POLICY)
    roles = [
        _role(
            config,
            cluster,
            "cluster",
            trust_policy("eks.amazonaws.com"),
            [managed_policy(region, p) for p in CLUSTER_POLICIES],
            f"EKS control plane of {cluster.name}",
        ),
        _role(
            config,
            cluster,
            "node",
            trust_policy(ec2_principal(region)),
            [managed_policy(region, p) for p in node_policies],
            f"nodes of {cluster.name}",
        ),
    ]
    if cluster.workload_identity:
        training = _role(
            config,
            cluster,
            cloud_facts.EKS_LONGEST_ROLE_SUFFIX,
            trust_policy("pods.eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession")),
            list(cluster.workload_identity.policies),
            f"training pods on {cluster.name}, through EKS Pod Identity",
        )
        if not training["spec"]["policies"]:
            del training["spec"]["policies"]
        # The datasets' buckets, exactly their prefixes (render/datasets.py): the
        # Mountpoint driver reads them with these pods' credentials.
        data_policy = datasets.eks_data_policy(config, cluster, partition(region))
        if data_policy:
            training["spec"]["inlinePolicies"] = {"read-declared-datasets": data_policy}
        roles.append(training)
    return roles


def subnet_blocks(cidr: str) -> list[str]:
    """The VPC split in four: two public subnets (NAT, load balancers) and two private
    subnets for the nodes, one of each per availability zone."""
    return [str(net) for net in list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=2))]


def _network(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    def meta(name: str) -> dict[str, Any]:
        return infra_metadata(config, cluster, f"{cluster.name}-{name}", Wave.NETWORK)

    def ref(name: str) -> dict[str, Any]:
        return {"from": {"name": f"{cluster.name}-{name}"}}

    zones = availability_zones(cluster)
    blocks = subnet_blocks(cluster.vpc_cidr)
    objects: list[Manifest] = [
        {
            "apiVersion": EC2,
            "kind": "VPC",
            "metadata": meta("vpc"),
            "spec": {
                "cidrBlocks": [cluster.vpc_cidr],
                "enableDNSHostnames": True,
                "enableDNSSupport": True,
                "tags": _tags(config, cluster, "vpc"),
            },
        },
        {
            "apiVersion": EC2,
            "kind": "InternetGateway",
            "metadata": meta("igw"),
            "spec": {"vpcRef": ref("vpc"), "tags": _tags(config, cluster, "igw")},
        },
        {
            "apiVersion": EC2,
            "kind": "ElasticIPAddress",
            "metadata": meta("nat-ip"),
            "spec": {"tags": _tags(config, cluster, "nat-ip")},
        },
        {
            "apiVersion": EC2,
            "kind": "RouteTable",
            "metadata": meta("public"),
            "spec": {
                "vpcRef": ref("vpc"),
                "routes": [{"destinationCIDRBlock": "0.0.0.0/0", "gatewayRef": ref("igw")}],
                "tags": _tags(config, cluster, "public"),
            },
        },
        {
            "apiVersion": EC2,
            "kind": "RouteTable",
            "metadata": meta("private"),
            "spec": {
                "vpcRef": ref("vpc"),
                "routes": [{"destinationCIDRBlock": "0.0.0.0/0", "natGatewayRef": ref("nat")}],
                "tags": _tags(config, cluster, "private"),
            },
        },
        {
            "apiVersion": EC2,
            "kind": "NATGateway",
            "metadata": meta("nat"),
            "spec": {
                "subnetRef": ref(f"public-{zones[0]}"),
                "allocationRef": ref("nat-ip"),
                "tags": _tags(config, cluster, "nat"),
            },
        },
    ]
    for index, zone in enumerate(zones[:2]):
        for tier, block, elb_role in (
            ("public", blocks[index], "kubernetes.io/role/elb"),
            ("private", blocks[2 + index], "kubernetes.io/role/internal-elb"),
        ):
            name = f"{tier}-{zone}"
            objects.append(
                {
                    "apiVersion": EC2,
                    "kind": "Subnet",
                    "metadata": meta(name),
                    "spec": {
                        "vpcRef": ref("vpc"),
                        "availabilityZone": zone,
                        "cidrBlock": block,
                        "mapPublicIPOnLaunch": tier == "public",
                        "routeTableRefs": [ref(tier)],
                        "tags": [*_tags(config, cluster, name), {"key": elb_role, "value": "1"}],
                    },
                }
            )
    return objects


def _tags(config: model.Config, cluster: model.EksCluster, name: str) -> list[dict[str, str]]:
    return [
        {"key": "Name", "value": f"{cluster.name}-{name}"},
        {"key": f"kubernetes.io/cluster/{cluster.name}", "value": "shared"},
        {"key": "app.kubernetes.io/part-of", "value": config.name},
    ]


def _subnets(cluster: model.EksCluster) -> dict[str, Any]:
    if cluster.subnets:
        return {"subnets": list(cluster.subnets)}
    zones = availability_zones(cluster)[:2]
    return {"subnetRefs": [{"from": {"name": f"{cluster.name}-private-{z}"}} for z in zones]}


def _cluster(config: model.Config, cluster: model.EksCluster) -> Manifest:
    subnets = _subnets(cluster)
    vpc_config: dict[str, Any] = {
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
    }
    if "subnets" in subnets:
        vpc_config["subnetIDs"] = subnets["subnets"]
    else:
        vpc_config["subnetRefs"] = subnets["subnetRefs"]
    meta = infra_metadata(config, cluster, cluster.name, Wave.CLUSTER)
    return {
        "apiVersion": EKS,
        "kind": "Cluster",
        "metadata": meta,
        "spec": {
            "name": cluster.name,
            "version": config.cluster_version(cluster),
            "roleRef": {"from": {"name": f"{cluster.name}-cluster"}},
            "resourcesVPCConfig": vpc_config,
            "accessConfig": {
                "authenticationMode": "API",
                "bootstrapClusterCreatorAdminPermissions": True,
            },
            "tags": {"app.kubernetes.io/part-of": config.name},
        },
    }


# The EKS API (and ACK) writes taint effects in its own spelling.
EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


def node_labels_and_taints(
    cluster: model.EksCluster, group: model.EksNodeGroup
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """GPU nodes carry the labels the EKS overlay's affinity and the NVIDIA device plugin
    select, and, when the cluster has other nodes for everything else, the taint the GPU
    pods' toleration matches (the rule is cluster/nodes.py's, shared with Kueue's flavors)."""
    taints = [
        {"key": t.key, "value": t.value, "effect": EKS_TAINT_EFFECTS[t.effect]}
        for t in nodes.eks_taints(cluster, group)
    ]
    return nodes.eks_gpu_labels(group), taints


def _node_group(
    config: model.Config, cluster: model.EksCluster, group: model.EksNodeGroup
) -> Manifest:
    labels, taints = node_labels_and_taints(cluster, group)
    efa = fabric.group_efa_interfaces(group)
    spec: dict[str, Any] = {
        "name": group.name,
        "clusterRef": {"from": {"name": cluster.name}},
        "nodeRoleRef": {"from": {"name": f"{cluster.name}-node"}},
        **(_efa_subnet(cluster) if efa else _subnets(cluster)),
        "amiType": cloud_facts.eks_ami_type(group.instance_types),
        "capacityType": group.capacity_type,
        "instanceTypes": list(group.instance_types),
        "scalingConfig": {
            "minSize": group.min_size,
            "desiredSize": group.desired_size,
            "maxSize": group.max_size,
        },
    }
    if efa:
        spec["launchTemplate"] = {"name": launch_template_name(config, cluster, group)}
    if labels:
        spec["labels"] = labels
    if taints:
        spec["taints"] = taints
    spec["tags"] = {"app.kubernetes.io/part-of": config.name}
    return {
        "apiVersion": EKS,
        "kind": "Nodegroup",
        "metadata": infra_metadata(config, cluster, f"{cluster.name}-{group.name}", Wave.NODES),
        "spec": spec,
    }


def launch_template_name(
    config: model.Config, cluster: model.EksCluster, group: model.EksNodeGroup
) -> str:
    return f"{config.name}-{cluster.name}-{group.name}"


def efa_interfaces(count: int) -> list[dict[str, Any]]:
    """One EFA interface per network card: the primary on card 0 at device index 0,
    each other on the next card at device index 1 (AWS EC2 user guide, "Maximize
    network bandwidth on Amazon EC2 instances with multiple network cards"). No subnet
    (a managed node group's launch template may not name one: EKS user guide
    nodes/launch-templates.adoc) and no security groups: EKS then applies the cluster
    security group, which allows all traffic between its members, as EFA requires."""
    return [
        {
            "deviceIndex": 0 if card == 0 else 1,
            "networkCardIndex": card,
            "interfaceType": "efa",
            "deleteOnTermination": True,
        }
        for card in range(count)
    ]


def _launch_template(
    config: model.Config, cluster: model.EksCluster, group: model.EksNodeGroup
) -> Manifest:
    """The EFA interfaces of a node group (and its cluster placement group, when the
    config names one), as an ACK ec2 LaunchTemplate the Nodegroup names. Neither
    instance type nor AMI is set here: the Nodegroup keeps both, as EKS asks. The
    metadata hop limit of 2 is what EKS's own launch template sets (launch-templates.adoc),
    so pods that use IMDSv2 keep working."""
    data: dict[str, Any] = {
        "networkInterfaces": efa_interfaces(fabric.group_efa_interfaces(group)),
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
    }
    if group.placement_group:
        data["placement"] = {"groupName": group.placement_group}
    name = launch_template_name(config, cluster, group)
    return {
        "apiVersion": EC2,
        "kind": "LaunchTemplate",
        "metadata": infra_metadata(
            config, cluster, f"{cluster.name}-{group.name}-efa", Wave.NETWORK
        ),
        "spec": {
            "name": name,
            "data": data,
            "tags": _tags(config, cluster, f"{group.name}-efa"),
        },
    }


def _efa_subnet(cluster: model.EksCluster) -> dict[str, Any]:
    """EFA nodes in one subnet, so in one zone: EFA traffic does not cross zones, and a
    cluster placement group is in one zone (AWS EC2 user guide, EFA and placement
    groups). The first of the cluster's subnets, or the first private one created."""
    subnets = _subnets(cluster)
    return {key: value[:1] for key, value in subnets.items()}


def _addon(
    config: model.Config, cluster: model.EksCluster, name: str, values: dict[str, Any] | None
) -> Manifest:
    spec: dict[str, Any] = {
        "name": name,
        "clusterRef": {"from": {"name": cluster.name}},
        "resolveConflicts": "OVERWRITE",
    }
    if values is not None:
        spec["configurationValues"] = json.dumps(values, separators=(",", ":"), sort_keys=True)
    return {
        "apiVersion": EKS,
        "kind": "Addon",
        "metadata": infra_metadata(config, cluster, f"{cluster.name}-{name}", Wave.ADDONS),
        "spec": spec,
    }


def _addons(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    """The VPC CNI enforcing NetworkPolicy (the workloads' default deny depends on it), the
    EBS CSI driver behind gp3, EFS when used, and the Pod Identity agent when used."""
    addons = [
        _addon(config, cluster, "vpc-cni", {"enableNetworkPolicy": "true"}),
        _addon(config, cluster, "aws-ebs-csi-driver", None),
    ]
    if cluster.efs_file_system_id:
        addons.append(_addon(config, cluster, "aws-efs-csi-driver", None))
    if cluster.workload_identity or secrets.needs_store(config, cluster):
        addons.append(_addon(config, cluster, "eks-pod-identity-agent", None))
    if datasets.needs_mountpoint(config, cluster):
        # No addonVersion, as for the other add-ons: EKS installs its default build for
        # the cluster's minor. Pod-level Pod Identity, which the volumes use, is in the
        # driver at v1.15.0, v2.0.0 and v2.7.0 (render/datasets.py).
        addons.append(_addon(config, cluster, datasets.MOUNTPOINT_ADDON, None))
    return addons


def _pod_identity_associations(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    """Each training ServiceAccount on the cluster assumes the cluster's training role."""
    if not cluster.workload_identity:
        return []
    associations = []
    for namespace in namespaces_on(config, cluster):
        for workload in config.workloads_on(cluster):
            if workload.namespace != namespace:
                continue
            name = f"{cluster.name}-{namespace}-{workload.name}"
            associations.append(
                {
                    "apiVersion": EKS,
                    "kind": "PodIdentityAssociation",
                    "metadata": infra_metadata(config, cluster, name, Wave.ADDONS),
                    "spec": {
                        "clusterRef": {"from": {"name": cluster.name}},
                        "namespace": namespace,
                        "serviceAccount": workload.name,
                        "roleRef": {
                            "from": {
                                "name": f"{cluster.name}-{cloud_facts.EKS_LONGEST_ROLE_SUFFIX}"
                            }
                        },
                    },
                }
            )
    return associations


def _secret_store_identity(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    """The External Secrets Operator's controller reads the cluster's declared secrets
    with its own Pod Identity credentials (render/secrets.py): a role trusted by
    pods.eks.amazonaws.com whose one inline policy allows GetSecretValue on exactly
    those secrets' ARNs, and the association of ESO's ServiceAccount with it (the Pod
    Identity agent add-on comes with it, `_addons`)."""
    if not secrets.needs_store(config, cluster):
        return []
    suffix = secrets.eks_role_suffix()
    role = _role(
        config,
        cluster,
        suffix,
        trust_policy("pods.eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession")),
        [],
        f"External Secrets Operator on {cluster.name}: reads the declared secrets",
    )
    del role["spec"]["policies"]
    role["spec"]["inlinePolicies"] = {
        "read-declared-secrets": secrets.eks_read_policy(config, cluster, partition(cluster.region))
    }
    association = {
        "apiVersion": EKS,
        "kind": "PodIdentityAssociation",
        "metadata": infra_metadata(
            config, cluster, f"{cluster.name}-external-secrets", Wave.ADDONS
        ),
        "spec": secrets.eks_association_spec(cluster, f"{cluster.name}-{suffix}"),
    }
    return [role, association]


# Full access to the cluster for a named principal (EKS user guide, access-policies.adoc).
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


def _access_entries(config: model.Config, cluster: model.EksCluster) -> list[Manifest]:
    """With `authenticationMode: API` only access entries let anyone in; the cluster's
    creator (the ACK controller's role) is the only one EKS adds itself. Each admin
    principal of the config gets an entry with the cluster-admin access policy."""
    entries = []
    for index, principal in enumerate(cluster.admin_principals):
        entries.append(
            {
                "apiVersion": EKS,
                "kind": "AccessEntry",
                "metadata": infra_metadata(
                    config, cluster, f"{cluster.name}-admin-{index}", Wave.ADDONS
                ),
                "spec": {
                    "clusterRef": {"from": {"name": cluster.name}},
                    "principalARN": principal,
                    "type": "STANDARD",
                    "accessPolicies": [
                        {
                            "policyARN": access_policy_arn(cluster.region, CLUSTER_ADMIN_POLICY),
                            "accessScope": {"type": "cluster"},
                        }
                    ],
                },
            }
        )
    return entries


def access_policy_arn(region: str, name: str) -> str:
    return f"arn:{partition(region)}:eks::aws:cluster-access-policy/{name}"
