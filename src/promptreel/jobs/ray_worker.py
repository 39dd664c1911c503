"""The service's worker on Ray: the queue's jobs run on `cluster.VideoMaker` actors, the ones
`promptreel batch --backend ray` uses, so that one service spreads its jobs over a cluster.

The queue stays in the store, as with the in-process `Worker`: an idle actor claims the next
job (the store's order, preferring the model that actor has loaded), and the frames come back
here, where `keep` writes them as the local worker does. So nothing is lost when an actor, a
node or the service dies: a killed service's `running` rows are queued again at its restart.

An actor that dies under a job (killed, its node lost, out of memory) is replaced and the job
queued again, until it has run `MAX_ATTEMPTS` times; a job that fails for its own reason comes
back as its error and is not run again. A cancelled running job stops with its actor, killed
at once (an actor cannot be asked to stop between two steps), and a fresh actor takes its place.
"""

from __future__ import annotations

import logging
import threading
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
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
from ..errors import Cancelled, PromptreelError
from ..generation import Progress
from .store import MAX_ATTEMPTS, Job, JobStore
from .worker import QueueWorker, Reporter, keep

log = logging.getLogger("promptreel.worker")
WAIT = 0.2  # seconds between two looks at the events while jobs run


@dataclass
class _Slot:
    """One actor, the model it has loaded, and the job it runs (with the run's progress)."""

    actor: Any
    model: str | None = None
    job: Job | None = None
    ref: Any = None
    reporter: Reporter | None = None
    ticket: int = 0  # the key of this run's progress events: stale ones name an older run


class RayWorker(QueueWorker):
    """The service's queue on Ray actors. `address`: a running cluster's; None starts one
    here (and stops it with the worker). `workers`: how many actors (default: one per GPU,
    else per `cpus_per_worker` CPUs)."""

    thread_name = "promptreel-ray"

    def __init__(
        self,
        store: JobStore,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        poll_interval: float = 0.25,
    ) -> None:
        super().__init__(store, poll_interval=poll_interval)
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self._cluster: ExitStack | None = None
        self._ray: Any = None
        self._maker: Any = None
        self._count = 0
        self._slots: list[_Slot] = []
        self._tickets = 0

    def connect(self) -> None:
        """Join the cluster (or start one here) and size the actors; a cluster that cannot be
        reached, or holds no actor, is one line before the service starts (a no-op when
        connected)."""
        if self._cluster is not None:
            return
        cluster = ExitStack()
        try:
            self._ray = cluster.enter_context(connected(self.address))
            resources = self._ray.cluster_resources()
            self._count = actor_count(resources, self.workers, self.cpus_per_worker)
            self._maker = video_maker(self._ray, self.cpus_per_worker)
        except BaseException:
            cluster.close()
            raise
        self._cluster = cluster

    def start(self) -> None:
        self.connect()
        super().start()

    def stop(self, timeout: float = 30.0) -> None:
        """Kill the actors (their jobs go back in the queue at once; a video being written
        is finished first), and stop Ray if it was started here."""
        super().stop(timeout)
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def requeue_running(self) -> None:
        for slot in list(self._slots):
            if slot.job is not None:
                self.store.requeue(slot.job.id)

    @property
    def loaded_model(self) -> str | None:
        """The models the actors hold, comma-separated (None while they hold none)."""
        models = sorted({slot.model for slot in self._slots if slot.model is not None})
        return ", ".join(models) or None

    # --- the loop, in the worker's thread ---------------------------------------------------

    def _loop(self) -> None:
        from ray.util.queue import Queue

        events = Queue()  # progress from every actor: (ticket, stage, step, total)
        try:
            self._slots = [_Slot(self._new_actor()) for _ in range(self._count)]
            while not self._stop.is_set():
                try:
                    self._step(events)
                except PromptreelError as exc:  # the database is busy or broken: try again soon
                    log.error("the job store failed: %s", exc)
                    self._stop.wait(5)
        except Exception:  # Ray itself failed (the cluster lost, say): the health says so
            log.error("the Ray worker stopped:\n%s", traceback.format_exc())
        finally:
            self.requeue_running()  # back to their places in the queue, not an attempt
            for slot in self._slots:
                self._ray.kill(slot.actor)  # a dead one too: nothing to do
            events.shutdown()

    def _step(self, events: Any) -> None:
        """Give idle actors jobs, pass on progress, and take what finished."""
        self._claim_for_idle(events)
        self._cancel_asked()
        refs = [slot.ref for slot in self._slots if slot.job is not None]
        if not refs:
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            return
        done, _ = self._ray.wait(refs, num_returns=1, timeout=WAIT)
        # a run puts all its events before it returns: they are read before its result
        for ticket, stage, step, total in events.get_nowait_batch(events.qsize()):
            self._report(ticket, Progress(stage, step, total))
        for ref in done:
            slot = next((s for s in self._slots if s.job is not None and s.ref == ref), None)
            if slot is not None:  # else cancelled while reporting
                self._collect(slot)

    def _new_actor(self) -> Any:
        return self._maker.remote(self.cpus_per_worker)

    def _claim_for_idle(self, events: Any) -> None:
        """Give each idle actor the next job, one on its own model if that may go first."""
        for slot in self._slots:
            if slot.job is not None:
                continue
            job = self.store.claim(slot.model)
            if job is None:
                return
            self._tickets += 1
            slot.job, slot.ticket = job, self._tickets
            # its stop event is never set: on stopping, the loop kills the actors itself
            slot.reporter = Reporter(self.store, job.id, threading.Event())
            try:
                inputs = packed(job.request)
            except PromptreelError as e:  # its upload gone since: the job's own failure
                self._free(slot, replace=False)
                self.store.finish(job.id, "failed", reason=" ".join(str(e).split()))
                continue
            # the job's request, without local folders (the service refuses them)
            slot.ref = slot.actor.make.remote(
                job.request, slot.ticket, events, inputs=inputs, folders=False
            )

    def _cancel_asked(self) -> None:
        """Stop the jobs a cancel was asked for, also those that report nothing (loading,
        decoding, waiting for a node): their actors killed."""
        for slot in self._slots:
            found = self.store.get(slot.job.id) if slot.job is not None else None
            if found is not None and found.cancel_requested:
                job = self._free(slot, replace=True)
                stage = found.stage or "load"
                self.store.finish(job.id, "cancelled", reason=f"cancelled at the {stage} stage")

    def _report(self, ticket: int, progress: Progress) -> None:
        """One progress event to the store, as the local worker writes it; a cancel asked for
        kills the actor at once."""
        slot = next((s for s in self._slots if s.job is not None and s.ticket == ticket), None)
        if slot is None or slot.reporter is None:  # a run that ended (its actor killed)
            return
        try:
            slot.reporter(progress)
        except Cancelled as exc:
            job = self._free(slot, replace=True)
            self.store.finish(job.id, "cancelled", reason=str(exc))

    def _collect(self, slot: _Slot) -> None:
        """A run's end: the videos written, the job's own error, or its actor dead."""
        assert slot.reporter is not None
        reporter = slot.reporter
        try:
            found = result(self._ray, slot.ref)
        except died(self._ray):
            self._retry(self._free(slot, replace=True))
            return
        job = self._free(slot, replace=False)
        slot.model = job.model
        if isinstance(found, PromptreelError):  # the job's own failure: not run again
            self.store.finish(job.id, "failed", reason=" ".join(str(found).split()))
            return
        try:
            reporter(Progress("write"))  # a cancel asked for while decoding stops it here
            keep(self.store, job, found)
        except Cancelled as exc:
            self.store.finish(job.id, "cancelled", reason=str(exc))
        except PromptreelError as exc:  # a full or read-only disk: said, and the worker goes on
            self.store.finish(job.id, "failed", reason=" ".join(str(exc).split()))
        except Exception as exc:  # a bug or a library error: keep the worker alive
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            self.store.finish(job.id, "failed", reason=reason)

    def _free(self, slot: _Slot, *, replace: bool) -> Job:
        """The slot's job, the slot made idle; `replace`: its actor killed and a fresh one
        (no model loaded) in its place."""
        job = slot.job
        assert job is not None
        slot.job, slot.ref, slot.reporter = None, None, None
        if replace:
            self._ray.kill(slot.actor)
            slot.actor, slot.model = self._new_actor(), None
        return job

    def _retry(self, job: Job) -> None:
        """A job whose actor died: queued again (its place kept, the run counted in the store,
        so a service restart does not forget it), or failed once it has run MAX_ATTEMPTS
        times."""
        if job.attempts < MAX_ATTEMPTS:
            self.store.requeue(job.id, attempt=True)
            self._wake.set()
            return
        self.store.finish(job.id, "failed", reason=died_reason(job.attempts))
