"""Control images over HTTP: a `control_video` upload, the control images the service keeps
beside every job with `control` (served at /v1/jobs/{id}/control), the refusals, and the models
list that says which kinds each model takes. Tiny stand-ins of the real repos (tests/tiny)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import wait_for_job
from fastapi.testclient import TestClient

from promptreel.jobs.files import outputs_dir, uploads_dir
from promptreel.server.app import create_app
from promptreel.video import Video

CANNY = "lllyasviel/control_v11p_sd15_canny"
# text2video-zero at its smallest: 3 frames of 64x64, 2 steps, weak guidance
TINY = {"height": 64, "width": 64, "num_frames": 3, "num_inference_steps": 2}
TINY |= {"guidance_scale": 1.5, "seed": 5}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(), base_url="http://localhost") as client:
        yield client


@pytest.fixture
def idle() -> Iterator[TestClient]:
    """The service with no worker: refusals only, nothing runs."""
    with TestClient(create_app(run_worker=False), base_url="http://localhost") as client:
        yield client


_wait = partial(wait_for_job, timeout=300, poll=0.1)


def _edges_mp4(folder: Path, frames: int = 4) -> bytes:
    """White square outlines on black, moving right a little each frame: canny's own kind of
    image, as an ordinary MP4."""
    images = np.zeros((frames, 64, 64, 3), np.uint8)
    for i in range(frames):
        left = 12 + 4 * i
        images[i, 16:48, left : left + 2] = 255
        images[i, 16:48, left + 30 : left + 32] = 255
        images[i, 16:18, left : left + 32] = 255
        images[i, 46:48, left : left + 32] = 255
    path = Video(images, fps=8).save(folder / "edges.mp4")
    return path.read_bytes()


def _frames(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _post(client: TestClient, fields: dict, **uploads: tuple[str, bytes, str]):
    return client.post("/v1/jobs", data={"request": json.dumps(fields)}, files=uploads)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_control_video_steers_a_job_and_is_served_beside_its_video(hub, client, tmp_path) -> None:
    hub("text2video-zero")
    hub(CANNY)
    edges = _edges_mp4(tmp_path)
    fields = {"prompt": "a house", "model": "text2video-zero", "control": "canny", **TINY}
    created = _post(client, fields, control_video=("edges.mp4", edges, "video/mp4"))
    assert created.status_code == 201, created.text
    assert created.json()["inputs"] == ["control_video"]
    assert created.json()["control_url"] is None  # not before it has succeeded
    job_id = created.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}/control").status_code in (200, 409)

    done = _wait(client, job_id)
    assert done["status"] == "succeeded", done["reason"]
    assert done["video_url"] == f"/v1/jobs/{job_id}/video"
    assert done["control_url"] == f"/v1/jobs/{job_id}/control"
    assert "control_video" not in done["request"]  # no server paths over HTTP

    video = client.get(done["video_url"])
    control = client.get(done["control_url"])
    assert video.headers["content-type"] == control.headers["content-type"] == "video/mp4"
    made, used = _frames(video.content), _frames(control.content)
    assert made.shape == used.shape == (3, 64, 64, 3)
    # the control video is the upload's first 3 frames: white outlines on black, not the video
    sent = _frames(edges)[:3]
    assert np.abs(used.astype(int) - sent.astype(int)).mean() < 8
    assert not np.array_equal(made, used)

    # served as the video is: ranges, HEAD, a download name of its own
    part = client.get(done["control_url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == control.content[:10]
    head = client.head(done["control_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(control.content)
    download = client.get(done["control_url"], params={"download": "true"})
    disposition = download.headers["content-disposition"]
    assert (
        disposition.startswith("attachment") and f"promptreel-{job_id}-control.mp4" in disposition
    )
    outside = client.get(done["control_url"], headers={"Range": "bytes=999999-"})
    assert outside.status_code == 416

    # the control file keeps the job's record, marked as the control images
    kept = {p.name for p in _files(outputs_dir())}
    assert kept == {f"{job_id}.mp4", f"{job_id}.mp4.json"} | {
        f"{job_id}.control.mp4",
        f"{job_id}.control.mp4.json",
    }
    record = json.loads((outputs_dir() / f"{job_id}.control.mp4.json").read_text())
    assert record["content"] == "control" and record["seed"] == 5

    # deleting the job removes both outputs and the upload
    assert len(_files(uploads_dir())) == 1
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert _files(outputs_dir()) == [] and _files(uploads_dir()) == []
    assert client.get(f"/v1/jobs/{job_id}/control").status_code == 404


def test_control_images_drawn_from_a_video_upload_are_kept(hub, client, tmp_path) -> None:
    """No control video: the engine draws canny edges from `video` (its "control" stage), and
    the service keeps what it drew."""
    hub("text2video-zero")
    hub(CANNY)
    square = np.full((3, 64, 64, 3), 40, np.uint8)
    square[:, 20:44, 20:44] = 230  # a bright square on grey: its outline is the edges
    source = Video(square, fps=8).save(tmp_path / "square.mp4").read_bytes()
    fields = {"prompt": "a window", "model": "text2video-zero", "control": "canny", **TINY}
    created = _post(client, fields, video=("square.mp4", source, "video/mp4"))
    assert created.status_code == 201, created.text
    done = _wait(client, created.json()["id"])
    assert done["status"] == "succeeded", done["reason"]
    assert done["inputs"] == ["video"] and "control" in done["record"]["timings"]
    drawn = _frames(client.get(done["control_url"]).content)
    assert drawn.shape == (3, 64, 64, 3)
    assert drawn[:, 32, 32].max() < 60 and drawn[:, 32, 19:22].max() > 180  # edges, not fill


def test_a_rerun_uses_its_own_copy_of_the_control_video(hub, client, tmp_path) -> None:
    hub("text2video-zero")
    hub(CANNY)
    fields = {"prompt": "a house", "model": "text2video-zero", "control": "canny", **TINY}
    upload = ("edges.mp4", _edges_mp4(tmp_path), "video/mp4")
    first = _wait(client, _post(client, fields, control_video=upload).json()["id"])
    again = client.post(f"/v1/jobs/{first['id']}/rerun")
    assert again.status_code == 201, again.text
    second = _wait(client, again.json()["id"])
    assert second["status"] == "succeeded", second["reason"]
    assert second["inputs"] == ["control_video"] and second["control_url"]
    for url in ("video_url", "control_url"):
        made = [_frames(client.get(job[url]).content) for job in (first, second)]
        assert np.array_equal(*made), url
    assert len(_files(uploads_dir())) == 2
    assert client.delete(f"/v1/jobs/{first['id']}").status_code == 204
    assert len(_files(uploads_dir())) == 1  # the rerun's copy stays with it
    assert client.get(second["control_url"]).status_code == 200


def test_a_job_without_control_has_no_control_video(client) -> None:
    created = client.post(
        "/v1/jobs", json={"prompt": "a cat", "model": "shapes", "num_frames": 4}
    ).json()
    done = _wait(client, created["id"])
    assert done["status"] == "succeeded" and done["control_url"] is None
    missing = client.get(f"/v1/jobs/{done['id']}/control")
    assert missing.status_code == 404 and "without `control`" in missing.json()["detail"]
    assert client.head(f"/v1/jobs/{done['id']}/control").status_code == 404
    assert client.get("/v1/jobs/999/control").status_code == 404


def test_the_control_video_of_a_queued_job_is_not_ready(hub, idle, tmp_path) -> None:
    hub("text2video-zero")
    hub(CANNY)
    fields = {"prompt": "a house", "model": "text2video-zero", "control": "canny", **TINY}
    upload = ("edges.mp4", _edges_mp4(tmp_path), "video/mp4")
    job = _post(idle, fields, control_video=upload).json()
    waiting = idle.get(f"/v1/jobs/{job['id']}/control")
    assert waiting.status_code == 409 and "not ready" in waiting.json()["detail"]
    # a queued job's upload goes with it
    assert len(_files(uploads_dir())) == 1
    assert idle.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert _files(uploads_dir()) == []


@pytest.mark.parametrize(
    ("fields", "upload", "argument"),
    [
        # shapes takes no control images
        ({"model": "shapes", "control": "canny"}, "mp4", "control"),
        # control images without saying what they show
        ({"model": "text2video-zero"}, "mp4", "control"),
        # pix2pix-video has its own UNet: no base to swap
        ({"model": "pix2pix-video", "base": "emilianJR/epiCRealism"}, "video", "base"),
        # an upload that is not a video
        ({"model": "text2video-zero", "control": "canny"}, "png", "control_video"),
    ],
)
def test_refusals_name_the_field(hub, idle, tmp_path, fields, upload, argument) -> None:
    hub("text2video-zero")
    hub(CANNY)
    mp4 = ("edges.mp4", _edges_mp4(tmp_path), "video/mp4")
    files = {
        "mp4": {"control_video": mp4},
        "video": {"video": mp4},
        "png": {"control_video": ("edges.mp4", b"\x89PNG\r\n\x1a\n not a video", "video/mp4")},
    }[upload]
    answer = _post(idle, {"prompt": "a house", **fields}, **files)
    assert answer.status_code == 422, answer.text
    assert answer.json()["argument"] == argument, answer.json()
    assert "\n" not in answer.json()["detail"]
    assert str(uploads_dir()) not in answer.json()["detail"]
    assert _files(uploads_dir()) == []  # a refused job keeps no upload
    assert idle.get("/v1/jobs").json()["total"] == 0


def test_a_control_video_must_be_an_upload_not_a_path(idle) -> None:
    body = {"prompt": "a house", "model": "text2video-zero", "control": "canny"}
    answer = idle.post("/v1/jobs", json={**body, "control_video": "/etc/passwd"})
    assert answer.status_code == 422 and answer.json()["argument"] == "control_video"
    text = idle.post(
        "/v1/jobs", data={"request": json.dumps(body)}, files={"control_video": (None, "/etc/pw")}
    )
    assert text.status_code == 422 and text.json()["argument"] == "control_video"


def test_the_models_say_which_control_kinds_and_base_they_take(idle) -> None:
    models = {m["name"]: m for m in idle.get("/v1/models").json()}
    for name in ("text2video-zero", "animatediff"):
        control = models[name]["control"]
        assert set(control["kinds"]) == {"pose", "canny", "depth"}, name
        assert control["kinds"]["canny"]["controlnet"] == CANNY
        assert "low_threshold" in control["kinds"]["canny"]["drawing_params"]
    assert models["modelscope"]["control"] is None and models["modelscope"]["base"] is None
    assert models["animatediff"]["base"] == {"default": "emilianJR/epiCRealism"}
    assert models["pix2pix-video"]["base"] is None


def test_the_schema_lists_every_upload(idle) -> None:
    body = idle.get("/openapi.json").json()["paths"]["/v1/jobs"]["post"]["requestBody"]
    parts = body["content"]["multipart/form-data"]["schema"]["properties"]
    assert set(parts) == {"request", "image", "video", "control_video"}
    paths = idle.get("/openapi.json").json()["paths"]
    assert "get" in paths["/v1/jobs/{job_id}/control"]
