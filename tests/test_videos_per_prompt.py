"""Several videos of one request (`num_videos_per_prompt`): on seeds seed, seed+1, ..., in one
pipeline batch where the pipeline makes several at once, else one call a seed; on every
surface (Python, CLI, HTTP, batch), each video's record saying which it is and how it was made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for_job
from fastapi.testclient import TestClient

import promptreel
from promptreel.errors import InvalidRequest
from promptreel.jobs.store import JobStore
from promptreel.request import MAX_SEED
from promptreel.video import read_frames

SHAPES = {"num_frames": 4, "num_inference_steps": 2}
WAN = {"model": "wan2.1-t2v-1.3b", "height": 16, "width": 32, "num_frames": 5}


def _frames(path: Path) -> np.ndarray:
    return read_frames(path, argument="video")[0]


def test_one_call_a_seed_gives_each_seed_s_own_video() -> None:
    steps: list[tuple[int, int]] = []

    def progress(p) -> None:
        if p.stage == "denoise":
            steps.append((p.step, p.total))

    videos = promptreel.generate(
        "a red circle", seed=5, num_videos_per_prompt=3, progress=progress, **SHAPES
    )
    assert len(videos) == 3
    for number, video in enumerate(videos, start=1):
        alone = promptreel.generate("a red circle", seed=4 + number, **SHAPES)
        assert np.array_equal(video.frames, alone.frames)
        assert video.record["seed"] == 4 + number
        assert video.record["videos_per_prompt"] == {
            "n": 3,
            "number": number,
            "how": "one call a seed",
        }
        assert video.record["parameters"]["seed"] == 5  # the request's: a rerun makes all 3
    assert not np.array_equal(videos[0].frames, videos[1].frames)
    # one bar over the three calls: the steps of all of them, counted from the start
    assert steps[-1] == (6, 6) and [s for s, _ in steps] == sorted(s for s, _ in steps)
    # without the count, one video as before (not a list), and no `videos_per_prompt`
    assert "videos_per_prompt" not in promptreel.generate("a red circle", **SHAPES).record


@pytest.mark.parametrize(
    "sizes",
    [
        {"model": "wan2.1-t2v-1.3b", "height": 16, "width": 32, "num_frames": 5},
        {"model": "ltx-video", "height": 32, "width": 64, "num_frames": 9},
    ],
    ids=["wan", "ltx"],
)
def test_a_pipeline_that_batches_makes_them_in_one_call_from_each_seed_s_noise(hub, sizes) -> None:
    hub(sizes["model"])
    fast = {**sizes, "num_inference_steps": 2}
    videos = promptreel.generate("a fox", seed=3, num_videos_per_prompt=2, **fast)
    record = videos[1].record
    assert record["videos_per_prompt"] == {"n": 2, "number": 2, "how": "one batch"}
    assert record["pipeline_arguments"]["num_videos_per_prompt"] == 2
    assert [v.record["seed"] for v in videos] == [3, 4]
    assert videos[0].frames.shape == (sizes["num_frames"], sizes["height"], sizes["width"], 3)
    assert not np.array_equal(videos[0].frames, videos[1].frames)
    # video 2 started from seed 4's noise: the video seed 4 makes alone, to rounding
    alone = promptreel.generate("a fox", seed=4, **fast)
    difference = np.abs(videos[1].frames.astype(int) - alone.frames.astype(int))
    assert difference.max() <= 2, difference.max()
    # and the whole batch comes again the same
    again = promptreel.generate("a fox", seed=3, num_videos_per_prompt=2, **fast)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(videos, again, strict=True))


def test_an_image_to_ltx_runs_one_call_a_seed(hub, tmp_path) -> None:
    # LTX's image pipeline reads one image a generator: it is not given a batch
    from PIL import Image

    hub("ltx-video")
    Image.new("RGB", (64, 32), "red").save(tmp_path / "red.png")
    fast = {"model": "ltx-video", "height": 32, "width": 64, "num_frames": 9}
    videos = promptreel.generate(
        "a fox",
        image=tmp_path / "red.png",
        seed=3,
        num_videos_per_prompt=2,
        **fast,
        num_inference_steps=2,
    )
    assert [v.record["videos_per_prompt"]["how"] for v in videos] == ["one call a seed"] * 2
    assert "num_videos_per_prompt" not in videos[0].record["pipeline_arguments"]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"num_videos_per_prompt": 0}, "`num_videos_per_prompt` must be between 1 and 16"),
        ({"num_videos_per_prompt": 17}, "`num_videos_per_prompt` must be between 1 and 16"),
        ({"num_videos_per_prompt": "2"}, "num_videos_per_prompt"),
        ({"num_videos_per_prompt": True}, "num_videos_per_prompt"),
        ({"num_videos_per_prompt": 2.0}, "num_videos_per_prompt"),
        ({"num_videos_per_prompt": 3, "seed": MAX_SEED - 1}, "give --seed"),
    ],
)
def test_a_bad_count_is_refused_in_one_line_and_leaves_no_row(options, error) -> None:
    with pytest.raises(InvalidRequest, match=error) as refused:
        promptreel.generate("a red circle", **{**SHAPES, **options})
    assert "\n" not in str(refused.value)
    assert JobStore().list()[0] == []


def test_the_cli_writes_numbered_files_and_refuses_one_in_the_way_first(cli, workdir) -> None:
    steps = ["--num-frames", "4", "--num-inference-steps", "2"]
    (workdir / "clip-3.mp4").write_bytes(b"mine")
    refused = cli("generate", "a cat", "--num-videos-per-prompt", "3", "-o", "clip.mp4", *steps)
    assert refused.code != 0 and "clip-3.mp4" in refused.err and "--overwrite" in refused.err
    assert sorted(p.name for p in workdir.iterdir()) == ["clip-3.mp4"]  # nothing written
    assert JobStore().list()[0] == []

    made = cli(
        "generate",
        "a cat",
        "--num-videos-per-prompt",
        "2",
        "-o",
        "cat.mp4",
        "--seed",
        "7",
        "--json",
        *steps,
    )
    assert made.code == 0, made.err
    records = json.loads(made.out)
    assert [r["seed"] for r in records] == [7, 8]
    assert _frames(workdir / "cat.mp4").shape == (4, 64, 64, 3)
    assert not np.array_equal(_frames(workdir / "cat.mp4"), _frames(workdir / "cat-2.mp4"))
    (job,), _ = JobStore().list()
    assert [Path(o).name for o in job.outputs] == ["cat.mp4", "cat-2.mp4"]
    # removing the generation removes both videos and their records, nothing else
    assert cli("history", "rm", str(job.id), "--yes").code == 0
    assert sorted(p.name for p in workdir.iterdir()) == ["clip-3.mp4"]


def test_the_service_serves_each_video_of_a_job() -> None:
    from promptreel.server.app import create_app

    with TestClient(create_app(), base_url="http://localhost") as client:
        body = {"prompt": "a cat", "seed": 2, "num_videos_per_prompt": 2, **SHAPES}
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        job = wait_for_job(client, job_id)
        assert job["status"] == "succeeded", job
        assert job["video_urls"] == [
            f"/v1/jobs/{job_id}/video",
            f"/v1/jobs/{job_id}/video?number=2",
        ]
        assert job["video_url"] == job["video_urls"][0]
        first, second = (client.get(url) for url in job["video_urls"])
        assert first.status_code == second.status_code == 200
        assert first.content != second.content
        missing = client.get(f"/v1/jobs/{job_id}/video?number=3")
        assert missing.status_code == 404 and "made 2 videos" in missing.json()["detail"]
        assert client.get(f"/v1/jobs/{job_id}/video?number=0").status_code == 422
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        from promptreel.jobs.files import outputs_dir

        assert list(outputs_dir().iterdir()) == []


def test_a_batch_names_each_video_and_skips_them_on_a_rerun(cli, workdir) -> None:
    (workdir / "p.txt").write_text("a blue square\n")
    fast = ["--num-frames", "4", "--num-inference-steps", "2"]
    args = ["batch", "p.txt", "--num-videos-per-prompt", "2", *fast]
    result = cli(*args)
    assert result.code == 0, result.err
    out = workdir / "p"
    names = ["001-a-blue-square-s0-v1.mp4", "001-a-blue-square-s0-v2.mp4"]
    assert sorted(p.name for p in out.glob("*.mp4")) == names
    assert json.loads((out / "batch.json").read_text())["jobs"][0]["files"] == names
    # the second video is the one seed 1 makes
    alone = cli("generate", "a blue square", "--seed", "1", "-o", "one.mp4", *fast)
    assert alone.code == 0, alone.err
    assert np.array_equal(_frames(workdir / "one.mp4"), _frames(out / names[1]))
    again = cli(*args)
    assert again.code == 0 and "0 done, 1 skipped" in again.out


def test_the_plan_counts_a_batch_s_videos_and_not_one_call_a_seed_s(hub) -> None:
    from promptreel.generation import prepare
    from promptreel.memory.plan import Setup, folder_architecture, footprint
    from promptreel.request import make_request

    def denoise_bytes(**fields) -> int:
        p = prepare(make_request(prompt="a fox", **fields))
        architecture = folder_architecture(p.folder, p.parts)
        found = footprint(
            p.card, architecture, p.settings, p.dtype, [Setup.of(p.request, p.dtype)], "cpu"
        )
        return found.denoise[False]

    hub("wan2.1-t2v-1.3b")
    one, three = (denoise_bytes(**WAN, num_videos_per_prompt=n) for n in (1, 3))
    assert three > 2.5 * one
    shapes_one, shapes_three = (denoise_bytes(**SHAPES, num_videos_per_prompt=n) for n in (1, 3))
    assert shapes_three == shapes_one


def test_the_pipelines_that_batch_use_the_count() -> None:
    """A new diffusers that sets `num_videos_per_prompt` back to 1 in one of them fails here
    (the tests above check that video k is seed + k - 1's)."""
    import inspect

    import diffusers

    from promptreel.models.families import BATCHES_VIDEOS, FAMILIES

    for name in BATCHES_VIDEOS:
        call = getattr(diffusers, name).__call__
        assert "num_videos_per_prompt" in inspect.signature(call).parameters, name
        source = inspect.getsource(call)
        assert "num_videos_per_prompt = 1" not in source, name
        assert "assert num_videos_per_prompt == 1" not in source, name
    assert {family.pipeline_class for family in FAMILIES.values()} >= BATCHES_VIDEOS


def test_a_failed_save_leaves_no_part_of_the_job(monkeypatch) -> None:
    from promptreel.errors import OutputError
    from promptreel.jobs.files import outputs_dir
    from promptreel.jobs.worker import keep
    from promptreel.video import Video

    store = JobStore()
    job_id = store.add({"prompt": "a cat", "num_videos_per_prompt": 3}, source="service")
    job = store.claim(None)
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    videos = [Video(frames, 8.0, record={"promptreel_record": 2, "seed": s}) for s in (1, 2, 3)]
    real, calls = Video.save, []

    def save(self, path, **options):
        calls.append(path)
        if len(calls) == 3:
            raise OutputError("no space left on the device")
        return real(self, path, **options)

    monkeypatch.setattr(Video, "save", save)
    with pytest.raises(OutputError):
        keep(store, job, videos)
    assert list(outputs_dir().iterdir()) == []  # videos 1 and 2 went with it
    assert store.get(job_id).outputs == []
