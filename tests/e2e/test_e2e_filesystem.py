"""The generated pods' files: a read-only root, and writable volumes where the training
programs write (HOME, TMPDIR, the frameworks' caches), as the harness lays them out from
the built pod (readOnlyRootFilesystem, the emptyDir and claim mounts; see sandbox.py).

The seeds' trainings themselves (test_e2e_pytorch, test_e2e_tensorflow and the runtimes')
run the same way, so torchrun, PyTorch and TensorFlow are shown to need nothing else.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import kube
import pytest
from jobrun import Image, run_indexed_job
from workloads import Workload, with_trainer_edited

from generator.render.pods import WRITABLE_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sandboxes")]

DEADLINE_SECONDS = 120.0

# Writes a file under every folder the pod's environment names for writing, and one
# from tempfile, then says so.
WRITE_WHERE_POINTED = """
import os, sys, tempfile
for name in sys.argv[1:]:
    folder = os.environ[name]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "probe"), "w") as probe:
        probe.write(name)
with tempfile.NamedTemporaryFile() as scratch:
    scratch.write(b"x")
print("wrote", *sys.argv[1:])
"""


def _run_program(
    objects: list[kube.Manifest], workload: Workload, image: Image, folder: Path
) -> Any:
    return run_indexed_job(objects, workload.name, image, folder, DEADLINE_SECONDS)


def _with_program(
    workload: Workload, argv: list[str], read_only_root: bool = True
) -> list[kube.Manifest]:
    def edit(container: dict[str, Any]) -> None:
        container["command"] = argv
        container.pop("args", None)
        container["securityContext"]["readOnlyRootFilesystem"] = read_only_root

    return with_trainer_edited(workload, edit)


@pytest.fixture
def pytorch(seeds_workloads: dict[str, Workload]) -> Workload:
    return seeds_workloads["pytorch"]


def test_the_generated_pod_has_a_read_only_root(pytorch: Workload) -> None:
    job = kube.find(pytorch.objects, "Job", pytorch.name)
    (pod,) = kube.indexed_job_pods(job)[:1]
    process = kube.container_process(pod, "192.0.2.10", "node")
    assert process.read_only_root
    assert kube.Mount("/tmp", None) in process.mounts
    for name, value in WRITABLE_ENV:
        assert process.env[name] == value


def test_home_tmpdir_and_every_cache_are_writable(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    names = [name for name, _ in WRITABLE_ENV]
    objects = _with_program(pytorch, ["python", "-c", WRITE_WHERE_POINTED, *names])
    run = _run_program(objects, pytorch, image, tmp_path)
    assert run.outcome == "Complete", run.describe()
    assert all(f"wrote {' '.join(names)}" in pod.output for pod in run.pods), run.describe()


def test_a_program_that_writes_outside_its_volumes_fails(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """/var/tmp is on the machine's root filesystem and writable there: only the pod's
    read-only root stops the write."""
    target = Path("/var/tmp") / f"mlgitops-e2e-{uuid.uuid4().hex}"
    program = f"open({str(target)!r}, 'w').write('x')"
    run = _run_program(_with_program(pytorch, ["python", "-c", program]), pytorch, image, tmp_path)
    assert run.outcome == "Failed", run.describe()
    assert any("Read-only file system" in pod.output for pod in run.pods), run.describe()
    assert not target.exists()


def _without_mounts_under(objects: list[kube.Manifest], name: str, folder: str) -> None:
    """The Job's pods without their mounts below `folder` (the dataset's /data/...)."""
    container = kube.find(objects, "Job", name)["spec"]["template"]["spec"]["containers"][0]
    mounts = container["volumeMounts"]
    container["volumeMounts"] = [m for m in mounts if not m["mountPath"].startswith(folder)]


def test_without_read_only_root_the_same_write_succeeds(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """The other side of the test above: the harness honours the field, it does not
    make every root read-only. (Without the dataset's mount, whose missing mount point
    would cover `/` with the pod's own layer: the next test.)"""
    target = Path("/var/tmp") / f"mlgitops-e2e-{uuid.uuid4().hex}"
    program = f"open({str(target)!r} + __import__('socket').gethostname(), 'w').write('x')"
    objects = _with_program(pytorch, ["python", "-c", program], read_only_root=False)
    _without_mounts_under(objects, pytorch.name, "/data/")
    try:
        run = _run_program(objects, pytorch, image, tmp_path)
        assert run.outcome == "Complete", run.describe()
    finally:
        written = list(target.parent.glob(f"{target.name}*"))
        for path in written:
            path.unlink()
    assert len(written) == len(run.pods)


def test_a_mount_point_the_machine_lacks_is_made_in_the_pod_alone(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """The dataset's /data/imagenet: the machine has no /data, so the pod's root gets a
    layer of its own (as a container's image would), and a pod without a read-only root
    writes to that layer, never to the machine; each pod sees only its own file."""
    assert not Path("/data").exists(), "this machine has a /data: the case does not arise"
    mounts = [m["mountPath"] for m in _trainer(pytorch)["volumeMounts"]]
    assert any(m.startswith("/data/") for m in mounts), mounts
    name = f"mlgitops-e2e-{uuid.uuid4().hex}"
    program = (
        "import os, socket\n"
        f"open('/var/tmp/{name}-' + socket.gethostname(), 'w').write('x')\n"
        f"print('mine', sorted(n for n in os.listdir('/var/tmp') if n.startswith({name!r})))\n"
        "print('data', sorted(os.listdir('/data')))\n"
    )
    objects = _with_program(pytorch, ["python", "-c", program], read_only_root=False)
    try:
        run = _run_program(objects, pytorch, image, tmp_path)
    finally:
        leaked = list(Path("/var/tmp").glob(f"{name}*"))
        for path in leaked:
            path.unlink()
    assert run.outcome == "Complete", run.describe()
    assert not leaked and not Path("/data").exists()
    for pod in run.pods:
        assert f"mine {[f'{name}-{pod.pod.hostname}']!r}" in pod.output, run.describe()
        assert "data ['imagenet']" in pod.output, run.describe()


def _trainer(workload: Workload) -> dict[str, Any]:
    job = kube.find(workload.objects, "Job", workload.name)
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def test_a_claim_is_one_folder_for_every_pod_and_an_empty_dir_one_per_pod(
    pytorch: Workload, image: Image, tmp_path: Path
) -> None:
    """Each pod writes its hostname to its /tmp and to a claim mounted at /mnt; every pod
    then sees only its own file in /tmp, and all of them in the claim."""
    objects = copy.deepcopy(pytorch.objects)
    spec = kube.find(objects, "Job", pytorch.name)["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}})
    spec["containers"][0]["volumeMounts"].append({"name": "shared", "mountPath": "/mnt"})
    program = (
        "import os, socket, sys, time\n"
        "me = socket.gethostname()\n"
        "for folder in ('/tmp', '/mnt'):\n"
        "    open(os.path.join(folder, me), 'w').write(me)\n"
        f"while len([n for n in os.listdir('/mnt') if n.startswith({pytorch.name!r})]) < "
        f"{pytorch.config['workers']}:\n"
        "    time.sleep(0.1)\n"
        # (the image's own folders, when the checkout lies under /tmp, are not the pod's)
        "image = [os.getcwd() + '/', sys.prefix + '/']\n"
        "mine = [n for n in os.listdir('/tmp')\n"
        "        if not any(i.startswith(f'/tmp/{n}/') for i in image)]\n"
        "print('tmp', sorted(mine), 'claim', sorted(os.listdir('/mnt')))\n"
    )
    edited = Workload(pytorch.name, pytorch.namespace, objects, pytorch.config)
    run = _run_program(_with_program(edited, ["python", "-c", program]), pytorch, image, tmp_path)
    assert run.outcome == "Complete", run.describe()
    hostnames = sorted(pod.pod.hostname for pod in run.pods)
    for pod in run.pods:
        assert f"tmp {[pod.pod.hostname]!r} claim {hostnames!r}" in pod.output, run.describe()
