"""`promptreel batch --backend ray` on a local Ray instance of 2 CPUs: the same files as the local
backend, a worker killed mid-batch, Ctrl-C and a resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptreel.video import read_frames

ray = pytest.importorskip("ray")

FAST = ["--num-inference-steps", "2", "--num-frames", "8"]
PROMPTS = "a red circle moving right\na blue square moving up\na yellow triangle moving left\n"
RAY = ["--backend", "ray", "--cpus-per-worker", "1"]


def _files(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_frames(p, argument="video")[0] for p in sorted(folder.glob("*.mp4"))}


@pytest.fixture(scope="module")
def local_videos(tmp_path_factory) -> dict[str, np.ndarray]:
    """The batch of 6 (3 prompts x 2 seeds) made by the local backend, to compare with."""
    import os

    from promptreel.cli import main

    folder = tmp_path_factory.mktemp("local")
    (folder / "p.txt").write_text(PROMPTS)
    here = os.getcwd()
    os.chdir(folder)
    try:
        with pytest.raises(SystemExit) as ended:
            main(["batch", "p.txt", "--seeds", "1-2", "--quiet", *FAST])
        assert ended.value.code == 0
    finally:
        os.chdir(here)
    return _files(folder / "p")


def test_six_videos_on_two_actors_are_the_local_backend_s_files(cli, workdir, local_videos) -> None:
    (workdir / "p.txt").write_text(PROMPTS)
    result = cli("batch", "p.txt", "--seeds", "1-2", *RAY, *FAST)
    assert result.code == 0, result.err
    made = _files(workdir / "p")
    assert len(made) == 6 and made.keys() == local_videos.keys()
    for name, frames in made.items():
        assert np.array_equal(frames, local_videos[name]), name  # bit-identical on the CPU
    summary = json.loads((workdir / "p" / "batch.json").read_text())
    assert summary["backend"] == "ray" and summary["counts"]["done"] == 6
    assert not ray.is_initialized()  # the instance started for the batch is stopped


@pytest.fixture
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_worker_killed_mid_batch_its_video_is_made_by_another(
    cli, workdir, local_videos, monkeypatch, ray_instance
) -> None:
    import promptreel.batch.ray_backend as backend
    import promptreel.cli.batch as command

    workers: list = []

    class Watched(backend._Worker):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            workers.append(self)

    killed: list[int] = []
    real_step = command.BatchDisplay.step

    def step(self, job, progress) -> None:
        running = [w for w in workers if w.job is not None]
        if progress.stage == "denoise" and running and not killed:  # one job in the middle
            ray.kill(running[0].actor, no_restart=True)
            killed.append(running[0].job.number)
        real_step(self, job, progress)

    monkeypatch.setattr(backend, "_Worker", Watched)
    monkeypatch.setattr(command.BatchDisplay, "step", step)
    (workdir / "p.txt").write_text(PROMPTS)
    result = cli("batch", "p.txt", "--seeds", "1-2", *RAY, *FAST)
    assert result.code == 0, result.err
    assert len(killed) == 1 and len(workers) == 3  # two, and the one that replaced the killed
    made = _files(workdir / "p")
    assert made.keys() == local_videos.keys()
    assert all(np.array_equal(made[n], local_videos[n]) for n in made)
    summary = json.loads((workdir / "p" / "batch.json").read_text())
    assert summary["counts"]["done"] == 6


def test_ctrl_c_on_ray_keeps_what_finished_and_a_rerun_completes(
    cli, workdir, local_videos, monkeypatch, ray_instance
) -> None:
    import promptreel.cli.batch as command

    real_finished = command.BatchDisplay.finished

    def finished(self, outcome) -> None:
        real_finished(self, outcome)
        raise KeyboardInterrupt  # after the first video is written

    monkeypatch.setattr(command.BatchDisplay, "finished", finished)
    (workdir / "p.txt").write_text(PROMPTS)
    result = cli("batch", "p.txt", "--seeds", "1-2", *RAY, *FAST)
    assert result.code == 130
    first = json.loads((workdir / "p" / "batch.json").read_text())["counts"]
    assert first["done"] == 1 and first["cancelled"] == 5
    assert len(list((workdir / "p").glob("*.mp4"))) == 1  # no half-written video

    monkeypatch.setattr(command.BatchDisplay, "finished", real_finished)
    again = cli("batch", "p.txt", "--seeds", "1-2", *RAY, *FAST)
    assert again.code == 0, again.err
    counts = json.loads((workdir / "p" / "batch.json").read_text())["counts"]
    assert counts["skipped"] == 1 and counts["done"] == 5
    made = _files(workdir / "p")
    assert all(np.array_equal(made[n], local_videos[n]) for n in made) and len(made) == 6


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--address", "127.0.0.1:6379"], "--address is for --backend ray"),
        (["--backend", "spark"], "--backend must be local or ray"),
        (["--backend", "ray", "--workers", "0"], "must be at least 1"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
        (["--backend", "ray", "--cpus-per-worker", "64"], "too few for --cpus-per-worker 64"),
    ],
)
def test_backend_options_are_checked_before_anything_runs(cli, workdir, args, error) -> None:
    result = cli("batch", "--prompt", "a red circle", *args, *FAST)
    assert result.code == 1 and error in result.err and result.err.count("\n") == 1, result.err
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("resources", "workers", "cpus", "count"),
    [
        ({"CPU": 2.0}, None, 1, 2),
        ({"CPU": 8.0}, None, 3, 2),
        ({"CPU": 8.0, "GPU": 2.0}, None, 1, 2),  # one a GPU
        ({"CPU": 8.0, "GPU": 2.0}, 5, 1, 2),  # no more than the GPUs: the rest would wait
        ({"CPU": 2.0}, 1, 1, 1),
        ({"CPU": 2.0}, 4, 1, 2),
    ],
)
def test_no_more_actors_than_the_cluster_holds(resources, workers, cpus, count) -> None:
    from promptreel.cluster import actor_count

    assert actor_count(resources, workers, cpus) == count


def test_more_cpus_an_actor_than_the_cluster_has_is_refused() -> None:
    from promptreel.cluster import actor_count
    from promptreel.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="too few for --cpus-per-worker 4"):
        actor_count({"CPU": 2.0}, None, 4)


class _Events:
    def put_nowait(self, event: object) -> None:
        pass


def test_an_actor_on_another_machine_gets_the_input_files_as_bytes(hub, tmp_path) -> None:
    """An actor may run where the driver's files are not: it gets them as bytes, written under
    their own names (the record names the file it read)."""
    import hashlib

    import torch
    from conftest import plain_video

    import promptreel
    from promptreel.cluster import VideoMaker, packed
    from promptreel.errors import InputError

    hub("zeroscope-xl")
    clip = tmp_path / "driver" / "in.mp4"
    clip.parent.mkdir()
    plain_video(clip, frames=8, side=64)
    request = {
        "prompt": "a kite",
        "video": str(clip),
        "model": "zeroscope-xl",
        "height": 32,
        "width": 32,
        "num_frames": 3,
        "num_inference_steps": 2,
        "seed": 1,
    }
    inputs = packed(request)
    moved = clip.rename(tmp_path / "moved.mp4")  # not on the actor's machine
    threads = torch.get_num_threads()
    try:
        found = VideoMaker(threads).make(request, 1, _Events(), inputs=inputs)
    finally:
        torch.set_num_threads(threads)
    assert found[0] == "videos", found
    (frames, record), *_ = found[1]
    digest = hashlib.sha256(moved.read_bytes()).hexdigest()
    assert record["inputs"]["video"] == {"file": "in.mp4", "sha256": digest}
    here = promptreel.generate(**{**request, "video": moved})
    assert np.array_equal(frames, here.frames)

    with pytest.raises(InputError, match="cannot be read") as refused:
        packed({"video": str(clip)})
    assert "\n" not in str(refused.value)


def test_a_finished_batch_run_again_does_not_start_ray(cli, workdir, monkeypatch) -> None:
    import promptreel.batch.ray_backend as backend

    (workdir / "p.txt").write_text("a red circle moving right\n")
    assert cli("batch", "p.txt", *FAST).code == 0  # made here, by the local backend
    before = (workdir / "p" / "001-a-red-circle-moving-right-s0.mp4").stat().st_mtime_ns

    def refuse(address):
        raise AssertionError("Ray was started for a batch with nothing left to make")

    monkeypatch.setattr(backend, "connected", refuse)
    again = cli("batch", "p.txt", *RAY, *FAST)
    assert again.code == 0 and "0 done, 1 skipped" in again.out, again.err
    assert (workdir / "p" / "001-a-red-circle-moving-right-s0.mp4").stat().st_mtime_ns == before
