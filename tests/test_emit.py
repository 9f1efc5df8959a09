"""The emitter's bytes survive the real readers: kustomize reads YAML 1.2, PyYAML wrote
by YAML 1.1 rules, and a string must come out of `kustomize build` as it went in."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import CONFIGS, SEEDS, kustomize_build
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.config.load import load_config_file
from generator.emit import dump_document, dump_documents, pyyaml_documents
from generator.render import render

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


# The fast emitter must write exactly what PyYAML writes: every rendered file of the
# test configs, and any nesting of the values Kubernetes objects hold.

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.sampled_from(TRICKY),
    st.text(
        alphabet=st.sampled_from(list("ab09 :#-?'\"\n\t.,[]{}|>*&!%@`~=/\\é\u2028")),
        max_size=12,
    ),
    st.text(max_size=8),
)
KEYS = st.one_of(st.sampled_from(TRICKY), st.text(max_size=10), st.just("k" * 130))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)
DOCUMENTS = st.lists(
    st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), st.lists(VALUES, max_size=4)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_the_fast_emitter_writes_what_pyyaml_writes(documents: list[Any]) -> None:
    assert dump_documents(documents).decode("utf-8") == pyyaml_documents(documents)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=4), st.integers(0, 6))
def test_multi_line_strings_nest_at_any_depth(lines: list[str], depth: int) -> None:
    value: Any = "\n".join(lines)
    for level in range(depth):
        value = {"k": value} if level % 2 else [value, "x"]
    assert dump_document({"top": value}).decode("utf-8") == pyyaml_documents([{"top": value}])


@pytest.mark.parametrize("config", [*sorted(CONFIGS.glob("*.yaml")), SEEDS], ids=lambda p: p.stem)
def test_every_rendered_file_is_written_as_pyyaml_writes_it(config: Path) -> None:
    for unit in render(load_config_file(config)):
        groups = [[patch.body] for patch in getattr(unit, "patches", [])]
        groups += [[obj] for obj in unit.objects] + [unit.objects]
        for objects in groups:
            assert dump_documents(objects).decode("utf-8") == pyyaml_documents(objects)


def test_values_only_pyyaml_knows_fall_back_to_it() -> None:
    long_key = {"k" * 200: 1}
    unusual = {"when": datetime.date(2024, 1, 2), "long": "x " * 40_000}
    for obj in (long_key, unusual, {"s": "keep\n\n"}, {1: "int key"}, {"z": [0.0, -0.0]}):
        assert dump_document(obj).decode("utf-8") == pyyaml_documents([obj])
