"""`promptreel serve --backend ray` on a local Ray instance of 2 CPUs: jobs sent over HTTP run on
two actors and give the in-process worker's frames; an actor killed mid-job, a job's own error
and a cancel each end as they should, and the next job still runs.

The tests share one service and its actors (each actor's start costs seconds): one data folder
for the module, and every test waits for its own jobs to end."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for_job
from fastapi.testclient import TestClient

from promptreel.jobs.files import output_path, outputs_dir
from promptreel.jobs.store import JobStore
from promptreel.video import read_frames

ray = pytest.importorskip("ray")

FAST = {"model": "shapes", "num_frames": 8, "num_inference_steps": 2}
JOBS = [
    {"prompt": "a red circle moving right", "seed": 1, **FAST},
    {"prompt": "a blue square moving up", "seed": 2, **FAST},
    {"prompt": "a yellow triangle moving left", "seed": 3, **FAST},
    {"prompt": "a red circle moving right", "seed": 4, **FAST},
]
# long enough to be killed in the middle of its denoising
LONG = {"prompt": "a blue square moving up", "seed": 5, **FAST, "num_inference_steps": 60}


@pytest.fixture(scope="module", autouse=True)
def promptreel_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data folder for the module's service (instead of conftest's one a test)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("home")
        patch.setenv("PROMPTREEL_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The frames of JOBS and LONG made by the in-process worker, by prompt and seed; made
    before Ray starts, whose processes would slow this one's threads down."""
    import torch

    from promptreel.jobs.worker import Worker

    frames = {}
    threads = torch.get_num_threads()
    # one thread, as each actor has: the same frames (the engine's kernels give the same sums on
    # any count), and no spinning threads slowed down by a busy machine's other processes
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PROMPTREEL_HOME", str(tmp_path_factory.mktemp("local")))
            store = JobStore()
            worker = Worker(store)
            for request in [*JOBS, LONG]:
                job_id = store.add(request, source="service")
                worker.run_job(store.claim(None))
                done = store.get(job_id)
                assert done.status == "succeeded", done.reason
                frames[_name(request)] = read_frames(Path(done.outputs[0]), argument="video")[0]
    finally:
        torch.set_num_threads(threads)
    return frames


@pytest.fixture(scope="module")
def client(promptreel_home: Path) -> Iterator[TestClient]:
    """The service on two actors (1 CPU each) of a local Ray instance of 2 CPUs."""
    from promptreel.jobs.ray_worker import RayWorker
    from promptreel.server.app import create_app

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        store = JobStore()
        app = create_app(store, worker=RayWorker(store, cpus_per_worker=1))
        with TestClient(app, base_url="http://localhost") as client:
            yield client
    finally:
        ray.shutdown()


def _name(request: dict) -> str:
    return f"{request['prompt']} s{request['seed']} x{request['num_inference_steps']}"


_wait = partial(wait_for_job, timeout=60)


def _frames(job_id: int) -> np.ndarray:
    return read_frames(output_path(job_id, "mp4"), argument="video")[0]


def _files_of(job_id: int) -> list[str]:
    """The job's files in the outputs folder, and any half-written (hidden) file there."""
    return sorted(p.name for p in outputs_dir().glob("*") if p.name.startswith((f"{job_id}.", ".")))


def test_jobs_sent_over_http_run_on_two_actors_with_the_in_process_frames(
    in_process, client
) -> None:
    ids = []
    for request in JOBS:
        created = client.post("/v1/jobs", json=request)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    jobs = [_wait(client, job_id) for job_id in ids]
    for request, job in zip(JOBS, jobs, strict=True):
        assert job["status"] == "succeeded", job["reason"]
        assert np.array_equal(_frames(job["id"]), in_process[_name(request)])  # bit-identical
    # two jobs ran at once: one on each actor
    spans = [(job["started_at"], job["finished_at"]) for job in jobs]
    assert max(sum(s <= t < f for s, f in spans) for t, _ in spans) == 2
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["loaded_model"] == "shapes"


def test_an_actor_killed_mid_job_its_job_runs_on_another_and_is_written_once(
    in_process, client
) -> None:
    job_id = client.post("/v1/jobs", json=LONG).json()["id"]
    _wait(client, job_id, until=lambda j: j["progress"]["stage"] == "denoise")
    worker = client.app.state.worker
    [actor] = [s.actor for s in worker._slots if s.job is not None and s.job.id == job_id]
    ray.kill(actor, no_restart=True)  # as the out-of-memory killer or a lost node would
    job = _wait(client, job_id)
    assert job["status"] == "succeeded", job["reason"]
    assert np.array_equal(_frames(job_id), in_process[_name(LONG)])
    assert _files_of(job_id) == [f"{job_id}.mp4", f"{job_id}.mp4.json"]
    assert JobStore().get(job_id).outputs == [str(output_path(job_id, "mp4"))]
    assert JobStore().get(job_id).attempts == 2  # the run cut short is counted in the store


def test_a_job_whose_actor_died_at_every_attempt_fails_in_one_line(tmp_path: Path) -> None:
    from promptreel.jobs.ray_worker import RayWorker
    from promptreel.jobs.store import MAX_ATTEMPTS

    store = JobStore(tmp_path / "jobs.db")  # not the service's: its worker would claim it
    worker = RayWorker(store)
    job_id = store.add(JOBS[0], source="service")
    for run in range(1, MAX_ATTEMPTS + 1):
        job = store.claim(None)
        assert job is not None and job.id == job_id and job.attempts == run
        worker._retry(job)  # what the worker does when Ray says the actor died
    job = store.get(job_id)
    assert job.status == "failed" and f"died {MAX_ATTEMPTS} times" in job.reason


def test_a_job_s_own_error_fails_it_once(client) -> None:
    # the service refuses it at POST; queued directly (as by an older version), the actor does
    job_id = JobStore().add({**JOBS[0], "num_frames": 100000}, source="service")
    client.app.state.worker.wake()
    job = _wait(client, job_id)
    assert job["status"] == "failed" and "num_frames" in job["reason"]
    assert job["attempts"] == 1  # not run again
    assert _files_of(job_id) == []


def test_cancel_a_running_job_and_the_next_one_runs(client) -> None:
    slow = client.post("/v1/jobs", json={**LONG, "num_inference_steps": 500}).json()["id"]
    _wait(client, slow, until=lambda j: j["progress"]["stage"] == "denoise")
    assert client.post(f"/v1/jobs/{slow}/cancel").status_code == 200
    job = _wait(client, slow, timeout=10)
    assert job["status"] == "cancelled" and "denoise" in job["reason"]
    assert job["progress"]["step"] < 500 and _files_of(slow) == []
    after = client.post("/v1/jobs", json=JOBS[1]).json()["id"]
    assert _wait(client, after)["status"] == "succeeded"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--address", "127.0.0.1:6379"], "--address is for --backend ray"),
        (["--backend", "spark"], "--backend must be local or ray"),
        (["--backend", "ray", "--workers", "0"], "must be at least 1"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    ],
)
def test_serve_s_backend_options_are_checked_in_one_line(cli, monkeypatch, args, error) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # what `serve` sets for itself, undone after
    result = cli("serve", *args)
    assert result.code == 1 and error in result.err and result.err.count("\n") == 1, result.err


def test_a_cancel_stops_a_job_that_reports_nothing(tmp_path: Path) -> None:
    """A job loading its model, decoding, or waiting for a node sends no progress: the cancel
    is seen by the worker's own look at the store, and the actor is killed."""
    from types import SimpleNamespace

    from promptreel.jobs.ray_worker import RayWorker, _Slot

    store = JobStore(tmp_path / "jobs.db")  # not the service's: its worker would claim it
    worker = RayWorker(store)
    killed: list[str] = []
    worker._ray = SimpleNamespace(kill=killed.append)
    worker._maker = SimpleNamespace(remote=lambda threads: "a fresh actor")
    job_id = store.add(JOBS[0], source="service")
    worker._slots = [_Slot("its actor", model="shapes", job=store.claim(None), ref="its run")]
    worker._cancel_asked()
    assert store.get(job_id).status == "running" and killed == []
    store.cancel(job_id)
    worker._cancel_asked()
    assert store.get(job_id).status == "cancelled" and killed == ["its actor"]
    assert worker._slots[0].actor == "a fresh actor" and worker._slots[0].job is None
