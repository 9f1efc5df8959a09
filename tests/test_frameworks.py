"""The framework wiring, run for real: the TF_CONFIG shell prefix under /bin/sh, and
torchrun's program forms."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from typing import Any

import pytest

from generator.config.load import load_default_config
from generator.render import frameworks


def tf_config_of_every_pod(workers: int, parameter_servers: int) -> list[dict[str, Any]]:
    workload = replace(
        load_default_config().workloads[1], workers=workers, parameter_servers=parameter_servers
    )
    launch = frameworks.launch(workload)
    env = {e["name"]: e["value"] for e in launch.env}
    configs = []
    for index in range(workload.pod_count):
        run = subprocess.run(
            [*launch.command, "sh", "-c", 'printf %s "$TF_CONFIG"'],
            env={**env, "JOB_COMPLETION_INDEX": str(index)},
            capture_output=True,
            text=True,
            check=True,
        )
        configs.append(json.loads(run.stdout))
    return configs


def test_tf_config_names_every_task_and_this_pods_role() -> None:
    """With parameter servers, index 0 is the chief that coordinates the training; the
    `workers` that compute and the parameter servers follow."""
    configs = tf_config_of_every_pod(workers=2, parameter_servers=1)
    cluster = {
        "chief": ["bert-finetune-0.bert-finetune:2222"],
        "worker": ["bert-finetune-1.bert-finetune:2222", "bert-finetune-2.bert-finetune:2222"],
        "ps": ["bert-finetune-3.bert-finetune:2222"],
    }
    assert configs == [
        {"cluster": cluster, "task": {"type": "chief", "index": 0}},
        {"cluster": cluster, "task": {"type": "worker", "index": 0}},
        {"cluster": cluster, "task": {"type": "worker", "index": 1}},
        {"cluster": cluster, "task": {"type": "ps", "index": 0}},
    ]


@pytest.mark.parametrize(("workers", "parameter_servers"), [(1, 1), (3, 2), (5, 3)])
def test_every_pod_of_a_parameter_server_job_has_one_chief_and_a_task_of_its_own(
    workers: int, parameter_servers: int
) -> None:
    configs = tf_config_of_every_pod(workers, parameter_servers)
    assert len(configs) == 1 + workers + parameter_servers
    tasks = [(c["task"]["type"], c["task"]["index"]) for c in configs]
    assert tasks == [
        ("chief", 0),
        *(("worker", i) for i in range(workers)),
        *(("ps", i) for i in range(parameter_servers)),
    ]
    for index, config in enumerate(configs):
        cluster = config["cluster"]
        assert {role: len(addresses) for role, addresses in cluster.items()} == {
            "chief": 1,
            "worker": workers,
            "ps": parameter_servers,
        }
        task = config["task"]
        # Each pod's own address is its task's: `<job>-<completion index>.<job>`.
        own = cluster[task["type"]][task["index"]]
        assert own == f"bert-finetune-{index}.bert-finetune:2222"


def test_tf_config_without_parameter_servers_has_only_workers() -> None:
    """MultiWorkerMirroredStrategy: every pod trains, and worker 0 leads; no chief."""
    configs = tf_config_of_every_pod(workers=3, parameter_servers=0)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert all(set(c["cluster"]) == {"worker"} for c in configs)


def test_tf_prefix_runs_the_program_with_its_arguments() -> None:
    launch = frameworks.launch(load_default_config().workloads[1])
    run = subprocess.run(
        [*launch.command, "printf", "%s|", "a b", "$HOME"],
        env={"JOB_COMPLETION_INDEX": "0", "TF_CLUSTER": "{}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout == "a b|$HOME|"


@pytest.mark.parametrize(
    ("command", "program"),
    [
        (("python", "train.py", "--lr", "0.1"), ["train.py", "--lr", "0.1"]),
        (("/usr/bin/python3", "train.py"), ["train.py"]),
        (("python", "-m", "pkg.train", "-v"), ["-m", "pkg.train", "-v"]),
        (("python", "-u", "train.py"), ["--no-python", "python", "-u", "train.py"]),
        (("./train.sh", "fast"), ["--no-python", "./train.sh", "fast"]),
    ],
)
def test_torchrun_runs_scripts_modules_and_other_programs(
    command: tuple[str, ...], program: list[str]
) -> None:
    workload = replace(load_default_config().workloads[0], command=command)
    args = frameworks.launch(workload).args
    assert args[:5] == [
        "--nnodes=3",
        "--nproc-per-node=1",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--master-addr=resnet-ddp-0.resnet-ddp",
        "--master-port=29500",
    ]
    assert args[5:] == program


def test_torchrun_starts_one_process_per_gpu() -> None:
    workload = load_default_config().workloads[0]
    gpus = replace(workload, resources=replace(workload.resources, gpu=4))
    assert "--nproc-per-node=4" in frameworks.launch(gpus).args


def test_the_workloads_own_env_replaces_a_writable_default_and_keeps_the_rest() -> None:
    from generator.render import pods

    workload = load_default_config().workloads[0]
    own = replace(workload, env={"HF_HOME": "/ckpt/hf", "EXTRA": "1"})
    env = pods.render_trainer_container(own)["env"]
    names = [e["name"] for e in env]
    assert names.count("HF_HOME") == 1 and {"name": "HF_HOME", "value": "/ckpt/hf"} in env
    defaults = [name for name, _ in pods.WRITABLE_ENV if name != "HF_HOME"]
    assert [n for n in names if n in defaults] == defaults
    assert all(value.startswith(pods.SCRATCH_PATH) for _, value in pods.WRITABLE_ENV)


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("registry.example.com/ml/resnet:1.4.2", "Always"),
        ("registry.example.com/ml/resnet:1.4.2@sha256:" + "ab" * 32, "IfNotPresent"),
        ("registry.example.com/ml/resnet@sha256:" + "ab" * 32, "IfNotPresent"),
        ("localhost:5001/resnet:1.4.2", "Always"),
    ],
)
def test_the_pull_policy_follows_the_pinning(image: str, policy: str) -> None:
    from generator.render import pods

    workload = replace(load_default_config().workloads[0], image=image)
    assert pods.render_trainer_container(workload)["imagePullPolicy"] == policy
