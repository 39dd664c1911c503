"""Section 8: every built-in card makes a playable video through the CLI and the Python API.

Each card's repos are tiny random-weight copies in a temporary Hugging Face cache under the real
repo ids, resolved offline by the same code that resolves a real download.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import promptreel
from promptreel.models.cards import CARDS
from promptreel.video import read_record

# A small request per card, within the card's real rules (frames 8k+1 for CogVideoX and LTX,
# 4k+1 for Wan, CogVideoX-5B-I2V only at 720x480).
SMALL = {
    "shapes": {"height": 64, "width": 64, "num_frames": 4},
    "modelscope": {"height": 32, "width": 48, "num_frames": 5},
    "zeroscope": {"height": 32, "width": 32, "num_frames": 4},
    "zeroscope-xl": {"height": 32, "width": 32, "num_frames": 3},
    "cogvideox-2b": {"height": 32, "width": 48, "num_frames": 9},
    "cogvideox-5b": {"height": 16, "width": 32, "num_frames": 9},
    "cogvideox-5b-i2v": {"num_frames": 9},
    "svd": {"height": 32, "width": 32, "num_frames": 3},
    "svd-xt": {"height": 32, "width": 48, "num_frames": 4},
    "i2vgen-xl": {"height": 32, "width": 32, "num_frames": 3},
    "animatediff": {"height": 32, "width": 32, "num_frames": 4},
    "animatediff-v2v": {"height": 32, "width": 32, "num_frames": 4, "params": {"strength": 0.6}},
    "text2video-zero": {"height": 64, "width": 64, "num_frames": 3, "params": {"t0": 0, "t1": 1}},
    "pix2pix-video": {"height": 32, "width": 32, "num_frames": 3},
    "ltx-video": {"height": 32, "width": 64, "num_frames": 9},
    "wan2.1-t2v-1.3b": {"height": 16, "width": 32, "num_frames": 5},
}


def test_every_card_has_a_small_request() -> None:
    assert set(SMALL) == {card.name for card in CARDS}


@pytest.fixture
def inputs(workdir: Path) -> dict[str, str]:
    """An image and a short video, for the models that take one."""
    gradient = np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3).astype(np.uint8)
    Image.fromarray(gradient).save(workdir / "input.png")
    promptreel.Video(np.stack([gradient] * 6), fps=8.0, record={}).save(workdir / "input.mp4")
    return {"image": "input.png", "video": "input.mp4", "record": "input.mp4.json"}


def _arguments(card, inputs: dict[str, str]) -> dict[str, object]:
    args: dict[str, object] = dict(SMALL[card.name])
    args["num_inference_steps"] = 2
    if "video-to-video" in card.tasks:
        args["video"] = Path(inputs["video"])
    elif "image-to-video" in card.tasks and "text-to-video" not in card.tasks:
        args["image"] = Path(inputs["image"])
    return args


def _prompt(card) -> str | None:
    return "a red ball bouncing on a beach" if card.family.takes_text else None


def _decode(path: Path) -> tuple[int, int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.height, stream.width, float(stream.average_rate)


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_cli_makes_a_video_that_plays(card, hub, cli, workdir, inputs) -> None:
    hub(card.name)
    args = _arguments(card, inputs)
    argv = ["generate"] + ([_prompt(card)] if _prompt(card) else [])
    argv += ["--model", card.name, "--seed", "11", "--fps", "6", "--output", "out.mp4", "--quiet"]
    for key, value in args.items():
        if key == "params":
            argv += [f"--param={k}={v}" for k, v in value.items()]
        else:
            argv += [f"--{key.replace('_', '-')}", str(value)]

    result = cli(*argv)

    assert result.code == 0, result.err
    height = args.get("height", card.height)
    width = args.get("width", card.width)
    assert _decode(workdir / "out.mp4") == (args["num_frames"], height, width, 6.0)
    record = read_record(workdir / "out.mp4")
    assert record == json.loads((workdir / "out.mp4.json").read_text())
    assert record["model"]["name"] == card.name
    assert record["model"]["repo_id"] == card.repo_id
    if card.local_path is None:
        assert len(record["model"]["revision"]) == 40  # the snapshot's commit
    assert record["seed"] == 11
    assert record["prompt"] == _prompt(card)
    assert record["device"] == "cpu" and record["dtype"] == "float32"
    steps = record["parameters"]["num_inference_steps"]
    assert steps == args["num_inference_steps"]
    assert set(record["timings"]) >= {"load", "encode", "denoise", "decode"}
    # the planner traces every family: its estimate sits beside what was measured
    assert set(record["memory"]["planned"]) == {"encode", "denoise", "decode"}
    assert set(record["memory"]["measured"]) == set(record["timings"])
    leftovers = {p.name for p in workdir.iterdir()} - {"out.mp4", "out.mp4.json", *inputs.values()}
    assert leftovers == set()


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_python_api_returns_the_frames(card, hub, workdir, inputs) -> None:
    hub(card.name)
    args = _arguments(card, inputs)
    stages: list[str] = []
    video = promptreel.generate(
        _prompt(card),
        model=card.name,
        seed=5,
        progress=lambda p: stages.append(p.stage),
        **args,
    )
    height = args.get("height", card.height)
    width = args.get("width", card.width)
    assert video.frames.shape == (args["num_frames"], height, width, 3)
    assert video.frames.dtype == np.uint8
    # a video-to-video model keeps its input's rate (8 fps, see `inputs`)
    assert video.fps == (8.0 if "video-to-video" in card.tasks else card.fps)
    assert video.record["seed"] == 5
    # stages arrive in order, each at least once
    firsts = [s for i, s in enumerate(stages) if s not in stages[:i]]
    assert firsts == ["load", "encode", "denoise", "decode"]
    saved = video.save(workdir / "api.webm")
    assert read_record(saved) == video.record
