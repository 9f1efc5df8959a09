"""The PyTorch program of the end-to-end tests, as a training image would ship it.

torchrun starts it on every pod. It trains a linear model with DistributedDataParallel
on CPU (gloo), each rank on its own data, so the ranks' parameters stay equal only if
every step's gradients really were all-reduced across all of them. It prints one line,
`E2E-RESULT {json}`, with what the test checks: who it is, who it met, where its data
came from, and the final parameters.

Its data: where the pod has a dataset (the generated `MLGITOPS_DATA_<NAME>` variable
names the folder it is mounted at), each rank reads its own shard there,
`shard-<rank>.json` (`write_shard` makes one), and a shard that is missing or too short
fails the rank at once; without a dataset, synthetic data per rank and step.

The test imports `write_shard` and `reference_parameters` to fill the dataset and to
compute, without any communication, what synchronous data-parallel SGD must end with.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

FEATURES = 4
BATCH = 8
LEARNING_RATE = 0.1
# A job that cannot form its group fails here instead of hanging for gloo's 30 minutes.
GROUP_TIMEOUT = datetime.timedelta(seconds=120)


def make_model(seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(FEATURES, 1)


DATA_VARIABLE_PREFIX = "MLGITOPS_DATA_"
Batch = tuple[torch.Tensor, torch.Tensor]


def batch(rank: int, step: int) -> Batch:
    """Data that differs per rank and step, the same wherever it is computed."""
    generator = torch.Generator().manual_seed(1000 * rank + step)
    inputs = torch.randn(BATCH, FEATURES, generator=generator)
    targets = inputs.sum(dim=1, keepdim=True) + 0.5
    return inputs, targets


def shard_name(rank: int) -> str:
    return f"shard-{rank}.json"


def write_shard(folder: Path, rank: int, steps: int, seed: int) -> list[Batch]:
    """A rank's shard of a dataset, `steps` batches from `seed` (not the synthetic data:
    a rank that trained on those would not match), written in `folder`; its batches."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(FEATURES, 1, generator=generator)
    batches = []
    for _ in range(steps):
        inputs = torch.randn(BATCH, FEATURES, generator=generator)
        batches.append((inputs, inputs @ weights - 1.0))
    shard = {
        "rank": rank,
        "inputs": [b[0].tolist() for b in batches],
        "targets": [b[1].tolist() for b in batches],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / shard_name(rank)).write_text(json.dumps(shard))
    return batches


def dataset_folder(environment: dict[str, str]) -> str | None:
    """The folder of the pod's dataset, from the one `MLGITOPS_DATA_<NAME>` it has."""
    folders = {k: v for k, v in environment.items() if k.startswith(DATA_VARIABLE_PREFIX)}
    if len(folders) > 1:
        sys.exit(f"E2E-ERROR: several datasets, which one to train on? {sorted(folders)}")
    return next(iter(folders.values()), None)


def read_shard(folder: str, rank: int, steps: int) -> list[Batch]:
    """The rank's shard of the dataset mounted at `folder`; a shard that is missing or
    short stops the rank with a message saying so."""
    path = Path(folder) / shard_name(rank)
    try:
        shard = json.loads(path.read_text())
    except OSError as error:
        there = sorted(os.listdir(folder)) if os.path.isdir(folder) else "no such folder"
        sys.exit(f"E2E-ERROR: rank {rank} has no shard at {path} ({error}; {folder}: {there})")
    if shard["rank"] != rank or len(shard["inputs"]) < steps:
        sys.exit(f"E2E-ERROR: {path} is not rank {rank}'s shard of at least {steps} batches")
    return [
        (torch.tensor(inputs), torch.tensor(targets))
        for inputs, targets in zip(shard["inputs"], shard["targets"], strict=True)
    ][:steps]


def flat_parameters(model: torch.nn.Module) -> list[float]:
    return [float(x) for p in model.parameters() for x in p.detach().flatten()]


def train(model: torch.nn.Module, batches: Sequence[Batch]) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for inputs, targets in batches:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()


def reference_parameters(
    world_size: int, steps: int, shards: Sequence[Sequence[Batch]] | None = None
) -> list[float]:
    """Synchronous data-parallel SGD in one process: rank 0's initial weights (DDP
    broadcasts them), then per step the gradient averaged over every rank's batch: the
    rank's shard of the dataset (`shards`, by rank), else its synthetic data."""
    model = make_model(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(steps):
        optimizer.zero_grad()
        for rank in range(world_size):
            inputs, targets = shards[rank][step] if shards else batch(rank, step)
            loss = torch.nn.functional.mse_loss(model(inputs), targets) / world_size
            loss.backward()
        optimizer.step()
    return flat_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3, help="one step per epoch")
    steps = parser.parse_args().epochs
    dist.init_process_group("gloo", timeout=GROUP_TIMEOUT)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    folder = dataset_folder(dict(os.environ))
    if folder is None:
        batches = [batch(rank, step) for step in range(steps)]
    else:
        batches = read_shard(folder, rank, steps)
    # A different seed per rank: equal starting weights prove DDP's broadcast.
    model = DistributedDataParallel(make_model(seed=rank))
    train(model, batches)
    hostnames: list[object] = [None] * world_size
    dist.all_gather_object(hostnames, socket.gethostname())
    report = {
        "rank": rank,
        "world_size": world_size,
        "node_rank": int(os.environ["GROUP_RANK"]),
        "hostname": socket.gethostname(),
        "master": f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
        "peers": hostnames,
        "steps": steps,
        "data": None if folder is None else str(Path(folder) / shard_name(rank)),
        "parameters": flat_parameters(model.module),
    }
    print("E2E-RESULT " + json.dumps(report), flush=True)
    dist.barrier()  # no rank closes its connections while another may still need them
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Leave without running the C++ destructors at interpreter exit: in the CPU build of
    # torch 2.13 one of them now and then ends in std::terminate ("terminate called
    # without an active exception", SIGABRT) after the program has done everything,
    # about one run in ten with 3 ranks, which would fail a healthy job at random.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
