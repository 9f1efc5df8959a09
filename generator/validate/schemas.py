"""Strict schema validation with one compiled validator per kind, reused for every object.

Built-in kinds use the strict schemas the `kubernetes-validate` package ships; its own
`validate()` re-reads and recompiles them on every call, about 30 times slower than a
cached validator. Custom resources use schema locations: a folder laid out
`{group}/{kind}_{version}.json`, or a kubeconform-style template such as
`https://host/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json` whose downloads
are cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from generator.validate import schema_sources

BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)


@dataclass(frozen=True)
class SchemaError:
    field: str
    message: str


class MissingSchema(Exception):
    """No schema for an object's kind; the caller decides whether that is an error.
    `transient` when the schema could not be fetched: worth asking again next run."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _schema_root() -> Path:
    return Path(str(resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")))


@cache
def builtin_versions() -> list[str]:
    found = [
        m.group(1)
        for p in _schema_root().iterdir()
        if (m := re.match(r"^v(\d+\.\d+)\.\d+-local-strict$", p.name))
    ]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def _builtin_dir(kubernetes_version: str) -> Path:
    wanted = tuple(int(x) for x in kubernetes_version.split("."))
    usable = [v for v in builtin_versions() if tuple(int(x) for x in v.split(".")) <= wanted]
    if not usable:
        raise MissingSchema(f"no built-in schemas for Kubernetes {kubernetes_version}")
    return _schema_root() / f"v{usable[-1]}.0-local-strict"


@cache
def _builtin_definitions(folder: Path) -> Resource[Any]:
    return Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))


@cache
def builtin_validator(kubernetes_version: str, api_version: str, kind: str) -> Any:
    folder = _builtin_dir(kubernetes_version)
    short_group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = folder / f"{kind.lower()}-{short_group}.json"
    if not path.is_file():
        raise MissingSchema(
            f"no built-in schema for {kind} {api_version} in Kubernetes {kubernetes_version}"
        )
    schema = json.loads(path.read_text())
    resource = Resource.from_contents(schema)
    registry: Registry[Any] = _builtin_definitions(folder) @ (resource @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlgitops" / "schemas"


def _fill_template(template: str, group: str, version: str, kind: str) -> str:
    values = {
        "Group": group,
        "ResourceKind": kind.lower(),
        "ResourceAPIVersion": version,
        "Kind": kind,
    }
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _load_location(location: str, group: str, version: str, kind: str) -> dict[str, Any] | None:
    if location == schema_sources.PINNED:
        try:
            return schema_sources.pinned_schema(group, version, kind)
        except schema_sources.DownloadError as error:
            raise MissingSchema(
                f"{error} (the CRDs of the pinned release; offline, give --schema-location)",
                transient=True,
            ) from None
    if "{{" in location:
        where = _fill_template(location, group, version, kind)
    else:
        where = str(Path(location) / group / f"{kind.lower()}_{version}.json")
    if where.startswith(("https://", "http://")):
        return _download(where)
    path = Path(where)
    return json.loads(path.read_text()) if path.is_file() else None


def _download(url: str) -> dict[str, Any] | None:
    cached = cache_folder() / (hashlib.sha256(url.encode()).hexdigest() + ".json")
    if cached.is_file():
        text = cached.read_text()
        return None if text == "null" else json.loads(text)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            schema: dict[str, Any] | None = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise MissingSchema(f"{url}: HTTP {error.code}", transient=True) from None
        schema = None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise MissingSchema(f"{url}: {error}", transient=True) from None
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(schema))
    return schema


_GO_LEADING_FLAGS = re.compile(r"^\^(\(\?[imsU]+\))")


def python_patterns(schema: Any) -> Any:
    """CRD patterns are Go (RE2) expressions, where flags may follow the anchor
    (Kueue v0.17.6's AdmissionCheck `parameters.kind`: `^(?i)[a-z]...`); Python's `re`
    takes global flags only first, so `^(?i)x` is read as the same `(?i)^x`."""
    if isinstance(schema, dict):
        found = {k: python_patterns(v) for k, v in schema.items()}
        pattern = found.get("pattern")
        if isinstance(pattern, str):
            found["pattern"] = _GO_LEADING_FLAGS.sub(r"\1^", pattern)
        return found
    if isinstance(schema, list):
        return [python_patterns(v) for v in schema]
    return schema


class SchemaSet:
    """Finds and compiles the schema for each (version, apiVersion, kind) once."""

    def __init__(self, locations: list[str]) -> None:
        self.locations = locations
        self._custom: dict[tuple[str, str], Any] = {}

    def validator(self, kubernetes_version: str, api_version: str, kind: str) -> Any:
        group, version = split_api_version(api_version)
        if group in BUILTIN_GROUPS:
            return builtin_validator(kubernetes_version, api_version, kind)
        key = (api_version, kind)
        if key not in self._custom:
            self._custom[key] = self._custom_validator(group, version, kind)
        if self._custom[key] is None:
            where = ", ".join(self.locations) or "no --schema-location given"
            raise MissingSchema(f"no schema for {kind} {api_version} ({where})")
        return self._custom[key]

    def _custom_validator(self, group: str, version: str, kind: str) -> Any:
        for location in self.locations:
            schema = _load_location(location, group, version, kind)
            if schema is not None:
                schema = python_patterns(schema)
                cls = jsonschema.validators.validator_for(
                    schema, default=jsonschema.Draft7Validator
                )
                return cls(schema)
        return None

    def errors(self, obj: dict[str, Any], kubernetes_version: str) -> Iterator[SchemaError]:
        validator = self.validator(
            kubernetes_version, obj.get("apiVersion", ""), obj.get("kind", "")
        )
        for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path]):
            field = ".".join(str(p) for p in error.path) or "(root)"
            yield SchemaError(field, _short(error.message))


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."
