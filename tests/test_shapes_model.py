"""The shipped `shapes` model: inside the package, the default, and plain diffusers runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import promptreel
from promptreel.eval.fidelity import detect
from promptreel.models.cards import SHAPES_FOLDER
from promptreel.request import DEFAULT_MODEL
from promptreel.train import shapes
from promptreel.video import read_record, read_video


def test_weights_ship_inside_the_package_as_safetensors_only() -> None:
    files = [p for p in SHAPES_FOLDER.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 2**20
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt")]
    assert {p.parent.name for p in weights} == {"text_encoder", "unet", "vae"}
    assert all(p.suffix == ".safetensors" for p in weights)
    index = json.loads((SHAPES_FOLDER / "model_index.json").read_text())
    assert index["_class_name"] == "TextToVideoSDPipeline"


def test_plain_diffusers_loads_and_generates_offline() -> None:
    from diffusers import DiffusionPipeline, TextToVideoSDPipeline

    pipe = DiffusionPipeline.from_pretrained(SHAPES_FOLDER)  # HF_HUB_OFFLINE=1 (conftest)
    assert isinstance(pipe, TextToVideoSDPipeline)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        "a red circle moving right",
        num_frames=16,
        height=64,
        width=64,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames
    assert np.asarray(frames).shape == (1, 16, 64, 64, 3)


def test_the_default_settings_draw_the_prompt() -> None:
    """One prompt per colour, shapes and directions in turn: the detector must see what each
    asks for in at least six of the seven (the shipped weights score 96 % over all 84)."""
    right = 0
    for index, colour in enumerate(shapes.COLOURS):
        shape = shapes.SHAPES[index % len(shapes.SHAPES)]
        direction = shapes.DIRECTIONS[index % len(shapes.DIRECTIONS)]
        video = promptreel.generate(f"a {colour} {shape} moving {direction}", seed=index)
        seen = detect(video.frames).attributes()
        right += seen == {"colour": colour, "shape": shape, "direction": direction}
    assert right >= 6, f"{right} of 7 prompts drawn right"


def test_default_model_is_shapes_and_the_cli_needs_nothing_else(cli, workdir: Path) -> None:
    assert DEFAULT_MODEL == "shapes"
    result = cli("generate", "a red circle moving right", "--seed", "1", "-o", "red.mp4")
    assert result.code == 0, result.err
    frames, fps = read_video(workdir / "red.mp4")
    assert frames.shape == (16, 64, 64, 3) and fps == 8
    record = read_record(workdir / "red.mp4")
    assert record["model"]["name"] == "shapes"
    again = cli("generate", "a red circle moving right", "--seed", "1", "-o", "again.mp4")
    assert again.code == 0, again.err
    assert np.array_equal(read_video(workdir / "again.mp4")[0], frames)  # the same seed


def test_models_show_gives_the_folder(cli) -> None:
    result = cli("models", "show", "shapes", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["downloaded"] is True
    assert Path(info["path"]) == SHAPES_FOLDER
    assert cli("download", "shapes").err.startswith("ModelNotFound: shapes is part of promptreel")
