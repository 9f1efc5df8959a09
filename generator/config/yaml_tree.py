"""Parse config text into plain Python values that remember where they were written.

libyaml (PyYAML's C parser) turns the text into events; this module builds the tree from
them in one loop, without recursion, and within fixed limits, so that hostile or careless
input is refused quickly and in bounded memory:

- nesting deeper than MAX_DEPTH levels (a recursive composer would crash on it);
- anchors and aliases that expand to more than MAX_NODES nodes ("billion laughs": each
  alias counts as the whole subtree it stands for, whether or not it is read again);
- an alias to a collection that contains it;
- more than one document, keys that are lists or mappings, tags other than the YAML core
  schema's.

Scalars resolve by the YAML 1.2 core schema (`yes`, `on` and `0777` are strings, as in
every Kubernetes tool written in Go); `<<` merge keys are honoured. Duplicate keys and
unusable keys are problems, reported with the rest of the config's problems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from generator.errors import ConfigError, Problem

Position = tuple[int, int]  # 1-based line and column

MAX_DEPTH = 64
MAX_NODES = 1_000_000
MERGE_KEY = "<<"

_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_BOOL["FALSE"] = False
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


class YamlMapping(dict[Any, Any]):
    """A mapping with the position of itself, each key and each value."""

    __slots__ = ("key_positions", "position", "value_positions")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.key_positions: dict[Any, Position] = {}
        self.value_positions: dict[Any, Position] = {}


class YamlList(list[Any]):
    """A list with the position of itself and of each item."""

    __slots__ = ("item_positions", "position")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []


@dataclass
class Document:
    """The parsed value (None for an empty file) and the problems found on the way."""

    value: Any
    problems: list[Problem] = field(default_factory=list)


def parse(text: str, file: str) -> Document:
    """Build the tree; ConfigError right away for text that is not usable YAML."""
    try:
        return _Composer(file).compose(_events(text))
    except yaml.MarkedYAMLError as error:
        raise ConfigError([_syntax_problem(error, text, file)]) from None
    except yaml.reader.ReaderError as error:
        raise ConfigError([_character_problem(error, text, file)]) from None
    except yaml.YAMLError as error:  # pragma: no cover - libyaml marks all its errors
        raise ConfigError([Problem(file, 1, 1, "", f"invalid YAML: {error}")]) from None


def _events(text: str) -> Iterator[yaml.Event]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.parse(text, Loader=loader)


def _position(event: yaml.Event) -> Position:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _syntax_problem(error: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return Problem(file, line, column, "", "invalid YAML: a tab character; indent with spaces")
    message = error.problem or error.context or "not valid YAML"
    context = error.context_mark
    if error.problem and error.context and context is not None:
        where = (context.line + 1, context.column + 1)
        if where != (line, column):
            message += f" ({error.context} at {where[0]}:{where[1]})"
    return Problem(file, line, column, "", f"invalid YAML: {message}")


def _character_problem(error: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A character YAML does not allow anywhere, such as a NUL or a bell."""
    character = chr(error.character) if isinstance(error.character, int) else error.character
    index = max(text.find(character), 0)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    code = f"U+{ord(character):04X}" if character else "a character"
    return Problem(
        file,
        line,
        column,
        "",
        f"invalid YAML: {code} is a control character, not allowed in YAML "
        f"(in a double-quoted string, write it as \\x{ord(character):02x})",
    )


def _tag_text(tag: str) -> str:
    return tag.replace(_CORE, "!!", 1) if tag.startswith(_CORE) else tag


@dataclass
class _Open:
    """A collection being built, with what is needed to finish it."""

    value: YamlMapping | YamlList
    anchor: str | None
    size: int = 1  # nodes, aliases counted as what they stand for
    pending_key: Any = None
    has_key: bool = False
    key_position: Position = (1, 1)
    merges: list[tuple[Any, Position]] = field(default_factory=list)


class _Composer:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, expanded size)
        self.open_anchors: set[str] = set()
        self.stack: list[_Open] = []
        self.nodes = 0
        self.documents = 0
        self.root: Any = None

    def fatal(self, position: Position, message: str) -> ConfigError:
        return ConfigError([Problem(self.file, *position, "", message)])

    def compose(self, events: Iterator[yaml.Event]) -> Document:
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.fatal(
                        _position(event),
                        "invalid YAML: a second document; a config is one document "
                        "(remove the '---' and what follows, or merge it into the first)",
                    )
            elif isinstance(event, yaml.ScalarEvent):
                self.add(event, self.scalar(event), 1)
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                self.start(event)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                self.end()
        return Document(self.root, self.problems)

    def count(self, size: int, position: Position) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self.fatal(
                position,
                f"invalid YAML: aliases expand the config past {MAX_NODES:,} values, "
                "the most a config may hold (each alias counts as all it stands for)",
            )

    def start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        position = _position(event)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fatal(position, f"invalid YAML: nested deeper than {MAX_DEPTH} levels")
        kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
        if event.tag not in (None, "!", _CORE + kind):
            tag = _tag_text(event.tag)
            message = f"invalid YAML: unsupported tag {tag} (a config holds plain values)"
            raise self.fatal(position, message)
        value = YamlMapping(position) if isinstance(event, yaml.MappingStartEvent) else None
        collection = value if value is not None else YamlList(position)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Open(collection, event.anchor))
        self.count(1, position)

    def end(self) -> None:
        done = self.stack[-1]
        if isinstance(done.value, YamlMapping):
            self.apply_merges(done)
        self.stack.pop()
        if done.anchor:
            self.open_anchors.discard(done.anchor)
            self.anchors[done.anchor] = (done.value, done.size)
        self.place(done.value, done.value.position, done.size)

    def alias(self, event: yaml.AliasEvent) -> None:
        position = _position(event)
        name = event.anchor
        if name in self.open_anchors:
            raise self.fatal(
                position, f"invalid YAML: alias *{name} refers to a collection that contains it"
            )
        if name not in self.anchors:
            raise self.fatal(position, f"invalid YAML: alias *{name} has no anchor &{name}")
        value, size = self.anchors[name]
        self.count(size, position)
        self.place(value, position, size)

    def add(self, event: yaml.ScalarEvent, value: Any, size: int) -> None:
        if event.anchor:
            self.anchors[event.anchor] = (value, size)
        self.count(size, _position(event))
        self.place(value, _position(event), size)

    def place(self, value: Any, position: Position, size: int) -> None:
        """Put a finished value into the collection being built (or make it the root)."""
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        parent.size += size
        target = parent.value
        if isinstance(target, YamlList):
            target.append(value)
            target.item_positions.append(position)
        elif not parent.has_key:
            parent.pending_key, parent.has_key, parent.key_position = value, True, position
        else:
            parent.has_key = False
            self.set_item(parent, parent.pending_key, value, position)

    def set_item(self, parent: _Open, key: Any, value: Any, position: Position) -> None:
        mapping = parent.value
        assert isinstance(mapping, YamlMapping)
        key_position = parent.key_position
        if key == MERGE_KEY:
            parent.merges.append((value, position))
        elif isinstance(key, YamlMapping | YamlList):
            kind = "a mapping" if isinstance(key, YamlMapping) else "a list"
            self.problem(key_position, f"keys must be strings, got {kind}")
        elif key in mapping:
            line, column = mapping.key_positions[key]
            self.problem(key_position, f"written twice (first at {line}:{column}); keep one", key)
        else:
            mapping[key] = value
            mapping.key_positions[key] = key_position
            mapping.value_positions[key] = position

    def apply_merges(self, done: _Open) -> None:
        """`<<: *base` or `<<: [*a, *b]`: keys written here win, then earlier sources."""
        mapping = done.value
        assert isinstance(mapping, YamlMapping)
        for value, position in done.merges:
            sources = value if isinstance(value, YamlList) else [value]
            for source in sources:
                if not isinstance(source, YamlMapping):
                    message = "a merge key takes a mapping or a list of mappings"
                    self.problem(position, message, MERGE_KEY)
                    continue
                for key, item in source.items():
                    if key not in mapping:
                        mapping[key] = item
                        mapping.key_positions[key] = position
                        mapping.value_positions[key] = position

    def problem(self, position: Position, message: str, key: Any = None) -> None:
        path = self.open_path()
        if key is not None:
            path = f"{path}.{key}" if path else str(key)
        self.problems.append(Problem(self.file, *position, path, message))

    def open_path(self) -> str:
        """The field path of the innermost collection being built, e.g. workloads[1]."""
        path = ""
        for parent in self.stack[:-1]:
            if isinstance(parent.value, YamlList):
                path += f"[{len(parent.value)}]"
            else:
                path += f".{parent.pending_key}" if path else str(parent.pending_key)
        return path

    def scalar(self, event: yaml.ScalarEvent) -> Any:
        text, tag = event.value, event.tag
        if tag is None and event.implicit[0]:
            return resolve_plain(text)
        if tag in (None, "!", _CORE + "str"):
            return text
        resolved = resolve_plain(text)
        wanted = {
            _CORE + "int": int,
            _CORE + "float": float,
            _CORE + "bool": bool,
            _CORE + "null": type(None),
        }.get(tag)
        if wanted is None:
            message = (
                f"invalid YAML: unsupported tag {_tag_text(tag)} (a config holds plain values)"
            )
            raise self.fatal(_position(event), message)
        if wanted is float and type(resolved) is int:
            return float(resolved)
        if type(resolved) is not wanted:
            message = f"invalid YAML: {text!r} does not fit its tag {_tag_text(tag)}"
            raise self.fatal(_position(event), message)
        return resolved


def resolve_plain(text: str) -> Any:
    """A plain scalar's value by the YAML 1.2 core schema."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 16) if text.startswith("0x") else int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INFINITY.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text
