"""A history row around one generation run by the CLI or the Python API.

    prepared = prepare(request)    # a refused request is no generation: it gets no row
    with history_entry(request, source="cli", enabled=True) as entry:
        video = run(prepared)
        entry.add_output(video.save(path))
        entry.succeeded(video.record)

The row is `running` from the start, so a crash leaves a trace; an error marks it `failed` with
the one-line reason, Ctrl-C marks it `cancelled`; the error itself is raised on unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Cancelled, InvalidRequest, PromptreelError
from ..models import lora as lora_files
from ..models.resolve import CARDS_BY_NAME
from ..request import GenerationRequest, make_request
from ..video.read import input_sha256
from .store import Job, JobStore


class HistoryEntry:
    """The row of one generation; every method does nothing when history is off."""

    def __init__(self, store: JobStore | None, job_id: int | None) -> None:
        self.store = store
        self.id = job_id
        self.done = False

    def succeeded(self, record: dict[str, Any]) -> None:
        if self.store is not None and self.id is not None:
            self.store.finish(self.id, "succeeded", record=record)
        self.done = True

    def add_output(self, path: str | os.PathLike[str]) -> None:
        if self.store is not None and self.id is not None:
            self.store.add_output(self.id, os.path.abspath(path))


@contextmanager
def history_entry(
    request: GenerationRequest, *, source: str, enabled: bool = True
) -> Iterator[HistoryEntry]:
    store = JobStore() if enabled else None
    job_id = None
    if store is not None:
        job_id = store.add(request.model_dump(mode="json"), source=source, status="running")
    entry = HistoryEntry(store, job_id)
    try:
        yield entry
    except BaseException as exc:
        if store is not None and job_id is not None and not entry.done:
            status, reason = how_it_ended(exc)
            store.finish(job_id, status, reason=reason)
        raise
    if store is not None and job_id is not None and not entry.done:
        store.finish(job_id, "failed", reason="ended without a video")


def how_it_ended(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, Cancelled):
        return "cancelled", str(exc)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return "cancelled", "interrupted"
    if isinstance(exc, PromptreelError):
        return "failed", " ".join(str(exc).split())
    return "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def rerun_request(job: Job) -> GenerationRequest:
    """The request that makes a job's video again: its own fields, with every value the model
    settled on (the seed above all) fixed, so a changed default cannot change the video."""
    fields = dict(job.request)
    record = job.record
    if record is None:
        if job.seed is None:
            raise InvalidRequest(
                f"job {job.id} never ran and has no seed; it cannot be made again the same way."
            )
        fields["seed"] = job.seed
        return make_request(**fields)
    _check_inputs(job, fields, record.get("inputs") or {})
    _check_loras(job, record)
    # the negative prompt as settled (a card's own, when none was given) is kept apart
    fields.update(record["parameters"], negative_prompt=record["negative_prompt"])
    if record.get("promptreel_record") == 1:  # before every field was in `parameters`
        fields.update(seed=record["seed"], scheduler=record["scheduler"]["name"])
    model = record.get("model") or {}
    card = CARDS_BY_NAME.get(model.get("name"))
    if "base" not in record["parameters"] and card is not None and card.takes_base:
        # made before --base: on the card's base of the day (animatediff's was SD 1.5 itself)
        fields["base"] = model["repo_id"]
    return make_request(**fields)


def _check_loras(job: Job, record: dict[str, Any]) -> None:
    """A LoRA by name or folder must still be the one the job used: a name may have been given
    to other weights since."""
    for noted in record.get("loras") or []:
        try:
            same = input_sha256(lora_files.resolve(noted["lora"]).file) == noted["sha256"]
        except (PromptreelError, OSError):
            same = False
        if not same:
            raise InvalidRequest(
                f"job {job.id}'s LoRA {noted['lora']} is gone or has changed since; put the "
                "original back, or generate anew.",
                argument="lora",
                value=noted["lora"],
            )


def _check_inputs(job: Job, fields: dict[str, Any], inputs: dict[str, Any]) -> None:
    """The image or video a job was made from must be the same file still."""
    for key, noted in inputs.items():
        path = Path(fields.get(key) or "")
        try:
            same = path.exists() and input_sha256(path) == noted["sha256"]
        except OSError:
            same = False
        if not same:
            raise InvalidRequest(
                f"job {job.id}'s {key} {path} is gone or has changed since; put the original "
                "back there, or generate anew."
            )
