"""The Ray backend: a batch's jobs on Ray actors, one per GPU (or per `cpus_per_worker` CPUs
on a cluster without GPUs), each keeping its pipeline loaded between jobs.

An idle actor takes the next job on the model it has loaded, else the next job; so actors do
not reload. The frames come back to the driver, which writes and records them (`runner`). An
actor that dies in the middle of a job (killed, its node lost, out of memory) is replaced and
the job runs again on another, up to `MAX_ATTEMPTS` runs; a job that fails for its own reason
(a bad input) comes back as its error and is not run again. Without an address, a local Ray
instance is started for the batch and stopped after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from ..cluster import (
    actor_count,
    connected,
    died,
    died_reason,
    packed,
    result,
    video_maker,
)
from ..errors import PromptreelError
from ..generation import Progress
from ..jobs.store import MAX_ATTEMPTS
from ..video import Video
from .rows import BatchJob


@dataclass
class _Worker:
    actor: Any
    model: str | None = None  # the model it has loaded
    job: BatchJob | None = None
    ref: Any = None


@dataclass
class RayBackend:
    """`address`: a running cluster's (`ray start --head` prints it); None starts one here.
    `workers`: how many actors (default: one per GPU, else per `cpus_per_worker` CPUs).
    Entered, it joins the cluster and counts its actors: a cluster that cannot be reached or
    holds none is refused before the batch makes any file."""

    address: str | None = None
    cpus_per_worker: int = 1
    workers: int | None = None
    name: str = "ray"
    _cluster: ExitStack = field(default_factory=ExitStack, repr=False)
    _ray: Any = field(default=None, repr=False)
    _count: int = 0

    def __enter__(self) -> RayBackend:
        with ExitStack() as cluster:
            self._ray = cluster.enter_context(connected(self.address))
            resources = self._ray.cluster_resources()
            self._count = actor_count(resources, self.workers, self.cpus_per_worker)
            self._cluster = cluster.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cluster.close()

    def run(
        self,
        jobs: list[BatchJob],
        *,
        started: Callable[[BatchJob], None],
        progress: Callable[[BatchJob, Any], None],
    ) -> Iterator[tuple[BatchJob, list[Video] | PromptreelError]]:
        if not jobs:
            return
        ray = self._ray
        assert ray is not None, "enter the backend first: `with RayBackend(...) as backend`"
        from ray.util.queue import Queue

        events = Queue()
        workers: list[_Worker] = []
        try:
            count = self._count
            maker = video_maker(ray, self.cpus_per_worker)

            def new_worker() -> _Worker:
                return _Worker(maker.remote(self.cpus_per_worker))

            workers = [new_worker() for _ in range(max(1, min(count, len(jobs))))]
            queue = list(jobs)
            attempts = {job.number: 0 for job in jobs}
            by_number = {job.number: job for job in jobs}
            while queue or any(w.job is not None for w in workers):
                for worker in workers:
                    if worker.job is None and queue:
                        job = _next_for(worker.model, queue)
                        worker.job, worker.model = job, job.request.model
                        attempts[job.number] += 1
                        if attempts[job.number] == 1:
                            started(job)
                        # the row's request, settled on the actor's node (its own model folders)
                        request = job.request.model_dump(mode="json")
                        try:
                            inputs = packed(request)
                        except PromptreelError as e:
                            worker.job = None
                            yield job, e
                            continue
                        worker.ref = worker.actor.make.remote(
                            request, job.number, events, inputs=inputs
                        )
                refs = [w.ref for w in workers if w.job is not None]
                done, _ = ray.wait(refs, num_returns=1, timeout=0.2)
                while not events.empty():
                    number, stage, step, total = events.get_nowait()
                    progress(by_number[number], Progress(stage, step, total))
                for ref in done:
                    worker = next(w for w in workers if w.ref == ref)
                    job, worker.job, worker.ref = worker.job, None, None
                    assert job is not None
                    try:
                        yield job, result(ray, ref)
                    except died(ray):
                        # the actor died under the job: another one, and the job again
                        workers[workers.index(worker)] = new_worker()
                        if attempts[job.number] < MAX_ATTEMPTS:
                            queue.insert(0, job)
                            continue
                        yield job, PromptreelError(died_reason(MAX_ATTEMPTS))
        finally:
            for worker in workers:
                ray.kill(worker.actor)  # a dead one too: nothing to do


def _next_for(model: str | None, queue: list[BatchJob]) -> BatchJob:
    """The first queued job on `model` (no reload), else the first."""
    for index, job in enumerate(queue):
        if job.request.model == model:
            return queue.pop(index)
    return queue.pop(0)
