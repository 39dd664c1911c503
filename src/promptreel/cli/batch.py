"""`promptreel batch [FILE]`: many videos from a file of rows, or from sweeps of one request.

The request options are `generate`'s (the prompt too, as `--prompt`): they are the defaults of
every row. Every row is checked before the first one runs; the videos go to `--output-dir`
under names made from the row, with `batch.json` and a contact sheet beside them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from ..request import GenerationRequest
from .backends import Address, Backend, CpusPerWorker, Workers, check_backend
from .generate import field_option, parse_params, with_options
from .show import printable, progress_bars, table_lines

OWN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "file": (
        Annotated[
            Path | None,
            typer.Argument(
                help="Rows: .txt (a prompt a line), .jsonl or .csv (request fields).",
                show_default=False,
            ),
        ],
        None,
    ),
    "output_dir": (
        Annotated[
            Path | None,
            typer.Option(
                "--output-dir",
                help="Where the videos go (default: a folder named after FILE, or ./batch).",
                show_default=False,
            ),
        ],
        None,
    ),
    "seeds": (
        Annotated[str | None, typer.Option(help="Every row at each of these seeds: 1-8, 1,3,5.")],
        None,
    ),
    "grid": (
        Annotated[
            list[str] | None,
            typer.Option(
                metavar="SETTING=V1,V2",
                help="Every row at each value (two --grid: each pair), e.g. "
                "guidance_scale=3,5,7.5.",
            ),
        ],
        None,
    ),
    "output_format": (
        Annotated[str, typer.Option("--format", help="mp4, webm or gif.")],
        "mp4",
    ),
    "backend": (Backend, "local"),
    "address": (Address, None),
    "workers": (Workers, None),
    "cpus_per_worker": (CpusPerWorker, 1),
    "quiet": (Annotated[bool, typer.Option("--quiet", help="No progress display.")], False),
    "json_output": (
        Annotated[bool, typer.Option("--json", help="Print batch.json at the end.")],
        False,
    ),
}


def batch(**options: Any) -> None:
    """Make many videos: a file of rows, a seed sweep or a grid; re-running skips what is done."""
    from ..batch.rows import check_all, expand, parse_grid, parse_seeds, read_rows
    from ..batch.runner import run_batch
    from ..batch.sheet import contact_sheet
    from ..generation import prepare
    from ..jobs.store import JobStore

    own = {name: options.pop(name) for name in OWN_OPTIONS}
    # what the user set: a switch left off is no default (a --grid may sweep it)
    fields = GenerationRequest.model_fields
    defaults = {
        name: value
        for name, value in options.items()
        if value is not None and value != fields[name].default
    }
    defaults.pop("params", None)
    if options.get("params"):
        defaults["params"] = parse_params(options["params"])
    file: Path | None = own["file"]
    if file is None and "prompt" not in defaults:
        raise InvalidRequest(
            "give a FILE of rows, or --prompt for a sweep of one (with --seeds or --grid).",
            argument="file",
        )
    seeds = parse_seeds(own["seeds"]) if own["seeds"] is not None else None
    grid = parse_grid(own["grid"] or [])
    suffix = "." + own["output_format"].lower().lstrip(".")
    where = str(file) if file is not None else "the command line"
    rows = read_rows(file) if file is not None else [(0, {})]
    jobs = expand(rows, defaults, seeds=seeds, grid=grid, suffix=suffix, where=where)
    output_dir = own["output_dir"] or Path(file.stem if file is not None else "batch")
    _check_output_dir(output_dir)

    settled: dict[int, GenerationRequest] = {}

    def check(job: Any) -> None:
        settled[job.number] = prepare(job.request).settled

    backend = _backend(own)
    check_all(jobs, check, where)
    display = BatchDisplay(len(jobs), enabled=not own["quiet"] and sys.stderr.isatty())
    started = time.monotonic()
    with display:
        outcomes = run_batch(
            jobs,
            settled,
            output_dir,
            backend,
            store=JobStore(),
            on_outcome=display.finished,
            progress=display.step,
        )
    sheet = contact_sheet(output_dir, outcomes)
    if own["json_output"]:
        print((output_dir / "batch.json").read_text(), end="")
    if not own["quiet"]:
        _summary(outcomes, output_dir, sheet, time.monotonic() - started, own["json_output"])
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _summary(
    outcomes: list[Any], output_dir: Path, sheet: Path | None, seconds: float, json_output: bool
) -> None:
    """The table of every video and a line of counts (on stderr beside --json)."""
    rows_shown = [
        [
            str(o.job.number),
            printable(o.paths[0].name + (f" (+{len(o.paths) - 1})" if len(o.paths) > 1 else "")),
            o.status,
            f"{o.seconds:.1f} s" if o.seconds else "-",
            printable(o.reason or ""),
        ]
        for o in outcomes
    ]
    out = sys.stderr if json_output else sys.stdout
    for line in table_lines(["#", "file", "status", "time", "reason"], rows_shown):
        print(line, file=out)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(
        f"{counts['done']} done, {counts['skipped']} skipped (done before), {counts['failed']} "
        f"failed in {seconds:.1f} s; in {printable(str(output_dir))}"
        + (f", contact sheet {sheet.name}" if sheet is not None else ""),
        file=out,
    )


def _backend(own: dict[str, Any]) -> Any:
    """The backend asked for, its options checked before any row runs."""
    from ..batch.local import LocalBackend

    check_backend(own["backend"], own["address"], own["workers"], own["cpus_per_worker"])
    if own["backend"] == "local":
        return LocalBackend()
    from ..batch.ray_backend import RayBackend

    return RayBackend(own["address"], own["cpus_per_worker"], own["workers"])


def _check_output_dir(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise InvalidRequest(
            f"--output-dir {folder} is a file; give a folder.", argument="output_dir"
        )
    parent = folder if folder.exists() else folder.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidRequest(
            f"--output-dir {folder}: {parent} is not writable; give a folder you can write to.",
            argument="output_dir",
        )


class BatchDisplay:
    """Two bars on stderr: the batch (videos finished of all, ETA) and the video running."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar = progress_bars(enabled=enabled, label_width=10)
        self.whole = self.bar.add_task("batch", total=total)
        self.current = self.bar.add_task("load", total=None)

    def __enter__(self) -> BatchDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def step(self, job: Any, progress: Any) -> None:
        self.bar.update(
            self.current,
            description=f"#{job.number} {progress.stage}",
            completed=progress.step,
            total=progress.total or None,
        )

    def finished(self, outcome: Any) -> None:
        self.bar.advance(self.whole)


REQUEST_OPTIONS = {
    name: field_option(name) for name in GenerationRequest.model_fields if name != "prompt"
}
with_options(
    batch,
    {
        "file": OWN_OPTIONS["file"],
        "prompt": (
            Annotated[
                str | None,
                typer.Option(help="The prompt of every row that has none.", show_default=False),
            ],
            None,
        ),
        **REQUEST_OPTIONS,
        **{k: v for k, v in OWN_OPTIONS.items() if k != "file"},
    },
)
