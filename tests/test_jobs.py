"""The job store and worker: order, fairness, cancellation, recovery after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from promptreel.generation import Progress
from promptreel.jobs.files import clean_partial_files, output_path, outputs_dir, uploads_dir
from promptreel.jobs.store import MAX_ATTEMPTS, MAX_SKIPS, JobStore
from promptreel.jobs.worker import Reporter, Worker, _Stopping

SMALL = {"num_frames": 4, "height": 32, "width": 32, "num_inference_steps": 2, "seed": 1}


def _queue(store: JobStore, model: str, **fields) -> int:
    job_id = store.add({"model": model, "prompt": "p", **fields}, source="service")
    assert job_id is not None
    return job_id


def test_jobs_run_in_submission_order(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    ids = [_queue(store, model) for model in ("a", "b", "a", "c")]
    order = [store.claim(None).id for _ in ids]
    assert order == ids
    assert store.claim(None) is None


def test_the_loaded_model_goes_first_but_never_starves_others(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    other = _queue(store, "b")
    same = [_queue(store, "a") for _ in range(MAX_SKIPS + 2)]
    claimed = [store.claim("a").id for _ in range(MAX_SKIPS + 1)]
    # passed over MAX_SKIPS times, the older job on another model runs next
    assert claimed == [*same[:MAX_SKIPS], other]
    assert store.claim("b").id == same[MAX_SKIPS]


def test_claim_counts_attempts_and_recover_requeues_then_fails(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    job_id = _queue(store, "a")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = store.claim(None)
        assert job.id == job_id and job.attempts == attempt and job.status == "running"
        [recovered] = store.recover()  # as a restarted server does after a kill -9
    assert recovered.status == "failed"
    assert f"{MAX_ATTEMPTS} times" in recovered.reason
    assert store.claim(None) is None


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_step(tmp_path) -> None:
    store = JobStore(tmp_path / "db")
    queued, running = _queue(store, "a"), _queue(store, "a")
    assert store.cancel(queued).status == "cancelled"
    job = store.claim(None)
    assert job.id == running
    assert store.cancel(running).cancel_requested
    reporter = Reporter(store, running, threading.Event())
    with pytest.raises(Exception, match="cancelled at the denoise stage"):
        reporter(Progress("denoise", 1, 4))


def test_a_clean_shutdown_puts_the_job_back_without_an_attempt(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    job_id = _queue(store, "a")
    store.claim(None)
    stop = threading.Event()
    stop.set()
    with pytest.raises(_Stopping):
        Reporter(store, job_id, stop)(Progress("denoise", 1, 4))
    store.requeue(job_id)
    job = store.get(job_id)
    assert job.status == "queued" and job.attempts == 0


def test_queue_limit(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    assert store.add({"model": "a"}, source="service", max_queued=1) is not None
    assert store.add({"model": "a"}, source="service", max_queued=1) is None


def test_worker_runs_a_job_to_a_complete_file(hub, tmp_path: Path) -> None:
    hub("modelscope")
    store = JobStore()
    job_id = _queue(store, "modelscope", **SMALL)
    worker = Worker(store)
    worker.run_job(store.claim(None))
    job = store.get(job_id)
    assert job.status == "succeeded", job.reason
    assert job.outputs == [str(output_path(job_id, "mp4"))]
    assert Path(job.outputs[0]).stat().st_size > 0
    assert job.record["seed"] == 1
    assert worker.loaded_model == "modelscope"


def test_worker_turns_errors_into_failed_jobs_and_goes_on(hub, tmp_path: Path) -> None:
    hub("modelscope")
    store = JobStore()
    bad = _queue(store, "modelscope", **{**SMALL, "num_frames": 100000})
    good = _queue(store, "modelscope", **SMALL)
    worker = Worker(store, poll_interval=0.05)
    worker.start()
    try:
        for _ in range(600):
            if store.get(good).finished:
                break
            threading.Event().wait(0.1)
    finally:
        worker.stop()
    assert store.get(bad).status == "failed" and "num_frames" in store.get(bad).reason
    assert store.get(good).status == "succeeded"
    assert not list(outputs_dir().glob(".*"))


def test_partial_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    outputs_dir().mkdir(parents=True)
    (outputs_dir() / ".3.mp4.tmp-abcd").write_bytes(b"half")
    (outputs_dir() / "2.mp4").write_bytes(b"whole")
    uploads_dir().mkdir(parents=True)
    (uploads_dir() / ".ab12.part").write_bytes(b"half an upload")
    assert clean_partial_files() == 2
    assert list(uploads_dir().iterdir()) == []
    assert [p.name for p in outputs_dir().iterdir()] == ["2.mp4"]


def test_recover_leaves_cli_rows_and_fails_those_whose_process_died(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = JobStore(tmp_path / "db")
    mine = store.add({"model": "a", "prompt": "p"}, source="cli", status="running")
    gone = store.add({"model": "a", "prompt": "p"}, source="python", status="running")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store._connect() as db:
        db.execute("UPDATE jobs SET owner_pid=? WHERE id=?", (dead.pid, gone))
    assert store.recover() == []  # a service restart never takes a CLI run
    JobStore(tmp_path / "db")  # opening the store (any history command) settles the dead
    assert store.get(mine).status == "running"
    orphan = store.get(gone)
    assert orphan.status == "failed" and "process ended" in orphan.reason
    assert store.remove(gone).id == gone and store.get(gone) is None


def test_a_row_whose_pid_now_belongs_to_another_process_is_settled(tmp_path: Path) -> None:
    """After a restart the pid of a killed `generate` may be reused: the row must not stay
    `running` for ever because some other process now has that number."""
    import subprocess
    import sys

    store = JobStore(tmp_path / "db")
    reused = store.add({"model": "a", "prompt": "p"}, source="cli", status="running")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with store._connect() as db:
            db.execute(
                "UPDATE jobs SET owner_pid=?, owner_start='an-earlier-boot:42' WHERE id=?",
                (other.pid, reused),
            )
        JobStore(tmp_path / "db")
        assert store.get(reused).status == "failed"
    finally:
        other.kill()
        other.wait()
