"""The local backend: the batch's jobs one after another in this process, the pipeline kept
loaded from one job to the next on the same model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import PromptreelError
from ..generation import prepare, run
from ..video import Video
from .rows import BatchJob


class LocalBackend:
    name = "local"

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(
        self,
        jobs: list[BatchJob],
        *,
        started: Callable[[BatchJob], None],
        progress: Callable[[BatchJob, Any], None],
    ) -> Iterator[tuple[BatchJob, list[Video] | PromptreelError]]:
        for job in jobs:
            started(job)
            try:
                videos = run(prepare(job.request), progress=lambda p, job=job: progress(job, p))
            except PromptreelError as e:
                yield job, e
                continue
            yield job, videos
