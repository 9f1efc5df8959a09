"""The config's JSON Schema, derived from the same model the loader reads with: each
dataclass an object with exactly its fields, each field's documentation, bounds and
default from its metadata, each value type's pattern from checks.SCHEMA_KEYWORDS.

Editors use it through the `# yaml-language-server: $schema=...` line at the top of a
config for completion and inline errors; the loader remains the authority (cross-field
rules and some value checks cannot be said in JSON Schema).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from generator.config import checks, model
from generator.config.load import yaml_key

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "mlgitops.schema.json"


def config_schema() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    root = _dataclass_schema(model.Config, definitions)
    return {
        "$schema": DIALECT,
        "title": "mlgitops config",
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _reference(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    if cls.__name__ not in definitions:
        definitions[cls.__name__] = {}  # placeholder: the model has no cycles, but be safe
        definitions[cls.__name__] = _dataclass_schema(cls, definitions)
    return {"$ref": f"#/$defs/{cls.__name__}"}


def _dataclass_schema(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for field in dataclasses.fields(cls):
        key = yaml_key(field)
        schema = _type_schema(hints[field.name], definitions)
        for bound, keyword in (("minimum", "minimum"), ("maximum", "maximum")):
            if field.metadata.get(bound) is not None:
                schema[keyword] = field.metadata[bound]
        if field.metadata.get("min_items"):
            schema["minItems"] = field.metadata["min_items"]
        schema["description"] = field.metadata.get("doc", "")
        if field.default is not dataclasses.MISSING and field.default is not None:
            default = field.default
            schema["default"] = list(default) if isinstance(default, tuple) else default
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(key)
        properties[key] = schema
    result: dict[str, Any] = {"type": "object"}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        result["description"] = " ".join(cls.__doc__.split())
    result["properties"] = properties
    if required:
        result["required"] = required
    result["additionalProperties"] = False
    return result


def _type_schema(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        if len(options) == 1:
            return {"anyOf": [_type_schema(options[0], definitions), {"type": "null"}]}
        return {"oneOf": [_reference(o, definitions) for o in options]}
    if dataclasses.is_dataclass(hint):
        return _reference(typing.cast(type, hint), definitions)
    if origin is tuple:
        return {"type": "array", "items": _type_schema(typing.get_args(hint)[0], definitions)}
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return {
            "type": "object",
            "propertyNames": _type_schema(key_hint, definitions),
            "additionalProperties": _type_schema(value_hint, definitions),
        }
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    base = getattr(hint, "__supertype__", hint)
    keywords = dict(checks.SCHEMA_KEYWORDS.get(hint, {}))
    if base is bool:
        return {"type": "boolean"}
    if base is int:
        return {"type": "integer", **keywords}
    if base is str:
        allowed = ["string", "number"] if hint in checks.NUMBERS_ALLOWED_AS_STRINGS else "string"
        if isinstance(keywords.get("pattern"), str):
            keywords["pattern"] = _whole_value(str(keywords["pattern"]))
        return {"type": allowed, **keywords}
    raise TypeError(f"the config model uses an unsupported type {hint!r}")  # pragma: no cover


def _whole_value(pattern: str) -> str:
    r"""A pattern anchored at the end refuses a trailing newline under every engine: an
    editor's ECMAScript `$` already does, Python's `re` (which Python validators use)
    matches `$` before a final newline too, so `(?!\n)` rules that out."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return rf"{pattern}(?!\n)"
    return pattern
