"""The PyTorch program of the end-to-end tests, as a training image would ship it.

torchrun starts it on every pod. It trains a linear model with DistributedDataParallel
on CPU (gloo), each rank on its own synthetic data, so the ranks' parameters stay equal
only if every step's gradients really were all-reduced across all of them. It prints one
line, `E2E-RESULT {json}`, with what the test checks: who it is, who it met, and the
final parameters.

The test imports `reference_parameters` to compute, without any communication, what
synchronous data-parallel SGD must end with.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys

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


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Data that differs per rank and step, the same wherever it is computed."""
    generator = torch.Generator().manual_seed(1000 * rank + step)
    inputs = torch.randn(BATCH, FEATURES, generator=generator)
    targets = inputs.sum(dim=1, keepdim=True) + 0.5
    return inputs, targets


def flat_parameters(model: torch.nn.Module) -> list[float]:
    return [float(x) for p in model.parameters() for x in p.detach().flatten()]


def train(model: torch.nn.Module, rank: int, steps: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(steps):
        inputs, targets = batch(rank, step)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()


def reference_parameters(world_size: int, steps: int) -> list[float]:
    """Synchronous data-parallel SGD in one process: rank 0's initial weights (DDP
    broadcasts them), then per step the gradient averaged over every rank's batch."""
    model = make_model(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step in range(steps):
        optimizer.zero_grad()
        for rank in range(world_size):
            inputs, targets = batch(rank, step)
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
    # A different seed per rank: equal starting weights prove DDP's broadcast.
    model = DistributedDataParallel(make_model(seed=rank))
    train(model, rank, steps)
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
