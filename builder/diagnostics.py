"""Located diagnostics: every error and warning the builder reports to a user.

Format (compiler style, so editors and CI annotate it): ``FILE:LINE:COL: error: [rule-id] message``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Location:
    file: str
    line: int = 0  # 1-based; 0 means "whole file"
    col: int = 0  # 1-based

    def __str__(self) -> str:
        from builder.console import printable  # a path with a newline or ESC must not forge a line

        file = printable(self.file, newlines=False)
        if self.line:
            return f"{file}:{self.line}:{self.col or 1}"
        return file


@dataclass(frozen=True)
class Diagnostic:
    rule: str
    severity: Severity
    message: str
    location: Location
    # YAML path of the offending node, e.g. ("serving", "option", "dtype")
    path: tuple[str | int, ...] = field(default_factory=tuple)

    def format(self) -> str:
        from builder.console import printable  # one line: a newline in an echoed value is shown as \x0a

        return f"{self.location}: {self.severity}: [{self.rule}] {printable(self.message, newlines=False)}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["location"] = asdict(self.location)
        data["path"] = list(self.path)
        return data


class BuilderError(Exception):
    """An error a user can act on. Caught by the CLI: printed, never a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, stage: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.stage = stage
        self.hint = hint

    def describe(self) -> str:
        text = f"{self.stage}: {self}" if self.stage else str(self)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(BuilderError):
    exit_code = 2


class DiagnosticError(BuilderError):
    """Raised when loading or validating produced errors; carries every diagnostic."""

    def __init__(self, diagnostics: Iterable[Diagnostic], *, stage: str = "validate"):
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s)", stage=stage)

    def describe(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def dumps(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2)


def relpath(path: Path) -> str:
    """Paths in messages relative to the working directory when possible (shorter, clickable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
