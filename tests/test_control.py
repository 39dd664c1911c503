"""Directing a video: control images (pose, canny, depth), editing by instruction, another base.

Every repo is a tiny random-weight stand-in under its real id (tests/tiny/sd15_family.py), with
the ControlNets' zero-initialised output layers made non-zero: a control image that is not wired
in would change nothing, and these tests would fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import promptreel
from promptreel.errors import InputError, InvalidRequest, ModelNotDownloaded, PromptreelError
from promptreel.video import read_record, read_video

SMALL = {"height": 64, "width": 64, "num_inference_steps": 2, "seed": 3, "history": False}


def _edges(frames: int, row: int) -> np.ndarray:
    """White lines on black, as canny control images: a bar at `row` and a moving post."""
    video = np.zeros((frames, 64, 64, 3), np.uint8)
    video[:, row : row + 2, 8:56] = 255
    for i in range(frames):
        video[i, 8:56, 8 + 4 * i : 10 + 4 * i] = 255
    return video


@pytest.fixture
def controls(hub, workdir: Path) -> dict[str, Path]:
    """Control videos and a source video, and the models' stand-ins in the cache."""
    for model in ("text2video-zero", "animatediff", "pix2pix-video"):
        hub(model)
    for kind in ("canny", "depth"):
        hub(f"lllyasviel/control_v11{'f1' if kind == 'depth' else ''}p_sd15_{kind}")
    made = {
        "edges": _edges(6, 20),
        "other_edges": _edges(6, 44),
        "twelve": _edges(12, 30),
        "source": np.stack(
            [np.full((64, 64, 3), (40 * i, 120, 255 - 40 * i), np.uint8) for i in range(6)]
        ),
    }
    made["source"][:, 16:48, 16:48] = 255  # a white square to find edges around
    paths = {}
    for name, frames in made.items():
        paths[name] = workdir / f"{name}.mp4"
        promptreel.Video(frames, fps=8.0).save(paths[name])
    return paths


def test_the_control_video_steers_the_frames(controls) -> None:
    """Two control videos give two videos; the same one gives the same frames again."""
    made = [
        promptreel.generate(
            "a cat", model="text2video-zero", control="canny", control_video=path, **SMALL
        )
        for path in (controls["edges"], controls["other_edges"], controls["edges"])
    ]
    assert made[0].frames.shape == (6, 64, 64, 3)  # as many frames as the control video
    assert not np.array_equal(made[0].frames, made[1].frames)
    assert np.array_equal(made[0].frames, made[2].frames)
    record = made[0].record
    assert record["control"] == {
        "kind": "canny",
        "controlnet": "lllyasviel/control_v11p_sd15_canny",
        "images": "given",
    }
    assert record["parameters"]["control"] == "canny"
    assert record["parameters"]["base"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert len(record["model"]["parts"]["controlnet"]["revision"]) == 40
    assert record["inputs"]["control_video"]["sha256"] == promptreel_sha(controls["edges"])
    assert record["model"]["pipeline_class"] == "StableDiffusionControlNetPipeline"


def test_the_conditioning_scale_is_honoured(controls) -> None:
    """At scale 0 the ControlNet adds nothing: any control video gives the same frames."""

    def make(path: Path, scale: float) -> np.ndarray:
        return promptreel.generate(
            "a cat",
            model="text2video-zero",
            control="canny",
            control_video=path,
            params={"controlnet_conditioning_scale": scale},
            **SMALL,
        ).frames

    off = [make(controls[name], 0.0) for name in ("edges", "other_edges")]
    assert np.array_equal(off[0], off[1])
    assert not np.array_equal(off[0], make(controls["edges"], 1.0))


def promptreel_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_frames_follow_the_control_video_unless_fewer_are_asked(controls) -> None:
    twelve = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", control_video=controls["twelve"], **SMALL
    )
    assert twelve.frames.shape[0] == 12
    four = promptreel.generate(
        "a cat",
        model="text2video-zero",
        control="canny",
        control_video=controls["twelve"],
        num_frames=4,
        **SMALL,
    )
    assert four.frames.shape[0] == 4
    # every frame looks at the first, which looks only at itself: the same first frame (up to
    # the rounding of a larger batch)
    difference = np.abs(four.frames[0].astype(int) - twelve.frames[0].astype(int))
    assert difference.mean() < 1


def test_a_folder_of_control_images_works_as_a_video(controls, workdir) -> None:
    folder = workdir / "edges"
    folder.mkdir()
    frames, _ = read_video(controls["edges"])
    # natural order: frame_10 after frame_9, not after frame_1
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i}.png")
    from_folder = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", control_video=folder, **SMALL
    )
    from_video = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", control_video=controls["edges"], **SMALL
    )
    assert np.array_equal(from_folder.frames, from_video.frames)
    assert from_folder.fps == 4  # a folder has no frame rate: the model's own


def test_animatediff_takes_control_too(controls) -> None:
    args = dict(model="animatediff", control="depth", num_frames=4, **SMALL)
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))  # dark left, bright right
    near, far = (np.stack([np.stack([r] * 3, axis=-1)] * 4) for r in (ramp, ramp.T))
    paths = []
    for name, frames in (("near.mp4", near), ("far.mp4", far)):
        paths.append(controls["edges"].parent / name)
        promptreel.Video(np.ascontiguousarray(frames), fps=8.0).save(paths[-1])
    one, two = (promptreel.generate("a cat", control_video=p, **args) for p in paths)
    assert one.frames.shape == (4, 64, 64, 3)
    assert one.record["model"]["pipeline_class"] == "AnimateDiffControlNetPipeline"
    assert not np.array_equal(one.frames, two.frames)


def test_canny_images_drawn_from_a_video_are_saved_and_steer(controls, workdir, cli) -> None:
    made = cli(
        "generate",
        "a cat",
        "--model",
        "text2video-zero",
        "--control",
        "canny",
        "--video",
        str(controls["source"]),
        "--save-control",
        "edges-drawn.mp4",
        "-o",
        "out.mp4",
        "--height",
        "64",
        "--width",
        "64",
        "--num-inference-steps",
        "2",
        "--seed",
        "3",
    )
    assert made.code == 0, made.err
    drawn, _ = read_video(workdir / "edges-drawn.mp4")
    video, _ = read_video(workdir / "out.mp4")
    assert drawn.shape == video.shape == (6, 64, 64, 3)
    # the square's border, and nothing inside it
    assert drawn[0, 16:48, 15:18].mean() > 60 and drawn[0, 24:40, 24:40].max() < 40
    record = read_record(workdir / "out.mp4")
    assert record["control"]["images"] == "drawn from the video"
    assert record["parameters"]["params"] == {"low_threshold": 100, "high_threshold": 200}
    assert record["inputs"]["video"]["sha256"] == promptreel_sha(controls["source"])
    # thresholds above every gradient draw no edges at all: another video
    blank = promptreel.generate(
        "a cat",
        model="text2video-zero",
        control="canny",
        video=controls["source"],
        params={"low_threshold": 2000, "high_threshold": 2040},
        **SMALL,
    )
    assert blank.control is not None and blank.control.frames.max() == 0
    assert not np.array_equal(blank.frames, video)


def test_a_control_rerun_is_bit_identical(controls, workdir, cli) -> None:
    base = ["--height", "64", "--width", "64", "--num-inference-steps", "2"]
    made = cli(
        "generate", "a cat", "--model", "text2video-zero", "--control", "canny",
        "--control-video", str(controls["edges"]), "-o", "one.mp4", *base,
    )  # fmt: skip
    assert made.code == 0, made.err
    [job] = json.loads(cli("history", "--json").out)["jobs"]
    again = cli("history", "rerun", str(job["id"]), "-o", "two.mp4")
    assert again.code == 0, again.err
    one, _ = read_video(workdir / "one.mp4")
    two, _ = read_video(workdir / "two.mp4")
    assert np.array_equal(one, two)


def test_pix2pix_video_edits_by_instruction(controls) -> None:
    args = dict(model="pix2pix-video", num_frames=3, **SMALL)
    edited = promptreel.generate("make it winter", video=controls["source"], **args)
    other = promptreel.generate("make it winter", video=controls["edges"], **args)
    assert edited.frames.shape == (3, 64, 64, 3)
    assert not np.array_equal(edited.frames, other.frames)  # the input video is used
    looser = promptreel.generate(
        "make it winter", video=controls["source"], params={"image_guidance_scale": 3.0}, **args
    )
    assert not np.array_equal(edited.frames, looser.frames)
    assert edited.record["parameters"]["params"] == {"image_guidance_scale": 1.5}


def test_animatediff_restyles_a_clip(controls, hub) -> None:
    hub("animatediff-v2v")
    args = dict(model="animatediff-v2v", video=controls["source"], num_frames=4, **SMALL)
    args["num_inference_steps"] = 4
    light = promptreel.generate("a cat", params={"strength": 0.3}, **args)  # 1 step of 4
    strong = promptreel.generate("a cat", params={"strength": 0.9}, **args)  # 3 steps
    assert light.frames.shape == (4, 64, 64, 3)
    assert not np.array_equal(light.frames, strong.frames)


def test_another_base_changes_the_video_and_is_recorded(controls, hub, workdir) -> None:
    hub("stable-diffusion-v1-5/stable-diffusion-v1-5")
    args = dict(model="animatediff", num_frames=4, **SMALL)
    default = promptreel.generate("a cat", **args)
    assert default.record["model"]["base"] == "emilianJR/epiCRealism"
    swapped = promptreel.generate(
        "a cat", base="stable-diffusion-v1-5/stable-diffusion-v1-5", **args
    )
    assert swapped.record["model"]["repo_id"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert swapped.record["parameters"]["base"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert not np.array_equal(default.frames, swapped.frames)
    # a folder works too, and is recorded by its absolute path
    folder = hub("emilianJR/epiCRealism")
    from_folder = promptreel.generate("a cat", base=str(folder), **args)
    assert np.array_equal(from_folder.frames, default.frames)
    assert from_folder.record["parameters"]["base"] == str(folder.resolve())


def test_text2video_zero_on_another_base(controls, hub) -> None:
    hub("emilianJR/epiCRealism")
    args = dict(model="text2video-zero", control="canny", control_video=controls["edges"])
    default = promptreel.generate("a cat", **args, **SMALL)
    swapped = promptreel.generate("a cat", base="emilianJR/epiCRealism", **args, **SMALL)
    assert not np.array_equal(default.frames, swapped.frames)


# --- refusals: one line, the field named, before anything loads -------------------------------


@pytest.mark.parametrize(
    ("options", "argument", "words"),
    [
        ({"model": "shapes", "control": "canny", "control_video": "edges"}, "control", "takes no"),
        ({"model": "modelscope", "control": "pose", "video": "source"}, "control", "takes no"),
        ({"model": "text2video-zero", "control_video": "edges"}, "control", "--control KIND"),
        ({"model": "text2video-zero", "control": "canny"}, "control_video", "needs its images"),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "edges",
             "video": "source"},
            "video",
            "not both",
        ),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "edges",
             "num_frames": 9},
            "num_frames",
            "control video has only 6",
        ),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "source"},
            "control_video",
            "does not look like white edges",
        ),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "broken"},
            "control_video",
            "not a video",
        ),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "missing.mp4"},
            "control_video",
            "no such file",
        ),
        ({"model": "text2video-zero", "control": "edges", "control_video": "edges"}, "control", ""),
        (
            {"model": "text2video-zero", "control": "canny", "control_video": "edges",
             "params": {"low_threshold": 10}},
            "params",
            "is for drawing canny images from --video",
        ),
        (
            {"model": "text2video-zero", "control": "canny", "video": "source",
             "params": {"low_threshold": 300, "high_threshold": 200}},
            "params",
            "low_threshold <= high_threshold",
        ),
        ({"model": "pix2pix-video", "video": "source", "base": "emilianJR/epiCRealism"}, "base",
         "takes no base"),
        ({"model": "modelscope", "base": "emilianJR/epiCRealism"}, "base", "takes no base"),
        ({"model": "animatediff", "base": "stabilityai/stable-diffusion-2-1"}, "base",
         "cross_attention_dim is 1024"),
        ({"model": "animatediff", "base": "not a repo"}, "base", "hub repo id"),
        ({"model": "animatediff-v2v", "video": "source", "params": {"strength": 0.4}}, "params",
         "runs no denoising step"),
        ({"model": "text2video-zero", "video": "source"}, "video", "add --control KIND"),
        ({"model": "pix2pix-video", "video": "source", "control_video": "edges"},
         "control_video", "takes no control images"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(controls, hub, workdir, options, argument, words) -> None:
    hub("stabilityai/stable-diffusion-2-1")
    (workdir / "broken.mp4").write_bytes(b"not a video at all")
    names = {"edges": controls["edges"], "source": controls["source"], "broken": "broken.mp4"}
    options = {k: names.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    before = set(workdir.rglob("*"))
    with pytest.raises(PromptreelError) as caught:
        promptreel.generate("a cat", **options, **SMALL)
    assert caught.value.argument == argument, str(caught.value)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert set(workdir.rglob("*")) == before
    about_the_file = ("does not look like white edges", "not a video", "no such file")
    expected = InputError if words in about_the_file else InvalidRequest
    assert isinstance(caught.value, expected)


def test_save_control_needs_control(controls, workdir, cli) -> None:
    refused = cli("generate", "a cat", "--model", "modelscope", "--save-control", "c.mp4")
    assert refused.code == 1 and "--save-control" in refused.err
    with pytest.raises(InvalidRequest):
        promptreel.generate("a cat", model="modelscope", save_control="c.mp4", **SMALL)
    assert not (workdir / "c.mp4").exists()


def test_a_missing_controlnet_says_which_command_fetches_it(controls, tmp_path, monkeypatch):
    from huggingface_hub import constants

    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(empty))
    with pytest.raises(ModelNotDownloaded) as caught:
        promptreel.generate(
            "a cat", model="text2video-zero", control="pose", control_video=controls["edges"],
            **SMALL,
        )  # fmt: skip
    assert "promptreel download text2video-zero --control pose" in str(caught.value)


def test_a_missing_estimator_is_refused_before_loading(controls, hub, monkeypatch) -> None:
    hub("lllyasviel/control_v11f1p_sd15_depth")
    import promptreel.control as control

    monkeypatch.setattr(control, "missing_estimators", lambda kind: ["depth-anything/x"])
    with pytest.raises(ModelNotDownloaded) as caught:
        promptreel.generate(
            "a cat", model="text2video-zero", control="depth", video=controls["source"], **SMALL
        )
    assert "promptreel download text2video-zero --control depth" in str(caught.value)
    assert caught.value.argument == "control"


def test_models_show_says_what_a_model_takes(cli) -> None:
    info = json.loads(cli("models", "show", "animatediff", "--json").out)
    assert set(info["control"]["kinds"]) == {"pose", "canny", "depth"}
    assert info["base"] == {"default": "emilianJR/epiCRealism"}
    assert "controlnet_conditioning_scale" in info["control"]["params"]
    pix2pix = json.loads(cli("models", "show", "pix2pix-video", "--json").out)
    assert pix2pix["control"] is None and pix2pix["base"] is None
    assert pix2pix["tasks"] == ["video-to-video"]
    assert "image_guidance_scale" in pix2pix["params"]
    # on a terminal: the control kinds as indented tables, not one line of JSON
    shown = cli("models", "show", "text2video-zero").out.splitlines()
    assert "  kinds" in shown and "    canny" in shown
    assert any(
        line.split() == ["controlnet", "lllyasviel/control_v11p_sd15_canny"] for line in shown
    )
    listed = cli("models").out
    assert any(line.split()[:2] == ["animatediff", "text+control"] for line in listed.splitlines())


def test_a_portrait_control_video_makes_a_portrait_video(controls, workdir) -> None:
    """A square model draws any shape: the input's is kept, not squashed to the card's square
    (at most the card's own number of pixels)."""
    tall = np.zeros((3, 96, 48, 3), np.uint8)
    tall[:, 40:42, 4:44] = 255
    promptreel.Video(tall, fps=8.0).save(workdir / "tall.mp4")
    args = {k: v for k, v in SMALL.items() if k not in ("height", "width")}
    video = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", control_video="tall.mp4", **args
    )
    height, width = video.frames.shape[1:3]
    assert (height, width) == (720, 360) and height * width <= 512 * 512


def test_long_inputs_are_cut_with_a_note(controls, workdir, cli) -> None:
    """A clip longer than the model's default is cut to it, and the command says so."""
    made = cli(
        "generate", "make it winter", "--model", "pix2pix-video", "--video", "twelve.mp4",
        "-o", "w.mp4", "--height", "64", "--width", "64", "--num-inference-steps", "2",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert "note: pix2pix-video uses the first 8 frames of the video" in made.err
    assert read_video(workdir / "w.mp4")[0].shape[0] == 8
    asked = cli(
        "generate", "make it winter", "--model", "pix2pix-video", "--video", "twelve.mp4",
        "-o", "x.mp4", "--height", "64", "--width", "64", "--num-inference-steps", "2",
        "--num-frames", "4",
    )  # fmt: skip
    assert asked.code == 0 and "note:" not in asked.err


@pytest.mark.parametrize("option", ["-o", "--save-control"])
def test_an_output_never_replaces_an_input(controls, workdir, cli, option) -> None:
    before = controls["source"].read_bytes()
    other = "--save-control" if option == "-o" else "-o"
    refused = cli(
        "generate", "a cat", "--model", "text2video-zero", "--control", "canny", "--video",
        "source.mp4", option, "source.mp4", other, "new.mp4", "--overwrite",
    )  # fmt: skip
    assert refused.code == 1 and "is the --video it reads" in refused.err
    assert controls["source"].read_bytes() == before and not (workdir / "new.mp4").exists()


def test_the_saved_control_video_belongs_to_the_generation(controls, workdir, cli) -> None:
    made = cli(
        "generate", "a cat", "--model", "text2video-zero", "--control", "canny", "--video",
        "source.mp4", "--save-control", "drawn/", "-o", "out.mp4", "--height", "64",
        "--width", "64", "--num-inference-steps", "2",
    )  # fmt: skip
    assert made.code == 0, made.err
    [job] = json.loads(cli("history", "--json").out)["jobs"]
    assert len(job["outputs"]) == 2
    # a PNG folder keeps the images exactly: reused as they are, they steer the same way
    again = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", control_video="drawn",
        **{**SMALL, "seed": job["seed"]},
    )  # fmt: skip
    drawn = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", video="source.mp4",
        **{**SMALL, "seed": job["seed"]},
    )  # fmt: skip
    assert np.array_equal(again.frames, drawn.frames)
    assert cli("history", "rm", str(job["id"]), "--yes").code == 0
    assert not (workdir / "drawn").exists() and not (workdir / "out.mp4").exists()


def test_a_base_folder_without_safetensors_is_refused_before_loading(hub, workdir, cli) -> None:
    import shutil

    base = workdir / "my base"
    shutil.copytree(hub("emilianJR/epiCRealism"), base)
    for weights in (base / "unet").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    refused = cli(
        "generate", "a cat", "--model", "animatediff", "--base", str(base), "-o", "a.mp4",
        "--height", "64", "--width", "64", "--num-frames", "4",
    )  # fmt: skip
    assert refused.code == 1 and "no safetensors weights for unet" in refused.err
    assert "convert it to safetensors" in refused.err
    assert json.loads(cli("history", "--json").out)["jobs"] == []
    assert not (workdir / "a.mp4").exists()


def test_a_base_not_in_the_cache_names_the_base(hub) -> None:
    hub("animatediff")
    with pytest.raises(ModelNotDownloaded) as caught:
        promptreel.generate("a cat", model="animatediff", base="someone/sd15-finetune", **SMALL)
    assert caught.value.argument == "base"
    assert "promptreel download someone/sd15-finetune" in str(caught.value)


def test_one_image_as_a_control_video_says_to_use_a_folder(controls, workdir) -> None:
    Image.new("RGB", (64, 64)).save(workdir / "one.png")
    with pytest.raises(InputError) as caught:
        promptreel.generate(
            "a cat", model="text2video-zero", control="canny", control_video="one.png", **SMALL
        )
    assert "--control-video 'one.png': is one image" in str(caught.value)
    assert "folder of images" in str(caught.value)


def test_one_list_of_control_kinds() -> None:
    from typing import get_args

    from promptreel.control import KINDS
    from promptreel.models.cards import CONTROLNETS, ESTIMATORS
    from promptreel.request import Control

    assert set(get_args(Control)) == set(CONTROLNETS) == set(ESTIMATORS) == set(KINDS)


def test_a_rerun_of_a_row_made_before_base_keeps_its_base() -> None:
    """animatediff ran on SD 1.5 itself before --base existed; its old rows rerun there, not on
    the base the card has now."""
    from promptreel.jobs.history import rerun_request
    from promptreel.jobs.store import Job

    sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    record = {
        "promptreel_record": 2,
        "prompt": "a cat",
        "negative_prompt": "",
        "model": {"name": "animatediff", "repo_id": sd15},
        "parameters": {"num_frames": 4, "seed": 9},
        "inputs": {},
    }
    job = Job(
        id=1, source="cli", status="succeeded", reason=None, model="animatediff",
        prompt="a cat", request={"prompt": "a cat", "model": "animatediff"},
        output_format="mp4", seed=9, record=record, outputs=[], attempts=1,
        cancel_requested=False, stage=None, step=0, total=0, eta=None, created_at=0.0,
        started_at=None, finished_at=None,
    )  # fmt: skip
    assert rerun_request(job).base == sd15


def test_an_output_elsewhere_needs_no_writable_current_folder(controls, workdir, cli, monkeypatch):
    import promptreel.cli.generate as command

    real = command.os.access
    monkeypatch.setattr(command.os, "access", lambda p, m: p != "." and real(p, m))
    out = workdir / "elsewhere"
    out.mkdir()
    made = cli(
        "generate", "a cat", "--model", "text2video-zero", "--control", "canny",
        "--control-video", "edges.mp4", "-o", str(out / "a.mp4"), "--height", "64",
        "--width", "64", "--num-inference-steps", "2",
    )  # fmt: skip
    assert made.code == 0, made.err
    refused = cli("generate", "a cat", "--model", "text2video-zero", "--control", "canny",
                  "--control-video", "edges.mp4")  # fmt: skip
    assert refused.code == 1 and "not writable" in refused.err


def test_a_base_missing_a_component_its_pipeline_loads_is_refused(controls, hub, workdir):
    """A base fetched for AnimateDiff has no safety checker; Text2Video-Zero loads one."""
    import shutil

    base = workdir / "half base"
    shutil.copytree(hub("emilianJR/epiCRealism"), base)
    shutil.rmtree(base / "safety_checker")
    args = dict(model="text2video-zero", control="canny", control_video=controls["edges"])
    with pytest.raises(ModelNotDownloaded) as caught:
        promptreel.generate("a cat", base=str(base), **args, **SMALL)
    assert caught.value.argument == "base" and "no safety_checker" in str(caught.value)
    assert promptreel.generate("a cat", model="animatediff", base=str(base), num_frames=4, **SMALL)


def test_the_record_says_what_drew_the_control_images(controls) -> None:
    video = promptreel.generate(
        "a cat", model="text2video-zero", control="canny", video=controls["source"], **SMALL
    )
    assert video.record["control"]["drawn_with"] == {
        "opencv": __import__("importlib.metadata").metadata.version("opencv-python-headless")
    }


def test_pose_images_drawn_from_a_video_steer_and_are_recorded(controls, hub) -> None:
    for repo in (
        "lllyasviel/control_v11p_sd15_openpose",
        "PekingU/rtdetr_r50vd_coco_o365",
        "usyd-community/vitpose-base-simple",
    ):
        hub(repo)
    video = promptreel.generate(
        "a dancer", model="text2video-zero", control="pose", video=controls["source"], **SMALL
    )
    assert video.frames.shape == video.control.frames.shape == (6, 64, 64, 3)
    drawn = video.record["control"]["drawn_with"]
    assert set(drawn) == {"PekingU/rtdetr_r50vd_coco_o365", "usyd-community/vitpose-base-simple"}
    assert all(len(revision) == 40 for revision in drawn.values())
    assert "control" in video.record["timings"]
