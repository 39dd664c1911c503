"""The tiny SD 1.5-family stand-ins are what the ControlNet, InstructPix2Pix and base tests need.

Plain diffusers on the built folders (no promptreel code): each ControlNet steers a 2-step
64 x 64 generation, visibly and deterministically; AnimateDiff runs with the motion adapter and a
ControlNet; InstructPix2Pix follows its input image; epiCRealism is SD 1.5-shaped with other
weights; SD 2.1 is not SD 1.5-shaped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffPipeline,
    ControlNetModel,
    MotionAdapter,
    StableDiffusionControlNetPipeline,
    StableDiffusionInstructPix2PixPipeline,
    StableDiffusionPipeline,
)
from PIL import Image
from tiny import BUILDERS
from tiny.sd15_family import CONTROLNET_REPOS

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
EPICREALISM = "emilianJR/epiCRealism"
IP2P = "timbrooks/instruct-pix2pix"
SD21 = "stabilityai/stable-diffusion-2-1"
ADAPTER = "guoyww/animatediff-motion-adapter-v1-5-2"
SIDE = 64
# Mean absolute difference (0-255 scale) that counts as a visible change between two outputs.
VISIBLE = 2.0


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every repo these tests use, built once into a temporary folder."""
    root = tmp_path_factory.mktemp("sd15")
    folders = {}
    for repo in (SD15, EPICREALISM, IP2P, SD21, ADAPTER, *CONTROLNET_REPOS.values()):
        folders[repo] = root / repo.replace("/", "--")
        BUILDERS[repo](folders[repo])
    return folders


@pytest.fixture(scope="module")
def sd15_parts(repos: dict[str, Path]) -> dict[str, object]:
    """SD 1.5's components, loaded once for the ControlNet pipelines."""
    return StableDiffusionPipeline.from_pretrained(repos[SD15]).components


def _square() -> Image.Image:
    pixels = np.zeros((SIDE, SIDE, 3), np.uint8)
    pixels[16:48, 16:48] = 255
    return Image.fromarray(pixels)


def _left_half() -> Image.Image:
    pixels = np.zeros((SIDE, SIDE, 3), np.uint8)
    pixels[:, : SIDE // 2] = 255
    return Image.fromarray(pixels)


def _gradient() -> Image.Image:
    ramp = np.linspace(0, 255, SIDE * SIDE * 3).reshape(SIDE, SIDE, 3)
    return Image.fromarray(ramp.astype(np.uint8))


def _seed() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two float images in [0, 1], on the 0-255 scale."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean() * 255)


def _unet_config(folder: Path) -> dict:
    return json.loads((folder / "unet" / "config.json").read_text())


def _sd15_shaped(config: dict) -> bool:
    """promptreel's rule for a base AnimateDiff and the ControlNets fit."""
    return (
        config["_class_name"] == "UNet2DConditionModel"
        and config["in_channels"] == 4
        and config["out_channels"] == 4
        and config["cross_attention_dim"] == 768
        and config.get("addition_embed_type") is None
    )


@pytest.mark.parametrize("kind", sorted(CONTROLNET_REPOS))
def test_each_controlnet_steers_the_image(
    repos: dict[str, Path], sd15_parts: dict[str, object], kind: str
) -> None:
    controlnet = ControlNetModel.from_pretrained(repos[CONTROLNET_REPOS[kind]])
    pipe = StableDiffusionControlNetPipeline(**sd15_parts, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)

    def generate(control: Image.Image) -> np.ndarray:
        return pipe(
            "a dancer",
            image=control,
            num_inference_steps=2,
            height=SIDE,
            width=SIDE,
            generator=_seed(),
            output_type="np",
        ).images[0]

    square, again, half = generate(_square()), generate(_square()), generate(_left_half())

    assert square.shape == (SIDE, SIDE, 3)
    assert np.array_equal(square, again)
    assert _change(square, half) > VISIBLE


def test_the_three_controlnets_have_different_weights(repos: dict[str, Path]) -> None:
    weights = [
        ControlNetModel.from_pretrained(repos[repo]).controlnet_mid_block.weight
        for repo in CONTROLNET_REPOS.values()
    ]
    assert not torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[1], weights[2])
    assert not torch.equal(weights[0], weights[2])


def test_animatediff_runs_with_a_controlnet(repos: dict[str, Path]) -> None:
    pipe = AnimateDiffControlNetPipeline.from_pretrained(
        repos[SD15],
        motion_adapter=MotionAdapter.from_pretrained(repos[ADAPTER]),
        controlnet=ControlNetModel.from_pretrained(repos[CONTROLNET_REPOS["pose"]]),
    )
    pipe.set_progress_bar_config(disable=True)

    frames = pipe(
        "a dancer",
        num_frames=4,
        conditioning_frames=[_square(), _left_half(), _square(), _left_half()],
        num_inference_steps=2,
        height=SIDE,
        width=SIDE,
        generator=_seed(),
        output_type="np",
    ).frames[0]

    assert frames.shape == (4, SIDE, SIDE, 3)
    assert np.isfinite(frames).all()


def test_instruct_pix2pix_follows_its_input_image(repos: dict[str, Path]) -> None:
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(repos[IP2P])
    pipe.set_progress_bar_config(disable=True)

    def edit(image: Image.Image) -> np.ndarray:
        return pipe(
            "make it snow",
            image=image,
            num_inference_steps=2,
            generator=_seed(),
            output_type="np",
        ).images[0]

    gradient, again, square = edit(_gradient()), edit(_gradient()), edit(_square())

    assert gradient.shape == (SIDE, SIDE, 3)
    assert np.array_equal(gradient, again)
    assert _change(gradient, square) > VISIBLE
    assert _unet_config(repos[IP2P])["in_channels"] == 8


def test_epicrealism_is_an_sd15_base_with_other_weights(repos: dict[str, Path]) -> None:
    adapter = MotionAdapter.from_pretrained(repos[ADAPTER])

    def animate(base: str) -> np.ndarray:
        pipe = AnimateDiffPipeline.from_pretrained(repos[base], motion_adapter=adapter)
        pipe.set_progress_bar_config(disable=True)
        return pipe(
            "a dancer",
            num_frames=2,
            num_inference_steps=2,
            height=SIDE,
            width=SIDE,
            generator=_seed(),
            output_type="np",
        ).frames[0]

    assert _sd15_shaped(_unet_config(repos[EPICREALISM]))
    assert _change(animate(SD15), animate(EPICREALISM)) > VISIBLE


def test_only_the_sd15_shaped_bases_pass_the_shape_rule(repos: dict[str, Path]) -> None:
    assert _sd15_shaped(_unet_config(repos[SD15]))
    assert _sd15_shaped(_unet_config(repos[EPICREALISM]))
    assert not _sd15_shaped(_unet_config(repos[IP2P]))  # 8 input channels
    assert not _sd15_shaped(_unet_config(repos[SD21]))
    assert _unet_config(repos[SD21])["cross_attention_dim"] == 1024
    text = json.loads((repos[SD21] / "text_encoder" / "config.json").read_text())
    assert text["hidden_size"] == 1024
    scheduler = json.loads((repos[SD21] / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"
