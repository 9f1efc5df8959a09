"""The TensorFlow program of the end-to-end tests, as a training image would ship it.

Every pod runs it with the TF_CONFIG the generated shell prefix exported, read by
TensorFlow's own resolver. What it does depends on the pod's task:

- `worker` and `ps`: start a `tf.distribute.Server` for the task and serve until
  stopped. With ParameterServerStrategy they never exit on their own: the controller
  stops them once the chief has succeeded.
- `chief`: the coordinator. It builds a `ParameterServerStrategy` from TF_CONFIG,
  creates a linear model's variables under it (they land on the parameter servers),
  and uses a `ClusterCoordinator` to schedule the training steps, each a `tf.function`
  that the coordinator sends to whichever worker is free. It then prints one line,
  `E2E-RESULT {json}`, and exits 0.

The training is synchronous SGD in rounds: every step of a round takes the gradient of
its own batch at the weights the round started with (a copy on the parameter servers)
and subtracts its share from the weights, so the steps of a round commute and the final
weights do not depend on which worker ran which step, or in which order. The chief
publishes the new weights as the next round's start after the round has joined. Each
step reads `/etc/hostname` on the worker that runs it, so the test sees which pods
really computed.

Its data: where the pod has a dataset (`MLGITOPS_DATA_<NAME>` names the folder it is
mounted at), the chief reads every step's batch from `batches.json` there
(`write_batches` makes one) and fails at once if it is missing or short; without a
dataset, synthetic batches.

The test imports `write_batches` and `reference_weights` (NumPy only, no TensorFlow) to
fill the dataset and to compute, without any communication, what the training must end
with.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FEATURES = 4
BATCH = 8
ROUNDS = 5
STEPS_PER_ROUND = 4  # more than the workers, so that every worker gets steps
LEARNING_RATE = 0.05
INITIAL_WEIGHTS = (0.1, -0.2, 0.3, -0.4)
TRUE_WEIGHTS = (0.5, -1.0, 2.0, 0.25)
TRUE_BIAS = 0.5
RESULT_PREFIX = "E2E-RESULT "
# How long the chief waits for every worker and parameter server to accept connections:
# long enough for slow starts, short enough that a broken cluster fails the pod.
CONNECT_TIMEOUT_SECONDS = 120.0
REPORT_EVERY_SECONDS = 5.0

Array = npt.NDArray[np.float64]


def batch(round_index: int, step: int) -> tuple[Array, Array]:
    """Synthetic data that differs per round and step, the same wherever it is computed:
    small integers (exact in any float type), and targets of a known linear model."""
    seed = round_index * STEPS_PER_ROUND + step
    cells = np.arange(BATCH * FEATURES, dtype=np.int64).reshape(BATCH, FEATURES)
    inputs = ((cells * (seed + 3) + seed * 7) % 13 - 6).astype(np.float64) / 4.0
    targets = inputs @ np.array(TRUE_WEIGHTS).reshape(FEATURES, 1) + TRUE_BIAS
    return inputs, targets


BATCHES_FILE = "batches.json"
DATA_VARIABLE_PREFIX = "MLGITOPS_DATA_"
Batches = list[tuple[Array, Array]]  # every step's batch, round after round


def write_batches(folder: Path, seed: int) -> Batches:
    """A dataset of every step's batch from `seed` (not the synthetic batches: a run that
    trained on those would not match), written in `folder`; its batches."""
    generator = np.random.default_rng(seed)
    batches = []
    for _ in range(ROUNDS * STEPS_PER_ROUND):
        inputs = generator.integers(-6, 7, size=(BATCH, FEATURES)).astype(np.float64) / 4.0
        targets = inputs @ np.array(TRUE_WEIGHTS).reshape(FEATURES, 1) - TRUE_BIAS
        batches.append((inputs, targets))
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "inputs": [b[0].tolist() for b in batches],
        "targets": [b[1].tolist() for b in batches],
    }
    (folder / BATCHES_FILE).write_text(json.dumps(written))
    return batches


def read_batches(folder: str) -> Batches:
    """The dataset's batches; a file that is missing or short stops the chief."""
    path = Path(folder) / BATCHES_FILE
    try:
        written = json.loads(path.read_text())
    except OSError as error:
        sys.exit(f"E2E-ERROR: the chief has no batches at {path} ({error})")
    if len(written["inputs"]) < ROUNDS * STEPS_PER_ROUND:
        sys.exit(f"E2E-ERROR: {path} has fewer than {ROUNDS * STEPS_PER_ROUND} batches")
    return [
        (np.array(inputs, dtype=np.float64), np.array(targets, dtype=np.float64))
        for inputs, targets in zip(written["inputs"], written["targets"], strict=True)
    ]


def dataset_folder(environment: Mapping[str, str]) -> str | None:
    """The folder of the pod's dataset, from the one `MLGITOPS_DATA_<NAME>` it has."""
    folders = {k: v for k, v in environment.items() if k.startswith(DATA_VARIABLE_PREFIX)}
    if len(folders) > 1:
        sys.exit(f"E2E-ERROR: several datasets, which one to train on? {sorted(folders)}")
    return next(iter(folders.values()), None)


def step_batch(batches: Batches | None, round_index: int, step: int) -> tuple[Array, Array]:
    if batches is None:
        return batch(round_index, step)
    return batches[round_index * STEPS_PER_ROUND + step]


def reference_weights(batches: Batches | None = None) -> list[float]:
    """The weights and bias the training must end with, in one process, by hand: the
    gradient of the mean squared error, averaged over the steps of each round, at the
    round's starting weights (each step's batch the dataset's, else synthetic)."""
    weights = np.array(INITIAL_WEIGHTS).reshape(FEATURES, 1)
    bias = 0.0
    for round_index in range(ROUNDS):
        weights_step, bias_step = np.zeros_like(weights), 0.0
        for step in range(STEPS_PER_ROUND):
            inputs, targets = step_batch(batches, round_index, step)
            error = inputs @ weights + bias - targets
            weights_step += 2.0 / BATCH * inputs.T @ error
            bias_step += 2.0 / BATCH * float(error.sum())
        weights -= LEARNING_RATE / STEPS_PER_ROUND * weights_step
        bias -= LEARNING_RATE / STEPS_PER_ROUND * bias_step
    return [*(float(w) for w in weights.flatten()), bias]


def wait_for_servers(cluster: Mapping[str, Sequence[str]]) -> None:
    """Until every worker and parameter server accepts a connection at its address.

    TensorFlow's own connection retries are silent; this says which task it is waiting
    for and why (a name that does not resolve, a refused connection), and gives up with
    an error rather than waiting forever."""
    pending = {
        f"/job:{job}/task:{index}": address
        for job in ("worker", "ps")
        for index, address in enumerate(cluster.get(job, []))
    }
    begin = last_report = time.monotonic()
    while True:
        problems = {}
        for task, address in pending.items():
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=1.0).close()
            except OSError as error:
                problems[task] = f"{address}: {error}"
        pending = {task: pending[task] for task in problems}
        if not pending:
            return
        now = time.monotonic()
        if now - begin > CONNECT_TIMEOUT_SECONDS:
            sys.exit(f"gave up waiting for {', '.join(sorted(problems))}")
        if now - last_report >= REPORT_EVERY_SECONDS:
            for task, problem in sorted(problems.items()):
                print(f"waiting for {task} at {problem}", flush=True)
            last_report = now
        time.sleep(0.5)


def coordinate(resolver: Any, batches: Batches | None) -> dict[str, object]:
    """The chief's part: the variables on the parameter servers, every step on a worker."""
    import tensorflow as tf

    strategy = tf.distribute.ParameterServerStrategy(resolver)
    with strategy.scope():
        start = np.array(INITIAL_WEIGHTS).reshape(FEATURES, 1)
        weights = tf.Variable(start, name="weights")
        bias = tf.Variable(0.0, dtype=tf.float64, name="bias")
        round_weights = tf.Variable(start, name="round_weights", trainable=False)
        round_bias = tf.Variable(0.0, dtype=tf.float64, name="round_bias", trainable=False)
    variables = [weights, bias, round_weights, round_bias]
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    @tf.function
    def train_step(inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
        def replica_step(inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch([round_weights, round_bias])
                predictions = tf.matmul(inputs, round_weights) + round_bias
                loss = tf.reduce_mean(tf.square(predictions - targets))
            weights_gradient, bias_gradient = tape.gradient(loss, [round_weights, round_bias])
            share = LEARNING_RATE / STEPS_PER_ROUND
            weights.assign_sub(share * weights_gradient)
            bias.assign_sub(share * bias_gradient)
            # Runs where the step runs: the pod's own hostname file.
            return {"loss": loss, "hostname": tf.io.read_file("/etc/hostname")}

        outputs: dict[str, tf.Tensor] = strategy.run(replica_step, args=(inputs, targets))
        return outputs

    scheduled = []
    for round_index in range(ROUNDS):
        for step in range(STEPS_PER_ROUND):
            inputs, targets = step_batch(batches, round_index, step)
            scheduled.append(coordinator.schedule(train_step, args=(inputs, targets)))
        coordinator.join()  # every step of the round has run
        round_weights.assign(weights)
        round_bias.assign(bias)
    outputs = [remote.fetch() for remote in scheduled]
    return {
        "steps": len(outputs),
        "executed_on": [output["hostname"].decode().strip() for output in outputs],
        "losses": [float(output["loss"]) for output in outputs],
        "devices": {v.name.split(":")[0]: v.device for v in variables},
        "weights": [*(float(w) for w in weights.numpy().flatten()), float(bias.numpy())],
    }


def main() -> None:
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec()
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type != "chief":
        server = tf.distribute.Server(
            cluster,
            job_name=task_type,
            task_index=task_id,
            protocol=resolver.rpc_layer or "grpc",
            start=True,
        )
        print(f"serving {task_type}:{task_id}", flush=True)
        server.join()
        sys.exit("the server stopped")  # join() returns only if serving failed
    folder = dataset_folder(os.environ)
    batches = None if folder is None else read_batches(folder)
    wait_for_servers(cluster.as_dict())
    report = {
        "task": f"{task_type}:{task_id}",
        "hostname": socket.gethostname(),
        "cluster": cluster.as_dict(),
        "data": None if folder is None else str(Path(folder) / BATCHES_FILE),
        **coordinate(resolver, batches),
    }
    print(RESULT_PREFIX + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
