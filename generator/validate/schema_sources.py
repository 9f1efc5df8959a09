"""Where `validate` finds the schemas of custom resources when it is given none.

Two public sources, both pinned so a run means the same thing tomorrow:

- the operators mlgitops installs, at the exact release tags it pins
  (generator/operator_facts.py): their CustomResourceDefinitions are downloaded once from
  the tag, converted to strict JSON schemas (`convert_crd`) and kept in the cache. A field
  the pinned release does not have fails validation, as the API server of a cluster
  running that release would refuse it.
- for everything else the tree holds (Argo CD, Flux, ACK, Config Connector, ...), the
  CRDs catalog (github.com/datreeio/CRDs-catalog) at one commit.

`MLGITOPS_SCHEMA_LOCATION` (locations separated by commas) replaces both, and
`--schema-location` replaces all of them: that is how a machine without internet
validates. `MLGITOPS_SCHEMA_MIRROR` points the downloads at a mirror of
raw.githubusercontent.com (same paths), for networks that reach GitHub only through one.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.operator_facts import JOBSET, KUEUE, TRAINER, TRAINING_OPERATOR

# The location name that stands for the pinned operators' CRDs.
PINNED = "pinned-operator-crds"
RAW_GITHUB = "https://raw.githubusercontent.com"
CATALOG_REPO = "datreeio/CRDs-catalog"
# The catalog's commit of 2026-08-20: Argo CD 3.x, Flux 2.x, ACK and Config Connector
# schemas (the same files the project's CI validates against).
CATALOG_COMMIT = "7b1e26ef9deea49293714d204c1a2270aab1178f"
CATALOG_PATH = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
# Config Connector on GKE is the managed add-on (its version is GKE's); the
# ConfigConnectorContext CRD is that of this release of the operator.
CONFIG_CONNECTOR_TAG = "v1.155.1"
MAX_CRD_BYTES = 16 * 1024 * 1024  # the largest CRD file of these is about 1.5 MB
DOWNLOAD_TIMEOUT = 30.0


@dataclass(frozen=True)
class CrdFiles:
    """The CustomResourceDefinitions of one API group, as files in a repository at a tag."""

    group: str
    repo: str  # owner/name on GitHub
    tag: str
    paths: tuple[str, ...]

    def urls(self, base: str) -> Iterator[str]:
        for path in self.paths:
            yield f"{base}/{self.repo}/{self.tag}/{path}"


def _files(folder: str, group: str, plurals: str) -> tuple[str, ...]:
    return tuple(f"{folder}/{group}_{plural}.yaml" for plural in plurals.split())


def _github(repo_url: str) -> str:
    return repo_url.removeprefix("https://github.com/").removesuffix(".git")


# Paths at each tag (controller-gen's `<group>_<plural>.yaml`): Kueue and JobSet
# config/components/crd/bases, the Training Operator v1 and Trainer manifests/base/crds,
# Config Connector operator/config/crd/bases.
PINNED_CRDS: tuple[CrdFiles, ...] = (
    CrdFiles(
        "kueue.x-k8s.io",
        _github(KUEUE.repo),
        KUEUE.tag,
        _files(
            "config/components/crd/bases",
            "kueue.x-k8s.io",
            "admissionchecks clusterqueues cohorts localqueues multikueueclusters "
            "multikueueconfigs provisioningrequestconfigs resourceflavors topologies "
            "workloadpriorityclasses workloads",
        ),
    ),
    CrdFiles(
        "jobset.x-k8s.io",
        _github(JOBSET.repo),
        JOBSET.tag,
        _files("config/components/crd/bases", "jobset.x-k8s.io", "jobsets"),
    ),
    CrdFiles(
        "kubeflow.org",
        _github(TRAINING_OPERATOR.repo),
        TRAINING_OPERATOR.tag,
        _files(
            "manifests/base/crds",
            "kubeflow.org",
            "jaxjobs mpijobs paddlejobs pytorchjobs tfjobs xgboostjobs",
        ),
    ),
    CrdFiles(
        "trainer.kubeflow.org",
        _github(TRAINER.repo),
        TRAINER.tag,
        _files(
            "manifests/base/crds",
            "trainer.kubeflow.org",
            "clustertrainingruntimes trainingruntimes trainjobs",
        ),
    ),
    CrdFiles(
        "core.cnrm.cloud.google.com",
        "GoogleCloudPlatform/k8s-config-connector",
        CONFIG_CONNECTOR_TAG,
        _files(
            "operator/config/crd/bases", "core.cnrm.cloud.google.com", "configconnectorcontexts"
        ),
    ),
)
PINNED_GROUPS = {files.group: files for files in PINNED_CRDS}


class DownloadError(Exception):
    """A pinned source could not be fetched (worth asking again next run)."""


def raw_base() -> str:
    return os.environ.get("MLGITOPS_SCHEMA_MIRROR", RAW_GITHUB).rstrip("/")


def catalog_template() -> str:
    return f"{raw_base()}/{CATALOG_REPO}/{CATALOG_COMMIT}/{CATALOG_PATH}"


def default_locations() -> list[str]:
    """Where schemas come from when `--schema-location` is not given."""
    configured = os.environ.get("MLGITOPS_SCHEMA_LOCATION", "")
    if configured.strip():
        return [part.strip() for part in configured.split(",") if part.strip()]
    return [PINNED, catalog_template()]


def convert_crd(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A CustomResourceDefinition's schemas, per version, as strict JSON schemas: every
    object that lists its properties refuses others (unless the CRD keeps unknown fields
    there), and int-or-string fields take either. Kubernetes' own extensions stay (a
    JSON schema validator ignores them)."""
    found: dict[str, dict[str, Any]] = {}
    for version in crd.get("spec", {}).get("versions", []):
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if isinstance(schema, dict) and isinstance(version.get("name"), str):
            found[version["name"]] = _strict(schema)
    return found


def _strict(node: Any) -> Any:
    """A strict copy of a schema, built without recursion (a deep schema cannot exhaust
    the stack)."""
    result = _empty_like(node)
    stack: list[tuple[Any, Any]] = [(node, result)]
    while stack:
        original, copy = stack.pop()
        items = original.items() if isinstance(original, dict) else enumerate(original)
        for key, value in items:
            copy[key] = _empty_like(value)
            if isinstance(value, dict | list):
                stack.append((value, copy[key]))
        if isinstance(original, dict):
            if (
                "properties" in original
                and "additionalProperties" not in original
                and not original.get("x-kubernetes-preserve-unknown-fields")
            ):
                copy["additionalProperties"] = False
            if original.get("x-kubernetes-int-or-string") and "oneOf" not in original:
                copy["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    return result


def _empty_like(value: Any) -> Any:
    """A container to fill (lists keep their length), or the value itself."""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return [None] * len(value)
    return value


def pinned_folder() -> Path:
    from generator.validate.schemas import cache_folder

    return cache_folder() / "pinned"


def pinned_schema(group: str, version: str, kind: str) -> dict[str, Any] | None:
    """The strict schema of a kind of a pinned operator's group, downloading and
    converting the group's CRDs the first time; None for other groups or unknown kinds."""
    files = PINNED_GROUPS.get(group)
    if files is None:
        return None
    folder = pinned_folder() / f"{group}@{files.tag}"
    if not (folder / ".complete").is_file():
        _download_group(files, folder)
    path = folder / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _download_group(files: CrdFiles, folder: Path) -> None:
    schemas: dict[str, dict[str, Any]] = {}
    for url in files.urls(raw_base()):
        for document in yaml.safe_load_all(_fetch(url)):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            kind = str(document.get("spec", {}).get("names", {}).get("kind", "")).lower()
            for version, schema in convert_crd(document).items():
                schemas[f"{kind}_{version}.json"] = schema
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in sorted(schemas.items()):
        _write_atomically(folder / name, json.dumps(schema, sort_keys=True).encode())
    _write_atomically(folder / ".complete", "\n".join(files.urls(raw_base())).encode())


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            data: bytes = response.read(MAX_CRD_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: {reason}") from None
    if len(data) > MAX_CRD_BYTES:
        raise DownloadError(f"{url}: larger than {MAX_CRD_BYTES // (1024 * 1024)} MiB")
    return data


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def download_all(dest: Path | None = None) -> Path:
    """Every pinned group's schemas into the cache (or `dest`): a folder laid out
    {group}/{kind}_{version}.json, as `--schema-location` reads. For the pinned
    operators only; the catalog's files are fetched one by one as kinds need them."""
    target = dest or pinned_folder() / "all"
    for files in PINNED_CRDS:
        folder = pinned_folder() / f"{files.group}@{files.tag}"
        if not (folder / ".complete").is_file():
            _download_group(files, folder)
        group_dest = target / files.group
        group_dest.mkdir(parents=True, exist_ok=True)
        for schema in folder.glob("*.json"):
            _write_atomically(group_dest / schema.name, schema.read_bytes())
    return target
