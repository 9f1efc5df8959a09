"""The one YAML emitter: deterministic bytes for every generated file.

apiVersion, kind, metadata and spec come first in every object; other keys keep the
order the renderer built them in. Strings YAML 1.1 would read as something else
(`on`, `yes`, `1.33`) are quoted; multi-line strings use block style; LF, UTF-8,
a trailing newline, no timestamps.
"""

from __future__ import annotations

import re
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


# Plain scalars that YAML 1.2 (the core schema kustomize and kubectl read with) takes for
# something other than a string. PyYAML quotes by YAML 1.1 rules, which miss some of
# these (`2e-5` is a float in 1.2 but a string in 1.1), so they are quoted here too:
# otherwise kustomize would turn a training argument `2e-5` into `2e-05`.
_YAML12_NOT_STRING = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        style: str | None = "|"
    elif _YAML12_NOT_STRING.match(value):
        style = "'"
    else:
        style = None
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
