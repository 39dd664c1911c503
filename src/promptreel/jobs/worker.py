"""The worker: claims queued jobs from the store and runs them, one at a time, in a thread.

One worker per accelerator: every job in this process shares one loaded pipeline
(`models.load`), so a second worker here would only evict the first one's model. The claim
order is the store's: oldest first, unless a job on the model already loaded can go first
without passing any job over more than `MAX_SKIPS` times.

A job's video is written under its final name only when complete (`Video.save`), and the row
says `succeeded` only after that; a killed worker leaves a `running` row that `recover` queues
again when the service restarts.

A job with `control` also keeps the control images it was steered by, as its output after
its videos (`files.control_output_path`): always, since over HTTP no request field may name a
path to save them to, and they are small and what a user wants to look at and reuse.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from ..errors import Cancelled, PromptreelError
from ..generation import Progress, prepare, run
from ..request import make_request
from ..video import Video
from .files import all_or_none, control_output_path, output_path, outputs_dir
from .store import Job, JobStore

log = logging.getLogger("promptreel.worker")
PROGRESS_INTERVAL = 0.1  # seconds between two progress writes within one stage


class _Stopping(BaseException):
    """The service is shutting down: put the job back in the queue (not an error)."""


class QueueWorker:
    """What every worker of the service's queue shares, whatever runs the jobs: a thread that
    runs `_loop` until asked to stop, woken early when a job is queued. `Worker` runs them in
    this process, `ray_worker.RayWorker` on Ray actors."""

    thread_name = "promptreel-worker"

    def __init__(self, store: JobStore, *, poll_interval: float = 0.25) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def loaded_model(self) -> str | None:
        """The model (or models) loaded, for /v1/health."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask the running jobs to stop (the first Ctrl-C: do not wait for open connections
        first); they go back to their places in the queue."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop; a job cut short goes back to its place in the queue, also when it outlasts
        `timeout` (the process is about to end)."""
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.requeue_running()

    def requeue_running(self) -> None:
        """Put the running jobs back in the queue now: the process is about to end."""
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        raise NotImplementedError


class Worker(QueueWorker):
    """Runs the jobs in this process, one at a time, each at its next step when stopped."""

    def __init__(self, store: JobStore, *, poll_interval: float = 0.25) -> None:
        super().__init__(store, poll_interval=poll_interval)
        self._loaded: str | None = None
        self._job: int | None = None  # the job running now

    @property
    def loaded_model(self) -> str | None:
        return self._loaded

    def requeue_running(self) -> None:
        if self._job is not None:
            self.store.requeue(self._job)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.loaded_model)
            except PromptreelError as exc:  # the database is busy or broken: try again soon
                log.error("cannot claim a job: %s", exc)
                self._stop.wait(5)
                continue
            if job is None:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            try:
                self.run_job(job)
            except Exception:  # the store itself failed; the row is recovered at restart
                log.error("job %s: %s", job.id, traceback.format_exc())

    def run_job(self, job: Job) -> None:
        """Run one claimed job to its end: succeeded, failed, cancelled, or back in the queue."""
        reporter = Reporter(self.store, job.id, self._stop)
        self._job = job.id
        try:
            request = make_request(**job.request)
            videos = run(prepare(request, folders=False), progress=reporter)
            reporter(Progress("write"))
            keep(self.store, job, videos)
        except _Stopping:
            self.store.requeue(job.id)
        except Cancelled as exc:
            self.store.finish(job.id, "cancelled", reason=str(exc))
        except PromptreelError as exc:
            self.store.finish(job.id, "failed", reason=" ".join(str(exc).split()))
        except Exception as exc:  # a bug or a library error: keep the worker alive
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            self.store.finish(job.id, "failed", reason=reason)
        finally:
            self._job = None
            self._loaded = job.model


def keep(store: JobStore, job: Job, videos: list[Video]) -> None:
    """Write a job's videos (then the control images they were steered by) under the service's
    own names, each added to the row before the row says `succeeded`."""
    file_format = job.output_format or "mp4"
    outputs_dir().mkdir(parents=True, exist_ok=True)
    with all_or_none() as saved:
        for number, video in enumerate(videos, start=1):
            saved.append(video.save(output_path(job.id, file_format, number), overwrite=True))
        control = videos[0].control
        if control is not None:  # after the videos
            saved.append(control.save(control_output_path(job.id, file_format), overwrite=True))
    for path in saved:
        store.add_output(job.id, path)
    store.finish(job.id, "succeeded", record=videos[0].record)


class Reporter:
    """The progress callback of one job: writes it to the store (at most every 0.1 s within a
    stage), computes the ETA of the denoising, and stops the job when asked to."""

    def __init__(self, store: JobStore, job_id: int, stop: threading.Event) -> None:
        self.store = store
        self.job_id = job_id
        self.stop = stop
        self.stage: str | None = None
        self.written = 0.0
        self.denoise_start: float | None = None
        self.step = self.total = 0

    def __call__(self, progress: Progress) -> None:
        stage, step, total = progress.stage, progress.step, progress.total
        if total == 0:  # `write` counts no steps: keep showing the denoising's
            step, total = self.step, self.total
        self.step, self.total = step, total
        now = time.perf_counter()
        if stage == "denoise" and self.denoise_start is None:
            self.denoise_start = now
        if stage == self.stage and now - self.written < PROGRESS_INTERVAL and step < total:
            return
        eta = None
        if stage == "denoise" and step > 0 and self.denoise_start is not None:
            eta = (now - self.denoise_start) / step * (total - step)
        self.stage, self.written = stage, now
        cancel = self.store.progress(self.job_id, stage, step, total, eta)
        if self.stop.is_set() and stage != "write":  # a finished video is saved, not redone
            raise _Stopping
        if cancel:
            raise Cancelled(f"cancelled at the {stage} stage")
