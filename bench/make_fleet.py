#!/usr/bin/env python3
"""A fleet-sized mlgitops config for benchmarks and tests: N workloads of the example's
kinds (PyTorch with GPUs, TensorFlow with parameter servers and a shared checkpoint,
network rules) in 25 namespaces, on M clusters taking EKS, GKE and kind in turn, every
pod sized to fit the nodes of every cluster (the config rules refuse anything else).

    python bench/make_fleet.py --workloads 1000 --clusters 30 > fleet.yaml
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

NAMESPACES = 25
CLOUDS = ("eks", "gke", "local")


def workload(index: int) -> dict[str, Any]:
    tensorflow = index % 3 == 2
    size = 1 + index % 4  # 1 to 4 CPUs, 4 GiB of memory each
    spec: dict[str, Any] = {
        "name": f"job-{index:04d}",
        "namespace": f"team-{index % NAMESPACES:02d}",
        "framework": "tensorflow" if tensorflow else "pytorch",
        "image": f"registry.example.com/ml/model-{index % 40:02d}:1.{index % 7}.0",
        "command": ["python", "train.py", "--seed", str(index)],
        "workers": 1 + index % 8,
        "resources": {"cpu": str(size), "memory": f"{4 * size}Gi", "gpu": index % 2},
    }
    if tensorflow:
        spec["parameterServers"] = 1 + index % 2
    if index % 4 == 0:
        spec["checkpoint"] = {"size": f"{10 + index % 90}Gi", "mountPath": "/var/ml_model"}
    if index % 5 == 0:
        spec["network"] = {
            "ingressFrom": [{"podLabels": {"role": "data-service-pod"}}],
            "egressTo": [{"cidr": f"10.{index % 250}.0.0/16", "ports": [443]}],
        }
    return spec


def cluster(index: int) -> dict[str, Any]:
    cloud = CLOUDS[index % len(CLOUDS)]
    name = f"{cloud}-{index:03d}"
    if cloud == "eks":
        return {
            "name": name,
            "cloud": "eks",
            "region": ("us-west-2", "eu-west-1")[index % 2],
            "version": "1.33",
            "subnets": [f"subnet-{index:017x}", f"subnet-{index + 1000:017x}"],
            "efsFileSystemId": f"fs-{index:017x}",
            "nodeGroups": [
                {
                    "name": "gpu",
                    "instanceTypes": ["g5.12xlarge"],
                    "minSize": 0,
                    "desiredSize": 2,
                    "maxSize": 8,
                },
                {
                    "name": "cpu",
                    "instanceTypes": ["m6i.4xlarge"],
                    "minSize": 1,
                    "desiredSize": 2,
                    "maxSize": 4,
                },
            ],
        }
    if cloud == "gke":
        return {
            "name": name,
            "cloud": "gke",
            "project": f"acme-ml-{index:03d}",
            "location": "us-central1",
            "nodePools": [
                {
                    "name": "gpu",
                    "machineType": "g2-standard-24",
                    "nodeCount": 2,
                    "accelerator": {"type": "nvidia-l4", "count": 2},
                },
                {"name": "cpu", "machineType": "e2-standard-16", "nodeCount": 1},
            ],
        }
    return {"name": name, "cloud": "local", "workers": 2}


def fleet(workloads: int, clusters: int) -> dict[str, Any]:
    return {
        "name": "fleet",
        "repo": {"url": "https://github.com/acme/fleet-gitops.git", "revision": "main"},
        "gitops": "argocd",
        "kubernetesVersion": "1.33",
        "workloads": [workload(i) for i in range(workloads)],
        "clusters": [cluster(j) for j in range(clusters)],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--clusters", type=int, default=12)
    args = parser.parse_args()
    print(yaml.safe_dump(fleet(args.workloads, args.clusters), sort_keys=False), end="")
