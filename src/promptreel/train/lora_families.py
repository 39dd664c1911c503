"""What fine-tuning needs to know of each model family: one `LoraFamily` a pipeline class.

    FAMILIES            the pipeline classes `promptreel finetune` can adapt, by name
    target_pattern()    the peft regex of the denoiser's layers that take adapters
    TEXT_TARGETS        the text encoder's layers that take adapters (`text_encoder = true`)

A family says which component is the denoiser (`unet` or `transformer`), which of its modules
mix frames (temporal), how a clip becomes latents and a caption the denoiser's text inputs (run
once, into the cache), the forward process the model was trained with, and its loss. Where the
text encoder can take a LoRA too (a CLIP text encoder, small enough to train), the family also
says how captions become token ids and ids become the text inputs: then the text inputs are
computed at every step, through the adapted encoder.

The text inputs are a dict of tensors, each with the batch first, passed to the denoiser as
keyword arguments (`encoder_hidden_states`, and for some families a mask): the run picks rows
of them (and of the empty caption's, for caption dropout) without knowing what they are.

The families, and what each one's LoRA is:

    TextToVideoSDPipeline   UNet3D (ModelScope, Zeroscope): spatial and temporal attention;
                            DDPM, epsilon or v
    AnimateDiffPipeline     a motion LoRA: the motion modules' attention only, the SD 1.5
                            base's look untouched; DDPM, epsilon
    CogVideoXPipeline       the transformer's joint attention (caption, frames and pixels in
                            one sequence); DDPM, v, through CogVideoX's SNR-shifted schedule
    LTXPipeline             self-attention over all frames and pixels, cross-attention to the
    WanPipeline             caption; flow matching

Everything a family computes follows the installed diffusers pipeline's `__call__`: the latents
are what it decodes (its scaling, normalisation and layout), the text inputs what it conditions
on (its own `encode_prompt`, at its default length), the denoiser's other inputs what it passes.
Where the pipeline's way is a private method (LTX's latent packing, CogVideoX's rotary
embeddings), it is written out here from diffusers' public parts, and tests compare the two.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ..errors import InvalidRequest
from .trainer import vae_input

Text = dict[str, torch.Tensor]  # the denoiser's text inputs, by keyword, batch first

# The attention projections of diffusers' attention blocks: the default adapted layers.
ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
# A CLIP text encoder's attention and MLP: to learn a new word, the encoder must map its pieces
# (a word it splits into characters) to something new, which its attention alone does less well.
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


class NoiseSchedule(Protocol):
    """(pipe, the clips' frames a second) -> what the loss needs of the forward process. Only
    LTX-Video's depends on the frame rate (it sets its RoPE time scale); unset, the pipeline's
    own default is used, as when generating without one."""

    def __call__(self, pipe: Any, *, fps: int | None = None) -> Any: ...


@dataclass(frozen=True)
class LoraFamily:
    """How one diffusers pipeline class is fine-tuned with a LoRA."""

    pipeline_class: str
    denoiser: str  # the component that takes the adapters: `unet` or `transformer`
    temporal: tuple[str, ...]  # module names whose layers mix frames (a dotted part of the name)
    spatial_layers: str  # which layers of each frame the adapters go on, in words (the card)
    temporal_layers: str  # which layers across frames (with `temporal`)
    encode_video: Callable[[Any, torch.Tensor], torch.Tensor]  # (pipe, uint8 F,H,W,3) -> latent
    encode_text: Callable[[Any, list[str]], Text]  # (pipe, captions) -> text inputs, frozen
    noise_schedule: NoiseSchedule  # (pipe, *, fps) -> the training schedule
    # (pipe, latents B..., text inputs, schedule, generator) -> the loss of a batch
    loss: Callable[[Any, torch.Tensor, Text, Any, torch.Generator], torch.Tensor]
    # where the text encoder can take a LoRA: (pipe, captions) -> ids, (pipe, ids) -> text inputs
    tokens: Callable[[Any, list[str]], torch.Tensor] | None = None
    text_from_tokens: Callable[[Any, torch.Tensor], Text] | None = None
    # a motion LoRA: adapters on the `temporal` modules only, every other layer as the base has
    # it (AnimateDiff's motion modules are trained apart from, and work with, any SD 1.5 base)
    temporal_only: bool = False


def device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _on(text: Text, device: torch.device) -> Text:
    return {key: value.to(device) for key, value in text.items()}


def _call_default(pipe: Any, name: str) -> Any:
    """A setting's default in the pipeline's `__call__`: what generation uses unless told
    (`encode_prompt`'s own default can differ: Wan's is 226 tokens, its `__call__`'s 512)."""
    return inspect.signature(type(pipe).__call__).parameters[name].default


# ---------------------------------------------------------------------------------------------
# The forward processes: DDPM (Ho et al. 2020) and flow matching (Lipman et al. 2023, Liu et
# al. 2023). Noise and noise levels are drawn on the CPU from `gen`, so a run is the same on
# any device and resumes exactly.


def _ddpm_schedule(pipe: Any, *, fps: int | None = None) -> Any:
    """The forward process the model was trained with, from its own scheduler's config."""
    from diffusers import DDPMScheduler

    schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    _check_prediction(schedule)
    return schedule


def _check_prediction(schedule: Any) -> None:
    if schedule.config.prediction_type not in ("epsilon", "v_prediction"):
        raise InvalidRequest(
            f"the model predicts {schedule.config.prediction_type!r}; fine-tuning knows "
            "epsilon and v_prediction",
            argument="model",
        )


def _ddpm_noised(
    x0: torch.Tensor, schedule: Any, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, target) at t uniform in [0, T) (Algorithm 1): the target is what the model
    predicts, the noise, or v (Salimans & Ho 2022)."""
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, schedule.config.num_train_timesteps, (x0.shape[0],), generator=gen)
    xt = schedule.add_noise(x0, noise, t)  # sqrt(abar) x0 + sqrt(1 - abar) eps
    v = schedule.config.prediction_type == "v_prediction"
    return xt, t, schedule.get_velocity(x0, noise, t) if v else noise


@dataclass(frozen=True)
class FlowMatching:
    """The forward process of LTX-Video and Wan: x_t = (1 - sigma) x0 + sigma noise, the model
    predicting the velocity noise - x0, at the timestep sigma * num_train_timesteps (their
    pipelines pass their schedulers' timesteps, which are the sigmas times that).

    Sigma is drawn uniform in [0, 1], the simplest choice and diffusers' training scripts'
    default (`weighting_scheme = "none"`); the original trainings drew it logit-normal or shifted
    it toward noise (the pipelines sample with shifted sigmas), which spends more steps on the
    middle and high noise levels. Uniform covers them all, a little less densely."""

    num_train_timesteps: int
    frame_rate: float | None = None  # LTX-Video: the clips' frames a second (its RoPE time scale)
    # Wan: its UniPC scheduler hands the transformer sigma * num_train_timesteps cut to a whole
    # number (LTX's flow-matching Euler hands it on as it is)
    whole_timesteps: bool = False


def _flow_noised(
    x0: torch.Tensor, schedule: FlowMatching, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, timestep, target) at sigma uniform in [0, 1]."""
    noise = torch.randn(x0.shape, generator=gen)
    sigma = torch.rand((x0.shape[0],), generator=gen)
    t = sigma * schedule.num_train_timesteps
    s = sigma.view(-1, *[1] * (x0.ndim - 1))
    return (1 - s) * x0 + s * noise, t.long() if schedule.whole_timesteps else t, noise - x0


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.float(), target.to(pred.device).float())


# ---------------------------------------------------------------------------------------------
# Stable Diffusion's parts: a 2D VAE frame by frame, a CLIP text encoder, DDPM


@torch.no_grad()
def _encode_frames_sd(pipe: Any, frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> (C, F, h, w): each frame through the 2D VAE, as the pipeline
    decodes them, its posterior's mean times the VAE's scaling factor."""
    x = vae_input(frames).to(device_of(pipe.vae))
    means = [pipe.vae.encode(x[i : i + 8]).latent_dist.mean for i in range(0, len(x), 8)]
    return (torch.cat(means) * pipe.vae.config.scaling_factor).permute(1, 0, 2, 3).cpu()


def frame_reconstruction_loss(
    pipe: Any, latents: torch.Tensor, frames: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """`_encode_frames_sd` undone, for a decoder that learns (`vae = true`): one random frame
    of each clip decoded from its cached latent (B, C, F, h, w), against the frame itself
    (uint8 B, F, H, W, 3): the mean squared error in [-1, 1]."""
    rows = torch.arange(len(frames))
    index = torch.randint(0, frames.shape[1], (len(frames),), generator=gen)
    device = device_of(pipe.vae)
    z = latents[rows, :, index].to(device) / pipe.vae.config.scaling_factor
    x = vae_input(frames[rows, index]).to(device)
    return F.mse_loss(pipe.vae.decode(z).sample.float(), x)


def _tokens_sd(pipe: Any, captions: list[str]) -> torch.Tensor:
    """Token ids as the pipeline's `encode_prompt` makes them: padded to the tokenizer's
    length, cut there."""
    tokenizer = pipe.tokenizer
    return tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def _text_from_tokens_sd(pipe: Any, ids: torch.Tensor) -> Text:
    """The text encoder's last states, as `encode_prompt` conditions on them (its attention
    mask only where the encoder's config asks for one)."""
    encoder = pipe.text_encoder
    device = device_of(encoder)
    mask = None
    if getattr(encoder.config, "use_attention_mask", False):
        mask = (ids != pipe.tokenizer.pad_token_id).long().to(device)
    return {"encoder_hidden_states": encoder(ids.to(device), attention_mask=mask)[0]}


@torch.no_grad()
def _encode_text_sd(pipe: Any, captions: list[str]) -> Text:
    states = [
        _text_from_tokens_sd(pipe, _tokens_sd(pipe, captions[i : i + 16]))
        for i in range(0, len(captions), 16)
    ]
    return {"encoder_hidden_states": torch.cat([s["encoder_hidden_states"] for s in states]).cpu()}


def _denoising_loss(
    pipe: Any, x0: torch.Tensor, text: Text, schedule: Any, gen: torch.Generator
) -> torch.Tensor:
    """The simple loss of Ho et al. 2020 (Algorithm 1) at t uniform in [0, T), predicting what
    the model predicts: the noise, or v (Salimans & Ho 2022). The UNet takes (B, C, F, h, w)."""
    xt, t, target = _ddpm_noised(x0, schedule, gen)
    device = device_of(pipe.unet)
    return _mse(pipe.unet(xt.to(device), t.to(device), **_on(text, device)).sample, target)


UNET3D = LoraFamily(
    pipeline_class="TextToVideoSDPipeline",
    denoiser="unet",
    # transformer_in: the temporal transformer at the UNet's input; temp_attentions: the
    # temporal transformer after each spatial one
    temporal=("transformer_in", "temp_attentions"),
    spatial_layers="self- and cross-attention of every spatial transformer (*.attentions.*:"
    " attn1, attn2)",
    temporal_layers="self-attention across frames of every temporal transformer"
    " (*.temp_attentions.*: attn1, attn2; transformer_in)",
    encode_video=_encode_frames_sd,
    encode_text=_encode_text_sd,
    noise_schedule=_ddpm_schedule,
    loss=_denoising_loss,
    tokens=_tokens_sd,
    text_from_tokens=_text_from_tokens_sd,
)


# ---------------------------------------------------------------------------------------------
# AnimateDiff: SD 1.5's parts around a UNetMotionModel, whose motion modules take the LoRA


def _motion_schedule(pipe: Any, *, fps: int | None = None) -> Any:
    """The forward process AnimateDiff's motion modules were trained with: SD's betas, spaced
    linearly (AnimateDiff's configs/training/v1/training.yaml), not the base's scaled-linear
    ones; the card's sampler spaces them so too. Without its motion adapter the pipeline makes
    motion modules of random weights: a LoRA on those would learn nothing the real ones use, so
    that is refused, not trained."""
    from diffusers import DDPMScheduler

    if pipe.motion_adapter is None:
        raise RuntimeError(
            "the AnimateDiff pipeline was loaded without its motion adapter (pass "
            "motion_adapter= to from_pretrained, as generation does)"
        )
    schedule = DDPMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear")
    _check_prediction(schedule)
    return schedule


def _motion_loss(
    pipe: Any, x0: torch.Tensor, text: Text, schedule: Any, gen: torch.Generator
) -> torch.Tensor:
    """The UNet3D's loss, the text inputs given once a frame, as AnimateDiffPipeline gives
    them (UNetMotionModel runs its spatial layers on the frames as one batch)."""
    frames = x0.shape[2]
    each = {key: value.repeat_interleave(frames, dim=0) for key, value in text.items()}
    return _denoising_loss(pipe, x0, each, schedule, gen)


ANIMATEDIFF = LoraFamily(
    pipeline_class="AnimateDiffPipeline",
    denoiser="unet",
    # UNetMotionModel: `motion_modules` after every spatial transformer (and in the mid block)
    temporal=("motion_modules",),
    spatial_layers="none: a motion LoRA leaves the SD 1.5 base's layers as they are",
    temporal_layers="self-attention across frames of every motion module (*.motion_modules.*:"
    " attn1, attn2)",
    # the SD VAE frame by frame and SD's CLIP text, as AnimateDiffPipeline's encode_prompt
    # and decode_latents (copied from Stable Diffusion's); the UNet takes (B, C, F, h, w)
    encode_video=_encode_frames_sd,
    encode_text=_encode_text_sd,
    noise_schedule=_motion_schedule,
    loss=_motion_loss,
    temporal_only=True,
)


# ---------------------------------------------------------------------------------------------
# The transformers: a 3D VAE (frames in chunks, causal in time), a T5 text encoder through the
# pipeline's own `encode_prompt`, joint attention over frames and pixels


def _pixels(pipe: Any, frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> (1, 3, F, H, W) in [-1, 1] on the VAE's device, as the video
    processor makes a video."""
    x = frames.permute(3, 0, 1, 2).float().div(127.5).sub(1)
    return x.unsqueeze(0).to(device_of(pipe.vae))


def _prompt_inputs(pipe: Any, captions: list[str], keys: tuple[str, ...]) -> Text:
    """The first outputs of the pipeline's `encode_prompt` (guidance off: no empty-caption
    twin; the length its `__call__` uses), under the denoiser's keywords: exactly what the
    pipeline conditions on."""
    device = device_of(pipe.text_encoder)
    length = _call_default(pipe, "max_sequence_length")
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in keys}
    for i in range(0, len(captions), 16):
        out = pipe.encode_prompt(
            captions[i : i + 16],
            do_classifier_free_guidance=False,
            max_sequence_length=length,
            device=device,
        )
        for key, value in zip(keys, out, strict=False):
            parts[key].append(value)
    return {key: torch.cat(values).cpu() for key, values in parts.items()}


@torch.no_grad()
def _encode_text_t5(pipe: Any, captions: list[str]) -> Text:
    """CogVideoX's T5 and Wan's UMT5 states (Wan's zeroed past each caption's end)."""
    return _prompt_inputs(pipe, captions, ("encoder_hidden_states",))


# --- CogVideoX --------------------------------------------------------------------------------


@torch.no_grad()
def _encode_video_cogvideox(pipe: Any, frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> (f, C, h, w): the 3D VAE's posterior mean times its scaling
    factor, frames first as the transformer takes them (the pipeline's `decode_latents`
    permutes them back and divides by that factor)."""
    vae = pipe.vae
    mean = vae.encode(_pixels(pipe, frames)).latent_dist.mean
    return (mean[0] * vae.config.scaling_factor).permute(1, 0, 2, 3).cpu()


def _cogvideox_schedule(pipe: Any, *, fps: int | None = None) -> Any:
    """CogVideoX's own DDPM: its scheduler class, which shifts the SNR (`snr_shift_scale`) and
    rescales it to zero at the end; diffusers' DDPMScheduler would read neither shift. The
    CogVideoX DDIM and DPM schedulers share that forward process."""
    from diffusers import CogVideoXDDIMScheduler

    if pipe.transformer.config.patch_size_t is not None:
        raise InvalidRequest(
            "the model is a CogVideoX 1.5 (its transformer patches frames in pairs); "
            "promptreel fine-tunes CogVideoX 1.0 models (cogvideox-2b, cogvideox-5b)",
            argument="model",
        )
    schedule = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config)
    _check_prediction(schedule)
    return schedule


def _cogvideox_rotary(
    pipe: Any, frames: int, height: int, width: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary embeddings CogVideoXPipeline makes for `frames` latent frames of height x
    width latents (its private `_prepare_rotary_positional_embeddings`, CogVideoX 1.0): the
    patch grid placed, aspect kept, in the grid of the size the model was trained at."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

    config = pipe.transformer.config
    p = config.patch_size
    grid = (height // p, width // p)
    crops = get_resize_crop_region_for_grid(
        grid, config.sample_width // p, config.sample_height // p
    )
    return get_3d_rotary_pos_embed(
        embed_dim=config.attention_head_dim,
        crops_coords=crops,
        grid_size=grid,
        temporal_size=frames,
        device=device,
    )


def _cogvideox_loss(
    pipe: Any, x0: torch.Tensor, text: Text, schedule: Any, gen: torch.Generator
) -> torch.Tensor:
    """Ho et al.'s loss predicting v (CogVideoX's prediction; diffusers' CogVideoX script
    weights its x0 error by 1 / (1 - abar), which is this same loss), latents (B, F, C, h, w)."""
    xt, t, target = _ddpm_noised(x0, schedule, gen)
    transformer = pipe.transformer
    device = device_of(transformer)
    rotary = None
    if transformer.config.use_rotary_positional_embeddings:
        _, frames, _, height, width = x0.shape
        rotary = _cogvideox_rotary(pipe, frames, height, width, device)
    pred = transformer(
        hidden_states=xt.to(device),
        timestep=t.to(device),
        image_rotary_emb=rotary,
        return_dict=False,
        **_on(text, device),
    )[0]
    return _mse(pred, target)


COGVIDEOX = LoraFamily(
    pipeline_class="CogVideoXPipeline",
    denoiser="transformer",
    temporal=(),  # one attention over the caption, every frame and every pixel together
    spatial_layers="the joint attention of every transformer block (transformer_blocks.*.attn1:"
    " the caption's tokens and every frame's patches in one sequence)",
    temporal_layers="none apart: CogVideoX's attention is joint over frames and pixels, so the"
    " layers above carry the motion too",
    encode_video=_encode_video_cogvideox,
    encode_text=_encode_text_t5,
    noise_schedule=_cogvideox_schedule,
    loss=_cogvideox_loss,
)


# --- LTX-Video --------------------------------------------------------------------------------


@torch.no_grad()
def _encode_video_ltx(pipe: Any, frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> (C, f, h, w), normalised per channel as LTXPipeline un-normalises
    before decoding ((z - mean) * scaling / std). Kept as a grid: the loss packs it into tokens,
    and passes the grid's size."""
    vae = pipe.vae
    z = vae.encode(_pixels(pipe, frames)).latent_dist.mean[0]
    mean, std = (s.view(-1, 1, 1, 1).to(z) for s in (vae.latents_mean, vae.latents_std))
    return ((z - mean) * vae.config.scaling_factor / std).cpu()


@torch.no_grad()
def _encode_text_ltx(pipe: Any, captions: list[str]) -> Text:
    """T5 states and their attention mask (the transformer ignores the padding)."""
    return _prompt_inputs(pipe, captions, ("encoder_hidden_states", "encoder_attention_mask"))


def _ltx_schedule(pipe: Any, *, fps: int | None = None) -> FlowMatching:
    frame_rate = _call_default(pipe, "frame_rate") if fps is None else fps
    return FlowMatching(pipe.scheduler.config.num_train_timesteps, frame_rate)


def _pack_ltx(latents: torch.Tensor, p: int, p_t: int) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F/p_t * H/p * W/p, C * p_t * p * p): LTXPipeline's (private)
    `_pack_latents`, the patches in frame, row, column order."""
    b, c, f, h, w = latents.shape
    x = latents.reshape(b, c, f // p_t, p_t, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7).flatten(4, 7).flatten(1, 3)


def _ltx_loss(
    pipe: Any, x0: torch.Tensor, text: Text, schedule: FlowMatching, gen: torch.Generator
) -> torch.Tensor:
    """Flow matching on the packed latents, with the grid and the RoPE scales LTXPipeline
    passes: the time between latent frames in seconds (VAE frames / frame rate), and the VAE's
    pixels per latent."""
    xt, t, target = _flow_noised(x0, schedule, gen)
    _, _, frames, height, width = x0.shape
    p, p_t = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    spatial = pipe.vae_spatial_compression_ratio
    assert schedule.frame_rate is not None, "LTX's schedule carries its frame rate"
    device = device_of(pipe.transformer)
    pred = pipe.transformer(
        hidden_states=_pack_ltx(xt, p, p_t).to(device),
        timestep=t.to(device),
        num_frames=frames,
        height=height,
        width=width,
        rope_interpolation_scale=(
            pipe.vae_temporal_compression_ratio / schedule.frame_rate,
            spatial,
            spatial,
        ),
        return_dict=False,
        **_on(text, device),
    )[0]
    return _mse(pred, _pack_ltx(target, p, p_t))


LTX = LoraFamily(
    pipeline_class="LTXPipeline",
    denoiser="transformer",
    temporal=(),  # attn1 attends over every frame's patches at once
    spatial_layers="self-attention over all frames' patches together and cross-attention to the"
    " caption of every transformer block (transformer_blocks.*: attn1, attn2)",
    temporal_layers="none apart: LTX-Video's self-attention is joint over frames and pixels, so"
    " attn1 above carries the motion too",
    encode_video=_encode_video_ltx,
    encode_text=_encode_text_ltx,
    noise_schedule=_ltx_schedule,
    loss=_ltx_loss,
)


# --- Wan 2.1 ----------------------------------------------------------------------------------


@torch.no_grad()
def _encode_video_wan(pipe: Any, frames: torch.Tensor) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> (C, f, h, w), normalised per channel as WanPipeline un-normalises
    before decoding (it computes z * std + mean): (z - mean) / std."""
    vae = pipe.vae
    z = vae.encode(_pixels(pipe, frames)).latent_dist.mean[0]
    mean, std = (torch.tensor(s).view(-1, 1, 1, 1).to(z) for s in
                 (vae.config.latents_mean, vae.config.latents_std))  # fmt: skip
    return ((z - mean) / std).cpu()


def _wan_schedule(pipe: Any, *, fps: int | None = None) -> FlowMatching:
    """Wan 2.1's flow matching. Wan 2.2's two experts (one for high noise, one for low:
    `boundary_ratio`) and its per-token timesteps (`expand_timesteps`) are refused."""
    config = pipe.config
    if config.get("boundary_ratio") is not None or config.get("expand_timesteps"):
        raise InvalidRequest(
            "the model is a Wan 2.2 (two experts or per-token timesteps); promptreel "
            "fine-tunes Wan 2.1 text-to-video models (wan2.1-t2v-1.3b)",
            argument="model",
        )
    return FlowMatching(pipe.scheduler.config.num_train_timesteps, whole_timesteps=True)


def _wan_loss(
    pipe: Any, x0: torch.Tensor, text: Text, schedule: FlowMatching, gen: torch.Generator
) -> torch.Tensor:
    """Flow matching; the transformer takes (B, C, F, h, w) and places its rotary embeddings
    itself."""
    xt, t, target = _flow_noised(x0, schedule, gen)
    device = device_of(pipe.transformer)
    pred = pipe.transformer(
        hidden_states=xt.to(device), timestep=t.to(device), return_dict=False, **_on(text, device)
    )[0]
    return _mse(pred, target)


WAN = LoraFamily(
    pipeline_class="WanPipeline",
    denoiser="transformer",
    temporal=(),  # attn1 attends over every frame's patches at once
    spatial_layers="self-attention over all frames' patches together and cross-attention to the"
    " caption of every transformer block (blocks.*: attn1, attn2)",
    temporal_layers="none apart: Wan's self-attention is joint over frames and pixels, so attn1"
    " above carries the motion too",
    encode_video=_encode_video_wan,
    encode_text=_encode_text_t5,
    noise_schedule=_wan_schedule,
    loss=_wan_loss,
)

FAMILIES: dict[str, LoraFamily] = {
    family.pipeline_class: family for family in (UNET3D, ANIMATEDIFF, COGVIDEOX, LTX, WAN)
}


def target_pattern(family: LoraFamily, names: list[str], temporal: bool) -> str:
    """The peft `target_modules` regex (matched against whole module names): every layer named
    in `names`; without the family's temporal ones unless `temporal`; for a motion LoRA
    (`temporal_only`), only those. `temporal = false` is refused where it cannot be honoured:
    a motion LoRA would have no layers left, and where attention is joint over frames and
    pixels no layer is temporal apart from the others."""
    ends = "|".join(re.escape(name) for name in names)
    parts = "|".join(re.escape(part) for part in family.temporal)
    if not temporal and (family.temporal_only or not parts):
        why = (
            "its LoRA is a motion LoRA, whose adapters go on the temporal layers only"
            if family.temporal_only
            else "its attention is joint over frames and pixels: no layer is temporal alone"
        )
        raise InvalidRequest(
            f"`temporal` = false: {family.pipeline_class} cannot leave its temporal layers "
            f"alone ({why}); set `temporal = true`",
            argument="temporal",
            value=False,
        )
    if family.temporal_only:
        return rf"(?=(?:.*\.)?(?:{parts})\.)(?:.*\.)?(?:{ends})"
    skip = "" if temporal or not parts else rf"(?!(?:.*\.)?(?:{parts})\.)"
    return rf"{skip}(?:.*\.)?(?:{ends})"


def is_temporal(family: LoraFamily, name: str) -> bool:
    return any(part in family.temporal for part in name.split("."))
