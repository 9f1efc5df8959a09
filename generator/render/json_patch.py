"""JSON Patch (RFC 6902) operations that turn one object into another.

Maps are compared key by key and lists of equal length item by item, so a patch names
exactly what changed (`/spec/template/spec/containers/0/resources`); a list whose
length changed is replaced whole, which stays correct without index bookkeeping."""

from __future__ import annotations

from typing import Any


def pointer(parts: list[str]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def diff(old: Any, new: Any, at: list[str] | None = None) -> list[dict[str, Any]]:
    at = at or []
    if isinstance(old, dict) and isinstance(new, dict):
        operations = [
            {"op": "remove", "path": pointer([*at, key])} for key in old if key not in new
        ]
        for key, value in new.items():
            if key in old:
                operations.extend(diff(old[key], value, [*at, key]))
            else:
                operations.append({"op": "add", "path": pointer([*at, key]), "value": value})
        return operations
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            op
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for op in diff(a, b, [*at, str(i)])
        ]
    if old == new:
        return []
    return [{"op": "replace", "path": pointer(at), "value": new}]
