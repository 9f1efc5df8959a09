"""A private network for one test: one network, mount and UTS namespace per pod.

Several pods listen on the same port (every TensorFlow task binds the gRPC port of its
own entry on all addresses), so each pod needs a network stack of its own, as in a
cluster. Each pod's namespaces are held open by an idle process, and its end of a veth
pair is plugged into a bridge that lives in one more namespace of its own: nothing is
added to the machine's network, and no name is left in /run/netns, because unnamed
namespaces vanish with the last process inside them.

The pods' addresses come from TEST-NET-1 (192.0.2.0/24, RFC 5737), which is never routed:
they exist only inside these namespaces, and no namespace here has a route out.

Each pod's mount namespace gets its own /etc/hosts, /etc/hostname and /etc/resolv.conf by
bind mounts, as the kubelet gives every container its own, and the UTS namespace carries
the pod's hostname.

The machine's files are the image. For a container with `readOnlyRootFilesystem`, every
mount the pod's namespace holds is remounted read-only there (the kernel's /proc, /sys
and /dev stay as a container runtime leaves them), and only its volumes are writable:
each `emptyDir` a fresh tmpfs, each claim a folder of the test bind-mounted writable. A
program that writes anywhere else gets EROFS, as in a cluster. A volume the pod mounts
`readOnly` (the mount's or its claim's) is mounted read-only, and writing there fails
with EROFS too.

A container runtime creates a mount point the image lacks (runc mkdirs it in the
container's root). Nothing is created on the machine: where the path is missing, the
nearest folder above it that exists (`/` for `/data/imagenet` here) is covered, in the
pod's namespace only, by an overlay whose writable layer is a tmpfs of that namespace,
with the mounts below it bound back on top, the missing folders are made in that layer,
and the overlay is read-only again with `readOnlyRootFilesystem` (MOUNT_CLAIMS). A
pod without a read-only root then writes below that folder into its own layer, as a
container writes into its own, never onto the machine; the claims are bound from the
test's folders, opened before any overlay, so what a pod writes there every pod and the
test see. A volume whose path has a file in the way is left out, so reading or writing
there fails.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

SUBNET = ipaddress.ip_network("192.0.2.0/24")
FIRST_HOST = 10
BRIDGE = "br0"
NAMESPACE_FILES = {"net": "net", "mount": "mnt", "uts": "uts"}
STOP_GRACE_SECONDS = 5.0
# If the test process itself is killed, what it started goes too (a parameter server
# never exits on its own).
PDEATHSIG = "--pdeathsig=KILL"
IDLE_AFTER_READY = ["sh", "-c", "echo ready; exec sleep infinity"]
# What a container runtime mounts for the kernel; readOnlyRootFilesystem leaves them be.
KERNEL_MOUNTS = ("/proc", "/sys", "/dev")


class NamespaceError(RuntimeError):
    """The machine cannot create the namespaces or links a sandbox needs."""


@functools.cache
def tool(name: str) -> str:
    """A system program by absolute path; the sbin folders count even when not on PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if not found:
        raise NamespaceError(f"{name} is not installed")
    return found


def _run(argv: Sequence[str]) -> None:
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)}: {run.stderr.strip() or run.returncode}")


class _Holder:
    """An idle process that owns fresh namespaces, so others can join them with nsenter."""

    def __init__(self, kinds: Sequence[str]) -> None:
        flags = [f"--{kind}" for kind in kinds]
        if "mount" in kinds:
            flags.append("--propagation=private")  # bind mounts stay inside
        # `ready` is printed only after unshare(2) succeeded: joining earlier would join
        # (and change) the machine's own network namespace.
        self.process = subprocess.Popen(
            [tool("setpriv"), PDEATHSIG, tool("unshare"), *flags, "--", *IDLE_AFTER_READY],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout and self.process.stderr
        if self.process.stdout.readline().strip() != "ready":
            self.process.wait()
            raise NamespaceError(f"unshare {' '.join(flags)}: {self.process.stderr.read()}")
        self.process.stdout.close()
        self.process.stderr.close()
        for kind in kinds:
            file = NAMESPACE_FILES[kind]
            theirs = os.readlink(f"/proc/{self.process.pid}/ns/{file}")
            if theirs == os.readlink(f"/proc/self/ns/{file}"):
                self.stop()
                raise NamespaceError(f"unshare --{kind} left the process in this namespace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def enter(self, *kinds: str) -> list[str]:
        namespaces = [f"--{kind}" for kind in kinds]
        return [tool("nsenter"), f"--target={self.pid}", *namespaces, "--"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Host:
    """One pod's network, files and hostname."""

    def __init__(self, holder: _Holder, hostname: str, address: str, files: Path) -> None:
        self._holder = holder
        self.hostname = hostname
        self.address = address
        self._files = files
        self._processes: list[subprocess.Popen[bytes]] = []

    def provide(self, path: str, text: str) -> None:
        """Give this pod its own copy of `path` (e.g. /etc/hosts), leaving the machine's."""
        source = self._files / path.strip("/").replace("/", "_")
        source.write_text(text)
        _run([*self._holder.enter("mount"), tool("mount"), "--bind", str(source), path])

    def lay_out_files(
        self, read_only_root: bool, volumes: Sequence[Volume], image: Sequence[Path] = ()
    ) -> list[str]:
        """The container's filesystem: with `read_only_root` every mount read-only but
        the kernel's, then each volume on top, writable unless it is read-only. The
        paths of volumes whose mount point cannot be made come back (they are not
        mounted). `image` are the folders the image brings (its programs, its workdir):
        an emptyDir mounted above one of them (the pod's /tmp over a checkout under
        /tmp) does not hide it."""
        (self._files / "layers").mkdir(exist_ok=True)  # before the root is read-only
        if read_only_root:
            self._remount_read_only()
        for volume in volumes:
            if volume.source is not None:
                volume.source.mkdir(parents=True, exist_ok=True)
        # The claims first: a tmpfs on /tmp would hide the test's folders below it.
        left_out = self._mount_claims(volumes, read_only_root)
        mount = [*self._holder.enter("mount"), tool("mount")]
        for volume in volumes:
            if volume.source is None and volume.path not in left_out:
                self._empty_dir(volume.path, image)
                if volume.read_only:
                    _run([*mount, "-o", "remount,bind,ro", volume.path])
        return left_out

    def _mount_claims(self, volumes: Sequence[Volume], read_only_root: bool) -> list[str]:
        """Every volume's mount point, made where missing, and each claim's folder bound
        there (MOUNT_CLAIMS); the paths that could not be made."""
        request = {
            "volumes": [
                {"path": v.path, "source": v.source and str(v.source), "read_only": v.read_only}
                for v in volumes
            ],
            "layers": str(self._files / "layers"),
            "read_only_root": read_only_root,
            "mount": tool("mount"),
            "enter": self._holder.enter("mount"),
            "script": MOUNT_CLAIMS,
        }
        argv = [*self._holder.enter("mount"), sys.executable, "-c", MOUNT_CLAIMS]
        run = subprocess.run([*argv, json.dumps(request)], capture_output=True, text=True)
        if run.returncode != 0:
            raise NamespaceError(f"laying out the pod's volumes: {run.stderr.strip()}")
        left_out: list[str] = json.loads(run.stdout)
        return left_out

    def _empty_dir(self, path: str, image: Sequence[Path]) -> None:
        """A fresh tmpfs at `path`; the image's folders under it are opened first, and
        bound back from those open descriptors once the tmpfs hides them (mount -c, so
        the kernel follows /proc/self/fd/N to the hidden folder, not to its name)."""
        inside = {str(f) for f in image if f.is_dir() and str(f).startswith(f"{path.rstrip('/')}/")}
        under = sorted(f for f in inside if not any(f.startswith(f"{o}/") for o in inside))
        steps = [f"exec {3 + i}<{shlex.quote(folder)}" for i, folder in enumerate(under)]
        steps.append(f"{tool('mount')} -t tmpfs -o mode=1777 emptydir {shlex.quote(path)}")
        for i, folder in enumerate(under):
            steps.append(f"mkdir -p {shlex.quote(folder)}")
            steps.append(f"{tool('mount')} -c --bind /proc/self/fd/{3 + i} {shlex.quote(folder)}")
        _run([*self._holder.enter("mount"), tool("sh"), "-c", " && ".join(steps)])

    def _remount_read_only(self) -> None:
        pid = self._holder.pid
        if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            raise NamespaceError("the pod has no mount namespace of its own")  # never the machine's
        mount = [*self._holder.enter("mount"), tool("mount")]
        for point, options in _mounts(pid):
            if any(point == top or point.startswith(f"{top}/") for top in KERNEL_MOUNTS):
                continue
            kept = [o for o in options if o not in ("rw", "ro")]
            _run([*mount, "-o", ",".join(["remount", "bind", "ro", *kept]), point])

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """Run `argv` inside the pod with exactly `env`; output goes to `log`."""
        entering = self._holder.enter("net", "mount", "uts")
        # The working directory as the pod sees it, entered once inside (nsenter's --wd
        # opens it before joining, the machine's folder, which the pod's root may not
        # reach once an overlay covers it); env then execs the program in place.
        inside = [tool("env"), "-C", str(cwd), "--"]
        process = subprocess.Popen(
            [tool("setpriv"), PDEATHSIG, *entering, *inside, *argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append(process)
        return process

    def stop_processes(self) -> None:
        """SIGTERM to each process group started here, then SIGKILL after a grace period,
        as the kubelet does when a Job is finished or failed."""
        running = [p for p in self._processes if p.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for process in self._processes:
            # Children a program left behind in its own group go too.
            _signal_group(process, signal.SIGKILL)


# Runs in the pod's mount namespace, with the request as JSON in argv[1]; prints the paths
# it could not make (a file in the way). Each claim's folder is opened first, as the pod
# sees it now. Then each missing mount point is made, each by a process of its own that
# enters the namespace again (so it sees the overlays made before): the nearest folder above it that
# exists is covered by an overlay whose upper layer is on a tmpfs of the pod (at
# `layers`); every mount below that folder, which the overlay would hide, is opened
# first and bound back from its descriptor by a process that enters the namespace again
# (setns(2) starts it at the namespace's top root, so it sees the overlay even where the
# folder is `/`; with /proc hidden too, it mounts a fresh procfs first to reach the
# descriptors); the missing folders are made in the overlay, which is made read-only
# again with `read_only_root`. Last, each claim's folder is bound from its descriptor,
# read-only or not: the test's folder, never its copy in an overlay.
MOUNT_CLAIMS = r"""
import json, os, re, shlex, subprocess, sys, tempfile
request = json.loads(sys.argv[1])
mount, layers, enter = request["mount"], request["layers"], request["enter"]
claims = {v["path"]: os.open(v["source"], os.O_PATH) for v in request["volumes"] if v["source"]}

def mount_points():
    found = []
    for line in open("/proc/self/mountinfo"):
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split(" ")[4])
        if point not in found:
            found.append(point)
    return found

def inside(steps, fds):
    subprocess.run([*enter, "sh", "-c", " && ".join(steps)], pass_fds=fds, check=True)

def make(path):
    missing = path
    while not os.path.isdir(os.path.dirname(missing)):
        missing = os.path.dirname(missing)
    if os.path.lexists(missing):
        return False
    folder = os.path.dirname(missing)
    points = mount_points()
    if layers not in points:
        subprocess.run([mount, "-t", "tmpfs", "-o", "mode=0700", "layers", layers], check=True)
        points.append(layers)
    below = folder.rstrip("/") + "/"
    points = [p for p in points if p.startswith(below) and p != folder]
    hidden = [p for p in points if not any(p.startswith(q.rstrip("/") + "/") for q in points)]
    kept = [os.open(p, os.O_PATH) for p in hidden]
    layer = tempfile.mkdtemp(dir=layers)
    os.mkdir(layer + "/upper")
    os.mkdir(layer + "/work")
    options = f"lowerdir={folder},upperdir={layer}/upper,workdir={layer}/work"
    subprocess.run([mount, "-t", "overlay", "-o", options, "mountpoint", folder], check=True)
    steps = [f"{mount} -t proc proc /proc"] if "/proc" in hidden else []
    for fd, point in zip(kept, hidden):
        steps.append(f"{mount} -c --rbind /proc/self/fd/{fd} {shlex.quote(point)}")
    steps.append(f"mkdir -p {shlex.quote(path)}")
    if request["read_only_root"]:
        steps.append(f"{mount} -o remount,ro {shlex.quote(folder)}")
    inside(steps, kept)
    for fd in kept:
        os.close(fd)
    return True

if sys.argv[2:3] == ["make"]:  # one mount point, by a process that sees every overlay
    sys.exit(0 if os.path.isdir(sys.argv[3]) or make(sys.argv[3]) else 3)
left_out = []
for volume in request["volumes"]:
    again = [*enter, sys.executable, "-c", request["script"], sys.argv[1], "make", volume["path"]]
    made = subprocess.run(again).returncode
    if made not in (0, 3):
        sys.exit(f"making {volume['path']}: exit {made}")
    if made == 3:
        left_out.append(volume["path"])
binds = []
for volume in request["volumes"]:
    path = volume["path"]
    if volume["source"] and path not in left_out:
        mode = "ro" if volume["read_only"] else "rw"
        binds.append(f"{mount} -c --bind /proc/self/fd/{claims[path]} {shlex.quote(path)}")
        binds.append(f"{mount} -o remount,bind,{mode} {shlex.quote(path)}")
if binds:
    inside(binds, list(claims.values()))
print(json.dumps(left_out))
"""


@dataclass(frozen=True)
class Volume:
    """A volume at `path`: a fresh tmpfs (`source` None) or the folder `source`, writable
    unless `read_only`."""

    path: str
    source: Path | None = None
    read_only: bool = False


def _mounts(pid: int) -> list[tuple[str, list[str]]]:
    """Each mount point of the process's mount namespace, parents first, with its
    per-mount options (proc(5), mountinfo: the fifth and sixth fields)."""
    found = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        found.append((point, fields[5].split(",")))
    return found


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class Sandbox:
    """A bridge in a namespace of its own, and pods plugged into it."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._hosts: list[Host] = []
        self._holders: list[_Holder] = []
        self._switch = self._hold(["net"])
        try:
            _run([*self._switch.enter("net"), tool("ip"), "link", "add", BRIDGE, "type", "bridge"])
            _run([*self._switch.enter("net"), tool("ip"), "link", "set", BRIDGE, "up"])
        except NamespaceError:
            self.close()
            raise

    def _hold(self, kinds: Sequence[str]) -> _Holder:
        holder = _Holder(kinds)
        self._holders.append(holder)
        return holder

    def add_host(self, hostname: str) -> Host:
        """A pod with the next free address on the bridge and `hostname` in its UTS."""
        number = len(self._hosts)
        address = str(SUBNET.network_address + FIRST_HOST + number)
        holder = self._hold(["net", "mount", "uts"])
        switch, pod = self._switch.enter("net"), holder.enter("net")
        port = f"veth{number}"
        peer = ["peer", "name", "eth0", "netns", str(holder.pid)]
        _run([*switch, tool("ip"), "link", "add", port, "type", "veth", *peer])
        _run([*switch, tool("ip"), "link", "set", port, "master", BRIDGE, "up"])
        _run([*pod, tool("ip"), "address", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0"])
        _run([*pod, tool("ip"), "link", "set", "eth0", "up"])
        _run([*pod, tool("ip"), "link", "set", "lo", "up"])
        _run([*holder.enter("uts"), tool("hostname"), hostname])
        files = self._folder / hostname
        files.mkdir(parents=True, exist_ok=True)
        host = Host(holder, hostname, address, files)
        self._hosts.append(host)
        return host

    def close(self) -> None:
        for host in self._hosts:
            host.stop_processes()
        for holder in self._holders:
            holder.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def unavailable_reason(folder: Path) -> str | None:
    """Why this machine cannot run sandboxes (no privileges, no veth or bridge), or None."""
    try:
        with Sandbox(folder) as sandbox:
            sandbox.add_host("probe")
    except (NamespaceError, OSError) as error:
        return f"cannot create network namespaces with a bridge here: {error}"
    return None
