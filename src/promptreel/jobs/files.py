"""Where a job's files live, and removing exactly those (never anything a user put beside them).

The service writes outputs as `HOME/outputs/{id}.{format}` (a job's further videos as
`{id}-2.{format}`, ...; for a job with `control`, the control images as
`HOME/outputs/{id}.control.{format}`) and keeps uploads as
`HOME/uploads/{random}.{suffix}`: names it makes itself, so no request field is ever a path.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .. import jsontext
from ..errors import OutputError
from ..home import home
from ..request import INPUT_FILES
from .store import Job

_PNG_FRAME = re.compile(r"frame_\d{5,}\.png")


def outputs_dir() -> Path:
    return home() / "outputs"


def uploads_dir() -> Path:
    return home() / "uploads"


def output_path(job_id: int, output_format: str, number: int = 1) -> Path:
    """Where the service keeps a job's video `number` (of `num_videos_per_prompt`)."""
    name = str(job_id) if number == 1 else f"{job_id}-{number}"
    return outputs_dir() / f"{name}.{output_format}"


def control_output_path(job_id: int, output_format: str) -> Path:
    """Where the service keeps the control images a job was steered by, beside its video."""
    return outputs_dir() / f"{job_id}.control.{output_format}"


def new_upload_path(suffix: str) -> Path:
    return uploads_dir() / f"{secrets.token_hex(8)}{suffix}"


def job_files(job: Job) -> list[Path]:
    """The files a job made (each output, its record beside it, the frames of a PNG folder)
    and the uploads it was given, as they exist now and are still its own."""
    files: list[Path] = []
    for name in job.outputs:
        path = Path(name)
        if not _made_by(job, path):
            continue  # replaced since (`--overwrite` by a later run): that file is not ours
        files += output_files(path)
    for key in INPUT_FILES:
        value = job.request.get(key)
        # a CLI rerun of a service job names the same upload: only the service job owns it
        if value and job.source == "service" and Path(value).parent == uploads_dir():
            files.append(Path(value))
    return [f for f in files if f.is_file()]


def output_files(output: Path) -> list[Path]:
    """The files of one output: a video and its record beside it, or a folder's PNG frames and
    its record."""
    if output.is_dir():
        frames = sorted(p for p in output.iterdir() if _PNG_FRAME.fullmatch(p.name))
        return [*frames, output / "record.json"]
    return [output, output.with_name(output.name + ".json")]


@contextmanager
def all_or_none() -> Iterator[list[Path]]:
    """Save a run's outputs (appending each path saved to the list): if one fails (a full disk),
    those saved before it are removed, so a failed run leaves no part of itself."""
    saved: list[Path] = []
    try:
        yield saved
    except BaseException:
        remove_files([f for output in saved for f in output_files(output)])
        raise


def _made_by(job: Job, output: Path) -> bool:
    """Whether the record beside `output` is still this job's: not when it is gone or another
    run's. A record that cannot be read says neither, so nothing is removed (`OutputError`):
    removing is all or nothing."""
    record = output / "record.json" if output.is_dir() else output.with_name(output.name + ".json")
    if job.record is None:
        return False
    try:
        return _run_of(jsontext.loads(record.read_text("utf-8"))) == _run_of(job.record)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as e:  # unreadable; not UTF-8, not JSON, nested too deeply
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise OutputError(
            f"job {job.id}'s record {record.name} cannot be read ({reason}); nothing was "
            "removed: repair or delete that file, then remove the job again."
        ) from None


def _run_of(record: object) -> object:
    """A record without what tells one output of a run from another: the videos of one request
    differ in their seed and number (the request's own seed and count are in `parameters`), and
    the control images they were steered by are marked `"content": "control"`."""
    if not isinstance(record, dict):
        return record
    return {k: v for k, v in record.items() if k not in ("seed", "content", "videos_per_prompt")}


def remove_files(files: list[Path]) -> None:
    """Unlink the files; then a folder of PNG frames that is left empty goes too."""
    for file in files:
        file.unlink(missing_ok=True)
    for folder in {f.parent for f in files if f.name == "record.json"}:
        with suppress(OSError):
            folder.rmdir()  # only if empty: anything else in it is not ours


def clean_partial_files() -> int:
    """Remove the hidden temporaries a killed writer left in the outputs and uploads folders."""
    count = 0
    for folder in (outputs_dir(), uploads_dir()):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.startswith(".") and path.is_file():
                    path.unlink(missing_ok=True)
                    count += 1
    return count
