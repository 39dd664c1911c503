"""Tiny random-weight stand-ins for the Stable Diffusion 1.5 family and one base outside it.

promptreel runs AnimateDiff, Text2Video-Zero, ControlNet and InstructPix2Pix on SD 1.5-shaped
repos, and calls a base SD 1.5-shaped by its unet/config.json: a `UNet2DConditionModel` with 4
input and 4 output channels, `cross_attention_dim` 768 and no `addition_embed_type`. So the
SD 1.5-shaped stand-ins here keep exactly that, with a 768-wide CLIP text encoder feeding the
UNet (2 layers, 4 heads, a 64-wide MLP), while everything else stays as tiny as in
`unet_family`: the UNet has the motion adapter's channel widths and layers, the VAE four levels,
the safety checker 32-wide towers. The real text width makes a repo 24 to 38 MB (60 MB for the
1024-wide SD 2.1 stand-in), almost all of it text encoder; a ControlNet is 1.5 MB.

Each builder writes the real repo's layout: the published model_index.json and scheduler
config (sorted keys, 2-space indent, the published byte size where it is known), tokenizer
files, and per model config.json plus the weight files the real repo has, safetensors only
(a `.bin` twin is left out), in the real variants and dtypes. Stand-ins for different real
weights of one architecture (SD 1.5, epiCRealism, InstructPix2Pix; the three ControlNets) use
different seeds. A real ControlNet is trained from zero output convolutions; built as diffusers
builds one, it would add exactly nothing, and a control image that never reached the UNet would
go unnoticed. Here those convolutions are random and large enough that two control images
visibly change a 2-step 64 x 64 generation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel

from .tokenizers_clip import EOS, write_clip_tokenizer
from .unet_family import (
    CLIP_PREPROCESSOR,
    DIFFUSERS_WEIGHTS,
    HIDDEN,
    MOTION_ADAPTER_CONFIG,
    SD15_PREPROCESSOR,
    TRANSFORMERS_WEIGHTS,
    _save_model,
    _seeded,
    _text_encoder,
    _vae,
    _vision_config,
    _write_json,
)

SD15_TEXT_WIDTH = 768  # CLIP ViT-L/14's text width: SD 1.5's cross-attention width
SD2_TEXT_WIDTH = 1024  # OpenCLIP ViT-H/14's: SD 2.x's
SD2_TEXT_PROJECTION = 512

# SD 1.5's UNet also has its EMA-free fine-tuning weights, as the `non_ema` variant.
SD15_UNET_WEIGHTS = {
    **DIFFUSERS_WEIGHTS,
    "diffusion_pytorch_model.non_ema.safetensors": torch.float32,
}
# epiCRealism and InstructPix2Pix have only full-precision files, under no variant name.
PLAIN_DIFFUSERS_WEIGHTS = {"diffusion_pytorch_model.safetensors": torch.float32}
PLAIN_TRANSFORMERS_WEIGHTS = {"model.safetensors": torch.float32}


# --- real repo files (model_index.json, scheduler_config.json), as published ------------------

_SD_COMPONENTS = {
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
SD15_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.6.0",
    **_SD_COMPONENTS,
}
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
# emilianJR/epiCRealism: a diffusers 0.17.1 conversion (June 2023). The scheduler file is the
# published one (528 bytes). model_index.json (579 bytes) and the preprocessor config (520 bytes)
# were not readable; these are the ones that conversion writes, and they come out at exactly
# those sizes: both name the feature extractor `CLIPFeatureExtractor`, a class transformers 5
# no longer has (diffusers maps it to `CLIPImageProcessor` when loading).
EPICREALISM_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.17.1",
    **_SD_COMPONENTS,
    "feature_extractor": ["transformers", "CLIPFeatureExtractor"],
    "requires_safety_checker": True,
}
EPICREALISM_SCHEDULER = {
    **SD15_SCHEDULER,
    "_diffusers_version": "0.17.1",
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "thresholding": False,
    "timestep_spacing": "leading",
}
EPICREALISM_PREPROCESSOR = {**CLIP_PREPROCESSOR, "image_processor_type": "CLIPFeatureExtractor"}
# timbrooks/instruct-pix2pix (616 and 569 bytes). The scheduler file carries DPM-Solver keys
# that EulerAncestralDiscreteScheduler ignores.
IP2P_INDEX = {
    "_class_name": "StableDiffusionInstructPix2PixPipeline",
    "_diffusers_version": "0.12.0.dev0",
    **_SD_COMPONENTS,
    "requires_safety_checker": False,
    "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
}
IP2P_SCHEDULER = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.12.0.dev0",
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "dynamic_thresholding_ratio": 0.995,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "solver_order": 2,
    "solver_type": "midpoint",
    "steps_offset": 1,
    "thresholding": False,
    "trained_betas": None,
}
# stabilityai/stable-diffusion-2-1 (537 and 345 bytes): no safety checker, DDIM predicting v.
SD21_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.8.0",
    **_SD_COMPONENTS,
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
}
SD21_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# The SD 1.5 UNet's shape, shrunk to the motion adapter's widths and layers (8 norm groups to
# fit them); the ControlNets copy its encoder half.
_SD15_UNET_SHAPE: dict[str, Any] = {
    "block_out_channels": tuple(MOTION_ADAPTER_CONFIG["block_out_channels"]),
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "layers_per_block": MOTION_ADAPTER_CONFIG["motion_layers_per_block"],
    "norm_num_groups": MOTION_ADAPTER_CONFIG["motion_norm_num_groups"],
    "cross_attention_dim": SD15_TEXT_WIDTH,
    "attention_head_dim": 8,
}
# The ControlNet v1.1 conditioning encoder's four levels (16, 32, 96, 256 in the real ones), so
# it still brings a control image down to 1/8, the latent size.
_CONDITIONING_CHANNELS = (8, 8, 16, 16)
# Standard deviation of the random weights given to a ControlNet's zero convolutions.
_CONTROL_OUTPUT_STD = 0.5


# --- tiny components -------------------------------------------------------------------------


def _unet(seed: int, **shape: Any) -> UNet2DConditionModel:
    shape = {
        "sample_size": 64,
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        **_SD15_UNET_SHAPE,
        **shape,
    }
    with _seeded(seed):
        return UNet2DConditionModel(**shape)


def _safety_checker(seed: int) -> StableDiffusionSafetyChecker:
    """SD's NSFW checker with 32-wide CLIP towers (the real one is CLIP ViT-L/14)."""
    text_config = CLIPTextConfig(
        hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(),
        vision_config=_vision_config().to_dict(),
        projection_dim=HIDDEN,
    )
    with _seeded(seed):
        return StableDiffusionSafetyChecker(config)


def _write_sd_repo(
    out: Path,
    *,
    index: dict[str, Any],
    scheduler: dict[str, Any],
    preprocessor: dict[str, Any],
    text_encoder: Callable[[Any], CLIPTextModel],
    unet: UNet2DConditionModel,
    seed: int,
    unet_weights: dict[str, torch.dtype],
    weights: tuple[dict[str, torch.dtype], dict[str, torch.dtype]],
    pad_token: str = EOS,
) -> None:
    """A Stable Diffusion repo; `weights` names the diffusers and the transformers files."""
    diffusers_weights, transformers_weights = weights
    _write_json(out / "model_index.json", index)
    _write_json(out / "scheduler" / "scheduler_config.json", scheduler)
    _write_json(out / "feature_extractor" / "preprocessor_config.json", preprocessor)
    tokenizer = write_clip_tokenizer(out / "tokenizer", pad_token)
    _save_model(text_encoder(tokenizer), out / "text_encoder", transformers_weights)
    _save_model(unet, out / "unet", unet_weights)
    _save_model(_vae(seed), out / "vae", diffusers_weights)
    if index["safety_checker"][0] is not None:
        _save_model(_safety_checker(seed), out / "safety_checker", transformers_weights)


def _sd15_text_encoder(seed: int) -> Callable[[Any], CLIPTextModel]:
    """CLIP ViT-L/14's text encoder shape, 768 wide (quick-GELU), shrunk to 2 layers."""
    return lambda tokenizer: _text_encoder(
        tokenizer, "quick_gelu", hidden=SD15_TEXT_WIDTH, seed=seed
    )


def _controlnet(seed: int) -> ControlNetModel:
    """A ControlNet v1.1 over the tiny SD 1.5 UNet that a control image visibly steers.

    Untrained, a ControlNet adds nothing: its output convolutions are zero. Here they are
    random, and the conditioning encoder (whose default initialisation shrinks a control image
    to almost nothing after seven convolutions) is He-initialised without biases and scaled so
    that a half-white control image comes out with unit standard deviation, which is about
    the size of what it is added to (the latents after the first convolution).
    """
    with _seeded(seed):
        controlnet = ControlNetModel(
            conditioning_embedding_out_channels=_CONDITIONING_CHANNELS, **_SD15_UNET_SHAPE
        )
        embedding = controlnet.controlnet_cond_embedding
        with torch.no_grad():
            for conv in (embedding.conv_in, *embedding.blocks, embedding.conv_out):
                torch.nn.init.kaiming_normal_(conv.weight)
                conv.bias.zero_()
            probe = torch.zeros(1, 3, 64, 64)
            probe[..., : probe.shape[-1] // 2] = 1.0
            embedding.conv_out.weight /= embedding(probe).std()
            for conv in (*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block):
                conv.weight.normal_(0.0, _CONTROL_OUTPUT_STD)
                conv.bias.normal_(0.0, _CONTROL_OUTPUT_STD)
    return controlnet


# --- one builder per real repo ---------------------------------------------------------------


def build_sd15(out: Path) -> None:
    """stable-diffusion-v1-5/stable-diffusion-v1-5, the base of AnimateDiff and Text2Video-Zero.

    fp32 and fp16-variant files side by side (and the UNet's `non_ema` variant); the safety
    checker and its feature extractor come along.
    """
    _write_sd_repo(
        out,
        index=SD15_INDEX,
        scheduler=SD15_SCHEDULER,
        preprocessor=SD15_PREPROCESSOR,
        text_encoder=_sd15_text_encoder(0),
        unet=_unet(0),
        seed=0,
        unet_weights=SD15_UNET_WEIGHTS,
        weights=(DIFFUSERS_WEIGHTS, TRANSFORMERS_WEIGHTS),
    )


def build_epicrealism(out: Path) -> None:
    """emilianJR/epiCRealism, a community SD 1.5 fine-tune: SD 1.5's shape, other weights.

    Its safety checker and feature extractor are in the repo too. Weights are fp32 only, with
    no variant (the safetensors files of its "Adding `safetensors` variant" PR).
    """
    _write_sd_repo(
        out,
        index=EPICREALISM_INDEX,
        scheduler=EPICREALISM_SCHEDULER,
        preprocessor=EPICREALISM_PREPROCESSOR,
        text_encoder=_sd15_text_encoder(1),
        unet=_unet(1),
        seed=1,
        unet_weights=PLAIN_DIFFUSERS_WEIGHTS,
        weights=(PLAIN_DIFFUSERS_WEIGHTS, PLAIN_TRANSFORMERS_WEIGHTS),
    )


def build_instruct_pix2pix(out: Path) -> None:
    """timbrooks/instruct-pix2pix: SD 1.5 with a UNet taking the image latents too (8 channels).

    fp32 files with no variant on `main` (its fp16 weights live on a separate `fp16` branch).
    """
    _write_sd_repo(
        out,
        index=IP2P_INDEX,
        scheduler=IP2P_SCHEDULER,
        preprocessor=CLIP_PREPROCESSOR,
        text_encoder=_sd15_text_encoder(2),
        unet=_unet(2, in_channels=8),
        seed=2,
        unet_weights=PLAIN_DIFFUSERS_WEIGHTS,
        weights=(PLAIN_DIFFUSERS_WEIGHTS, PLAIN_TRANSFORMERS_WEIGHTS),
    )


def build_sd21(out: Path) -> None:
    """stabilityai/stable-diffusion-2-1: not SD 1.5-shaped (1024-wide cross-attention, v-pred).

    OpenCLIP ViT-H text encoder shape (GELU, 512-wide projection, `!` padding), a UNet with
    linear projections and upcast attention as the real one; fp32 and fp16-variant files.
    """
    _write_sd_repo(
        out,
        index=SD21_INDEX,
        scheduler=SD21_SCHEDULER,
        preprocessor=SD15_PREPROCESSOR,
        text_encoder=lambda tokenizer: _text_encoder(
            tokenizer,
            "gelu",
            hidden=SD2_TEXT_WIDTH,
            projection_dim=SD2_TEXT_PROJECTION,
            seed=3,
        ),
        unet=_unet(
            3,
            cross_attention_dim=SD2_TEXT_WIDTH,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            upcast_attention=True,
            sample_size=96,
        ),
        seed=3,
        unet_weights=DIFFUSERS_WEIGHTS,
        weights=(DIFFUSERS_WEIGHTS, TRANSFORMERS_WEIGHTS),
        pad_token="!",
    )


def _controlnet_builder(seed: int) -> Callable[[Path], None]:
    """A ControlNet v1.1 repo: config.json, fp32 and fp16-variant safetensors at the top."""

    def build(out: Path) -> None:
        _save_model(_controlnet(seed), out, DIFFUSERS_WEIGHTS)

    return build


CONTROLNET_REPOS = {
    "pose": "lllyasviel/control_v11p_sd15_openpose",
    "canny": "lllyasviel/control_v11p_sd15_canny",
    "depth": "lllyasviel/control_v11f1p_sd15_depth",
}

BUILDERS: dict[str, Callable[[Path], None]] = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": build_sd15,
    "emilianJR/epiCRealism": build_epicrealism,
    "timbrooks/instruct-pix2pix": build_instruct_pix2pix,
    "stabilityai/stable-diffusion-2-1": build_sd21,
    **{repo: _controlnet_builder(10 + i) for i, repo in enumerate(CONTROLNET_REPOS.values())},
}
