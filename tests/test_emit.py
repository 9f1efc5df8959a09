"""The emitter's bytes survive the real readers: kustomize reads YAML 1.2, PyYAML wrote
by YAML 1.1 rules, and a string must come out of `kustomize build` as it went in."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import kustomize_build

from generator.emit import dump_document, dump_documents

TRICKY = [
    "2e-5",
    "1e3",
    "10",
    "0x1F",
    "0o17",
    ".inf",
    ".NaN",
    "yes",
    "on",
    "no",
    "null",
    "~",
    "true",
    "1.33",
    "-1",
    "+1",
    "1_000",
    "09",
    "3.",
    "a: b",
    "- x",
    "#c",
    "",
    " pad ",
]


def test_strings_that_look_like_other_types_reach_kustomize_unchanged(tmp_path: Path) -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tricky"},
        "data": {f"k{i}": value for i, value in enumerate(TRICKY)},
    }
    (tmp_path / "configmap.yaml").write_bytes(dump_document(config_map))
    (tmp_path / "kustomization.yaml").write_bytes(dump_document({"resources": ["configmap.yaml"]}))
    (built,) = kustomize_build(tmp_path)
    assert built["data"] == config_map["data"]


def test_object_keys_come_in_kubernetes_order_and_the_rest_as_built() -> None:
    text = dump_document(
        {
            "spec": {"b": 1, "a": 2},
            "metadata": {"name": "x"},
            "kind": "K",
            "apiVersion": "v1",
            "data": {},
        }
    ).decode()
    assert (
        text == "apiVersion: v1\nkind: K\nmetadata:\n  name: x\nspec:\n  b: 1\n  a: 2\ndata: {}\n"
    )


def test_shared_dicts_are_written_out_not_aliased() -> None:
    labels = {"app": "x"}
    text = dump_documents([{"a": labels, "b": labels}]).decode()
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"a": labels, "b": labels}


def test_multi_line_strings_are_literal_blocks() -> None:
    assert dump_document({"s": "a\nb\n"}) == b"s: |\n  a\n  b\n"
