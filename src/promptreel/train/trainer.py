"""Train the text-to-video model from scratch on the CPU, resumably.

    train(config)   stage 1: the VAE on single frames (reconstruction + edges + tiny KL)
                    then: every clip encoded once by the frozen VAE (the latent cache)
                    stage 2: text encoder + UNet on those latents (denoising, Ho et al. 2020)
                    then: the EMA weights exported as a TextToVideoSDPipeline folder, out/model

The VAE comes first because stage 2 learns in its latent space: a VAE still changing would move
the target under the UNet. Everything the run writes is in its run folder, `run_path(config.out)`:
by default `runs/NAME` in the user data folder, never in the repository (config.py):

    checkpoint.pt   models, optimizer, LR schedule, EMA, step, data position, every RNG state
    latents.pt      the latent cache (the dataset through the frozen VAE, once per run)
    tokenizer/      generated from the dataset's captions at the start
    log.jsonl       one line per step: stage, step, loss, lr, seconds since the run began
    loss.png        the loss curves of both stages, redrawn at each checkpoint
    samples/        a grid of sample videos every `sample_every` UNet steps
    vae/            the finished (EMA) VAE, float32 safetensors: what the VAE stage hands on
    model/          the exported pipeline (at the stop or the end, or with `export_model`)

A run resumes exactly: it restarts from the checkpoint with the same batches, noise and RNG
states, so an interrupted and resumed run logs the same losses, bit for bit, as one never
interrupted (on the CPU, with the same `threads`; a different count changes float sums).

A run can also stop where its config says (`stop_after_unet_step`) instead of at the end of its
schedule: it writes a checkpoint there and hands on a small result, the VAE alone (`vae/`, 5 MB)
or the pipeline (`model/`), with no optimizer state. The next stage starts from that result
(`vae_from`) on any machine; only going on with the same stage needs the checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidRequest
from . import model as M
from .config import TrainConfig, check_folders, config_from_dict, is_run_name, run_path

Progress = Callable[[int, int, float, float], None]  # (step, total, loss, eta seconds)

# Fields a resumed run may change: how long it runs and what it writes, not what it learns.
# (`vae_from` is read only when a run starts; a resumed run has its VAE in its checkpoint.)
RESUMABLE_CHANGES = {
    "vae_steps",
    "unet_steps",
    "stop_after_unet_step",
    "vae_from",
    "threads",
    "out",
    "data",
    "data_count",
    "sample_every",
    "sample_steps",
    "guidance_scale",
    "sample_prompts",
    "checkpoint_every",
    "sampler",
}


# ---------------------------------------------------------------------------------------------
# Data: any folder with videos/ and metadata.jsonl rows {"file": ..., "caption": ...}


def read_clips(folder: Path, *, num_frames: int) -> tuple[torch.Tensor, list[str]]:
    """Every clip of the dataset: uint8 frames (N, 16, H, W, 3) and the captions."""
    from ..video import read_video
    from .shapes import read_dataset

    rows = read_dataset(folder)
    if not rows:
        raise InvalidRequest(f"data folder {str(folder)!r} has no clips in metadata.jsonl")
    clips, captions = [], []
    for row in rows:
        frames, _ = read_video(folder / row["file"], first=16)
        if len(frames) < num_frames or (clips and frames.shape[1:] != clips[0].shape[1:]):
            raise InvalidRequest(
                f"{row['file']}: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]};"
                f" every clip needs {num_frames} or more, all of one size"
            )
        clips.append(frames[:16] if not clips else frames[: clips[0].shape[0]])
        captions.append(str(row["caption"]))
    length = min(len(c) for c in clips)
    return torch.from_numpy(np.stack([c[:length] for c in clips])), captions


class Batches:
    """Shuffled passes over `size` items; its state (epoch, position) is two ints.

    Each epoch's order is drawn from a generator seeded by (seed, epoch), so the order after a
    resume is the order the uninterrupted run would have had.
    """

    def __init__(self, size: int, batch: int, seed: int, epoch: int = 0, position: int = 0):
        self.size, self.batch, self.seed = size, batch, seed
        self.epoch, self.position = epoch, position

    def next(self) -> torch.Tensor:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self._key()))
        if self.position + self.batch > self.size:
            self.epoch, self.position = self.epoch + 1, 0
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self._key()))
        picked = order[self.position : self.position + self.batch]
        self.position += self.batch
        return picked

    def _key(self) -> int:
        return self.seed * 1_000_003 + self.epoch

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}


# ---------------------------------------------------------------------------------------------
# Losses


def vae_loss(vae: Any, x: torch.Tensor, config: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """L1 reconstruction weighted toward the shape, L1 on image gradients, and a tiny KL.

    Most of a shapes frame is black: plain MSE is low when the shape comes out blurred or the
    wrong colour. The shape's pixels count `vae_shape_weight` times more, and the difference
    terms make edges (what tells a triangle from a circle) cost as much as flat colour.
    """
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.sample(generator=gen)).sample
    weight = 1.0 + config.vae_shape_weight * (x.amax(dim=1, keepdim=True) > -0.75).float()
    loss = (weight * (recon - x).abs()).sum() / (weight.sum() * 3)
    for dim in (2, 3):
        loss = loss + config.vae_edge_weight * (recon.diff(dim=dim) - x.diff(dim=dim)).abs().mean()
    return loss + config.vae_kl_weight * posterior.kl().mean()


def diffusion_loss(
    unet: Any,
    text_encoder: Any,
    x0: torch.Tensor,
    ids: torch.Tensor,
    schedule: Any,
    config: TrainConfig,
    gen: torch.Generator,
    *,
    t_min: int = 0,
) -> torch.Tensor:
    """The simple loss of Ho et al. 2020 (Algorithm 1), as epsilon or v (Salimans & Ho 2022),
    at noise levels t drawn uniformly from [t_min, T)."""
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(t_min, schedule.config.num_train_timesteps, (x0.shape[0],), generator=gen)
    xt = schedule.add_noise(x0, noise, t)  # sqrt(abar) x0 + sqrt(1 - abar) eps
    # v = sqrt(abar) eps - sqrt(1 - abar) x0
    v_pred = config.prediction_type == "v_prediction"
    target = schedule.get_velocity(x0, noise, t) if v_pred else noise
    hidden = text_encoder(ids)[0]
    pred = unet(xt, t, encoder_hidden_states=hidden).sample
    per_clip = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3, 4))
    if config.snr_gamma > 0:  # min-SNR-gamma weighting (Hang et al. 2023, eq. 9)
        abar = schedule.alphas_cumprod[t]
        snr = abar / (1 - abar)
        clipped = snr.clamp(max=config.snr_gamma)
        per_clip = per_clip * (
            clipped / snr if config.prediction_type == "epsilon" else clipped / (snr + 1)
        )
    return per_clip.mean()


# ---------------------------------------------------------------------------------------------
# EMA, learning rate, RNG, checkpoints


class EMA:
    """An exponential moving average of parameters, warmed up as in diffusers' EMAModel."""

    def __init__(self, modules: list[torch.nn.Module], decay: float):
        self.decay = decay
        self.shadow = [p.detach().clone() for m in modules for p in m.parameters()]
        self.updates = 0

    @torch.no_grad()
    def update(self, modules: list[torch.nn.Module]) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for s, p in zip(self.shadow, (p for m in modules for p in m.parameters()), strict=True):
            s.lerp_(p.detach(), 1 - decay)

    def copy_to(self, modules: list[torch.nn.Module]) -> list[torch.nn.Module]:
        """Deep copies of `modules` holding the averaged weights."""
        copies = [copy.deepcopy(m).eval() for m in modules]
        with torch.no_grad():
            params = (p for m in copies for p in m.parameters())
            for s, p in zip(self.shadow, params, strict=True):
                p.copy_(s)
        return copies

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow, self.updates = state["shadow"], state["updates"]


def lr_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> Any:
    """Linear warmup, then cosine decay to 10 % of the peak."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def rng_state(gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "generator": gen.get_state(),
    }


def set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    version, keys, *rest = state["python"]
    random.setstate((version, tuple(keys), *rest))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary name beside `path`, flushed, then renamed over it."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Tensors and plain values only: torch's restricted unpickler, never arbitrary code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _check_resumable(saved: dict[str, Any], config: TrainConfig, out: Path) -> None:
    now = config.to_dict()
    for key, value in saved.items():
        if key in now and key not in RESUMABLE_CHANGES and now[key] != value:
            raise InvalidRequest(
                f"{str(out)!r} holds a run with `{key}` = {value!r}, not {now[key]!r}; "
                "use another `out`, or start over (--fresh, resume=False)"
            )


# ---------------------------------------------------------------------------------------------
# The log and its plot


class Log:
    """log.jsonl, one line a step; on resume, cut back to the checkpoint's steps."""

    def __init__(self, path: Path, keep: Callable[[dict[str, Any]], bool] | None):
        self.path = path
        rows = []
        if keep is not None and path.exists():
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            rows = [r for r in rows if keep(r)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.rows = rows

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def plot_losses(rows: list[dict[str, Any]], path: Path) -> None:
    """A PNG of each stage's loss (log scale), and of any other loss a row logs beside it
    (`vae_loss`): the raw steps pale, a moving average dark."""
    from PIL import Image, ImageDraw

    stages = list(dict.fromkeys(r["stage"] for r in rows))  # in the order they ran
    panels = [
        (stage, key)
        for stage in stages
        for key in dict.fromkeys(
            k for r in rows if r["stage"] == stage for k in r if k == "loss" or k.endswith("_loss")
        )
    ]
    width, panel = 640, 240
    image = Image.new("RGB", (width, panel * max(1, len(panels))), "white")
    draw = ImageDraw.Draw(image)
    for n, (stage, key) in enumerate(panels):
        picked = [r for r in rows if r["stage"] == stage and key in r]
        steps = [r["step"] for r in picked]
        losses = np.log10(np.maximum([r[key] for r in picked], 1e-8))
        window = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        top, left, right, bottom = n * panel + 24, 56, width - 12, (n + 1) * panel - 24
        low, high = float(losses.min()), float(losses.max())
        high = high if high > low else low + 1

        draw.rectangle((left, top, right, bottom), outline="gray")
        box, span = (left, top, right, bottom), ((steps[0], steps[-1]), (low, high))
        draw.line(_points(steps, losses, box, span), fill=(170, 190, 230))
        if len(smooth) > 1:
            draw.line(_points(steps[window - 1 :], smooth, box, span), fill=(20, 60, 160))
        name = f"{stage} loss" if key == "loss" else key.replace("_", " ")
        draw.text((left, top - 18), f"{name} (log10), steps {steps[0]}-{steps[-1]}", "black")
        draw.text((4, top), f"{10**high:.3g}", "black")
        draw.text((4, bottom - 10), f"{10**low:.3g}", "black")
    temp = path.with_name(f".{path.name}.tmp.png")
    image.save(temp)
    os.replace(temp, path)


def _points(steps: list[int], values: Any, box: tuple, span: tuple) -> list[tuple[float, float]]:
    """Plot coordinates of (step, value) pairs in `box` = (x0, y0, x1, y1), `span` = (x, y)
    ranges: ((first step, last step), (low value, high value))."""
    (x0, y0, x1, y1), ((first, last), (low, high)) = box, span
    last = max(last, first + 1)
    return [
        (x0 + (x1 - x0) * (s - first) / (last - first), y1 - (y1 - y0) * (v - low) / (high - low))
        for s, v in zip(steps, values, strict=False)
    ]


# ---------------------------------------------------------------------------------------------
# Samples and export


def _pipeline(tokenizer: Any, text_encoder: Any, vae: Any, unet: Any, config: TrainConfig) -> Any:
    from diffusers import TextToVideoSDPipeline

    scheduler = M.sampler(config)
    pipe = TextToVideoSDPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def write_samples(pipe: Any, config: TrainConfig, path: Path) -> None:
    """One video: the sample prompts in a grid (seed `config.seed`), with their record."""
    from ..video import Video

    with torch.random.fork_rng(devices=[]):
        out = pipe(
            config.sample_prompts,
            num_frames=16,
            num_inference_steps=config.sample_steps,
            guidance_scale=config.guidance_scale,
            generator=torch.Generator().manual_seed(config.seed),
            output_type="np",
        ).frames
    frames = (np.asarray(out) * 255).round().clip(0, 255).astype(np.uint8)  # (B, F, H, W, 3)
    cols = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    pad = np.zeros((rows * cols - len(frames), *frames.shape[1:]), np.uint8)
    grid = np.concatenate([frames, pad]).reshape(rows, cols, *frames.shape[1:])
    grid = grid.transpose(2, 0, 3, 1, 4, 5).reshape(frames.shape[1], rows * frames.shape[2], -1, 3)
    record = {"prompts": config.sample_prompts, "seed": config.seed, "grid": [rows, cols]}
    Video(np.ascontiguousarray(grid), 8, record).save(path, overwrite=True)


def export_model(
    run: str | Path, folder: str | Path | None = None, *, ema: bool = True, half: bool = False
) -> Path:
    """Write the pipeline folder (default: the run's model/) from the latest checkpoint of `run`
    (a run name, or a run folder): the EMA weights, or with `ema=False` the raw ones, which show
    a change of the last few hundred steps that the EMA still hides. The weights are float32,
    or with `half=True` float16: half the size, but rounded (not the weights that trained)."""
    out = run_path(run) if isinstance(run, str) and is_run_name(run) else Path(run)
    if not (out / "checkpoint.pt").exists():
        raise InvalidRequest(f"{str(out)!r} has no checkpoint.pt; is it a run folder?")
    state = load_checkpoint(out / "checkpoint.pt")
    if state["stage"] not in ("unet", "done"):
        raise InvalidRequest(f"{str(out)!r}: the run has not reached the UNet stage yet")
    # What the run learned, without where it lived (an older run's paths may be relative).
    known = {f.name for f in fields(TrainConfig)} - {"out", "data", "vae_from"}
    config = config_from_dict({k: v for k, v in state["config"].items() if k in known})
    _, text_encoder, vae, unet = _build(config, out, state["latent_size"])
    vae.load_state_dict(state["vae"])
    vae.register_to_config(scaling_factor=state["scaling_factor"])
    if ema:
        averaged = EMA([text_encoder, unet], config.ema_decay)
        averaged.load_state_dict(state["ema"])
        text_encoder, unet = averaged.copy_to([text_encoder, unet])
    else:
        text_encoder.load_state_dict(state["text_encoder"])
        unet.load_state_dict(state["unet"])
    dtype = torch.float16 if half else torch.float32
    folder = Path(folder) if folder else out / "model"
    return _export(out, folder, config, text_encoder, vae, unet, dtype=dtype)


def _export(
    out: Path,
    folder: Path,
    config: TrainConfig,
    text_encoder: Any,
    vae: Any,
    unet: Any,
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    def write(temp: Path) -> None:
        M.save_pipeline(
            temp,
            tokenizer_folder=out / "tokenizer",
            text_encoder=text_encoder,
            vae=vae,
            unet=unet,
            scheduler=M.sampler(config),
            dtype=dtype,
        )

    return _replace_folder(folder, write)


def _replace_folder(folder: Path, write: Callable[[Path], Any]) -> Path:
    """`write` a folder aside, then put it in the place of `folder`: never a half-written one."""
    temp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    write(temp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(temp, folder)
    return folder


def _build(config: TrainConfig, out: Path, latent_size: int) -> tuple[Any, Any, Any, Any]:
    tokenizer = M.CLIPTokenizer.from_pretrained(out / "tokenizer")
    return (
        tokenizer,
        M.build_text_encoder(config, tokenizer),
        M.build_vae(config),
        M.build_unet(config, latent_size=latent_size),
    )


# ---------------------------------------------------------------------------------------------
# The run


def train(config: TrainConfig, *, resume: bool = True, progress: Progress | None = None) -> Path:
    """Train (or continue training) the model of `config` up to its stop; return what the run
    hands on: the exported model folder, or after a stop at UNet step 0 its VAE folder."""
    # 1. Set up: threads, seeds, the run folder, the data, the tokenizer.
    check_folders(config)
    torch.set_num_threads(config.threads)
    out, stop = run_path(config.out), config.unet_stop
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    state = load_checkpoint(ckpt_path) if resume and ckpt_path.exists() else None
    if state is not None:
        _check_resumable(state["config"], config, out)
        handed_on = _reached_stop(state, config, out)
        if handed_on is not None:
            return handed_on
    elif config.vae_from:
        state = _start_from_vae(run_path(config.vae_from, key="vae_from"), out, config)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    data = run_path(config.data, key="data")
    if config.data_count > 0 and not (data / "metadata.jsonl").exists():
        from .shapes import write_dataset

        data.parent.mkdir(parents=True, exist_ok=True)
        write_dataset(
            data, count=config.data_count, seed=config.data_seed, spread=config.data_start_spread
        )
    latents_path = out / "latents.pt"
    need_frames = state is None or state["stage"] == "vae" or not latents_path.exists()
    frames = max(config.num_frames, config.high_noise_frames if config.high_noise_steps else 1)
    clips, captions = read_clips(data, num_frames=frames) if need_frames else (None, [])
    captions = captions or state["captions"]
    if state is None or state["stage"] == "latents":
        for stale in (out / "samples", out / "model", out / "vae", out / "tokenizer"):
            shutil.rmtree(stale, ignore_errors=True)
        M.write_tokenizer(
            out / "tokenizer", M.caption_words(captions), max_length=config.text_max_length
        )
    height = clips.shape[2] if clips is not None else state["height"]
    latent_size = height // config.vae_factor
    tokenizer, text_encoder, vae, unet = _build(config, out, latent_size)

    log = Log(out / "log.jsonl", None if state is None else _kept_rows(state))
    total = config.vae_steps + stop
    started = time.perf_counter() - (state.get("seconds", 0.0) if state else 0.0)
    common = {"config": config.to_dict(), "captions": captions, "height": height}

    def report(stage: str, step: int, loss: float, stage_start: float, done_before: int) -> None:
        log.write({"stage": stage, "step": step, "loss": loss, "seconds": _elapsed(started)})
        if progress is not None:
            stage_total = config.vae_steps if stage == "vae" else stop
            rate = (time.perf_counter() - stage_start) / max(1, step - done_before)
            global_step = step + (config.vae_steps if stage == "unet" else 0)
            progress(global_step, total, loss, rate * (stage_total - step))

    # 2. Stage 1: the VAE, on random frames.
    vae_stage = state is None or state["stage"] == "vae"
    if vae_stage:
        vae.train()
        optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
        schedule = lr_schedule(optimizer, config.warmup_steps, config.vae_steps)
        ema = EMA([vae], config.ema_decay)
        frames_per_clip = clips.shape[1]
        batches = Batches(len(clips) * frames_per_clip, config.vae_batch, config.seed)
        step = 0
        if state is not None:
            vae.load_state_dict(state["vae"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["lr_schedule"])
            ema.load_state_dict(state["ema"])
            batches = Batches(batches.size, config.vae_batch, config.seed, **state["data"])
            step = state["step"]
            set_rng_state(state["rng"], gen)
        stage_start, first = time.perf_counter(), step
        while step < config.vae_steps:
            picked = batches.next()
            x = vae_input(clips[picked // frames_per_clip, picked % frames_per_clip])
            loss = vae_loss(vae, x, config, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(vae.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            ema.update([vae])
            step += 1
            report("vae", step, loss.item(), stage_start, first)
            if step % config.checkpoint_every == 0 or step == config.vae_steps:
                save_atomic(
                    {
                        **common,
                        "stage": "vae",
                        "step": step,
                        "vae": vae.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "lr_schedule": schedule.state_dict(),
                        "ema": ema.state_dict(),
                        "data": batches.state(),
                        "rng": rng_state(gen),
                        "seconds": _elapsed(started),
                    },
                    ckpt_path,
                )
                plot_losses(log.rows, out / "loss.png")
        (vae,) = ema.copy_to([vae])
        latents_path.unlink(missing_ok=True)
    else:
        vae.load_state_dict(state["vae"])
    vae.eval().requires_grad_(False)
    if vae_stage or not (out / "vae" / M.WEIGHTS).exists():
        _replace_folder(out / "vae", lambda temp: M.save_model(vae, temp))
    if stop == 0:  # the stage hands on its VAE; the checkpoint of its last step is written
        return out / "vae"

    # 3. The latent cache: every clip through the frozen VAE, once.
    if latents_path.exists():
        cache = load_checkpoint(latents_path)
        latents, scaling_factor = cache["latents"], cache["scaling_factor"]
    else:
        latents, scaling_factor = encode_clips(vae, clips)
        save_atomic({"latents": latents, "scaling_factor": scaling_factor}, latents_path)
    vae.register_to_config(scaling_factor=scaling_factor)
    del clips
    ids = M.tokenize(tokenizer, captions)
    empty = M.tokenize(tokenizer, [""])[0]

    # 4. Stage 2: text encoder + UNet, denoising latent clips.
    modules = [text_encoder, unet]
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.unet_lr, weight_decay=config.weight_decay)
    schedule = lr_schedule(optimizer, config.warmup_steps, config.unet_steps)
    ema = EMA(modules, config.ema_decay)
    batches = Batches(len(latents), config.unet_batch, config.seed + 1)
    noise = M.noise_scheduler(config)
    step = 0
    if state is not None and state["stage"] in ("unet", "done"):
        text_encoder.load_state_dict(state["text_encoder"])
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["lr_schedule"])
        ema.load_state_dict(state["ema"])
        batches = Batches(len(latents), config.unet_batch, config.seed + 1, **state["data"])
        step = state["step"]
        set_rng_state(state["rng"], gen)
    text_encoder.train()
    unet.train()
    stage_start, first = time.perf_counter(), step

    def checkpoint(stage: str) -> None:
        save_atomic(
            {
                **common,
                "stage": stage,
                "step": step,
                "latent_size": latent_size,
                "scaling_factor": scaling_factor,
                "vae": vae.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "unet": unet.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_schedule": schedule.state_dict(),
                "ema": ema.state_dict(),
                "data": batches.state(),
                "rng": rng_state(gen),
                "seconds": _elapsed(started),
            },
            ckpt_path,
        )
        plot_losses(log.rows, out / "loss.png")

    while step < stop:
        picked = batches.next()
        if step < config.high_noise_steps:
            x0, t_min = latents[picked, :, : config.high_noise_frames], config.high_noise_tmin
        else:
            start = torch.randint(0, latents.shape[2] - config.num_frames + 1, (1,), generator=gen)
            x0, t_min = latents[picked, :, start : start + config.num_frames], 0
        drop = torch.rand(len(picked), generator=gen) < config.caption_dropout
        batch_ids = torch.where(drop[:, None], empty[None], ids[picked])
        loss = diffusion_loss(unet, text_encoder, x0, batch_ids, noise, config, gen, t_min=t_min)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        schedule.step()
        ema.update(modules)
        step += 1
        report("unet", step, loss.item(), stage_start, first)
        if config.sample_every and step % config.sample_every == 0:
            samples = out / "samples" / f"step-{step:06d}.mp4"
            samples.parent.mkdir(exist_ok=True)
            text_encoder_ema, unet_ema = ema.copy_to(modules)
            pipe = _pipeline(tokenizer, text_encoder_ema, vae, unet_ema, config)
            write_samples(pipe, config, samples)
        if (step % config.checkpoint_every == 0 or step == stop) and step < config.unet_steps:
            checkpoint("unet")

    # 5. Export the EMA weights; at the end of the schedule, mark the run done.
    text_encoder_ema, unet_ema = ema.copy_to(modules)
    folder = _export(out, out / "model", config, text_encoder_ema, vae, unet_ema)
    if step == config.unet_steps:
        checkpoint("done")
    return folder


@torch.no_grad()
def vae_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) as a 2D VAE takes them: (N, 3, H, W), float in [-1, 1]."""
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1


def encode_clips(vae: Any, clips: torch.Tensor, batch: int = 64) -> tuple[torch.Tensor, float]:
    """(N, C, F, h, w) latent means of every frame, scaled to unit variance; and that scale."""
    n, f = clips.shape[:2]
    frames = clips.reshape(n * f, *clips.shape[2:])
    means = []
    for i in range(0, len(frames), batch):
        means.append(vae.encode(vae_input(frames[i : i + batch])).latent_dist.mean)
    z = torch.cat(means)
    scaling_factor = float(1.0 / z.std())
    z = (z * scaling_factor).reshape(n, f, *z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()
    return z, scaling_factor


def _start_from_vae(source: Path, out: Path, config: TrainConfig) -> dict[str, Any]:
    """The start of stage 2 with the finished VAE of another run, and its latent cache if
    that run read the same data; or with the VAE of a folder holding vae/ (what a run hands
    on, an exported pipeline), float32 or float16, whose clips this run encodes itself."""
    where = f"vae_from {str(source)!r}"
    if not (source / "checkpoint.pt").exists():
        if (source / "vae" / "config.json").exists():
            vae_state = _vae_folder_state(source / "vae", config, where)
            (out / "latents.pt").unlink(missing_ok=True)
            return {"stage": "latents", "vae": vae_state}
        raise InvalidRequest(
            f"{where}: has no checkpoint.pt and no vae/; name a run whose VAE stage has"
            " finished, or a folder with vae/ (a run's hand-on, an exported pipeline)"
        )
    prior = load_checkpoint(source / "checkpoint.pt")
    ours, defaults = config.to_dict(), TrainConfig().to_dict()
    for key in ("vae_channels", "vae_layers", "latent_channels"):
        if prior["config"].get(key, defaults[key]) != ours[key]:
            raise InvalidRequest(f"{where}: its VAE has another `{key}`; use the same value")
    if prior["stage"] == "vae" and prior["step"] < prior["config"]["vae_steps"]:
        raise InvalidRequest(f"{where}: its VAE stage is not finished; resume it first")
    vae_state = _finished_vae(prior, config)
    (out / "latents.pt").unlink(missing_ok=True)
    data_keys = ("data", "data_count", "data_seed", "data_start_spread")
    same_data = all(prior["config"].get(key, defaults[key]) == ours[key] for key in data_keys)
    if same_data and source.resolve() != out.resolve() and (source / "latents.pt").exists():
        shutil.copyfile(source / "latents.pt", out / "latents.pt")
    keep = ("captions", "height")
    return {"stage": "latents", "vae": vae_state, **{key: prior[key] for key in keep}}


def _finished_vae(state: dict[str, Any], config: TrainConfig) -> dict[str, torch.Tensor]:
    """The VAE of a checkpoint whose VAE stage has finished: the one stage 2 saved, or in a
    stage-1 checkpoint its EMA (stage 2 checkpoints only every `checkpoint_every` steps, so a
    run stopped early in stage 2, or by its config before it, holds its VAE that way)."""
    if state["stage"] != "vae":
        return state["vae"]
    vae = M.build_vae(config)
    averaged = EMA([vae], config.ema_decay)
    averaged.load_state_dict(state["ema"])
    return averaged.copy_to([vae])[0].state_dict()


def _vae_folder_state(folder: Path, config: TrainConfig, where: str) -> dict[str, torch.Tensor]:
    """The float32 state dict of the AutoencoderKL in `folder`, checked against `config`."""
    from safetensors.torch import load_file

    saved = json.loads((folder / "config.json").read_text())
    for key, ours in (
        ("block_out_channels", list(config.vae_channels)),
        ("layers_per_block", config.vae_layers),
        ("latent_channels", config.latent_channels),
    ):
        if saved.get(key) != ours:
            name = {"block_out_channels": "vae_channels", "layers_per_block": "vae_layers"}
            raise InvalidRequest(
                f"{where}: its VAE has another `{name.get(key, key)}` ({saved.get(key)!r},"
                f" not {ours!r}); use the same value"
            )
    if not (folder / M.WEIGHTS).exists():
        raise InvalidRequest(f"{where}: vae/ has no {M.WEIGHTS}")
    weights = {key: value.float() for key, value in load_file(folder / M.WEIGHTS).items()}
    vae = M.build_vae(config)
    vae.load_state_dict(weights)  # every weight of this architecture, or it raises
    return vae.state_dict()


def _reached_stop(state: dict[str, Any], config: TrainConfig, out: Path) -> Path | None:
    """What a run that has already reached its stop handed on (None while it has not): its
    VAE folder, or its pipeline exported again from the checkpoint at the stop. A run already
    past its stop is refused: it cannot go back."""
    stop = config.unet_stop
    if state["stage"] == "vae" and state["step"] < config.vae_steps:
        return None
    if stop == 0:
        if not (out / "vae" / M.WEIGHTS).exists():  # a run from before runs handed on vae/
            vae = M.build_vae(config)
            vae.load_state_dict(_finished_vae(state, config))
            _replace_folder(out / "vae", lambda temp: M.save_model(vae, temp))
        return out / "vae"
    step = state["step"] if state["stage"] in ("unet", "done") else 0
    if step > stop:
        raise InvalidRequest(
            f"{str(out)!r} holds a run at UNet step {step}, past `stop_after_unet_step` = {stop};"
            " give a later stop, or start over (--fresh, resume=False)"
        )
    if step < stop:
        return None
    if state["stage"] == "done" and (out / "model" / "model_index.json").exists():
        return out / "model"
    return export_model(out)


def _kept_rows(state: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The log rows an uninterrupted run would have at the checkpoint."""
    if state["stage"] == "latents":
        return lambda r: False
    if state["stage"] == "vae":
        return lambda r: r["stage"] == "vae" and r["step"] <= state["step"]
    return lambda r: r["stage"] == "vae" or r["step"] <= state["step"]


def _elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)
