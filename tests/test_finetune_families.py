"""`promptreel finetune` beyond the UNet3D: AnimateDiff (a motion LoRA), CogVideoX, LTX-Video and
Wan 2.1, on their tiny random-weight stand-ins under the real repo ids.

What a family computes is checked against the pipeline it fine-tunes, run as diffusers runs it:
in training the denoiser gets what the pipeline's own loop gives it (text states and mask,
rotary embeddings, latent grid and RoPE scales; latents in the same layout and type), and the
pipeline decodes a family's latents of a clip into the frames its VAE makes of that clip. Then,
per family: a few steps lower the loss on a fixed batch, training only the adapters; a short
run hands on a LoRA that plain diffusers loads, which changes the frames, and
`promptreel.generate(lora=...)` makes the frames plain diffusers makes with it. Clips at the
smallest shape each model takes; seconds a test.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

import promptreel
from promptreel.errors import InvalidRequest
from promptreel.models.resolve import CARDS_BY_NAME
from promptreel.schedulers import make_scheduler
from promptreel.train.clips import find_clips, read_clip
from promptreel.train.finetune import add_lora, find_base, finetune, finetune_config, load_base
from promptreel.train.lora_families import FAMILIES, _pack_ltx
from promptreel.video import Video

CAPTIONS = ["a pink square moving right", "a pink square moving down"]
# the smallest shape each model takes (its size multiple; for the 3D VAEs, two or three latent
# frames, so that time is a real axis), at the card's own frame rate
SHAPES = {
    "animatediff": {"num_frames": 4, "height": 16, "width": 16},
    "cogvideox-2b": {"num_frames": 9, "height": 16, "width": 16},
    "ltx-video": {"num_frames": 9, "height": 32, "width": 32},
    "wan2.1-t2v-1.3b": {"num_frames": 5, "height": 16, "width": 16},
}
MODELS = list(SHAPES)
MOTION_ADAPTER = "guoyww/animatediff-motion-adapter-v1-5-2"


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread (as tests/test_finetune.py: threads on shared cores wait on each other);
    the session's count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_clips(folder: Path) -> Path:
    """videos/NNN.mp4 + .txt: a pink square moving on black, 16 frames of 64x64 at 8 fps."""
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    for index, caption in enumerate(CAPTIONS):
        frames = np.zeros((16, 64, 64, 3), np.uint8)
        for t in range(16):
            x, y = (4 + 2 * t, 20) if index == 0 else (20, 4 + 2 * t)
            frames[t, y : y + 14, x : x + 14] = (250, 120, 190)
        Video(frames, 8).save(folder / "videos" / f"{index:03d}.mp4")
        (folder / "videos" / f"{index:03d}.txt").write_text(caption + "\n")
    return folder


def config(data: Path, out: Path, model: str, **changes: Any) -> Any:
    values = {"model": model, "threads": 1, "data": str(data), "out": str(out), **SHAPES[model],
              "steps": 3, "lr": 1e-2, "checkpoint_every": 3, **changes}  # fmt: skip
    return finetune_config(values)


def plain_pipeline(hub: Callable[[str], Path], model: str) -> Any:
    """The pipeline as diffusers' own guides load it from the hub copy, float32: AnimateDiff
    with its motion adapter and the guide's DDIM (linear betas), the others as they come."""
    import diffusers

    card = CARDS_BY_NAME[model]
    folder = hub(model)
    cls = getattr(diffusers, card.pipeline_class)
    if card.pipeline_class == "AnimateDiffPipeline":
        adapter = diffusers.MotionAdapter.from_pretrained(hub(MOTION_ADAPTER))
        pipe = cls.from_pretrained(folder, motion_adapter=adapter, dtype=torch.float32)
        pipe.scheduler = diffusers.DDIMScheduler.from_config(
            pipe.scheduler.config, **card.scheduler_overrides
        )
    else:
        pipe = cls.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def moving_square(num_frames: int, height: int, width: int) -> torch.Tensor:
    frames = torch.zeros((num_frames, height, width, 3), dtype=torch.uint8)
    side = height // 2
    for t in range(num_frames):
        x = t * (width - side) // max(1, num_frames - 1)
        frames[t, height // 4 : height // 4 + side, x : x + side] = torch.tensor([250, 120, 190])
    return frames


# --- the family feeds the denoiser what the pipeline feeds it ---------------------------------


def inputs_of(module: torch.nn.Module, run: Callable[[], Any]) -> dict[str, Any]:
    """The arguments of `module`'s first call in `run`, by name (those given as None left out)."""
    seen: list[dict[str, Any]] = []

    def hook(mod: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        seen.append(dict(inspect.signature(mod.forward).bind(*args, **kwargs).arguments))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return {key: value for key, value in seen[0].items() if value is not None}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        *SHAPES.items(),
        # rotary embeddings (CogVideoX-5b's), on a grid of another aspect than the model's own
        ("cogvideox-5b", {"num_frames": 9, "height": 32, "width": 64}),
    ],
)
def test_in_training_the_denoiser_gets_what_the_pipeline_gives_it(
    hub, model: str, shape: dict[str, int]
) -> None:
    pipe = plain_pipeline(hub, model)
    family = FAMILIES[type(pipe).__name__]
    denoiser = getattr(pipe, family.denoiser)
    fps = 12  # not LTX's default 25: its RoPE time scale must follow the clips' frame rate
    takes_rate = "frame_rate" in inspect.signature(type(pipe).__call__).parameters
    rate = {"frame_rate": fps} if takes_rate else {}
    given = inputs_of(denoiser, lambda: pipe(
        CAPTIONS[0], **shape, **rate, num_inference_steps=2, guidance_scale=1.0,  # no twin
        generator=torch.Generator().manual_seed(0), output_type="latent",
    ))  # fmt: skip
    x0 = family.encode_video(pipe, moving_square(**shape))[None]
    text = family.encode_text(pipe, [CAPTIONS[0]])
    schedule = family.noise_schedule(pipe, fps=fps)
    taken = inputs_of(denoiser, lambda: family.loss(
        pipe, x0, text, schedule, torch.Generator().manual_seed(0)
    ))  # fmt: skip

    # The noisy latents and the noise level differ (the pipeline starts at full noise): their
    # layout and type must not. Everything else is the same, value for value.
    latents = "sample" if family.denoiser == "unet" else "hidden_states"
    assert taken[latents].shape == given[latents].shape
    assert taken[latents].dtype == given[latents].dtype
    assert taken.pop("timestep").dtype == given.pop("timestep").dtype
    del taken[latents], given[latents]
    assert sorted(taken) == sorted(given)
    for key in given:
        assert same(taken[key], given[key]), key
    if model == "cogvideox-5b":
        assert "image_rotary_emb" in taken
    if model == "ltx-video":
        assert taken["rope_interpolation_scale"][0] == 8 / fps


@pytest.mark.parametrize("model", MODELS)
def test_the_pipeline_decodes_a_familys_latents_into_the_clip_the_vae_makes(
    hub, model: str
) -> None:
    from diffusers.schedulers.scheduling_utils import SchedulerOutput

    pipe = plain_pipeline(hub, model)
    family = FAMILIES[type(pipe).__name__]
    vae = pipe.vae
    if model == "ltx-video":  # the stand-in's normalisation is the identity: make it tell
        channels = vae.config.latent_channels
        vae.latents_mean.copy_(torch.linspace(-0.5, 0.5, channels))
        vae.latents_std.copy_(torch.linspace(0.5, 2.0, channels))
        vae.register_to_config(scaling_factor=0.7)
    shape = SHAPES[model]
    clip = moving_square(**shape)
    latents = family.encode_video(pipe, clip)[None]
    if model == "ltx-video":  # the pipeline takes its `latents` packed, by its private method
        patch = (pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
        packed = pipe._pack_latents(latents, *patch)
        assert torch.equal(_pack_ltx(latents, *patch), packed)  # as the loss packs them
        latents = packed

    # a denoising loop that changes nothing: the pipeline decodes the latents it was given
    pipe.scheduler.step = lambda output, t, sample, *a, **k: SchedulerOutput(prev_sample=sample)
    with torch.no_grad():
        decoded = pipe(
            CAPTIONS[0], **shape, latents=latents, num_inference_steps=2, guidance_scale=1.0,
            output_type="pt",
        ).frames[0]  # fmt: skip

        pixels = clip.permute(3, 0, 1, 2).float() / 127.5 - 1  # 3, F, H, W
        if family.denoiser == "unet":  # the 2D VAE, frame by frame
            frames = pixels.permute(1, 0, 2, 3)
            made = vae.decode(vae.encode(frames).latent_dist.mean).sample
        else:
            made = vae.decode(vae.encode(pixels[None]).latent_dist.mean).sample[0]
            made = made.permute(1, 0, 2, 3)
    torch.testing.assert_close(decoded, (made / 2 + 0.5).clamp(0, 1), atol=1e-5, rtol=0)


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(hub, tmp_path: Path, model: str) -> None:
    hub(model)
    data = write_clips(tmp_path / "data")
    settings = config(data, tmp_path / "run", model)
    base = find_base(settings)
    family = base.family
    pipe = load_base(base, "cpu")
    clips = find_clips(data)
    x0 = torch.stack([
        family.encode_video(pipe, torch.from_numpy(read_clip(c, base.shape, folder=data)))
        for c in clips
    ])  # fmt: skip
    text = family.encode_text(pipe, [c.caption for c in clips])
    schedule = family.noise_schedule(pipe, fps=base.shape.fps)
    if hasattr(schedule, "alphas_cumprod"):  # DDPM: the forward process generation reverses
        card, sampler = base.card, pipe.scheduler
        if card.scheduler is not None:  # the card's (AnimateDiff's DDIM, linear betas)
            own = pipe.scheduler.config
            sampler = make_scheduler(card.scheduler, own, card.scheduler_overrides)
        torch.testing.assert_close(schedule.alphas_cumprod, sampler.alphas_cumprod)

    def loss() -> torch.Tensor:  # the same noise and noise levels every time
        return family.loss(pipe, x0, text, schedule, torch.Generator().manual_seed(0))

    before = loss().item()
    layers = add_lora(pipe, family, settings)
    assert loss().item() == before  # B starts at zero: the model is unchanged at step 0
    params = [p for layer in layers for p in layer.parameters()]
    assert params and all(p.requires_grad for p in params)
    for name in ("vae", "text_encoder"):
        assert not any(p.requires_grad for p in getattr(pipe, name).parameters())
    denoiser = getattr(pipe, family.denoiser)
    trainable = {n for n, p in denoiser.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    if family.temporal_only:  # a motion LoRA: the motion modules' attention, nothing else
        assert all(".motion_modules." in n for n in trainable)
    # the tiny random denoisers learn slowly (a motion LoRA has the fewest layers): ten steps
    optimizer = torch.optim.AdamW(params, lr=3e-2)
    for _ in range(10):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.85 * before


@pytest.mark.parametrize("model", ["animatediff", "cogvideox-2b"])
def test_temporal_false_is_refused_where_it_cannot_be_honoured(
    hub, tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub(model)
    data = write_clips(tmp_path / "data")
    monkeypatch.setattr("promptreel.train.finetune.load_base", lambda *a: pytest.fail("loaded"))
    with pytest.raises(InvalidRequest) as info:
        finetune(config(data, tmp_path / "run", model, temporal=False))
    error = info.value
    assert error.argument == "temporal" and len(str(error).splitlines()) == 1
    why = "motion LoRA" if model == "animatediff" else "joint over frames and pixels"
    assert why in str(error) and "set `temporal = true`" in str(error)


# --- a run, and plain diffusers ---------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_a_run_hands_on_a_lora_plain_diffusers_and_generate_load_alike(
    hub, tmp_path: Path, model: str
) -> None:
    hub(model)
    data = write_clips(tmp_path / "data")
    folder = finetune(config(data, tmp_path / "run", model, rank=4, lr=5e-2))
    card, family = CARDS_BY_NAME[model], FAMILIES[CARDS_BY_NAME[model].pipeline_class]

    with safe_open(str(folder / "pytorch_lora_weights.safetensors"), "pt") as f:
        weights = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (no __iter__)
        metadata = json.loads(f.metadata()["lora_adapter_metadata"])
    pattern = rf"{family.denoiser}\.(.+)\.lora_[AB]\.weight"
    assert weights and all(re.fullmatch(pattern, key) for key in weights)
    # three steps at a high rate: every B is well off zero, so a LoRA not applied would show
    assert all(w.abs().max() > 0 for key, w in weights.items() if ".lora_B." in key)
    assert metadata[f"{family.denoiser}.r"] == 4
    lora_card = json.loads((folder / "lora.json").read_text())
    layers = lora_card["layers"]
    assert lora_card["base"]["pipeline"] == card.pipeline_class
    assert 2 * (layers["spatial"]["count"] + layers["temporal"]["count"]) == len(weights)
    assert layers["temporal"]["where"] == family.temporal_layers
    if family.temporal_only:
        assert layers["spatial"]["count"] == 0 and layers["temporal"]["count"] > 0
        assert all(".motion_modules." in key for key in weights)
    else:  # joint attention: no layer apart for time
        assert layers["temporal"]["count"] == 0 and layers["spatial"]["count"] > 0
        assert layers["temporal"]["where"].startswith("none apart")

    # promptreel, then plain diffusers with the arguments promptreel passed, the same seed
    small = {**SHAPES[model], "num_inference_steps": 2, "seed": 7, "history": False}
    ours = promptreel.generate(CAPTIONS[0], model=model, lora=str(folder), **small)
    plain = plain_pipeline(hub, model)

    def frames() -> np.ndarray:
        torch.backends.mkldnn.enabled = False  # as promptreel runs: the same sums on any thread
        try:
            video = plain(
                CAPTIONS[0], negative_prompt=ours.record["negative_prompt"] or None,
                **ours.record["pipeline_arguments"], generator=torch.Generator().manual_seed(7),
                output_type="np",
            ).frames[0]  # fmt: skip
        finally:
            torch.backends.mkldnn.enabled = True
        return (np.clip(video, 0, 1) * 255).round().astype(np.uint8)

    without = frames()
    plain.load_lora_weights(folder)
    loaded = frames()
    assert np.abs(loaded.astype(int) - without).mean() > 0.5  # the LoRA changes the frames ...
    assert np.abs(loaded.astype(int) - ours.frames).max() <= 1  # ... as promptreel's --lora
