"""How the command line prints things a user or a file supplied: one field a line, no escape
codes from untrusted text, and counts a person reads at a glance."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len, set_cell_size

# what a table's two last columns (a long model name, a prompt) keep on the narrowest terminal
SHRINKS_TO = 12


def print_fields(fields: dict[str, Any], *, width: int, indent: int = 0) -> None:
    """One line a field; a field holding tables (a card's params, its control kinds) opens an
    indented block of them. Values go through JSON, so that a record from an untrusted file
    cannot put escape codes or line breaks on the terminal."""
    for key, value in fields.items():
        name = " " * indent + json.dumps(str(key))[1:-1]
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            print(name)
            print_fields(value, width=width, indent=indent + 2)
            continue
        if isinstance(value, str) and value.isprintable():
            shown = value
        else:
            shown = value if isinstance(value, int | float | bool) else json.dumps(value)
        print(f"{name:<{width}} {shown}")


def count(n: float) -> str:
    """A parameter count with its unit: 2.7M, 1.7B, 850k (a small model is not `0.0B`)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def table_lines(names: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table as lines that fit the terminal, one row a line, the last column last.

    The columns before the last two keep their whole width (ids are what `show` and `rerun`
    need); the last two (a model name, a prompt) share what is left, cut with `…`, never below
    `SHRINKS_TO`, the one before the last first. Every cell is made printable first: text
    from a request or a file cannot move the cursor or colour the terminal.
    """
    cells = [[printable(cell) for cell in row] for row in [names, *rows]]
    widths = [max(cell_len(row[i]) for row in cells) for i in range(len(names))]
    room = shutil.get_terminal_size().columns - sum(widths[:-2]) - 2 * (len(names) - 1)
    widths[-2] = min(widths[-2], max(room - widths[-1], SHRINKS_TO))  # the last one goes first
    widths[-1] = max(min(widths[-1], room - widths[-2]), SHRINKS_TO)
    return [
        "  ".join(_fit(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def printable(text: str) -> str:
    """`text` with every character a terminal would act on (ESC, C1 controls, line breaks)
    shown as its escape, as Python writes it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fit(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def stage_lines(record: dict[str, Any]) -> list[str]:
    """A record's stages as a table: each one's time and measured peak memory, and the plan's
    estimate beside it when the record has one. A record is read from a file: any part of it
    may be missing or of the wrong kind, and shows as `-`."""
    timings = _mapping(record.get("timings"))
    memory = _mapping(record.get("memory"))
    measured, planned = _mapping(memory.get("measured")), _mapping(memory.get("planned"))
    stages = list(dict.fromkeys([*timings, *measured]))
    if not stages:
        return []
    names = ["stage", "time", "peak RAM", "peak VRAM"]
    if planned:
        names += ["planned RAM", "planned VRAM"]
    rows = []
    for stage in stages:
        row = [str(stage), _seconds(timings.get(stage))]
        for peaks in (measured, planned) if planned else (measured,):
            at = _mapping(peaks.get(stage))
            row += [size(at.get("peak_ram_bytes")), size(at.get("peak_vram_bytes"))]
        rows.append(row)
    return table_lines(names, rows)


def size(n: object) -> str:
    """Bytes as a person reads them: 613 MiB, 7.9 GiB; `-` for no number."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{n} B"


def _seconds(value: object) -> str:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:.2f} s" if ok else "-"


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def progress_bars(*, enabled: bool, label_width: int) -> Any:
    """Rich progress bars on stderr (stdout stays clean for --json), gone when done: a label,
    the bar, steps done of all, time taken and the ETA."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )
