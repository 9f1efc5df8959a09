"""The one error family. Only the CLI catches these, prints them and picks the exit code.

Exit codes: 0 ok, 1 drift or validation failure, 2 invalid config or usage,
3 refused to overwrite a file a person edited.
"""

from __future__ import annotations

from dataclasses import dataclass


class MlgitopsError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a config file."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # dotted field path, e.g. workloads[1].network.egressTo[0].cidr
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class ConfigError(MlgitopsError):
    """The config is invalid; carries every problem found, in file order. The message
    lists the first SHOWN_PROBLEMS of them: a file that is wrong everywhere (a different
    format, a generated mess) should not bury the terminal."""

    exit_code = 2
    SHOWN_PROBLEMS = 200

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        lines = [str(p) for p in self.problems[: self.SHOWN_PROBLEMS]]
        hidden = len(self.problems) - len(lines)
        if hidden:
            lines.append(f"{self.problems[0].file}: {hidden} more problems not shown")
        super().__init__("\n".join(lines))


class UsageError(MlgitopsError):
    """The command line asks for something impossible (missing file, bad folder)."""

    exit_code = 2


class TreeError(UsageError):
    """The output tree cannot be read or written safely (a symlinked folder, a file where
    a folder belongs, an unreadable entry, a full disk). Raised before anything in the
    tree is changed, or, for the rare failure while renaming, with what the next run does
    about it. The message starts with `mlgitops:` and names the path."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"mlgitops: {path}: {message}")
