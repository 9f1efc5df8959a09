"""The PyTorch program of the disruption tests: train.py's training, resumable.

It keeps the contract the generated pods offer (README, "Surviving disruption"):

- it loads the latest checkpoint from `MLGITOPS_CHECKPOINT_DIR` on start, if there is
  one, and goes on from the step after it; without the variable it neither loads nor
  saves (nothing says where checkpoints would survive the pod);
- it saves one every `--save-every` steps (rank 0), and on SIGTERM: the handler only
  takes note, the step under way finishes (its all-reduce needs every rank), then the
  rank saves and exits 143 (128 + SIGTERM), as a program killed by the signal would;
- a checkpoint is written to a file of its own, then renamed over the last one, so a
  pod stopped while writing leaves the previous checkpoint whole; an older step never
  replaces a newer one.

Every step of rank r uses train.py's data for (r, step), so a run that resumes from a
checkpoint ends with the weights an uninterrupted run has: train.reference_parameters.

`E2E_HOLD_AFTER` (set by the test as the image's environment, never by the generated
pods): the first run (`MLGITOPS_RESTART_ATTEMPT` unset, empty or 0) holds after that
step, saying `E2E-HOLDING`, until it is told to stop, so the test can disrupt it
mid-training whatever the speed of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from train import GROUP_TIMEOUT, LEARNING_RATE, batch, flat_parameters, make_model

CHECKPOINT = "checkpoint.pt"
SIGTERM_EXIT = 128 + signal.SIGTERM
stop_requested = False


def _on_sigterm(signum: int, frame: object) -> None:
    global stop_requested
    stop_requested = True


def load(folder: Path | None) -> dict[str, Any] | None:
    if folder is None or not (folder / CHECKPOINT).exists():
        return None
    loaded: dict[str, Any] = torch.load(folder / CHECKPOINT, weights_only=True)
    return loaded


def save(folder: Path | None, step: int, model: torch.nn.Module, rank: int) -> None:
    """The weights after `step` (the same on every rank), unless a newer one is there."""
    if folder is None:
        return
    last = load(folder)
    if last is not None and last["step"] >= step:
        return
    partial = folder / f".{CHECKPOINT}.{rank}"
    torch.save({"step": step, "model": model.state_dict()}, partial)
    os.replace(partial, folder / CHECKPOINT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--save-every", type=int, default=2)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    configured = os.environ.get("MLGITOPS_CHECKPOINT_DIR")
    folder = Path(configured) if configured else None
    hold_after = int(os.environ.get("E2E_HOLD_AFTER", "0"))
    first_run = os.environ.get("MLGITOPS_RESTART_ATTEMPT", "") in ("", "0")

    dist.init_process_group("gloo", timeout=GROUP_TIMEOUT)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    model = make_model(seed=rank)
    checkpoint = load(folder)
    start = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        start = checkpoint["step"] + 1
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=LEARNING_RATE)
    for step in range(start, arguments.steps):
        inputs, targets = batch(rank, step)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(ddp(inputs), targets).backward()
        optimizer.step()
        if rank == 0 and (step + 1) % arguments.save_every == 0:
            save(folder, step, model, rank)
        if first_run and step + 1 == hold_after and not stop_requested:
            print(f"E2E-HOLDING rank {rank} after step {step}", flush=True)
            while not stop_requested:
                time.sleep(0.1)
        if stop_requested:
            save(folder, step, model, rank)
            print(f"E2E-STOPPED rank {rank} saved step {step}", flush=True)
            sys.stdout.flush()
            os._exit(SIGTERM_EXIT)
    report = {
        "rank": rank,
        "world_size": world_size,
        "hostname": socket.gethostname(),
        "restart_attempt": os.environ.get("MLGITOPS_RESTART_ATTEMPT"),
        "resumed_from": None if checkpoint is None else checkpoint["step"],
        "steps_run": arguments.steps - start,
        "steps": arguments.steps,
        "parameters": flat_parameters(model),
    }
    print("E2E-RESULT " + json.dumps(report), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # As train.py: leave without the C++ destructors of torch's CPU build.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
