"""Edits of config text that leave every line they do not touch exactly as written.

Each edit says which lines of the original it may change (a `Span`) and what the
document must hold afterwards (plain values). Two candidates are made: ruamel.yaml's
round-trip dump of the edited document, and a minimal splice of the original text at
the positions ruamel's parser reports. The first candidate whose untouched lines are
byte-for-byte the original's and whose values are the intended ones is kept; when
neither is, the edit is refused rather than reformatting a person's file.

Pure text: no disk (generator.edit reads and writes the file).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import ScalarEvent
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from generator.config import yaml_tree
from generator.errors import ConfigError, UsageError

WIDTH = 1 << 30  # never wrap a long line
_PLAIN = re.compile(r"-{0,2}[A-Za-z0-9_./~][A-Za-z0-9_./@:+=~-]*")


@dataclass(frozen=True)
class Span:
    """Original lines [start, end) (0-based) that the edit replaces by `count` lines
    (None: any number)."""

    start: int
    end: int
    count: int | None = None


@dataclass(frozen=True)
class Scalar:
    """Where a one-line scalar was written: line, columns [start, end), its quote style."""

    line: int
    start: int
    end: int
    style: str | None


@dataclass(frozen=True)
class Item:
    """One block-list item: its dash line and column, its first key's column, the line
    its leading comments start on and the line after its last line of content."""

    dash_line: int
    dash_column: int
    content_column: int
    lead: int
    end: int


def _yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = WIDTH
    return rt


class Source:
    """The original text, parsed twice: ruamel's round-trip tree (positions, comments)
    and the loader's plain values (what the document means)."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.lines = text.splitlines(keepends=True)
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.plain = plain(yaml_tree.parse(text, file).value)
        try:
            self.tree = _yaml().load(text)
            _, self.indent, self.sequence_offset = load_yaml_guess_indent(text)
            self.scalars = {
                (e.start_mark.line, e.start_mark.column): e
                for e in _yaml().parse(text)
                if isinstance(e, ScalarEvent)
            }
        except YAMLError as error:
            raise UsageError(f"mlgitops: {file}: cannot be edited in place ({error})") from None

    def fresh_tree(self) -> Any:
        """A tree of its own to change, for the round-trip candidate."""
        return _yaml().load(self.text)

    def dump(self, tree: Any) -> str:
        rt = _yaml()
        indent = self.indent or 2
        offset = self.sequence_offset if self.sequence_offset is not None else 0
        rt.indent(mapping=2, sequence=max(indent, offset + 2), offset=offset)
        rt.explicit_start = self._explicit_start()
        out = io.StringIO()
        rt.dump(tree, out)
        return out.getvalue()

    def _explicit_start(self) -> bool:
        for line in self.lines:
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                return stripped == "---" or stripped.startswith("--- ")
        return False

    def scalar(self, line: int, column: int) -> Scalar | None:
        event = self.scalars.get((line, column))
        if event is None or event.end_mark.line != line:
            return None
        return Scalar(line, column, event.end_mark.column, event.style)

    def section(self, key: str) -> tuple[int, CommentedSeq, int]:
        """A top-level block list: its key's line, the list, the line where it ends."""
        tree = self.tree
        value = tree.get(key) if isinstance(tree, CommentedMap) else None
        if not isinstance(value, CommentedSeq) or key not in tree.lc.data:
            raise UsageError(f"mlgitops: {self.file}: {key}: expected a list to edit")
        if value.fa.flow_style() or not value:
            raise UsageError(
                f"mlgitops: {self.file}: {key}: written as a flow list ([...]); write it as a "
                "block list (one '- ' item a line) to edit it from the command line"
            )
        keys = list(tree.lc.data)
        after = keys[keys.index(key) + 1 :]
        end = min((tree.lc.key(k)[0] for k in after), default=len(self.lines))
        return tree.lc.key(key)[0], value, end

    def items(self, key: str) -> list[Item]:
        key_line, seq, end = self.section(key)
        dashes = [self._dash(seq, i) for i in range(len(seq))]
        found: list[Item] = []
        for i, (line, dash, content) in enumerate(dashes):
            stop = dashes[i + 1][0] if i + 1 < len(dashes) else end
            floor = found[-1].end if found else key_line + 1
            lead, last = self._lead(line, dash, floor), self._end(line, dash, stop)
            found.append(Item(line, dash, content, lead, last))
        return found

    def _dash(self, seq: CommentedSeq, index: int) -> tuple[int, int, int]:
        line, column = seq.lc.item(index)
        before = self.lines[line][:column].rstrip()
        if before.endswith("-"):
            return line, len(before) - 1, column
        for above in range(line - 1, -1, -1):  # `-` alone on its line, the item below it
            text = self.lines[above]
            if text.strip() == "-":
                return above, len(text) - len(text.lstrip(" ")), column
        raise UsageError(f"mlgitops: {self.file}:{line + 1}: cannot find this item's '-'")

    def _end(self, dash_line: int, dash: int, stop: int) -> int:
        """After the last line deeper than the dash: comments at the dash's column or
        left of it belong to what follows."""
        last = dash_line
        for n in range(dash_line + 1, stop):
            text = self.lines[n]
            stripped = text.strip()
            if not stripped:
                continue
            if len(text) - len(text.lstrip(" ")) > dash:
                last = n
            elif not stripped.startswith("#"):
                break
        return last + 1

    def _lead(self, dash_line: int, dash: int, floor: int) -> int:
        """The comment lines right above an item, at its dash's column or left of it."""
        start = dash_line
        while start - 1 >= floor:
            text = self.lines[start - 1]
            indent = len(text) - len(text.lstrip(" "))
            if not text.strip().startswith("#") or indent > dash:
                break
            start -= 1
        return start

    def blank(self, line: int) -> bool:
        return 0 <= line < len(self.lines) and not self.lines[line].strip()


def plain(value: Any) -> Any:
    """Plain dicts, lists and scalars, whatever parsed them."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, ScalarString) else k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, ScalarString):
        return str(value)
    return value


def keeps_the_rest(original: list[str], candidate: list[str], spans: list[Span]) -> bool:
    """Every line outside the spans is the original's, in place and byte for byte."""
    free = [s for s in spans if s.count is None]
    fixed = sum(s.count or 0 for s in spans)
    removed = sum(s.end - s.start for s in spans)
    extra = len(candidate) - (len(original) - removed + fixed)
    if len(free) > 1 or (not free and extra) or extra < 0:
        return False
    at = 0  # position in candidate
    done = 0  # position in original
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < done:
            return False
        kept = span.start - done
        if candidate[at : at + kept] != original[done : span.start]:
            return False
        at += kept + (extra if span.count is None else span.count)
        done = span.end
    return candidate[at:] == original[done:]


def choose(
    source: Source,
    spans: list[Span],
    expected: Any,
    change_tree: Callable[[Any], None] | None,
    splice: Callable[[], str] | None,
    what: str,
    splice_first: bool = False,
) -> tuple[str, str]:
    """The first candidate that keeps the rest and holds the expected values, and how
    it was made ("round-trip" or "splice"). Additions try the splice first: it puts the
    new item where the list's own items end, indented and spaced as they are, which a
    dump cannot know (ruamel hangs the blank lines and comments before the next key on
    the list's last item, so its new item lands after them)."""
    candidates: list[tuple[str, Callable[[], str]]] = []
    if change_tree is not None:

        def round_trip() -> str:
            tree = source.fresh_tree()
            change_tree(tree)
            return source.dump(tree)

        candidates.append(("round-trip", round_trip))
    if splice is not None:
        candidates.insert(0 if splice_first else len(candidates), ("splice", splice))
    for method, make in candidates:
        text = make()
        if keeps_the_rest(source.lines, text.splitlines(keepends=True), spans) and _means(
            text, source.file, expected
        ):
            return text, method
    raise UsageError(
        f"mlgitops: {source.file}: cannot {what} without changing lines it does not need "
        "to (the lines involved use YAML anchors, merge keys or a layout that cannot be "
        "edited in place); edit the file by hand. Nothing was written"
    )


def _means(text: str, file: str, expected: Any) -> bool:
    try:
        return bool(plain(yaml_tree.parse(text, file).value) == expected)
    except ConfigError:
        return False


def splice_lines(source: Source, replacements: list[tuple[Span, list[str]]]) -> str:
    """The original with each span's lines replaced."""
    lines = list(source.lines)
    for span, new in sorted(replacements, key=lambda r: r[0].start, reverse=True):
        lines[span.start : span.end] = new
    return "".join(lines)


def replace_scalar(source: Source, scalar: Scalar, value: str) -> str:
    """The scalar's line with a new value in the same quote style; a comment after it
    keeps its column while there is room."""
    line = source.lines[scalar.line]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    new = scalar_text(value, scalar.style, flow=_in_flow(body, scalar.start))
    rest = body[scalar.end :]
    gap = len(rest) - len(rest.lstrip(" "))
    if gap and rest.lstrip(" ").startswith("#"):
        wanted = gap - (len(new) - (scalar.end - scalar.start))
        rest = " " * max(1, wanted) + rest.lstrip(" ")
    return body[: scalar.start] + new + rest + ending


def _in_flow(body: str, column: int) -> bool:
    before = body[:column]
    return before.count("[") + before.count("{") > before.count("]") + before.count("}")


def scalar_text(value: Any, style: str | None = None, flow: bool = True) -> str:
    """A scalar written so that the loader reads back exactly `value`: in the quote
    style given, else plain when that is unambiguous, else double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if style == "'":
        return "'" + text.replace("'", "''") + "'"
    if style == '"' or not _plain_reads_back(text, flow):
        return json.dumps(text)
    return text


def _plain_reads_back(text: str, flow: bool) -> bool:
    if not _PLAIN.fullmatch(text) or text.endswith(":") or (flow and "," in text):
        return False
    try:
        block = yaml_tree.parse(f"- {text}\n", "-").value
        inline = yaml_tree.parse(f"[{text}]\n", "-").value
    except ConfigError:
        return False
    return bool(block == [text] and inline == [text])


def block_lines(
    item: dict[str, Any], dash: int, content: int, sequence_offset: int, newline: str
) -> list[str]:
    """A new list item in block style, its small lists and mappings in flow style (as
    `mlgitops init` writes them)."""
    out: list[str] = []
    first = " " * dash + "-" + " " * (content - dash - 1)
    _mapping_lines(item, content, first, sequence_offset, out)
    return [line + newline for line in out]


def _mapping_lines(
    mapping: dict[str, Any], column: int, first: str, offset: int, out: list[str]
) -> None:
    for n, (key, value) in enumerate(mapping.items()):
        prefix = first if n == 0 else " " * column
        if _is_flat(value):
            out.append(f"{prefix}{key}: {flow_text(value)}")
        elif isinstance(value, list):
            out.append(f"{prefix}{key}:")
            dash = column + offset
            for entry in value:
                _mapping_lines(entry, dash + 2, " " * dash + "- ", offset, out)
        else:
            out.append(f"{prefix}{key}:")
            _mapping_lines(value, column + 2, " " * (column + 2), offset, out)


def _is_flat(value: Any) -> bool:
    if isinstance(value, list):
        return all(not isinstance(v, dict | list) for v in value)
    if isinstance(value, dict):
        return all(not isinstance(v, dict | list) for v in value.values())
    return True


def flow_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(scalar_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar_text(v)}" for k, v in value.items()) + "}"
    return scalar_text(value, flow=False)


def round_trip_value(value: Any, top: bool = True) -> Any:
    """The new item as ruamel nodes, flow style where block_lines uses it."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, child in value.items():
            node[key] = round_trip_value(child, top=False)
        if not top and _is_flat(value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(round_trip_value(v, top=True) for v in value)
        if _is_flat(value):
            seq.fa.set_flow_style()
        return seq
    return value


def expected_copy(source: Source) -> Any:
    return copy.deepcopy(source.plain)


def indexed(values: list[Any], key: str) -> Iterator[tuple[int, Any]]:
    """Items of a list that are mappings, with their index, for look-ups by `key`."""
    for i, value in enumerate(values):
        if isinstance(value, dict) and key in value:
            yield i, value
