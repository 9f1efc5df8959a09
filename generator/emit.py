"""The one YAML emitter: deterministic bytes for every generated file.

apiVersion, kind, metadata and spec come first in every object; other keys keep the
order the renderer built them in. Strings YAML 1.1 would read as something else
(`on`, `yes`, `1.33`) are quoted; multi-line strings use block style; LF, UTF-8,
a trailing newline, no timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Safe dumper whose multi-line strings are literal blocks and that never writes
    anchors and aliases, even when the renderer reuses one dict in two places."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def ordered(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    first = {key: obj[key] for key in FIRST_KEYS if key in obj}
    return {**first, **{key: value for key, value in obj.items() if key not in first}}


def dump_documents(objects: Iterable[Any], header: str = "") -> bytes:
    """Serialise objects as one multi-document YAML file."""
    text = yaml.dump_all(
        (ordered(obj) for obj in objects),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
        explicit_start=False,
    )
    return (header + text.replace("\n...\n", "\n")).encode("utf-8")


def dump_document(obj: Any, header: str = "") -> bytes:
    return dump_documents([obj], header)
