"""Tiny random-weight stand-ins for the UNet-based video repos promptreel supports.

Tests must never download weights, yet promptreel's loading code should meet what a real download
leaves in the Hugging Face cache: the same folders, `model_index.json`, scheduler settings,
tokenizer files and weight file names (variant suffixes included, safetensors only). Each
`build_*` writes one such repo into a folder, with models small enough (1 to 4.7 MB a repo) that
a 2-step generation takes well under a second on a CPU; `BUILDERS` maps each real repo id to its
builder. Building is deterministic and leaves the caller's random state alone.

Shapes keep the real repos' rules where they matter to a request: every VAE has four levels (a
latent is 1/8 of the frame, as in the real ones), text encoders take 77 tokens, image encoders
224 x 224 pixels, SVD keeps its native frame count and AnimateDiff its 32-frame limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    I2VGenXLUNet,
    ModelMixin,
    MotionAdapter,
    UNet3DConditionModel,
    UNetSpatioTemporalConditionModel,
)
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    PreTrainedModel,
)

from .tokenizers_clip import write_clip_tokenizer

HIDDEN = 32  # text/image embedding width, and the UNets' cross-attention width

# Weight file name -> dtype stored in it. Real `fp16` variants hold half-precision tensors.
DIFFUSERS_WEIGHTS = {
    "diffusion_pytorch_model.safetensors": torch.float32,
    "diffusion_pytorch_model.fp16.safetensors": torch.float16,
}
TRANSFORMERS_WEIGHTS = {"model.safetensors": torch.float32, "model.fp16.safetensors": torch.float16}
# Zeroscope ships only non-variant `.bin` files holding fp16 tensors; we write the safetensors
# file diffusers looks for under that name, keeping the fp16 contents.
ZEROSCOPE_DIFFUSERS_WEIGHTS = {"diffusion_pytorch_model.safetensors": torch.float16}
ZEROSCOPE_TRANSFORMERS_WEIGHTS = {"model.safetensors": torch.float16}


# --- real repo files (model_index.json, scheduler_config.json), as published ------------------
# Written with sorted keys and a 2-space indent, each comes out byte-for-byte the size of the
# published file, where that size is known.

MS_T2V_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.15.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "thresholding": False,
    "trained_betas": None,
}
ZEROSCOPE_576W_SCHEDULER = {**MS_T2V_SCHEDULER, "_diffusers_version": "0.17.0.dev0"}
ZEROSCOPE_XL_SCHEDULER = {
    **MS_T2V_SCHEDULER,
    "_diffusers_version": "0.18.0.dev0",
    "rescale_betas_zero_snr": False,
    "timestep_spacing": "leading",
}
I2VGEN_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.26.1",
    "beta_end": 0.02,
    "beta_schedule": "squaredcos_cap_v2",
    "beta_start": 0.0001,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_spacing": "leading",
    "trained_betas": None,
}
SVD_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}

_T2V_COMPONENTS = {
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet3DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
MS_T2V_INDEX = {
    "_class_name": "TextToVideoSDPipeline",
    "_diffusers_version": "0.15.0.dev0",
    **_T2V_COMPONENTS,
}
ZEROSCOPE_576W_INDEX = {
    "_class_name": "TextToVideoSDPipeline",
    "_diffusers_version": "0.17.0.dev0",
    **_T2V_COMPONENTS,
}
ZEROSCOPE_XL_INDEX = {
    "_class_name": "VideoToVideoSDPipeline",
    "_diffusers_version": "0.18.0.dev0",
    **_T2V_COMPONENTS,
}
I2VGEN_INDEX = {
    "_class_name": "I2VGenXLPipeline",
    "_diffusers_version": "0.26.1",
    "_name_or_path": "i2vgen-xl",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "I2VGenXLUNet"],
    "vae": ["diffusers", "AutoencoderKL"],
}
SVD_INDEX = {
    "_class_name": "StableVideoDiffusionPipeline",
    "_diffusers_version": "0.24.0.dev0",
    "_name_or_path": "diffusers/svd-test",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}
SVD_XT_INDEX = {**SVD_INDEX, "_name_or_path": "diffusers/svd-xt"}

# The real adapter config (diffusers 0.22 keys, some no longer read), with tiny channel widths
# and, to fit them, 8 norm groups instead of 32.
MOTION_ADAPTER_CONFIG = {
    "_class_name": "MotionAdapter",
    "_diffusers_version": "0.22.0.dev0",
    "block_out_channels": [16, 32],
    "motion_activation_fn": "geglu",
    "motion_attention_bias": False,
    "motion_cross_attention_dim": None,
    "motion_layers_per_block": 2,
    "motion_max_seq_length": 32,
    "motion_mid_block_layers_per_block": 1,
    "motion_norm_num_groups": 8,
    "motion_num_attention_heads": 8,
    "use_motion_mid_block": True,
}

_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# SD 1.5's (and SD 2.1's) pre-`CLIPImageProcessor` file, and the newer one of the SVD
# conversions; both at the 224 x 224 input the safety checker and image encoders take.
SD15_PREPROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": _CLIP_MEAN,
    "image_std": _CLIP_STD,
    "resample": 3,
    "size": 224,
}
CLIP_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": _CLIP_MEAN,
    "image_processor_type": "CLIPImageProcessor",
    "image_std": _CLIP_STD,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


# --- writing ---------------------------------------------------------------------------------


@contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """Fix the seed for the weights built inside, leaving the caller's random state alone.

    Repos that stand in for different real weights of one architecture use different seeds.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` the way the Hub files are written (2-space indent, sorted keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _save_model(
    model: PreTrainedModel | ModelMixin, folder: Path, weights: dict[str, torch.dtype]
) -> None:
    """Write `model`'s config.json and one safetensors file per name, cast to its dtype."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, PreTrainedModel):
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(folder)
    else:
        model.save_config(folder)
    state = model.state_dict()
    for name, dtype in weights.items():
        tensors = {
            key: (value.to(dtype) if value.is_floating_point() else value).contiguous()
            for key, value in state.items()
        }
        save_file(tensors, str(folder / name), metadata={"format": "pt"})


# --- tiny components -------------------------------------------------------------------------


def _text_encoder(
    tokenizer: CLIPTokenizer,
    hidden_act: str,
    *,
    hidden: int = HIDDEN,
    projection_dim: int | None = None,
    seed: int = 0,
) -> CLIPTextModel:
    """A 2-layer CLIP text encoder over the tiny tokenizer's vocabulary, `hidden` wide."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=projection_dim or hidden,
        hidden_act=hidden_act,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(seed):
        return CLIPTextModel(config)


def _vision_config() -> CLIPVisionConfig:
    """A 2-layer ViT taking CLIP's real 224 x 224 input in 14-pixel patches."""
    return CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,
        patch_size=14,
        projection_dim=HIDDEN,
    )


def _image_encoder() -> CLIPVisionModelWithProjection:
    with _seeded():
        return CLIPVisionModelWithProjection(_vision_config())


def _vae(seed: int = 0) -> AutoencoderKL:
    """A four-level VAE, so latents are 1/8 of the frame like the real SD VAE."""
    with _seeded(seed):
        return AutoencoderKL(
            block_out_channels=(8, 16, 16, 16),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            norm_num_groups=8,
        )


def _unet3d() -> UNet3DConditionModel:
    with _seeded():
        return UNet3DConditionModel(
            sample_size=32,
            block_out_channels=(16, 32),
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            layers_per_block=1,
            norm_num_groups=8,
            cross_attention_dim=HIDDEN,
            attention_head_dim=4,
        )


def _write_text_to_video_repo(
    out: Path,
    index: dict[str, Any],
    scheduler: dict[str, Any],
    diffusers_weights: dict[str, torch.dtype],
    transformers_weights: dict[str, torch.dtype],
) -> None:
    """The ModelScope layout shared by ModelScope 1.7B and both Zeroscope v2 repos."""
    _write_json(out / "model_index.json", index)
    _write_json(out / "scheduler" / "scheduler_config.json", scheduler)
    tokenizer = write_clip_tokenizer(out / "tokenizer", pad_token="!")
    _save_model(_text_encoder(tokenizer, "gelu"), out / "text_encoder", transformers_weights)
    _save_model(_unet3d(), out / "unet", diffusers_weights)
    _save_model(_vae(), out / "vae", diffusers_weights)


# --- one builder per real repo ---------------------------------------------------------------


def build_modelscope_t2v(out: Path) -> None:
    """damo-vilab/text-to-video-ms-1.7b: fp16 variant and full-precision files side by side."""
    _write_text_to_video_repo(
        out, MS_T2V_INDEX, MS_T2V_SCHEDULER, DIFFUSERS_WEIGHTS, TRANSFORMERS_WEIGHTS
    )


def build_zeroscope_576w(out: Path) -> None:
    """cerspense/zeroscope_v2_576w: ModelScope's layout, no variant, fp16 weights."""
    _write_text_to_video_repo(
        out,
        ZEROSCOPE_576W_INDEX,
        ZEROSCOPE_576W_SCHEDULER,
        ZEROSCOPE_DIFFUSERS_WEIGHTS,
        ZEROSCOPE_TRANSFORMERS_WEIGHTS,
    )


def build_zeroscope_xl(out: Path) -> None:
    """cerspense/zeroscope_v2_XL: as 576w, but indexed as a VideoToVideoSDPipeline."""
    _write_text_to_video_repo(
        out,
        ZEROSCOPE_XL_INDEX,
        ZEROSCOPE_XL_SCHEDULER,
        ZEROSCOPE_DIFFUSERS_WEIGHTS,
        ZEROSCOPE_TRANSFORMERS_WEIGHTS,
    )


def build_animatediff_adapter(out: Path) -> None:
    """guoyww/animatediff-motion-adapter-v1-5-2, fitted to the SD 1.5-shaped UNets.

    Those (`sd15_family`) take its channel widths and layers, as the real adapter fits every
    real SD 1.5 UNet.

    Both real files are the same size (1.82 GB): the `fp16` variant holds float32 tensors too.
    """
    _write_json(out / "config.json", MOTION_ADAPTER_CONFIG)
    with _seeded():
        adapter = MotionAdapter.from_config(MOTION_ADAPTER_CONFIG)
    state = {key: value.contiguous() for key, value in adapter.state_dict().items()}
    for name in DIFFUSERS_WEIGHTS:
        save_file(state, str(out / name), metadata={"format": "pt"})


def build_i2vgen_xl(out: Path) -> None:
    """ali-vilab/i2vgen-xl: fp16 variant and full-precision files side by side."""
    _write_json(out / "model_index.json", I2VGEN_INDEX)
    _write_json(out / "scheduler" / "scheduler_config.json", I2VGEN_SCHEDULER)
    _write_json(out / "feature_extractor" / "preprocessor_config.json", CLIP_PREPROCESSOR)
    tokenizer = write_clip_tokenizer(out / "tokenizer", pad_token="!")
    _save_model(_text_encoder(tokenizer, "gelu"), out / "text_encoder", TRANSFORMERS_WEIGHTS)
    _save_model(_image_encoder(), out / "image_encoder", TRANSFORMERS_WEIGHTS)
    with _seeded():
        unet = I2VGenXLUNet(
            sample_size=32,
            block_out_channels=(16, 32),
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            layers_per_block=1,
            norm_num_groups=8,
            cross_attention_dim=HIDDEN,
            attention_head_dim=4,
        )
    _save_model(unet, out / "unet", DIFFUSERS_WEIGHTS)
    _save_model(_vae(), out / "vae", DIFFUSERS_WEIGHTS)


def _write_svd_repo(out: Path, index: dict[str, Any], num_frames: int) -> None:
    """Stable Video Diffusion's layout; `num_frames` is the UNet's native (default) length."""
    _write_json(out / "model_index.json", index)
    _write_json(out / "scheduler" / "scheduler_config.json", SVD_SCHEDULER)
    _write_json(out / "feature_extractor" / "preprocessor_config.json", CLIP_PREPROCESSOR)
    _save_model(_image_encoder(), out / "image_encoder", TRANSFORMERS_WEIGHTS)
    # SVD's resnets and temporal decoder fix their group norms at 32 groups, so 32 channels is
    # the floor; one UNet level (image conditioning through the mid block) keeps it small.
    with _seeded():
        unet = UNetSpatioTemporalConditionModel(
            sample_size=96,
            block_out_channels=(32,),
            down_block_types=("DownBlockSpatioTemporal",),
            up_block_types=("UpBlockSpatioTemporal",),
            layers_per_block=1,
            cross_attention_dim=HIDDEN,
            num_attention_heads=2,
            addition_time_embed_dim=16,
            projection_class_embeddings_input_dim=3 * 16,
            num_frames=num_frames,
        )
        vae = AutoencoderKLTemporalDecoder(
            block_out_channels=(32, 32, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            latent_channels=4,
        )
    _save_model(unet, out / "unet", DIFFUSERS_WEIGHTS)
    _save_model(vae, out / "vae", DIFFUSERS_WEIGHTS)


def build_svd(out: Path) -> None:
    """stabilityai/stable-video-diffusion-img2vid: 14 native frames."""
    _write_svd_repo(out, SVD_INDEX, num_frames=14)


def build_svd_xt(out: Path) -> None:
    """stabilityai/stable-video-diffusion-img2vid-xt: 25 native frames."""
    _write_svd_repo(out, SVD_XT_INDEX, num_frames=25)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "damo-vilab/text-to-video-ms-1.7b": build_modelscope_t2v,
    "cerspense/zeroscope_v2_576w": build_zeroscope_576w,
    "cerspense/zeroscope_v2_XL": build_zeroscope_xl,
    "guoyww/animatediff-motion-adapter-v1-5-2": build_animatediff_adapter,
    "ali-vilab/i2vgen-xl": build_i2vgen_xl,
    "stabilityai/stable-video-diffusion-img2vid": build_svd,
    "stabilityai/stable-video-diffusion-img2vid-xt": build_svd_xt,
}
