"""Running a batch: each job through a backend, each video written and recorded by this process.

The store is the batch's memory. Every job has a key: its settled request and the files it
writes (a file a video). A job whose key has a succeeded row, and whose files are still there,
is skipped; any other runs (again). A job's row is `running` while it runs and ends
`succeeded`, `failed` (with the one-line reason; the batch goes on) or `cancelled` (Ctrl-C:
the batch stops, and what finished stays). The frames come back from the backend and are
written here, aside and renamed, so a file in the output folder is always a whole video with
its record.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import OutputError, PromptreelError
from ..jobs.files import all_or_none
from ..jobs.history import how_it_ended
from ..jobs.store import JobStore
from ..request import GenerationRequest
from ..video import Video
from .rows import BatchJob

SUMMARY = "batch.json"
SHEET = "contact-sheet.png"


@dataclass
class Outcome:
    """How one job of the batch ended."""

    job: BatchJob
    status: str  # done | failed | skipped | cancelled
    paths: list[Path]  # its videos' files
    seconds: float = 0.0
    reason: str | None = None
    row_id: int | None = None  # its row in the store


class Backend(Protocol):
    """Where videos are made: `run` yields each job with its videos, or the error that stopped
    it, as they finish; `started(job)` is called as each begins. Entered first: a backend
    that cannot run (no cluster) says so before any file is made."""

    name: str

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(
        self,
        jobs: list[BatchJob],
        *,
        started: Callable[[BatchJob], None],
        progress: Callable[[BatchJob, Any], None],
    ) -> Iterator[tuple[BatchJob, list[Video] | PromptreelError]]: ...


def batch_key(request: GenerationRequest, paths: list[Path]) -> str:
    text = json.dumps([request.model_dump(mode="json"), *map(os.fspath, paths)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_batch(
    jobs: list[BatchJob],
    settled: dict[int, GenerationRequest],
    output_dir: Path,
    backend: Backend,
    *,
    store: JobStore,
    on_outcome: Callable[[Outcome], None],
    progress: Callable[[BatchJob, Any], None],
) -> list[Outcome]:
    """Run what is not done yet; the outcomes in the jobs' order. `settled`: each job's
    request with every value settled (by number), as the store keeps it. The backend is
    entered (a cluster joined) only when there is something to run, and before the output
    folder is made: a cluster that cannot run the batch leaves nothing."""
    outcomes: dict[int, Outcome] = {}
    output_dir = output_dir.absolute()  # one key for the same files, from any folder
    paths = {job.number: [output_dir / name for name in job.filenames] for job in jobs}
    keys = {job.number: batch_key(settled[job.number], paths[job.number]) for job in jobs}
    todo = []
    for job in jobs:
        done = store.batch_done(keys[job.number])
        if done is not None and all(path.exists() for path in paths[job.number]):
            outcomes[job.number] = Outcome(job, "skipped", paths[job.number], row_id=done.id)
            on_outcome(outcomes[job.number])
        else:
            todo.append(job)
    # one model's jobs together, in the order the models first come: no pipeline reloads
    first: dict[str | None, int] = {}
    for job in todo:
        first.setdefault(job.request.model, len(first))
    todo.sort(key=lambda job: first[job.request.model])
    rows: dict[int, int] = {}
    began: dict[int, float] = {}

    def started(job: BatchJob) -> None:
        request = settled[job.number].model_dump(mode="json")
        row = store.add(request, source="batch", status="running", batch_key=keys[job.number])
        rows[job.number], began[job.number] = int(row or 0), time.monotonic()

    with backend if todo else nullcontext():
        output_dir.mkdir(parents=True, exist_ok=True)
        try:
            # closed on the way out, even by Ctrl-C: a backend stops its workers then
            with closing(backend.run(todo, started=started, progress=progress)) as results:
                for job, result in results:
                    seconds = time.monotonic() - began[job.number]
                    outcome = _keep(
                        job, result, paths[job.number], store, rows[job.number], keys[job.number]
                    )
                    outcome.seconds = seconds
                    outcomes[job.number] = outcome
                    on_outcome(outcome)
        except BaseException as exc:  # Ctrl-C, or a backend that broke: what ran is kept
            status, reason = how_it_ended(exc)
            for job in todo:
                if job.number in rows and job.number not in outcomes:
                    store.finish(rows[job.number], status, reason=reason)
                    row = rows[job.number]
                    outcomes[job.number] = Outcome(
                        job, "cancelled", paths[job.number], 0.0, reason, row
                    )
            raise
        finally:
            for job in jobs:
                outcomes.setdefault(job.number, Outcome(job, "cancelled", paths[job.number]))
            write_summary(output_dir, [outcomes[job.number] for job in jobs], backend.name)
    return [outcomes[job.number] for job in jobs]


def _keep(
    job: BatchJob,
    result: list[Video] | PromptreelError,
    paths: list[Path],
    store: JobStore,
    row: int,
    key: str,
) -> Outcome:
    """Write a job's videos and record how it ended, in the store and as its outcome."""
    if isinstance(result, PromptreelError):
        reason = " ".join(str(result).split())
        store.finish(row, "failed", reason=reason)
        return Outcome(job, "failed", paths, reason=reason, row_id=row)
    try:
        with all_or_none() as saved:  # a failed video takes those before it with it
            for video, path in zip(result, paths, strict=True):
                # a file in the way is replaced only if a run of this same job set out to write it
                ours = store.batch_wrote(key, path)
                store.add_output(row, path)  # before writing: a crash leaves it known
                if path.is_dir():  # `save` would fill it with PNG frames
                    raise OutputError(f"{path} is a folder; move it out of the way")
                saved.append(video.save(path, overwrite=ours))
    except PromptreelError as e:
        store.finish(row, "failed", reason=str(e))
        return Outcome(job, "failed", paths, reason=str(e), row_id=row)
    store.finish(row, "succeeded", record=result[0].record)
    return Outcome(job, "done", paths, row_id=row)


def write_summary(output_dir: Path, outcomes: list[Outcome], backend: str) -> Path:
    """batch.json: every job, how it ended, its file and its row in the history."""
    summary = {
        "backend": backend,
        "counts": {
            status: sum(o.status == status for o in outcomes)
            for status in ("done", "skipped", "failed", "cancelled")
        },
        "jobs": [
            {
                "number": o.job.number,
                "line": o.job.line,
                "prompt": o.job.request.prompt,
                "seed": o.job.request.seed,
                "varied": o.job.varied,
                "files": [path.name for path in o.paths],
                "status": o.status,
                "reason": o.reason,
                "seconds": round(o.seconds, 3),
                "history_id": o.row_id,
            }
            for o in outcomes
        ],
    }
    path = output_dir / SUMMARY
    temp = path.with_name(f".{SUMMARY}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(temp, path)
    return path
