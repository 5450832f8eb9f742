"""What the ``clipper`` command prints: Rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["CliError", "Output", "error_text"]

# ClipperConnection's text for a management API refusal (the server's JSON body follows).
_SERVER_REFUSAL: Final = re.compile(r"Received error status code: (\d+) and message: (.*)", re.DOTALL)


class CliError(Exception):
    """A failure the command reports as one line (exit status 1)."""


def error_text(exc: BaseException) -> tuple[str, str]:
    """``(line, details)``: one line saying what failed (the server's own words for a refused
    request), and the lines after it (a log tail) or ``""``."""
    text = str(exc).strip() or type(exc).__name__
    refusal = _SERVER_REFUSAL.fullmatch(text)
    if refusal is not None:
        status, body = refusal[1], refusal[2].strip()
        return f"{server_message(body)} (HTTP {status})", ""
    first, _, rest = text.partition("\n")
    return first, rest.strip("\n")


def server_message(body: str) -> str:
    """The server's words from an error body: ``{"error", "cause"}`` JSON as ``error: cause``."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return " ".join(body.split()) or "(empty answer)"
    if isinstance(parsed, dict) and "error" in parsed:
        cause = str(parsed.get("cause") or "").strip()
        error = str(parsed["error"]).strip()
        return f"{error}: {' '.join(cause.split())}" if cause else error
    return " ".join(body.split())


class Output:
    """stdout for results (a table, or JSON with ``--json``); stderr for messages."""

    def __init__(self, as_json: bool, stdout: Console | None = None, stderr: Console | None = None) -> None:
        self.as_json = as_json
        self.stdout = stdout or Console(highlight=False, soft_wrap=False)
        self.stderr = stderr or Console(stderr=True, highlight=False)
        # Called before anything is written to stdout (the progress display leaves the terminal).
        self.before_output: Callable[[], None] = lambda: None

    def json(self, value: Any) -> None:
        self.before_output()
        self.stdout.file.write(json.dumps(value, indent=2, default=str) + "\n")
        self.stdout.file.flush()

    def result(self, value: Any, message: str) -> None:
        """A command's result: ``value`` as JSON, or ``message`` for people."""
        if self.as_json:
            self.json(value)
        else:
            self.before_output()
            self.stdout.print(message)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.before_output()
        if title:
            self.stdout.print(Text(title, style="bold"))
        table = Table(show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
        self.stdout.print(table)

    def error(self, exc: BaseException) -> None:
        self.before_output()
        line, details = error_text(exc)
        self.stderr.print(Text(f"error: {line}", style="bold red"), soft_wrap=True)
        for detail in details.splitlines():
            self.stderr.print(Text(f"  | {detail}"), soft_wrap=True)
