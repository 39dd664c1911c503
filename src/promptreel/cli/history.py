"""`promptreel history`: every generation kept, newest first; show, rerun or remove one."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .generate import OWN_OPTIONS, make_video, with_options
from .show import print_fields, printable, stage_lines, table_lines

JobId = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=2**63 - 1, help="The id from `history`.")
]
MAX_LIMIT = 10**6  # more than any history holds; SQLite takes at most a 64-bit number
history_app = typer.Typer(help="Every generation, newest first: list, show, rerun, remove.")


@history_app.callback(invoke_without_command=True)
def history(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Text in the prompt or model.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (as it was asked).")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many to list.")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """List past generations, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from ..jobs.store import STATUSES, JobStore

    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"--status must be one of {', '.join(STATUSES)}, not {status!r}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"--limit must be between 1 and {MAX_LIMIT}, not {limit}.")
    if search is not None and not search.isprintable():
        raise InvalidRequest("--search must be plain text, without control characters.")
    jobs, total = JobStore().list(text=search, model=model, status=status, limit=limit)
    if json_output:
        print(json.dumps({"jobs": [job.to_dict() for job in jobs], "total": total}, indent=2))
        return
    if not jobs:
        filtered = any(x is not None for x in (search, model, status))
        print("nothing matches" if filtered else "no generations yet", file=sys.stderr)
        return
    rows = [
        (
            str(job.id),
            _when(job.created_at) or "",
            job.status,
            "" if job.seed is None else str(job.seed),
            job.model,
            (job.prompt or "").strip(),
        )
        for job in jobs
    ]
    for line in table_lines(("id", "when", "status", "seed", "model", "prompt"), rows):
        print(line)
    if total > len(jobs):
        print(f"{len(jobs)} of {total}; --limit shows more", file=sys.stderr)


@history_app.command("show")
def history_show(
    job_id: JobId,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Everything about one generation: request, status, seed, files, error, and each stage's
    time and peak memory."""
    job = _job(job_id)
    data = job.to_dict()
    if json_output:
        print(json.dumps(data, indent=2))
        return
    record = data.pop("record") or {}
    for key in ("created_at", "started_at", "finished_at"):
        data[key] = _when(data[key], seconds=True)
    print_fields(data, width=16)
    for line in stage_lines(record):
        print(line)


def history_rerun(job_id: int, **own: Any) -> None:
    """Make a generation again with its seed and settings: the same frames on the same machine."""
    from ..jobs.history import rerun_request

    job = _job(job_id)
    request = rerun_request(job)
    # the same kind of file, unless it was a PNG folder: that needs a name, so an MP4 then
    suffix = "." + (job.output_format if job.output_format in ("webm", "gif") else "mp4")
    make_video(request, suffix=suffix, **own)


with_options(history_rerun, {"job_id": (JobId, ...), **OWN_OPTIONS})
history_app.command("rerun")(history_rerun)


@history_app.command("rm")
def history_rm(
    job_id: JobId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a generation from the history, and its files."""
    from ..jobs.files import job_files, remove_files
    from ..jobs.store import JobStore

    job = _job(job_id)
    if job.status in ("queued", "running"):
        raise InvalidRequest(
            f"job {job_id} is {job.status}; cancel it first (POST /v1/jobs/{job_id}/cancel)."
        )
    files = job_files(job)
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidRequest(
                "`history rm` asks before removing; add --yes to remove without asking."
            )
        listing = "".join(f"\n  {printable(str(f))}" for f in files)
        question = f"Remove generation {job_id} and {len(files)} file(s)?{listing}\n"
        if not typer.confirm(question, default=False, err=True):
            print("nothing removed", file=sys.stderr)
            return
    JobStore().remove(job_id)
    remove_files(files)
    print(f"removed generation {job_id} and {len(files)} file(s)", file=sys.stderr)


def _when(epoch: float | None, *, seconds: bool = False) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.localtime(epoch))


def _job(job_id: int):
    from ..jobs.store import JobStore

    job = JobStore().get(job_id)
    if job is None:
        raise InvalidRequest(f"there is no generation {job_id}; `promptreel history` lists them.")
    return job
