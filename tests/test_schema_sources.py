"""Schemas when `validate` is given none: the pinned operators' CRDs, converted to strict
schemas, and the pinned CRDs catalog, downloaded once (here from a local mirror that
stands in for raw.githubusercontent.com)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.validate import schema_sources
from generator.validate.schema_sources import (
    CATALOG_COMMIT,
    CATALOG_REPO,
    PINNED_GROUPS,
    convert_crd,
)


def _crd(group: str, kind: str, version: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": f"{kind.lower()}s"},
            "scope": "Cluster",
            "versions": [{"name": version, "served": True, "storage": True, "schema": {
                "openAPIV3Schema": schema
            }}],
        },
    }  # fmt: skip


FLAVOR_SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "nodeLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "topologyName": {"type": "string"},
                "limit": {"x-kubernetes-int-or-string": True},
                "extra": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "string"}},
                },
            },
        },
    },
}


def test_a_crd_becomes_a_strict_schema_per_version() -> None:
    schemas = convert_crd(_crd("kueue.x-k8s.io", "ResourceFlavor", "v1beta2", FLAVOR_SCHEMA))
    assert list(schemas) == ["v1beta2"]
    spec = schemas["v1beta2"]["properties"]["spec"]
    assert schemas["v1beta2"]["additionalProperties"] is False
    assert spec["additionalProperties"] is False
    # a map keeps its own rule; a field that keeps unknown fields stays open
    assert spec["properties"]["nodeLabels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in spec["properties"]["extra"]
    assert spec["properties"]["limit"]["oneOf"] == [{"type": "string"}, {"type": "integer"}]
    assert FLAVOR_SCHEMA["properties"]["spec"].get("additionalProperties") is None  # a copy


def test_a_deep_crd_converts_without_recursion() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(20_000):
        schema = {"type": "object", "properties": {"a": schema}}
    converted = convert_crd(_crd("example.com", "Deep", "v1", schema))["v1"]
    depth = 0
    while "properties" in converted:
        assert converted["additionalProperties"] is False
        converted, depth = converted["properties"]["a"], depth + 1
    assert depth == 20_000


class _Mirror:
    """Serves files by path and records every request."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []


def _handler(mirror: _Mirror) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            mirror.requests.append(self.path)
            body = mirror.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[_Mirror]:
    """A raw.githubusercontent.com stand-in with Kueue's CRD files at the pinned tag
    (a real ResourceFlavor schema shape, placeholders for the rest) and the catalog's
    Application schema at the pinned commit."""
    kueue = PINNED_GROUPS["kueue.x-k8s.io"]
    files: dict[str, bytes] = {}
    for index, path in enumerate(kueue.paths):
        kind = "ResourceFlavor" if path.endswith("_resourceflavors.yaml") else f"Other{index}"
        schema = FLAVOR_SCHEMA if kind == "ResourceFlavor" else {"type": "object"}
        crd = _crd("kueue.x-k8s.io", kind, "v1beta2", schema)
        files[f"/{kueue.repo}/{kueue.tag}/{path}"] = yaml.safe_dump(crd).encode()
    application = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object"},
        },
    }
    catalog = f"/{CATALOG_REPO}/{CATALOG_COMMIT}/argoproj.io/application_v1alpha1.json"
    files[catalog] = json.dumps(application).encode()
    served = _Mirror(files)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLGITOPS_SCHEMA_MIRROR", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLGITOPS_SCHEMA_LOCATION", raising=False)
    yield served
    server.shutdown()
    server.server_close()


def _tree(folder: Path, flavor_spec: dict[str, Any]) -> Path:
    folder.mkdir()
    flavor = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "gpu"},
        "spec": flavor_spec,
    }
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "argocd"},
        "spec": {"project": "default"},
    }
    (folder / "flavor.yaml").write_text(yaml.safe_dump(flavor))
    (folder / "application.yaml").write_text(yaml.safe_dump(application))
    (folder / "kustomization.yaml").write_text("resources:\n- flavor.yaml\n- application.yaml\n")
    return folder


def _validate(folder: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["validate", str(folder), "--no-cache", *args])


def test_validate_with_no_flags_uses_the_pinned_crds_and_catalog(
    mirror: _Mirror, tmp_path: Path
) -> None:
    good = _tree(tmp_path / "good", {"nodeLabels": {"pool": "gpu"}, "limit": 4})
    result = _validate(good)
    assert result.exit_code == 0, result.output
    kueue = PINNED_GROUPS["kueue.x-k8s.io"]
    fetched = sorted(mirror.requests)
    assert fetched == sorted(
        [f"/{kueue.repo}/{kueue.tag}/{p}" for p in kueue.paths]
        + [f"/{CATALOG_REPO}/{CATALOG_COMMIT}/argoproj.io/application_v1alpha1.json"]
    )
    # A field the pinned release does not have is refused, from the cached schemas.
    mirror.requests.clear()
    bad = _tree(tmp_path / "bad", {"nodeLabels": {"pool": "gpu"}, "numProcPerNode": 2})
    result = _validate(bad)
    assert result.exit_code == 1
    assert "numProcPerNode" in result.stdout
    assert "ResourceFlavor/gpu" in result.stdout
    assert mirror.requests == []  # downloaded once


def test_offline_the_problem_says_how_to_validate_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLGITOPS_SCHEMA_MIRROR", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLGITOPS_SCHEMA_LOCATION", raising=False)
    tree = _tree(tmp_path / "tree", {"nodeLabels": {"pool": "gpu"}})
    result = _validate(tree)
    assert result.exit_code == 1
    flavor = [line for line in result.stdout.splitlines() if "ResourceFlavor/gpu" in line]
    assert flavor and "offline, give --schema-location" in flavor[0], result.stdout
    assert not (tmp_path / "cache" / "mlgitops" / "schemas" / "pinned").exists() or not any(
        (tmp_path / "cache" / "mlgitops" / "schemas" / "pinned").rglob(".complete")
    )


def test_a_schema_location_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", {})
    result = _validate(tree, "--schema-location", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert f"'{tmp_path / 'nowhere'}' is not a folder" in result.stderr
    assert result.stdout == ""


def test_the_environment_names_the_locations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "schemas" / "kueue.x-k8s.io"
    folder.mkdir(parents=True)
    strict = convert_crd(_crd("kueue.x-k8s.io", "ResourceFlavor", "v1beta2", FLAVOR_SCHEMA))
    (folder / "resourceflavor_v1beta2.json").write_text(json.dumps(strict["v1beta2"]))
    monkeypatch.setenv("MLGITOPS_SCHEMA_LOCATION", str(tmp_path / "schemas"))
    assert schema_sources.default_locations() == [str(tmp_path / "schemas")]
    tree = _tree(tmp_path / "tree", {"topologyName": "rack", "unknown": 1})
    result = _validate(tree, "--ignore-missing-schemas")
    assert result.exit_code == 1
    assert "unknown" in result.stdout and "ResourceFlavor/gpu" in result.stdout


def test_every_pinned_group_is_an_operator_mlgitops_installs_at_its_tag() -> None:
    from generator import operator_facts

    tags = {
        "kueue.x-k8s.io": operator_facts.KUEUE.tag,
        "jobset.x-k8s.io": operator_facts.JOBSET.tag,
        "kubeflow.org": operator_facts.TRAINING_OPERATOR.tag,
        "trainer.kubeflow.org": operator_facts.TRAINER.tag,
    }
    for group, tag in tags.items():
        assert PINNED_GROUPS[group].tag == tag
        assert all(
            path.startswith(("config/", "manifests/")) for path in PINNED_GROUPS[group].paths
        )
    urls = [url for files in PINNED_GROUPS.values() for url in files.urls("base")]
    assert len(urls) == len(set(urls))
