"""A batch's rows: read from a file, given defaults by the command line, swept, and checked.

FILE is `.txt` (a prompt a line), `.jsonl` (an object a line) or `.csv` (a header of field
names, a row a line). Fields are the request's own names (`num_frames`, `guidance_scale`,
`lora`, `params`). Blank lines, and lines of a `.txt` that start with `#`, are passed over.
Then each row is swept: over `--seeds`, and over every combination of `--grid` values.

A row without a seed takes 0: a batch is made to be run again (to finish it, to compare),
and only a fixed seed makes the same video again.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidRequest, PromptreelError
from ..request import INPUT_FILES, GenerationRequest, make_request, one_line
from ..video.write import SUFFIXES, batch_filename

FORMATS = {".txt", ".jsonl", ".csv"}
MAX_GRID = 2  # settings a grid varies at once: a contact sheet shows up to two
MAX_JOBS = 10_000
FIELDS = set(GenerationRequest.model_fields)


@dataclass(frozen=True)
class BatchJob:
    """One request of a batch: its request, where it came from, what the sweep varied, and
    the files of its videos (`num_videos_per_prompt` of them)."""

    number: int  # 1, 2, ... in the batch's order
    line: int  # the file's line it came from (0: no file)
    request: GenerationRequest
    varied: dict[str, Any]  # the swept settings (seed, grid values): the contact sheet's labels
    filenames: tuple[str, ...]


def parse_seeds(text: str) -> list[int]:
    """`1-8`, `1,3,5` or `1-4,10`: the seeds in that order, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        found = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", part)
        if found is None:
            raise InvalidRequest(
                f"--seeds {text!r} is not a list of seeds; give them like 1-8 or 1,3,5.",
                argument="seeds",
                value=text,
            )
        low = int(found[1])
        high = int(found[2]) if found[2] is not None else low
        if high < low or high - low >= MAX_JOBS:
            raise InvalidRequest(
                f"--seeds {part.strip()!r} is not a range from low to high (at most {MAX_JOBS} "
                "seeds); give it like 1-8.",
                argument="seeds",
                value=text,
            )
        seeds += [s for s in range(low, high + 1) if s not in seeds]
    return seeds


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """`--grid guidance_scale=3,5,7.5` items: the setting and its values, typed as the
    request types them."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise InvalidRequest(
                f"--grid expects SETTING=V1,V2 but got {item!r}; e.g. guidance_scale=3,5,7.5.",
                argument="grid",
                value=item,
            )
        if name not in FIELDS or name in ("prompt", "seed"):
            hint = "--seeds sweeps the seed" if name == "seed" else "a request field"
            raise InvalidRequest(
                f"--grid {name!r} is not a setting a grid can vary ({hint}); e.g. "
                "guidance_scale=3,5,7.5.",
                argument="grid",
                value=item,
            )
        if name in grid:
            raise InvalidRequest(
                f"--grid {name} is given twice; give its values once, comma-separated.",
                argument="grid",
                value=item,
            )
        grid[name] = [_typed(name, v.strip(), "--grid") for v in values.split(",")]
    if len(grid) > MAX_GRID:
        raise InvalidRequest(
            f"--grid varies {len(grid)} settings; a batch varies at most {MAX_GRID} at once.",
            argument="grid",
        )
    return grid


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The file's rows: (line number, the fields it sets)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidRequest(
            f"{path} is not a batch file; give a .txt (a prompt a line), .jsonl or .csv.",
            argument="file",
            value=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidRequest(f"{path} does not exist.", argument="file", value=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidRequest(
            f"cannot read {path}: {getattr(e, 'strerror', None) or e}; give a UTF-8 text file.",
            argument="file",
            value=str(path),
        ) from None
    rows = {".txt": _txt, ".jsonl": _jsonl, ".csv": _csv}[suffix](path, text)
    if not rows:
        raise InvalidRequest(f"{path} has no rows.", argument="file", value=str(path))
    # a row's input files are where the file says, beside it, from wherever the batch runs
    for _, fields in rows:
        for name in INPUT_FILES:
            value = fields.get(name)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                fields[name] = str(path.parent / value)
    return rows


def _txt(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (number, {"prompt": line.strip()})
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _jsonl(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError as e:
            raise InvalidRequest(f"{path} line {number}: not JSON ({e.msg}).") from None
        if not isinstance(fields, dict):
            raise InvalidRequest(f"{path} line {number}: a row is a JSON object of request fields.")
        rows.append((number, _known(path, number, fields)))
    return rows


def _csv(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _csv_rows(path, reader)
    except csv.Error as e:  # a NUL byte, a quote left open
        raise InvalidRequest(f"{path} line {reader.line_num}: not CSV ({e}).") from None


def _csv_rows(path: Path, reader: Any) -> list[tuple[int, dict[str, Any]]]:
    header = next(reader, None)
    if not header:
        return []
    names = [name.strip() for name in header]
    _known(path, reader.line_num, dict.fromkeys(names))  # the header's own line
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidRequest(
            f"{path} line {reader.line_num}: the column {twice[0]!r} is given twice; give it once."
        )
    rows = []
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(names):
            raise InvalidRequest(
                f"{path} line {number}: {len(cells)} cells under {len(names)} column names."
            )
        fields = dict(zip(names, cells, strict=False))  # names checked with the header
        try:
            rows.append(
                (number, {n: _typed(n, c, "") for n, c in fields.items() if c.strip() != ""})
            )
        except InvalidRequest as e:
            raise _at(f"{path} line {number}", e) from None
    return rows


def _known(path: Path, number: int, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{path} line {number}: {unknown[0]!r} is not a request field; use the names "
            "`promptreel generate --help` gives, with _ for - (num_frames, guidance_scale)."
        )
    return fields


def _typed(name: str, text: str, option: str) -> Any:
    """A value written as text (a CSV cell, a --grid value), typed as the request types it:
    `lora` takes LORA;LORA, `params` KEY=VALUE;KEY=VALUE."""
    if name == "lora":
        return [item.strip() for item in text.split(";") if item.strip()]
    if name == "params":
        params = {}
        for item in text.split(";"):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InvalidRequest(f"`params` takes KEY=VALUE;KEY=VALUE, not {text!r}.")
            params[key.strip()] = value.strip()
        return params
    try:
        request = GenerationRequest.model_validate_strings({name: text})
    except ValidationError as exc:
        message, _ = one_line(exc.errors())
        raise InvalidRequest(f"{option} {message}".strip(), argument=name, value=text) from None
    return getattr(request, name)


def expand(
    rows: list[tuple[int, dict[str, Any]]],
    defaults: dict[str, Any],
    *,
    seeds: list[int] | None,
    grid: dict[str, list[Any]],
    suffix: str,
    where: str,
) -> list[BatchJob]:
    """Every job of the batch, in order: each row (over the defaults), at each seed of
    `seeds`, at each combination of the grid's values."""
    if suffix not in SUFFIXES:
        raise InvalidRequest(f"--format must be one of {', '.join(s[1:] for s in SUFFIXES)}.")
    for name in (*grid, *(["seed"] if seeds else [])):
        if defaults.get(name) is not None:
            sweep = "--seeds" if name == "seed" else f"--grid {name}"
            raise InvalidRequest(
                f"--{name.replace('_', '-')} and {sweep} are both given; give one.", argument=name
            )
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    jobs: list[BatchJob] = []
    videos = 0
    for row_number, (line, fields) in enumerate(rows, 1):
        place = f"{where} line {line}" if line else where
        for name in (*grid, *(["seed"] if seeds else [])):
            if name in fields:
                sweep = "--seeds" if name == "seed" else "--grid"
                raise InvalidRequest(
                    f"{place}: sets {name}, which {sweep} sweeps; give it in one place."
                )
        for seed in seeds or [None]:
            for combo in combos:
                varied = {**({"seed": seed} if seed is not None else {}), **combo}
                merged = {**defaults, **fields, **varied}
                merged.setdefault("seed", None)
                if merged["seed"] is None:
                    merged["seed"] = 0
                try:
                    request = make_request(**merged)
                except PromptreelError as e:
                    raise _at(place, e) from None
                videos += request.num_videos_per_prompt
                if videos > MAX_JOBS:
                    raise InvalidRequest(f"the batch makes more than {MAX_JOBS} videos; split it.")
                n = request.num_videos_per_prompt
                names = tuple(
                    batch_filename(
                        row_number,
                        request.prompt,
                        request.seed,
                        combo,
                        suffix,
                        video=k if n > 1 else None,
                    )
                    for k in range(1, n + 1)
                )
                jobs.append(BatchJob(len(jobs) + 1, line, request, varied, names))
    return jobs


def check_all(jobs: list[BatchJob], check: Callable[[BatchJob], None], where: str) -> None:
    """Run `check` (what `generate` refuses before loading) on every job; the first refusal is
    raised naming its line, before anything runs."""
    for job in jobs:
        try:
            check(job)
        except PromptreelError as e:
            raise _at(f"{where} line {job.line}" if job.line else where, e) from None


def _at(place: str, error: PromptreelError) -> PromptreelError:
    """The same error, its message led by where in the batch it is."""
    error.args = (f"{place}: {error}", *error.args[1:])
    return error
