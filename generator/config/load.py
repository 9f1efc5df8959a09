"""Load a config file into the typed model, or fail with every located problem at once.

The reader is driven by the model's type hints: a dataclass is a mapping with exactly
its fields, a `tuple[T, ...]` a list, a `dict[K, V]` a mapping, a `Literal` one of its
values, a NewType a string or integer with the check of that name, and the cluster
union is told apart by its `cloud` key. Positions come from the parsed tree
(generator.config.yaml_tree, which also bounds size, depth and alias expansion) and are
kept per field path so cross-field rules can point at the right line.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from generator.config import checks, model, rules, yaml_tree
from generator.config.yaml_tree import YamlList, YamlMapping
from generator.defaults import DEFAULT_CONFIG_NAME, default_config_text
from generator.errors import ConfigError, Problem, UsageError

Position = tuple[int, int]  # 1-based line and column

MAX_CONFIG_BYTES = 16 * 1024 * 1024


class _Invalid:
    """Marks a value that failed to load; its problem is already recorded."""


INVALID = _Invalid()


def load_config_file(path: Path) -> model.Config:
    """Read and load a config file; UsageError when it cannot be read at all."""
    try:
        if path.is_dir():
            raise UsageError(f"{path}: is a directory, not a config file")
        with path.open("rb") as config_file:  # bounded: a FIFO or /dev/zero never ends
            data = config_file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read the config file ({error.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        limit = MAX_CONFIG_BYTES // (1024 * 1024)
        message = f"the file is larger than {limit} MiB, the most a config may be"
        raise ConfigError([Problem(str(path), 1, 1, "", message)])
    return load_config_bytes(data, str(path))


def load_default_config() -> model.Config:
    return load_config_text(default_config_text(), DEFAULT_CONFIG_NAME)


def load_config_bytes(data: bytes, file: str) -> model.Config:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError([Problem(file, line, column, "", "the file is not UTF-8 text")]) from None
    return load_config_text(text, file)


def load_config_text(text: str, file: str) -> model.Config:
    document = yaml_tree.parse(text, file)
    reader = _Reader(file, text)
    config = reader.read_document(document.value)
    problems = (
        document.problems
        + reader.problems
        + [
            Problem(file, *reader.position(path), path, message)
            for path, message in rules.cross_field_problems(reader.loaded_parts())
        ]
    )
    if problems or isinstance(config, _Invalid):
        raise ConfigError(problems)
    return config


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def yaml_key(field: dataclasses.Field[Any]) -> str:
    key = field.metadata.get("key")
    return key if isinstance(key, str) else field.name


def join_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


class _Reader:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.problems: list[Problem] = []
        self.positions: dict[str, Position] = {"": (1, 1)}
        self.loaded: dict[str, Any] = {}  # path -> value that loaded cleanly

    def loaded_parts(self) -> rules.Loaded:
        """Whatever loaded cleanly, so cross-field rules run despite other problems."""
        config = self.loaded.get("")
        if isinstance(config, model.Config):
            return rules.Loaded.of(config)
        version = self.loaded.get("kubernetesVersion")
        name = self.loaded.get("name")
        gitops = self.loaded.get("gitops")
        images = self.loaded.get("images")
        return rules.Loaded(
            workloads=self._loaded_items("workloads", model.Workload),
            clusters=self._loaded_items("clusters", tuple(model.CLUSTER_KINDS.values())),
            kubernetes_version=version if isinstance(version, str) else None,
            name=name if isinstance(name, str) else None,
            gitops=gitops if isinstance(gitops, str) else None,
            require_digest=isinstance(images, model.ImageSettings) and images.require_digest,
            priority_classes=_priority_class_names(self.loaded.get("priorityClasses")),
        )

    def _loaded_items(self, path: str, kind: type | tuple[type, ...]) -> list[tuple[int, Any]]:
        items = []
        for key, value in self.loaded.items():
            index = key.removeprefix(f"{path}[").removesuffix("]")
            if key.startswith(f"{path}[") and index.isdigit() and isinstance(value, kind):
                items.append((int(index), value))
        return sorted(items, key=lambda item: item[0])

    def source_text(self, path: str) -> str:
        """The scalar as written at `path`, for messages that must quote it exactly."""
        line, column = self.position(path)
        text = self.lines[line - 1][column - 1 :] if line <= len(self.lines) else ""
        return text.split("#", 1)[0].split(",", 1)[0].strip().rstrip("}]").strip()

    def position(self, path: str) -> Position:
        """Where `path` was written, or its nearest written ancestor."""
        while path not in self.positions:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.positions[path]

    def fail(self, path: str, message: str) -> _Invalid:
        self.problems.append(Problem(self.file, *self.position(path), path, message))
        return INVALID

    def read_document(self, document: Any) -> model.Config | _Invalid:
        if document is None:
            return self.fail(
                "",
                "the config is empty: expected a mapping with name, repo, workloads and clusters",
            )
        if not isinstance(document, YamlMapping):
            return self.fail("", f"the config must be a mapping, not {_yaml_kind(document)}")
        value = self.read(document, model.Config, "")
        return value if isinstance(value, model.Config) else INVALID

    def read(self, node: Any, hint: Any, path: str) -> Any:
        origin = typing.get_origin(hint)
        if origin in (types.UnionType, typing.Union):
            return self.read_union(node, typing.get_args(hint), path)
        if dataclasses.is_dataclass(hint):
            return self.read_dataclass(node, typing.cast(type, hint), path)
        if origin is tuple:
            return self.read_list(node, typing.get_args(hint)[0], path)
        if origin is dict:
            key_hint, value_hint = typing.get_args(hint)
            return self.read_mapping(node, key_hint, value_hint, path)
        if origin is Literal:
            return self.read_choice(node, typing.get_args(hint), path)
        return self.read_scalar(node, hint, path)

    def read_union(self, node: Any, options: tuple[Any, ...], path: str) -> Any:
        if type(None) in options:
            if node is None:
                return None
            (present,) = (o for o in options if o is not type(None))
            return self.read(node, present, path)
        return self.read_cluster(node, path)

    def read_cluster(self, node: Any, path: str) -> Any:
        if not isinstance(node, YamlMapping):
            return self.fail(path, f"expected a mapping, got {_yaml_kind(node)}")
        cloud = node.get("cloud")
        kinds = model.CLUSTER_KINDS
        if "cloud" not in node:
            return self.fail(path, f"missing required field 'cloud' (one of {', '.join(kinds)})")
        if not isinstance(cloud, str) or cloud not in kinds:
            self.record_children(node, path)
            return self.fail(join_path(path, "cloud"), _choice_message(cloud, tuple(kinds)))
        return self.read_dataclass(node, kinds[cloud], path)

    def record_children(self, node: YamlMapping | YamlList, path: str) -> None:
        """Remember where each child was written: its value; its key when the value is
        missing (null); the merge key for keys that came in through `<<: *anchor`."""
        if isinstance(node, YamlMapping):
            for key, value in node.items():
                where = node.key_positions if value is None else node.value_positions
                self.positions[join_path(path, str(key))] = where[key]
        else:
            for index, position in enumerate(node.item_positions):
                self.positions[f"{path}[{index}]"] = position

    def read_dataclass(self, node: Any, cls: type, path: str) -> Any:
        if not isinstance(node, YamlMapping):
            return self.fail(path, f"expected a mapping, got {_yaml_kind(node)}")
        self.record_children(node, path)
        fields, hints = _field_table(cls)
        values: dict[str, Any] = {}
        ok = True
        unknown = False
        missing = {key for key, f in fields.items() if key not in node and _is_required(f)}
        for key in node:
            if not isinstance(key, str) or key not in fields:
                self.positions[join_path(path, str(key))] = node.key_positions[key]
                guess = _closest(str(key), fields)
                self.fail(join_path(path, str(key)), _unknown_key_message(key, guess, fields))
                missing.discard(guess or "")  # the misspelling already explains it
                unknown = True
        for key in sorted(missing):
            self.fail(path, f"missing required field '{key}'")
            ok = False
        for key, field in fields.items():
            field_path = join_path(path, key)
            if key not in node:
                continue
            value = self.read(node[key], hints[field.name], field_path)
            if isinstance(value, _Invalid):
                ok = False
            else:
                ok = self.check_bounds(value, field, field_path) and ok
                values[field.name] = value
                self.loaded[field_path] = value
        if not ok:
            return INVALID
        instance = cls(**values)
        self.loaded[path] = instance
        # With only unknown keys wrong, the rest is kept for the cross-field rules, so a
        # config wrong in several places says so in one run; the config is still refused.
        return INVALID if unknown else instance

    def check_bounds(self, value: Any, field: dataclasses.Field[Any], path: str) -> bool:
        low, high = field.metadata.get("minimum"), field.metadata.get("maximum")
        if isinstance(value, int) and low is not None and value < low:
            self.fail(path, f"{value} is too small (at least {low})")
            return False
        if isinstance(value, int) and high is not None and value > high:
            self.fail(path, f"{value} is too large (at most {high})")
            return False
        fewest = field.metadata.get("min_items")
        if fewest and isinstance(value, tuple | dict) and len(value) < fewest:
            self.fail(path, f"needs at least {fewest} item{'s' if fewest > 1 else ''}")
            return False
        return True

    def read_list(self, node: Any, item_hint: Any, path: str) -> Any:
        if not isinstance(node, YamlList):
            return self.fail(path, f"expected a list, got {_yaml_kind(node)}")
        self.record_children(node, path)
        items = [self.read(item, item_hint, f"{path}[{i}]") for i, item in enumerate(node)]
        if any(isinstance(item, _Invalid) for item in items):
            return INVALID
        return tuple(items)

    def read_mapping(self, node: Any, key_hint: Any, value_hint: Any, path: str) -> Any:
        if not isinstance(node, YamlMapping):
            return self.fail(path, f"expected a mapping, got {_yaml_kind(node)}")
        self.record_children(node, path)
        result: dict[Any, Any] = {}
        ok = True
        for key, item in node.items():
            item_path = join_path(path, str(key))
            if not isinstance(key, str):
                self.positions[item_path] = node.key_positions[key]
                self.fail(item_path, f"keys must be strings, got {_yaml_kind(key)}")
                ok = False
                continue
            key_error = checks.STRING_CHECKS[key_hint](key)
            if key_error:
                self.positions[item_path] = node.key_positions[key]
                self.fail(item_path, key_error)
                ok = False
                continue
            value = self.read(item, value_hint, item_path)
            ok = ok and not isinstance(value, _Invalid)
            result[key] = value
        return result if ok else INVALID

    def read_choice(self, node: Any, choices: tuple[Any, ...], path: str) -> Any:
        if node in choices and isinstance(node, str):
            return str(node)
        return self.fail(path, _choice_message(node, choices))

    def read_scalar(self, node: Any, hint: Any, path: str) -> Any:
        base = getattr(hint, "__supertype__", hint)
        if base is bool:
            if isinstance(node, bool):
                return node
            written = " (write true or false, unquoted)" if isinstance(node, str) else ""
            return self.fail(path, f"expected true or false, got {_yaml_kind(node)}{written}")
        if base is int:
            if isinstance(node, str) and node.strip().isascii() and node.strip().isdigit():
                return self.fail(
                    path, f"expected an integer, got a string (drop the quotes: {node.strip()})"
                )
            if isinstance(node, bool) or not isinstance(node, int):
                return self.fail(path, f"expected an integer, got {_yaml_kind(node)}")
            number = int(node)
            int_check = checks.INTEGER_CHECKS.get(hint)
            problem = int_check(number) if int_check else None
            return self.fail(path, problem) if problem else number
        if base is str:
            text = self.scalar_text(node, hint, path)
            if isinstance(text, _Invalid):
                return text
            check = checks.STRING_CHECKS.get(hint)
            problem = check(text) if check else None
            return self.fail(path, problem) if problem else text
        raise TypeError(f"the config model uses an unsupported type {hint!r}")  # pragma: no cover

    def scalar_text(self, node: Any, hint: Any, path: str) -> str | _Invalid:
        if isinstance(node, str):
            return str(node)
        numeric = isinstance(node, int | float) and not isinstance(node, bool)
        if numeric and hint in checks.NUMBERS_ALLOWED_AS_STRINGS:
            return str(node)
        if hint is model.KubernetesVersion and isinstance(node, float):
            written = self.source_text(path)
            return self.fail(
                path,
                f'write the version as a quoted string: "{written}" '
                f"(YAML reads an unquoted {written} as a number"
                + (f": {node})" if str(node) != written else ")"),
            )
        if numeric:
            return self.fail(
                path, f'expected a string, got {_yaml_kind(node)} (quote it: "{node}")'
            )
        return self.fail(path, f"expected a string, got {_yaml_kind(node)}")


@functools.cache
def _field_table(cls: type) -> tuple[dict[str, dataclasses.Field[Any]], dict[str, Any]]:
    """A model class's fields by YAML key, and its resolved type hints (costly to compute,
    so once per class rather than once per mapping read)."""
    fields = {yaml_key(f): f for f in dataclasses.fields(cls)}
    return fields, typing.get_type_hints(cls)


def _is_required(field: dataclasses.Field[Any]) -> bool:
    no_default = field.default is dataclasses.MISSING
    return no_default and field.default_factory is dataclasses.MISSING


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key_message(key: Any, guess: str | None, fields: Mapping[str, Any]) -> str:
    if guess:
        return f"unknown field '{key}' (did you mean '{guess}'?)"
    return f"unknown field '{key}' (allowed: {', '.join(sorted(fields))})"


def _choice_message(value: Any, choices: tuple[Any, ...]) -> str:
    allowed = " | ".join(str(c) for c in choices)
    if isinstance(value, str):
        same_letters = [str(c) for c in choices if str(c).lower() == value.lower()]
        guess = same_letters[0] if same_letters else _closest(value, (str(c) for c in choices))
        hint = f" (did you mean '{guess}'?)" if guess else ""
        return f"{value!r} is not one of {allowed}{hint}"
    return f"expected one of {allowed}, got {_yaml_kind(value)}"


def _priority_class_names(loaded: Any) -> tuple[str, ...] | None:
    """The names of the config's priority classes, if they loaded cleanly."""
    if isinstance(loaded, tuple) and all(isinstance(c, model.PriorityClass) for c in loaded):
        return tuple(c.name for c in loaded)
    return None
