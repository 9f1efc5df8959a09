"""What the renderers produce: plain Kubernetes objects grouped into kustomize units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """One kustomization: a folder of generated objects, plus the other units it includes.

    `folder` and `includes` are POSIX paths relative to the root of the output tree;
    layout turns them into files and a kustomization.yaml.
    """

    folder: str
    objects: list[Manifest]
    includes: list[str] = field(default_factory=list)


def metadata(name: str, labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta
