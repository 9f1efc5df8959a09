"""The one YAML emitter: deterministic bytes for every generated file.

apiVersion, kind, metadata and spec come first in every object; other keys keep the
order the renderer built them in. Strings YAML 1.1 would read as something else
(`on`, `yes`, `1.33`) are quoted; multi-line strings use block style; LF, UTF-8,
a trailing newline, no timestamps.

The bytes are PyYAML's (block style, two-space indent, sequences not indented under
their key), but written by string building: PyYAML spends most of its time deciding,
for every scalar, how to quote it, and a fleet repeats the same few thousand scalars
hundreds of thousands of times. Here each distinct scalar is decided once, by a quick
test for the common plain strings or else by PyYAML itself, and the decision is
cached. Anything the fast path does not know (other types, keys PyYAML would write in
the complex `? key` form, very long strings) sends the whole file through PyYAML, so
the output never depends on which path wrote it; the tests hold the two paths equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_WIDTH = 1 << 16


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
    objects = [ordered(obj) for obj in objects]
    try:
        text = "".join(_separated(_document(obj), first=i == 0) for i, obj in enumerate(objects))
    except _Unsupported:
        text = pyyaml_documents(objects)
    return (header + text).encode("utf-8")


def dump_document(obj: Any, header: str = "") -> bytes:
    return dump_documents([obj], header)


def pyyaml_documents(objects: Iterable[Any]) -> str:
    """The same text as dump_documents, written by PyYAML alone: the fallback, and the
    reference the fast path is tested against."""
    text = yaml.dump_all(
        (ordered(obj) for obj in objects),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=_WIDTH,
        explicit_start=False,
    )
    return text.replace("\n...\n", "\n")


class _Unsupported(Exception):
    """Something only PyYAML knows how to write."""


# A scalar as written after `key: ` or `- `: one line, or a block header (`|-`) and
# the lines below it, each relative to the indentation of the block's content.
_Scalar = str | tuple[str, tuple[str, ...]]

# Strings that are plain in PyYAML's block context when the resolver takes them for
# strings: no indicator first, no `: ` or ` #`, no quotes, no leading or trailing
# space, nothing non-printable. Everything else is asked of PyYAML (once per string).
_SIMPLE = re.compile(r"[A-Za-z0-9_/$(][-A-Za-z0-9_./=$(){}\[\],@+%*~ :]*")
_LONGEST_FAST = 1000  # far below the line width, where PyYAML would fold plain text
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")  # line breaks to YAML, not to split()
_LONGEST_SIMPLE_KEY = 128  # longer keys take YAML's `? key` form

_values: dict[str, _Scalar] = {}
_keys: dict[str, str] = {}
_floats: dict[str, str] = {}


def _document(obj: Any) -> str:
    out: list[str] = []
    kind = type(obj)
    if kind is dict and obj:
        _mapping(obj, "", "", out)
    elif kind is list and obj:
        _sequence(obj, "", "", out)
    elif kind is dict or kind is list:
        out.append("{}\n" if kind is dict else "[]\n")
    else:
        raise _Unsupported
    return "".join(out)


def _separated(document: str, first: bool) -> str:
    if first:
        return document
    return f"--- {document}" if document in ("{}\n", "[]\n") else f"---\n{document}"


def _mapping(mapping: dict[Any, Any], indent: str, lead: str, out: list[str]) -> None:
    """A block mapping at `indent`; its first line starts with `lead` (`- ` after a
    sequence's dash) instead of the indent."""
    for key, value in mapping.items():
        name = _keys.get(key) if type(key) is str else None
        if name is None:
            name = _key(key)
        kind = type(value)
        if kind is dict and value:
            out.append(f"{lead}{name}:\n")
            _mapping(value, indent + "  ", indent + "  ", out)
        elif kind is list and value:
            out.append(f"{lead}{name}:\n")
            _sequence(value, indent, indent, out)
        else:
            out.append(f"{lead}{name}: {_scalar(value, kind, indent)}\n")
        lead = indent


def _sequence(items: list[Any], indent: str, lead: str, out: list[str]) -> None:
    for item in items:
        kind = type(item)
        if kind is dict and item:
            _mapping(item, indent + "  ", lead + "- ", out)
        elif kind is list and item:
            _sequence(item, indent + "  ", lead + "- ", out)
        else:
            out.append(f"{lead}- {_scalar(item, kind, indent)}\n")
        lead = indent


def _scalar(value: Any, kind: type, indent: str) -> str:
    """A scalar whose parent (key or dash) stands at `indent`."""
    if kind is str:
        written = _values.get(value)
        if written is None:
            written = _values[value] = _string(value)
        if isinstance(written, str):
            return written
        header, lines = written
        content = indent + "  "
        return header + "".join(f"\n{content}{line}" if line else "\n" for line in lines)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is dict:
        return "{}"
    if kind is list:
        return "[]"
    if kind is float:
        written_float = _floats.get(repr(value))  # by repr: 0.0 == -0.0
        if written_float is None:
            written_float = _floats[repr(value)] = _single_line(_pyyaml_item(value))
        return written_float
    raise _Unsupported


def _is_plain_string(value: str) -> bool:
    """What PyYAML's resolver reads back as a string, and YAML 1.2 does too."""
    resolvers = _Dumper.yaml_implicit_resolvers
    for _, pattern in resolvers.get(value[0], []) + resolvers.get(None, []):
        if pattern.match(value):
            return False
    return not _YAML12_NOT_STRING.match(value)


def _looks_simple(value: str) -> bool:
    return (
        len(value) <= _LONGEST_FAST
        and _SIMPLE.fullmatch(value) is not None
        and not value.endswith((" ", ":"))
        and ": " not in value
    )


def _string(value: str) -> _Scalar:
    if _looks_simple(value):
        return value if _is_plain_string(value) else f"'{value}'"
    if len(value) > _LONGEST_FAST or _OTHER_BREAKS.search(value):
        raise _Unsupported
    text = _pyyaml_item(value)
    if "\n" not in text:
        return text
    header, *lines = text.split("\n")
    if header.endswith("+") or any(line and not line.startswith("  ") for line in lines):
        raise _Unsupported
    return header, tuple(line[2:] for line in lines)


def _key(key: Any) -> str:
    if type(key) is not str:
        raise _Unsupported
    if len(key) < _LONGEST_SIMPLE_KEY and _looks_simple(key):
        name = key if _is_plain_string(key) else f"'{key}'"
    else:
        text = yaml.dump({key: None}, Dumper=_Dumper, allow_unicode=True, width=_WIDTH)
        if not text.endswith(": null\n") or text.count("\n") != 1 or text.startswith("?"):
            raise _Unsupported
        name = text[: -len(": null\n")]
    _keys[key] = name
    return name


def _pyyaml_item(value: Any) -> str:
    """How PyYAML writes one value as a block sequence item, without the `- `."""
    text = yaml.dump(
        [value],
        Dumper=_Dumper,
        default_flow_style=False,
        allow_unicode=True,
        width=_WIDTH,
    )
    if not text.startswith("- "):
        raise _Unsupported
    return text[2:].removesuffix("\n")


def _single_line(text: str) -> str:
    if "\n" in text:
        raise _Unsupported
    return text
