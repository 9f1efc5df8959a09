"""What the renderers produce: plain Kubernetes objects grouped into kustomize units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Patch:
    """A kustomize patch kept in its own file: a strategic-merge document (a dict) or a
    list of JSON 6902 operations, applied to every object the target selects."""

    file: str
    target: dict[str, str]
    body: Manifest | list[dict[str, Any]]


@dataclass(frozen=True)
class Unit:
    """One kustomization: a folder of generated objects and patches, and the other units
    it includes (as resources) or mixes in (as components).

    `folder`, `includes` and `components` are POSIX paths relative to the root of the
    output tree; layout turns them into files and a kustomization.yaml. A `seed` unit is
    written once, for people to edit, and never overwritten or deleted.
    """

    folder: str
    objects: list[Manifest] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    namespace: str | None = None
    is_component: bool = False
    seed: bool = False
    comment: str = ""


@dataclass(frozen=True)
class Document:
    """A file that is not part of any kustomization, such as an input to a CLI tool."""

    path: str
    objects: list[Manifest]
    comment: str = ""
    # (scalar, note): each line that ends in that scalar gets `  # note` after it, e.g.
    # the release tag of an action pinned to a commit.
    notes: tuple[tuple[str, str], ...] = ()


def metadata(name: str, labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta
