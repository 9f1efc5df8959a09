"""The config's JSON Schema (what editors check a config against) agrees with the loader.

It accepts every valid config here and, on the invalid corpus, flags the same places
the loader does: a field the loader reports is flagged by the schema there or at an
enclosing object (a cluster of unknown cloud matches none of the cluster shapes), and
everything the schema flags, the loader reports too. Some problems JSON Schema cannot
express (cross-field rules, a CIDR's host bits, a zero quantity); those cases are listed
with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from helpers import CONFIGS, SEEDS

from generator.cli import main
from generator.config import load, yaml_tree
from generator.config.schema import config_schema
from generator.defaults import default_config_text
from generator.errors import ConfigError

CORPUS = Path(__file__).resolve().parent / "invalid_configs"
VALIDATOR = jsonschema.Draft202012Validator(config_schema())

# Value checks that go beyond a pattern, by the loader's message.
BEYOND_JSON_SCHEMA = (
    "has host bits set",  # a CIDR's host bits
    "must be greater than zero",  # a quantity's value
    "the digest must look like",  # a digest's length
    "is not a registry host",  # which first part of an image is a host depends on its shape
    "bucket naming rules",  # a bucket name's rules beyond its alphabet (dots, IPs, reserved)
)


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(config_schema())


@pytest.mark.parametrize("config", [SEEDS, *sorted(CONFIGS.glob("*.yaml"))], ids=lambda p: p.stem)
def test_valid_configs_pass_the_schema(config: Path) -> None:
    document = yaml_tree.parse(config.read_text(), str(config)).value
    assert list(VALIDATOR.iter_errors(document)) == []


def test_the_builtin_default_passes_the_schema() -> None:
    document = yaml_tree.parse(default_config_text(), "default").value
    assert list(VALIDATOR.iter_errors(document)) == []


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _schema_paths(document: Any) -> set[str]:
    found = set()
    for error in VALIDATOR.iter_errors(document):
        path = _path(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = error.schema.get("properties", {})
            unknown = [key for key in error.instance if key not in allowed]
            found |= {f"{path}.{key}" if path else str(key) for key in unknown}
        else:
            found.add(path)
    return found


def _loader_paths(case: Path) -> set[str] | None:
    """Where the loader reports problems a schema can see; None when the file is not a
    YAML mapping or its problems are YAML's own (duplicate keys, merge keys)."""
    try:
        document = yaml_tree.parse(case.read_text(), "mlgitops.yaml")
    except (ConfigError, UnicodeDecodeError):
        return None
    if not isinstance(document.value, dict) or document.problems:
        return None
    reader = load._Reader("mlgitops.yaml", case.read_text())
    reader.read_document(document.value)
    return {p.path for p in reader.problems if not any(m in p.message for m in BEYOND_JSON_SCHEMA)}


def _covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith((f"{outer}.", f"{outer}[")) or outer == ""


# The schema sees a mapping: cases that are not one (syntax errors, lists, empty files)
# or whose problems are YAML's own (duplicate keys) are the loader's alone.
SCHEMA_CASES = [c for c in sorted(CORPUS.glob("*.yaml")) if _loader_paths(c) is not None]


def test_most_of_the_corpus_is_for_the_schema_too() -> None:
    assert len(SCHEMA_CASES) >= 100


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=lambda p: p.stem)
def test_the_schema_flags_the_places_the_loader_does(case: Path) -> None:
    loader = _loader_paths(case)
    assert loader is not None
    document = yaml_tree.parse(case.read_text(), "mlgitops.yaml").value
    schema = _schema_paths(document)
    if not loader:  # cross-field rules only, or checks beyond a pattern
        assert not schema, schema
        return
    for path in loader:
        assert any(_covers(flagged, path) for flagged in schema), (path, schema)
    for flagged in schema:
        assert any(_covers(flagged, path) for path in loader), (flagged, loader)


def test_schema_command_prints_it() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == config_schema()


def test_the_repository_config_points_at_its_up_to_date_schema() -> None:
    root = Path(__file__).resolve().parent.parent
    first_line = (root / "mlgitops.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=mlgitops.schema.json"
    committed = json.loads((root / "mlgitops.schema.json").read_text())
    assert committed == config_schema(), "run `mlgitops schema > mlgitops.schema.json`"
