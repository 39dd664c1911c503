"""Tiny random-weight copies of the transformer-based text-to-video repos promptreel supports.

Each builder writes a folder laid out like the real Hugging Face repo (model_index.json, the same
subfolders, config class names, scheduler config and tokenizer files), with safetensors weights
and no variant suffix, as the real repos have. The models keep the real VAE compression ratios,
patch sizes, latent channels and text lengths, so the size and frame rules promptreel enforces for
the real models hold for these; only widths and depths shrink, to a few MB per repo.

Weights are stored in float32 (the real repos ship fp16/bf16/fp32 mixes) and are seeded, so two
builds give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXTransformer3DModel,
    LTXVideoTransformer3DModel,
    WanTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

from .tokenizers_t5 import write_t5_tokenizer, write_umt5_tokenizer

_TEXT_DIM = 32  # d_model of the tiny T5 / UMT5 encoders (4096 in the real ones)


def _write_json(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _model_index(
    out: Path, pipeline: str, version: str, components: dict[str, tuple[str, str]]
) -> None:
    """Write model_index.json as the real repo has it (diffusers version included)."""
    index: dict[str, object] = {"_class_name": pipeline, "_diffusers_version": version}
    index |= {name: list(lib_cls) for name, lib_cls in sorted(components.items())}
    _write_json(out / "model_index.json", index)


def _save(model: torch.nn.Module, folder: Path) -> None:
    """Weights as safetensors only, under the file names the real repo uses."""
    model.save_pretrained(folder, safe_serialization=True)


def _text_encoder_kwargs(vocab_size: int) -> dict[str, object]:
    """The t5-v1_1-xxl / umt5-xxl encoder shape, shrunk: gated-GELU, untied embeddings."""
    return {
        "vocab_size": vocab_size,
        "d_model": _TEXT_DIM,
        "d_kv": 8,
        "d_ff": 64,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu",
        "layer_norm_epsilon": 1e-6,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }


def _t5_text_encoder(out: Path) -> None:
    """tokenizer/ (slow-layout T5Tokenizer files) and text_encoder/ (T5EncoderModel)."""
    vocab_size = write_t5_tokenizer(out / "tokenizer")
    torch.manual_seed(0)
    config = T5Config(**_text_encoder_kwargs(vocab_size), architectures=["T5EncoderModel"])
    _save(T5EncoderModel(config), out / "text_encoder")


# --- CogVideoX -------------------------------------------------------------------------------
# The CogVideoX 1.0 VAE decodes latent frames two at a time and doubles an even chunk in time
# where it keeps the first frame of an odd one, so the video has exactly num_frames frames only
# for num_frames = 8k + 1 (5 gives 8, 13 gives 16): a property of the real VAE kept here.

_COGVIDEOX_INDEX = {
    "scheduler": ("diffusers", "CogVideoXDDIMScheduler"),
    "text_encoder": ("transformers", "T5EncoderModel"),
    "tokenizer": ("transformers", "T5Tokenizer"),
    "transformer": ("diffusers", "CogVideoXTransformer3DModel"),
    "vae": ("diffusers", "AutoencoderKLCogVideoX"),
}


def _cogvideox_scheduler(out: Path, version: str, snr_shift_scale: float) -> None:
    """CogVideoXDDIMScheduler, v-prediction, zero-SNR, trailing (2b: shift 3.0, 5b: 1.0)."""
    _write_json(
        out / "scheduler" / "scheduler_config.json",
        {
            "_class_name": "CogVideoXDDIMScheduler",
            "_diffusers_version": version,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "clip_sample": False,
            "clip_sample_range": 1.0,
            "num_train_timesteps": 1000,
            "prediction_type": "v_prediction",
            "rescale_betas_zero_snr": True,
            "sample_max_value": 1.0,
            "set_alpha_to_one": True,
            "snr_shift_scale": snr_shift_scale,
            "steps_offset": 0,
            "timestep_spacing": "trailing",
            "trained_betas": None,
        },
    )


def _build_cogvideox(
    out: Path,
    *,
    pipeline: str,
    version: str,
    snr_shift_scale: float,
    vae_scaling_factor: float,
    rotary: bool,
    image_to_video: bool = False,
) -> None:
    """One CogVideoX 1.0 repo: the three share the T5 encoder, VAE layout and scheduler class."""
    _model_index(out, pipeline, version, _COGVIDEOX_INDEX)
    _cogvideox_scheduler(out, version, snr_shift_scale)
    _t5_text_encoder(out)
    latent_channels = 16
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,  # rotary splits it 4/6/6 over t/h/w: must stay a multiple of 16
        # the image-to-video model takes the image latents concatenated on channels
        in_channels=latent_channels * (2 if image_to_video else 1),
        out_channels=latent_channels,
        time_embed_dim=16,
        text_embed_dim=_TEXT_DIM,
        num_layers=2,
        # the real latent sample size: the pipelines' default 480x720, 49 frames
        sample_width=90,
        sample_height=60,
        sample_frames=49,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
        use_rotary_positional_embeddings=rotary,
        # the real 5b-I2V learns its positional embeddings, which pins it to 480x720 (and any
        # frame count but 49 makes diffusers swap the learned table for a sin-cos one)
        use_learned_positional_embeddings=image_to_video,
    )
    if image_to_video:  # the learned table starts as a float64 sin-cos table: store float32
        embed = transformer.patch_embed
        embed.register_buffer("pos_embedding", embed.pos_embedding.float())
    _save(transformer, out / "transformer")
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8),  # four blocks: 8x spatial, 4x temporal, as the real VAE
        latent_channels=latent_channels,
        layers_per_block=0,  # 480x720 is the only size the I2V model takes: keep it cheap
        norm_num_groups=2,
        temporal_compression_ratio=4,
        sample_height=480,
        sample_width=720,
        scaling_factor=vae_scaling_factor,
    )
    _save(vae, out / "vae")


def build_cogvideox_2b(out: Path) -> None:
    """THUDM/CogVideoX-2b: sin-cos positional embeddings, any multiple-of-16 size."""
    _build_cogvideox(
        out,
        pipeline="CogVideoXPipeline",
        version="0.30.0.dev0",
        snr_shift_scale=3.0,
        vae_scaling_factor=1.15258426,
        rotary=False,
    )


def build_cogvideox_5b(out: Path) -> None:
    """THUDM/CogVideoX-5b: rotary positional embeddings, any multiple-of-16 size."""
    _build_cogvideox(
        out,
        pipeline="CogVideoXPipeline",
        version="0.30.0.dev0",
        snr_shift_scale=1.0,
        vae_scaling_factor=0.7,
        rotary=True,
    )


def build_cogvideox_5b_i2v(out: Path) -> None:
    """THUDM/CogVideoX-5b-I2V: image-to-video; learned positional embeddings, 480x720 only."""
    _build_cogvideox(
        out,
        pipeline="CogVideoXImageToVideoPipeline",
        version="0.31.0.dev0",
        snr_shift_scale=1.0,
        vae_scaling_factor=0.7,
        rotary=True,
        image_to_video=True,
    )


# --- LTX-Video -------------------------------------------------------------------------------


def build_ltx_video(out: Path) -> None:
    """Lightricks/LTX-Video (0.9.0 diffusers weights): one repo for LTXPipeline and
    LTXImageToVideoPipeline; 32x spatial and 8x temporal VAE, patch size 1."""
    _model_index(
        out,
        "LTXPipeline",
        "0.32.0.dev0",
        {
            "scheduler": ("diffusers", "FlowMatchEulerDiscreteScheduler"),
            "text_encoder": ("transformers", "T5EncoderModel"),
            "tokenizer": ("transformers", "T5Tokenizer"),
            "transformer": ("diffusers", "LTXVideoTransformer3DModel"),
            "vae": ("diffusers", "AutoencoderKLLTXVideo"),
        },
    )
    _write_json(
        out / "scheduler" / "scheduler_config.json",
        {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "_diffusers_version": "0.32.0.dev0",
            "base_image_seq_len": 1024,
            "base_shift": 0.95,
            "invert_sigmas": False,
            "max_image_seq_len": 4096,
            "max_shift": 2.05,
            "num_train_timesteps": 1000,
            "shift": 1.0,
            "shift_terminal": 0.1,
            "use_beta_sigmas": False,
            "use_dynamic_shifting": True,
            "use_exponential_sigmas": False,
            "use_karras_sigmas": False,
        },
    )
    _t5_text_encoder(out)
    latent_channels = 128
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,  # equals the inner dim (heads x head dim), as in the real model
        num_layers=2,
        caption_channels=_TEXT_DIM,
    )
    _save(transformer, out / "transformer")
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=latent_channels,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        # patch 4 x three 2x stages = 32x spatial; three 2x stages = 8x temporal
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        patch_size=4,
        patch_size_t=1,
        scaling_factor=1.0,
        encoder_causal=True,
        decoder_causal=False,
    )
    _save(vae, out / "vae")


# --- Wan 2.1 ---------------------------------------------------------------------------------
# WanPipeline turns num_frames into 4 * (num_frames // 4) + 1 with a warning (4 becomes 5, 6
# becomes 5); LTX floors to 8k + 1 without one.


def build_wan21_t2v_1_3b(out: Path) -> None:
    """Wan-AI/Wan2.1-T2V-1.3B-Diffusers: UMT5 text encoder, UniPC flow scheduler (shift 3.0)."""
    _model_index(
        out,
        "WanPipeline",
        "0.33.0.dev0",
        {
            "scheduler": ("diffusers", "UniPCMultistepScheduler"),
            "text_encoder": ("transformers", "UMT5EncoderModel"),
            "tokenizer": ("transformers", "T5TokenizerFast"),
            "transformer": ("diffusers", "WanTransformer3DModel"),
            "vae": ("diffusers", "AutoencoderKLWan"),
        },
    )
    _write_json(
        out / "scheduler" / "scheduler_config.json",
        {
            "_class_name": "UniPCMultistepScheduler",
            "_diffusers_version": "0.33.0.dev0",
            "beta_end": 0.02,
            "beta_schedule": "linear",
            "beta_start": 0.0001,
            "disable_corrector": [],
            "dynamic_thresholding_ratio": 0.995,
            "final_sigmas_type": "zero",
            "flow_shift": 3.0,
            "lower_order_final": True,
            "num_train_timesteps": 1000,
            "predict_x0": True,
            "prediction_type": "flow_prediction",
            "rescale_betas_zero_snr": False,
            "sample_max_value": 1.0,
            "solver_order": 2,
            "solver_p": None,
            "solver_type": "bh2",
            "steps_offset": 0,
            "thresholding": False,
            "timestep_spacing": "linspace",
            "trained_betas": None,
            "use_beta_sigmas": False,
            "use_exponential_sigmas": False,
            "use_flow_sigmas": True,
            "use_karras_sigmas": False,
        },
    )
    vocab_size = write_umt5_tokenizer(out / "tokenizer")
    torch.manual_seed(0)
    config = UMT5Config(
        **_text_encoder_kwargs(vocab_size),
        scalable_attention=True,
        tokenizer_class="T5Tokenizer",
        architectures=["UMT5EncoderModel"],
    )
    _save(UMT5EncoderModel(config), out / "text_encoder")
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,  # rotary splits it 4/4/4 over t/h/w: each part must be even
        in_channels=16,
        out_channels=16,
        text_dim=_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )
    _save(transformer, out / "transformer")
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],  # three 2x stages: 8x spatial, as scale_factor_spatial says
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 4x temporal, as scale_factor_temporal says
    )
    _save(vae, out / "vae")


BUILDERS: dict[str, Callable[[Path], None]] = {
    "THUDM/CogVideoX-2b": build_cogvideox_2b,
    "THUDM/CogVideoX-5b": build_cogvideox_5b,
    "THUDM/CogVideoX-5b-I2V": build_cogvideox_5b_i2v,
    "Lightricks/LTX-Video": build_ltx_video,
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": build_wan21_t2v_1_3b,
}
