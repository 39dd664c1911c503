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

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..errors import InvalidRequest, PromptreelError
from ..generation import Progress
from ..jobs.store import MAX_ATTEMPTS
from ..video import Video
from .rows import BatchJob


class VideoMaker:
    """The actor: makes videos from settled requests, its pipeline kept between them."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)

    def make(self, request: dict[str, Any], number: int, events: Any) -> tuple[Any, ...]:
        from ..generation import prepare, run
        from ..request import make_request

        def report(progress: Progress) -> None:
            events.put_nowait((number, progress.stage, progress.step, progress.total))

        try:
            video = run(prepare(make_request(**request)), progress=report)
        except PromptreelError as e:  # the job's own failure: not run again
            return ("error", type(e).__name__, str(e))
        return ("video", video.frames, video.fps, video.record)

    def ping(self) -> bool:
        return True


@dataclass
class _Worker:
    actor: Any
    model: str | None = None  # the model it has loaded
    job: BatchJob | None = None
    ref: Any = None


@dataclass
class RayBackend:
    """`address`: a running cluster's (`ray start --head` prints it); None starts one here.
    `workers`: how many actors (default: one per GPU, else per `cpus_per_worker` CPUs)."""

    address: str | None = None
    cpus_per_worker: int = 1
    workers: int | None = None
    name: str = "ray"

    def run(
        self,
        jobs: list[BatchJob],
        *,
        started: Callable[[BatchJob], None],
        progress: Callable[[BatchJob, Any], None],
    ) -> Iterator[tuple[BatchJob, Video | PromptreelError]]:
        import ray
        from ray.util.queue import Queue

        if not jobs:
            return
        ours = not ray.is_initialized()
        if ours:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=False,
            )
        events = Queue()
        workers: list[_Worker] = []
        try:
            count = _actors(ray.cluster_resources(), self.workers, self.cpus_per_worker)
            gpus = int(ray.cluster_resources().get("GPU", 0))
            maker = ray.remote(
                num_gpus=1 if gpus else 0, num_cpus=self.cpus_per_worker, max_restarts=0
            )(VideoMaker)

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
                        worker.ref = worker.actor.make.remote(request, job.number, events)
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
                        result = ray.get(ref)
                    except _died(ray):
                        # the actor died under the job: another one, and the job again
                        workers[workers.index(worker)] = new_worker()
                        if attempts[job.number] < MAX_ATTEMPTS:
                            queue.insert(0, job)
                            continue
                        yield (
                            job,
                            PromptreelError(
                                f"the worker making it died {MAX_ATTEMPTS} times (killed, its node "
                                "lost, or out of memory); if memory, try fewer frames or a smaller "
                                "size."
                            ),
                        )
                        continue
                    except ray.exceptions.RayTaskError as e:
                        yield job, PromptreelError(f"{type(e.cause).__name__}: {e.cause}")
                        continue
                    yield job, _result(result)
        finally:
            for worker in workers:
                ray.kill(worker.actor)  # a dead one too: nothing to do
            if ours:
                ray.shutdown()


def _actors(resources: dict[str, float], workers: int | None, cpus_per_worker: int) -> int:
    """How many actors the cluster can hold at once: one a GPU, else one per `cpus_per_worker`
    CPUs; `workers` asks for fewer. More would wait for resources that never come."""
    gpus = int(resources.get("GPU", 0))
    fit = gpus or int(resources.get("CPU", 0)) // cpus_per_worker
    if fit < 1:
        raise InvalidRequest(
            f"the Ray cluster has {int(resources.get('CPU', 0))} CPUs and no GPU: too few for "
            f"--cpus-per-worker {cpus_per_worker}; give fewer.",
            argument="cpus_per_worker",
        )
    return min(workers or fit, fit)


def _died(ray: Any) -> tuple[type[BaseException], ...]:
    """What Ray raises for a job whose actor died under it."""
    found = ray.exceptions
    return (
        found.RayActorError,
        found.WorkerCrashedError,
        found.NodeDiedError,
        found.OutOfMemoryError,
    )


def _next_for(model: str | None, queue: list[BatchJob]) -> BatchJob:
    """The first queued job on `model` (no reload), else the first."""
    for index, job in enumerate(queue):
        if job.request.model == model:
            return queue.pop(index)
    return queue.pop(0)


def _result(result: tuple[Any, ...]) -> Video | PromptreelError:
    if result[0] == "error":
        _, kind, message = result
        error_class = getattr(errors, kind, PromptreelError)
        return error_class(message)
    _, frames, fps, record = result
    return Video(frames=frames, fps=fps, record=record)
