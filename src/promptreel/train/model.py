"""The model: a tiny text-to-video diffusion model in diffusers' TextToVideoSDPipeline layout.

    tokenizer     CLIPTokenizer, byte-level BPE whose vocabulary is generated from the captions
    text_encoder  CLIPTextModel, a few layers; its last hidden states condition the UNet
    vae           AutoencoderKL, applied frame by frame (as the pipeline decodes)
    unet          UNet3DConditionModel: 2D convolutions and attention per frame, plus temporal
                  convolutions and attention across frames
    scheduler     DPM-Solver++ (or DDIM) over the training noise schedule

`save_pipeline` writes the folder that plain `DiffusionPipeline.from_pretrained` loads: the
model_index.json naming TextToVideoSDPipeline, one subfolder per component, safetensors only.
`save_model` writes one diffusers model alone (the VAE that the trainer's VAE stage hands on).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    UNet3DConditionModel,
)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .config import TrainConfig

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
NORM_GROUPS = 8
NUM_TRAIN_TIMESTEPS = 1000

# CLIP's pre-tokenizer: words are runs of letters; digits and punctuation stand alone.
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


# ---------------------------------------------------------------------------------------------
# 1. Tokenizer: every caption word one token, every other text bytes


def _byte_symbols() -> dict[int, str]:
    """CLIP's (GPT-2's) byte -> printable unicode symbol, in vocabulary order (`!` first)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    unprintable = [b for b in range(256) if b not in printable]
    return {
        **{b: chr(b) for b in printable},
        **{b: chr(256 + n) for n, b in enumerate(unprintable)},
    }


def caption_words(captions: Iterable[str]) -> list[str]:
    """The distinct lower-case words of `captions`, sorted (so the vocabulary is reproducible)."""
    return sorted({w for c in captions for w in _WORD.findall(c.lower()) if w.isascii()})


def _bpe(word: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding as CLIP does it: merge the lowest-ranked adjacent pair until none."""
    while len(word) > 1:
        pairs = [(ranks.get(p, len(ranks) + 1), i) for i, p in enumerate(itertools.pairwise(word))]
        rank, i = min(pairs)
        if rank > len(ranks):
            break
        first, second = word[i], word[i + 1]
        merged: list[str] = []
        j = 0
        while j < len(word):
            if j < len(word) - 1 and word[j] == first and word[j + 1] == second:
                merged.append(first + second)
                j += 2
            else:
                merged.append(word[j])
                j += 1
        word = merged
    return word


def write_tokenizer(folder: Path, words: Iterable[str], *, max_length: int) -> CLIPTokenizer:
    """Write a CLIP tokenizer to `folder` in which each of `words` is one token; load it back.

    The vocabulary is CLIP's byte-level one cut down: the 256 byte symbols, the same with the
    end-of-word marker, one merge chain per word, then <|startoftext|> and <|endoftext|>. A word
    outside `words` falls back to shorter pieces, down to single bytes, so any text tokenizes.
    Each word's chain is appended after the merges before it, and only joins the pieces those
    leave, so a later word never breaks an earlier one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    byte_symbol = _byte_symbols()
    symbols = list(byte_symbol.values())
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        spelled = [byte_symbol[b] for b in word.encode("utf-8")]
        pieces = _bpe([*spelled[:-1], spelled[-1] + "</w>"], ranks)
        joined = pieces[0]
        for piece in pieces[1:]:
            ranks.setdefault((joined, piece), len(ranks))
            joined += piece
    merges = list(ranks)
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(a + b for a, b in merges), BOS, EOS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    tokenizer_config = {
        **special,
        "add_prefix_space": False,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": max_length,
        "tokenizer_class": "CLIPTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    return CLIPTokenizer.from_pretrained(folder)


def tokenize(tokenizer: CLIPTokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids exactly as TextToVideoSDPipeline.encode_prompt makes them (padded, truncated)."""
    return tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


# ---------------------------------------------------------------------------------------------
# 2. Networks


def build_text_encoder(config: TrainConfig, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.text_width,
            intermediate_size=4 * config.text_width,
            num_hidden_layers=config.text_layers,
            num_attention_heads=config.text_heads,
            max_position_embeddings=config.text_max_length,
            projection_dim=config.text_width,
            hidden_act="gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def build_vae(config: TrainConfig) -> AutoencoderKL:
    levels = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(config.vae_channels),
        layers_per_block=config.vae_layers,
        latent_channels=config.latent_channels,
        norm_num_groups=NORM_GROUPS,
        sample_size=64,
    )


def build_unet(config: TrainConfig, *, latent_size: int) -> UNet3DConditionModel:
    """Cross-attention at every level but the deepest (whose mid block has it anyway)."""
    levels = len(config.unet_channels)
    down = ("CrossAttnDownBlock3D",) * (levels - 1) + ("DownBlock3D",)
    up = ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * (levels - 1)
    if levels == 1:
        down, up = ("CrossAttnDownBlock3D",), ("CrossAttnUpBlock3D",)
    return UNet3DConditionModel(
        sample_size=latent_size,
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(config.unet_channels),
        layers_per_block=config.unet_layers,
        norm_num_groups=NORM_GROUPS,
        cross_attention_dim=config.text_width,
        attention_head_dim=config.unet_heads,
    )


# ---------------------------------------------------------------------------------------------
# 3. Noise schedule and sampler


def noise_scheduler(config: TrainConfig) -> DDPMScheduler:
    """The forward process q(x_t | x_0) of training (Ho et al. 2020, eq. 4)."""
    return DDPMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        clip_sample=False,
    )


def sampler(config: TrainConfig) -> DDIMScheduler | DPMSolverMultistepScheduler:
    """The scheduler saved with the model: the training schedule, sampled in few steps.

    Both use "trailing" timesteps, so the first step starts from pure noise (t = 999), which
    matters at 10-20 steps (Lin et al. 2024, "Common diffusion noise schedules ... are flawed").
    """
    common = {
        "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
        "beta_schedule": config.beta_schedule,
        "prediction_type": config.prediction_type,
        "timestep_spacing": "trailing",
    }
    if config.sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    return DPMSolverMultistepScheduler(
        **common, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero"
    )


# ---------------------------------------------------------------------------------------------
# 4. The pipeline folder

WEIGHTS = "diffusion_pytorch_model.safetensors"  # a diffusers model's weights file
MODEL_INDEX = {
    "_class_name": "TextToVideoSDPipeline",
    "scheduler": ["diffusers", None],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet3DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def _save_weights(model: torch.nn.Module, folder: Path, name: str, dtype: torch.dtype) -> None:
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / name), metadata={"format": "pt"})
    (folder / name).chmod(0o644)  # safetensors writes 0600: an installed model must be readable


def save_model(
    model: UNet3DConditionModel | AutoencoderKL,
    folder: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write one diffusers model as `from_pretrained` reads it: config.json and its weights in
    safetensors, float32 (or `dtype`: float16 halves the size and rounds every weight)."""
    folder = Path(folder)
    model.save_config(folder)
    _save_weights(model, folder, WEIGHTS, dtype)
    return folder


def save_pipeline(
    folder: str | Path,
    *,
    tokenizer_folder: Path,
    text_encoder: CLIPTextModel,
    vae: AutoencoderKL,
    unet: UNet3DConditionModel,
    scheduler: DDIMScheduler | DPMSolverMultistepScheduler,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a TextToVideoSDPipeline folder (safetensors, float32 or `dtype`) from trained
    components.

    Written the way diffusers' `save_pretrained` would, but without pickles or optional files:
    model_index.json, scheduler/, tokenizer/ (copied from `tokenizer_folder`), text_encoder/,
    unet/ and vae/. The caller makes it atomic (write aside, rename).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import diffusers

    index: dict[str, Any] = {**MODEL_INDEX, "_diffusers_version": diffusers.__version__}
    index["scheduler"] = ["diffusers", type(scheduler).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    scheduler.save_config(folder / "scheduler")
    (folder / "tokenizer").mkdir(exist_ok=True)
    for file in sorted(tokenizer_folder.iterdir()):
        (folder / "tokenizer" / file.name).write_bytes(file.read_bytes())
    (folder / "text_encoder").mkdir(exist_ok=True)
    text_encoder.config.architectures = [type(text_encoder).__name__]
    text_encoder.config.save_pretrained(folder / "text_encoder")
    _save_weights(text_encoder, folder / "text_encoder", "model.safetensors", dtype)
    for name, model in (("unet", unet), ("vae", vae)):
        save_model(model, folder / name, dtype=dtype)
    return folder


def folder_size(folder: Path) -> int:
    """Bytes of every file under `folder`."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
