"""LoRA fine-tuning of a downloaded video model on your own clips, resumably.

    finetune(config)    the model's denoiser gets LoRA adapters (peft) on its attention
                        projections, everything else frozen; every clip goes through the VAE
                        and every caption through the text encoder once (the cache); then the
                        adapters learn the model's own denoising loss on those latents; the
                        result is a diffusers-format LoRA folder, out/lora

The run lives where `promptreel train`'s runs live (`config.run_path`: PROMPTREEL_RUNS, else
PROMPTREEL_HOME/runs/NAME), and it uses the trainer's machinery: one checkpoint (optimizer, LR
schedule, EMA, data position, every RNG state) written atomically, resumed exactly; the log and
its loss curve; sample videos. Its folder holds:

    checkpoint.pt   the adapters, optimizer, LR schedule, EMA, step, data position, RNG states
    cache.pt        latents of every clip and embeddings of every caption (and of "")
    log.jsonl       one line a step; loss.png, its curve, redrawn at each checkpoint
    samples/        the sample prompts in a grid every `sample_every` steps
    lora/           pytorch_lora_weights.safetensors + lora.json: what the run hands on

What differs between model families is one `LoraFamily` each (lora_families.py: which component
takes the adapters, which of its layers are temporal, how a clip and a caption are encoded, the
loss); `FAMILIES` holds those promptreel can fine-tune, and any other is refused in one line.
With `text_encoder = true` (families with a CLIP text encoder) the text encoder takes adapters
too, and captions go through it at every step instead of once. With `vae = true` (families with a
frame-by-frame `AutoencoderKL`) the VAE's decoder takes adapters too, learning at every step to
decode the clips' cached latents back into their frames: for what the frozen decoder cannot
draw (the shipped shapes VAE decodes pink as orange), while the denoiser learns on the frozen
encoder's latents as before.

The config is a pydantic model read from TOML (strict types, ranges, unknown keys refused, each
refusal naming its key as `argument`), as the request is; `TrainConfig` is the older dataclass
of the from-scratch trainer, and both share its rules for where runs and data live.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidRequest, ModelNotFound, about
from ..models.card import ModelCard
from .clips import Shape, data_sha256, find_clips, read_clip
from .config import read_toml, run_path
from .lora_families import (
    ATTENTION,
    FAMILIES,
    TEXT_TARGETS,
    LoraFamily,
    frame_reconstruction_loss,
    is_temporal,
    target_pattern,
)
from .trainer import (
    EMA,
    Batches,
    Log,
    Progress,
    _replace_folder,
    load_checkpoint,
    lr_schedule,
    plot_losses,
    rng_state,
    save_atomic,
    set_rng_state,
)

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights file name
CARD_NAME = "lora.json"


# ---------------------------------------------------------------------------------------------
# 1. The config


class FinetuneConfig(BaseModel):
    """A fine-tuning run. Unset numbers of the training shape and the samples are the model's
    own (its card's native frames, size, fps, steps and guidance)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # --- what, on what, where -------------------------------------------------------------
    model: str = Field(description="the model to adapt: a built-in name, a repo id or a folder")
    data: str = Field(description="the clips and captions: a run name or an absolute folder")
    out: str = Field(description="the run: a name in the runs folder, or an absolute folder")
    seed: int = Field(0, ge=0, description="every random choice of the run follows from it")
    threads: int = Field(2, ge=1, description="CPU threads; keep it to resume bit-identically")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="where to train")

    # --- the training shape every clip is made into ---------------------------------------
    num_frames: int | None = Field(None, ge=1, description="frames a clip (model's own)")
    height: int | None = Field(None, ge=8, description="frame height (the model's own)")
    width: int | None = Field(None, ge=8, description="frame width (the model's own)")
    fps: int | None = Field(None, ge=1, le=120, description="frames a second (model's own)")

    # --- the adapters ---------------------------------------------------------------------
    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r")
    alpha: int | None = Field(None, ge=1, description="LoRA alpha: scale alpha / r (unset: r)")
    target_modules: list[str] = Field(
        default_factory=lambda: list(ATTENTION),
        min_length=1,
        description="names of the layers adapted, in every attention block",
    )
    temporal: bool = Field(True, description="also adapt the temporal attention (motion)")
    text_encoder: bool = Field(
        False, description="also adapt the text encoder (attention, MLP): for new words"
    )
    vae: bool = Field(False, description="also adapt the VAE's decoder: for colours it cannot draw")
    trigger_words: list[str] = Field(
        default_factory=list,
        description="for the card; empty: the caption words the base tokenizer splits",
    )

    # --- optimisation ---------------------------------------------------------------------
    steps: int = Field(500, ge=1, description="optimizer steps (the LR schedule's length)")
    batch: int = Field(1, ge=1, description="clips a step")
    lr: float = Field(1e-4, gt=0, description="AdamW peak learning rate")
    warmup_steps: int = Field(0, ge=0, description="linear warmup, then cosine decay to 10 %")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    grad_clip: float = Field(1.0, ge=0, description="clip the gradient norm; 0: off")
    caption_dropout: float = Field(0.0, ge=0, lt=1, description="chance a caption becomes ''")
    ema_decay: float = Field(0.0, ge=0, lt=1, description="EMA of the adapters, exported; 0: off")
    stop_after_step: int = Field(-1, ge=-1, description="stop (and hand on) here; -1: at steps")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints")

    # --- watching -------------------------------------------------------------------------
    sample_every: int = Field(0, ge=0, description="steps between sample videos; 0: never")
    sample_prompts: list[str] = Field(
        default_factory=list, description="prompts of the samples (empty: the first captions)"
    )
    sample_steps: int | None = Field(None, ge=1, description="denoising steps of the samples")
    guidance_scale: float | None = Field(None, ge=0, description="guidance of the samples")

    @property
    def stop(self) -> int:
        return self.steps if self.stop_after_step < 0 else self.stop_after_step


# What a resumed run may change: where it stops, what it writes and where things are, not what
# it learns (`steps` sets the cosine schedule, so every later step follows it: as in `train`).
RESUMABLE_CHANGES = {
    "data",
    "out",
    "threads",
    "device",
    "steps",
    "stop_after_step",
    "checkpoint_every",
    "sample_every",
    "sample_prompts",
    "sample_steps",
    "guidance_scale",
    "trigger_words",
}


def load_finetune_config(path: str | Path) -> FinetuneConfig:
    """Read a TOML fine-tuning config; refuse (InvalidRequest, one line) what does not fit."""
    return finetune_config(read_toml(path), where=f"config {str(Path(path))!r}")


def finetune_config(data: dict[str, Any], *, where: str = "config") -> FinetuneConfig:
    """A FinetuneConfig from plain values, or one line naming the key at fault (`argument`)."""
    try:
        config = FinetuneConfig(**data)
    except ValidationError as e:
        error = e.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        value = data.get(key)
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, FinetuneConfig.model_fields, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise InvalidRequest(f"{where}: unknown key `{key}`{hint}", argument=key) from None
        if error["type"] == "missing":
            help_ = FinetuneConfig.model_fields[key].description
            raise InvalidRequest(f"{where}: `{key}` is missing: {help_}", argument=key) from None
        message = error["msg"][0].lower() + error["msg"][1:]
        raise InvalidRequest(
            f"{where}: `{key}` = {value!r}: {message}", argument=key, value=value
        ) from None
    for key in ("out", "data"):
        try:
            run_path(getattr(config, key), key=key)
        except InvalidRequest as e:
            raise InvalidRequest(
                f"{where}: {e}", argument=key, value=getattr(config, key)
            ) from None
    if config.stop_after_step == 0 or config.stop_after_step > config.steps:
        raise InvalidRequest(
            f"{where}: `stop_after_step` = {config.stop_after_step}: must be -1 or from 1 to "
            f"`steps` ({config.steps})",
            argument="stop_after_step",
            value=config.stop_after_step,
        )
    return config


# ---------------------------------------------------------------------------------------------
# 2. The model: found, checked, loaded, adapted


@dataclass(frozen=True)
class Base:
    """The model a run adapts, as the card of its LoRA names it."""

    card: ModelCard
    folder: Path
    family: LoraFamily
    shape: Shape

    @property
    def revision(self) -> str:
        # a hub snapshot's folder is named for its commit; a shipped model has its own revision
        return self.folder.name if self.card.local_path is None else self.card.revision


def find_base(config: FinetuneConfig) -> Base:
    """The card, family, training shape and folder of `config.model`, checked before anything
    loads: an unknown model, a family without LoRA support, a shape the model cannot train at,
    a model not downloaded."""
    from ..models.resolve import find_card, locate

    with about("model", config.model):
        card = find_card(config.model)
        family = FAMILIES.get(card.pipeline_class)
        if family is None:
            from ..models.cards import CARDS

            able = [c.name for c in CARDS if c.pipeline_class in FAMILIES]
            raise InvalidRequest(
                f"{card.name} is a {card.pipeline_class} model, which promptreel cannot "
                f"fine-tune yet; it fine-tunes {', '.join(FAMILIES)} models: {', '.join(able)}",
                argument="model",
                value=config.model,
            )
        if config.text_encoder and family.tokens is None:
            raise InvalidRequest(
                f"`text_encoder` = true: a {family.pipeline_class} LoRA adapts the "
                f"{family.denoiser} only, not {card.name}'s text encoder; set "
                "`text_encoder = false`",
                argument="text_encoder",
                value=True,
            )
        target_pattern(family, config.target_modules, config.temporal)  # `temporal` it can do
        shape = _training_shape(config, card)
        folder = locate(card)
        vae_class = _vae_class(folder) if config.vae else None
        if vae_class not in (None, "AutoencoderKL"):
            raise InvalidRequest(
                f"`vae` = true: {card.name}'s VAE is a {vae_class}; promptreel adapts "
                "frame-by-frame AutoencoderKL decoders only; set `vae = false`",
                argument="vae",
                value=True,
            )
    return Base(card, folder, family, shape)


def _vae_class(folder: Path) -> str:
    from .. import jsontext

    index = jsontext.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    return str((index.get("vae") or [None, "none"])[1])


def _training_shape(config: FinetuneConfig, card: ModelCard) -> Shape:
    shape = Shape(
        num_frames=config.num_frames or card.num_frames,
        height=config.height or card.height,
        width=config.width or card.width,
        fps=config.fps or card.fps,
    )
    family, multiple, name = card.family, card.family.size_multiple, card.name
    pixels = shape.height * shape.width
    rules = [
        ("height", shape.height % multiple == 0, f"must be a multiple of {multiple} for {name}"),
        ("width", shape.width % multiple == 0, f"must be a multiple of {multiple} for {name}"),
        (
            "num_frames",
            shape.num_frames <= card.max_frames,
            f"{name} takes {card.max_frames} at most",
        ),
        (
            "num_frames",
            (shape.num_frames - family.frame_offset) % family.frame_step == 0,
            f"{name} takes {family.frame_step} k + {family.frame_offset} frames",
        ),
    ]
    if card.fixed_size:
        only = f"{name} trains only at {card.width}x{card.height} (its fixed size)"
        rules.append(("height", shape.height == card.height, only))
        rules.append(("width", shape.width == card.width, only))
    limit = f"height x width is {pixels} pixels, more than {name}'s {card.max_pixels}"
    rules.append(("height", pixels <= card.max_pixels, limit))
    for key, ok, why in rules:
        if not ok:
            value = getattr(shape, key)
            raise InvalidRequest(
                f"`{key}` = {value}: {why}; set another `{key}`", argument=key, value=value
            )
    return shape


def load_base(base: Base, device: str) -> Any:
    """The pipeline, float32 on `device`, every weight frozen; safetensors only, no remote
    code (models.model_index refuses a model_index.json that names other code)."""
    import diffusers
    import transformers

    from ..models.model_index import check_model_index
    from ..models.resolve import locate_extra

    check_model_index(base.folder)
    # the run reports its own progress; the libraries' loading bars would scribble over it
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    cls = getattr(diffusers, base.family.pipeline_class)
    try:
        # the other repos the card needs, as generation loads them (AnimateDiff's motion
        # adapter: without it the pipeline makes motion modules of random weights)
        parts = {
            argument: getattr(diffusers, class_name).from_pretrained(
                locate_extra(repo), dtype=torch.float32, use_safetensors=True
            )
            for argument, (repo, class_name) in base.card.extra_repos.items()
        }
        pipe = cls.from_pretrained(
            base.folder,
            dtype=torch.float32,
            variant=base.card.variant,
            use_safetensors=True,
            **parts,
        )
    except Exception as exc:  # a broken or foreign folder fails in many ways; name the first
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModelNotFound(
            f"could not load {base.card.name} from {base.folder} (safetensors only): "
            f"{type(exc).__name__}: {first}",
            argument="model",
            value=base.card.name,
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False).eval().to(device)
    return pipe


# The VAE decoder's layers a `vae = true` LoRA adapts: every resnet's convolutions, the
# attention of its middle block and the last convolution (what makes the colours).
VAE_TARGETS = r"decoder\.(?:.*\.)?(?:conv1|conv2|conv_out|to_q|to_k|to_v|to_out\.0)"


def adapted(family: LoraFamily, config: FinetuneConfig) -> dict[str, str]:
    """The components that take adapters, in order, each with its peft target regex."""
    patterns = {family.denoiser: target_pattern(family, config.target_modules, config.temporal)}
    if config.text_encoder:
        patterns["text_encoder"] = target_pattern(family, list(TEXT_TARGETS), temporal=True)
    if config.vae:
        patterns["vae"] = VAE_TARGETS
    return patterns


def add_lora(pipe: Any, family: LoraFamily, config: FinetuneConfig) -> list[torch.nn.Module]:
    """Put LoRA layers on every component `adapted` names (A Gaussian, B zero: the model is
    unchanged at step 0); return the adapters' layers, component by component, in module order
    (their parameters are what trains)."""
    from peft import LoraConfig, inject_adapter_in_model

    layers = []
    for component, pattern in adapted(family, config).items():
        module = getattr(pipe, component)
        lora_config = LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha or config.rank,
            target_modules=pattern,
            init_lora_weights="gaussian",
        )
        try:
            inject_adapter_in_model(lora_config, module)
        except ValueError as e:  # peft: no layer matched, or one that is not linear or conv
            first = (str(e).strip().splitlines() or [""])[0]
            raise InvalidRequest(
                f"`target_modules` = {config.target_modules!r} does not fit the model's "
                f"{component}: {first}",
                argument="target_modules",
                value=config.target_modules,
            ) from None
        layers += [
            layer
            for name, layer in module.named_modules()
            if name.endswith((".lora_A.default", ".lora_B.default"))
        ]
    return layers


def adapted_layers(denoiser: Any, family: LoraFamily) -> dict[str, int]:
    """How many layers carry an adapter: spatial, temporal."""
    from peft.tuners.lora import LoraLayer

    names = [n for n, m in denoiser.named_modules() if isinstance(m, LoraLayer)]
    temporal = sum(is_temporal(family, n) for n in names)
    return {"spatial": len(names) - temporal, "temporal": temporal}


def trigger_words(captions: list[str], tokenizer: Any) -> list[str]:
    """The caption words the base tokenizer does not know whole (it splits them in pieces):
    what a prompt should say to call up what the LoRA learned."""
    from .model import caption_words

    return [word for word in caption_words(captions) if len(tokenizer.tokenize(word)) > 1]


# ---------------------------------------------------------------------------------------------
# 3. The cache: every clip through the VAE, every caption through the text encoder, once


def _cache_key(base: Base, digest: str, config: FinetuneConfig) -> dict[str, Any]:
    shape = base.shape
    return {
        "format": 2,  # 2: text inputs as a dict, token ids
        "frames": config.vae,  # the frames too, which the VAE's decoder learns to make
        "data_sha256": digest,
        "repo_id": base.card.repo_id,
        "revision": base.revision,
        "variant": base.card.variant,
        "shape": [shape.num_frames, shape.height, shape.width, shape.fps],
    }


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    cache = load_checkpoint(path)
    return cache if cache.get("key") == key else None


def _build_cache(
    pipe: Any, family: LoraFamily, frames: list[np.ndarray], captions: list[str], *, vae: bool
) -> dict[str, Any]:
    """The latents of every clip; the text inputs of every caption and, last, of the empty
    caption (which caption dropout picks), and their token ids where the family has them;
    with `vae`, the frames (uint8), which the decoder learns to make from those latents."""
    latents = torch.stack([family.encode_video(pipe, torch.from_numpy(f)) for f in frames])
    texts = [*captions, ""]
    tokens = None if family.tokens is None else family.tokens(pipe, texts)
    pixels = torch.from_numpy(np.stack(frames)) if vae else None
    return {
        "latents": latents,
        "text": family.encode_text(pipe, texts),
        "tokens": tokens,
        "frames": pixels,
    }


# ---------------------------------------------------------------------------------------------
# 4. The LoRA folder


@contextmanager
def _averaged(params: list[torch.nn.Parameter], ema: EMA | None) -> Iterator[None]:
    """The EMA weights in the adapters for a while (samples, export); none without an EMA."""
    if ema is None:
        yield
        return
    raw = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, s in zip(params, ema.shadow, strict=True):
            p.copy_(s)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, r in zip(params, raw, strict=True):
                p.copy_(r)


def export_lora(
    folder: Path,
    pipe: Any,
    base: Base,
    config: FinetuneConfig,
    *,
    step: int,
    data: dict[str, Any],
    captions: list[str],
) -> Path:
    """Write `folder` (atomically): the adapters as diffusers' `save_lora_weights` of the
    pipeline class writes them (`unet.<layer>.lora_A.weight` / `lora_B.weight`, and with
    `text_encoder` `text_encoder.<layer>...`; the peft config's r, alpha and target regex as
    each component's metadata), in the base's own precision (half where the model runs in half,
    unless a value would overflow), and the card `lora.json`. With `vae`, the decoder's
    adapters join the same file as `vae.<layer>...`, in the same layout (`save_lora_weights`
    knows no VAE part; `pipe.vae.load_lora_adapter(..., prefix="vae")` reads it)."""
    import diffusers
    from peft import get_peft_model_state_dict

    from ..device import DTYPES

    family = base.family
    patterns = adapted(family, config)
    states = {name: get_peft_model_state_dict(getattr(pipe, name)) for name in patterns}
    values = [v for state in states.values() for v in state.values()]
    dtype = DTYPES.get(base.card.dtype, torch.float32)
    if dtype == torch.float16 and any(v.abs().max() > 65504 for v in values):
        dtype = torch.float32
    alpha = config.alpha or config.rank
    counts = adapted_layers(getattr(pipe, family.denoiser), family)
    saved: dict[str, Any] = {}
    for name, state in states.items():
        saved[f"{name}_lora_layers"] = {
            key: value.detach().to("cpu", dtype).contiguous() for key, value in state.items()
        }
        saved[f"{name}_lora_adapter_metadata"] = {
            "r": config.rank,
            "lora_alpha": alpha,
            "target_modules": patterns[name],
        }
    card = {
        "promptreel_lora": 1,
        "base": {
            "model": base.card.name,
            "repo_id": base.card.repo_id,
            "revision": base.revision,
            "pipeline": family.pipeline_class,
        },
        "rank": config.rank,
        "alpha": alpha,
        "target_modules": list(config.target_modules),
        "components": list(patterns),
        "layers": {
            "spatial": {"count": counts["spatial"], "where": family.spatial_layers},
            "temporal": {
                "count": counts["temporal"],
                "where": family.temporal_layers if config.temporal else "none (temporal = false)",
            },
            "text_encoder": {
                "count": sum(1 for key in states.get("text_encoder", {}) if ".lora_A." in key),
                "where": ", ".join(TEXT_TARGETS) if config.text_encoder else "none",
            },
            "vae": {
                "count": sum(1 for key in states.get("vae", {}) if ".lora_A." in key),
                "where": "decoder: every resnet's convolutions, the middle attention, conv_out"
                if config.vae
                else "none",
            },
        },
        "steps": step,
        "weights": "ema" if config.ema_decay > 0 else "raw",
        "dtype": str(dtype).removeprefix("torch."),
        "data": data,
        "trigger_words": list(config.trigger_words) or trigger_words(captions, pipe.tokenizer),
        "training": {
            "lr": config.lr,
            "batch": config.batch,
            "seed": config.seed,
            "caption_dropout": config.caption_dropout,
        },
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("promptreel", "diffusers", "peft", "torch")
        },
    }
    pipeline_class = getattr(diffusers, family.pipeline_class)
    vae_layers = saved.pop("vae_lora_layers", None)
    vae_metadata = saved.pop("vae_lora_adapter_metadata", None)

    def write(temp: Path) -> None:
        pipeline_class.save_lora_weights(temp, safe_serialization=True, **saved)
        if vae_layers is not None:
            _add_part(temp / WEIGHTS_NAME, "vae", vae_layers, vae_metadata)
        (temp / WEIGHTS_NAME).chmod(0o644)  # safetensors writes 0600; a LoRA is shared
        (temp / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")

    return _replace_folder(folder, write)


def _add_part(
    file: Path, part: str, layers: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Add one component's adapters to a LoRA file as diffusers writes a part: its keys under
    `part.`, its peft config under `part.` in the header's `lora_adapter_metadata`."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(file), "pt") as f:
        header = dict(f.metadata() or {})
    peft = json.loads(header.get("lora_adapter_metadata", "{}"))
    peft |= {f"{part}.{key}": value for key, value in metadata.items()}
    header["lora_adapter_metadata"] = json.dumps(peft, sort_keys=True)
    tensors = load_file(file) | {f"{part}.{key}": value for key, value in layers.items()}
    save_file(tensors, file, metadata=header)


# ---------------------------------------------------------------------------------------------
# 5. The run


def finetune(
    config: FinetuneConfig, *, resume: bool = True, progress: Progress | None = None
) -> Path:
    """Fine-tune (or go on fine-tuning) up to the config's stop; return the LoRA folder."""
    from ..device import pick_device

    # 1. Check everything that can be checked before a clip is decoded or a model loaded.
    base = find_base(config)
    device = pick_device(config.device)
    data_folder = run_path(config.data, key="data")
    clips = find_clips(data_folder)
    if config.batch > len(clips):
        raise InvalidRequest(
            f"`batch` = {config.batch} is more than the data's {len(clips)} clips",
            argument="batch",
            value=config.batch,
        )
    digest = data_sha256(clips)
    out = run_path(config.out)
    ckpt_path, lora_folder = out / "checkpoint.pt", out / "lora"
    state = load_checkpoint(ckpt_path) if resume and ckpt_path.exists() else None
    if state is not None:
        _check_resumable(state, config, out, digest)
        if state["step"] > config.stop:
            raise InvalidRequest(
                f"{str(out)!r} holds a run at step {state['step']}, past this config's stop "
                f"({config.stop}); give a later stop, or start over (--fresh, resume=False)",
                argument="stop_after_step",
                value=config.stop_after_step,
            )
        if state["step"] == config.stop and _handed_on(lora_folder, config.stop):
            return lora_folder
    torch.set_num_threads(config.threads)

    # 2. The clips at the training shape (all of them, before the model loads: a bad clip is
    # one line now, not after minutes of loading), unless the cache already holds them.
    captions = [clip.caption for clip in clips]
    key = _cache_key(base, digest, config)
    cache = _read_cache(out / "cache.pt", key)
    frames = (
        [] if cache is not None else [read_clip(c, base.shape, folder=data_folder) for c in clips]
    )

    # 3. The run folder (a fresh run's old results go); the model, frozen; the cache; the
    # adapters (seeded: their start follows `seed`).
    out.mkdir(parents=True, exist_ok=True)
    if state is None:
        for stale in (out / "samples", lora_folder):
            shutil.rmtree(stale, ignore_errors=True)
    pipe = load_base(base, device)
    if cache is None:
        cache = {"key": key, **_build_cache(pipe, base.family, frames, captions, vae=config.vae)}
        save_atomic(cache, out / "cache.pt")
    del frames
    torch.manual_seed(config.seed)
    family = base.family
    denoiser = getattr(pipe, family.denoiser)
    layers = add_lora(pipe, family, config)
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.requires_grad_(True)
    groups = [
        [p for p in getattr(pipe, component).parameters() if p.requires_grad]
        for component in adapted(family, config)
    ]

    # 4. Optimizer, schedule, EMA, batches, noise; or all of them as the checkpoint left them.
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = lr_schedule(optimizer, config.warmup_steps, config.steps)
    ema = EMA(layers, config.ema_decay) if config.ema_decay > 0 else None
    batches = Batches(len(clips), config.batch, config.seed)
    noise = family.noise_schedule(pipe, fps=base.shape.fps)
    step, seconds = 0, 0.0
    if state is not None:
        with torch.no_grad():
            for p, saved in zip(params, state["lora"], strict=True):
                p.copy_(saved)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["lr_schedule"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
            ema.shadow = [s.to(p.device) for s, p in zip(ema.shadow, params, strict=True)]
        batches = Batches(len(clips), config.batch, config.seed, **state["data"])
        set_rng_state(state["rng"], gen)
        step, seconds = state["step"], state["seconds"]
    kept = None if state is None else state["step"]
    log = Log(out / "log.jsonl", None if kept is None else (lambda row: row["step"] <= kept))
    started = time.perf_counter() - seconds
    latents, text, tokens = cache["latents"], cache["text"], cache["tokens"]
    empty = len(clips)  # the row of the empty caption
    data = {"sha256": digest, "clips": len(clips), **vars(base.shape)}

    def checkpoint() -> None:
        save_atomic(
            {
                "kind": "finetune",
                "config": config.model_dump(),
                "data_sha256": digest,
                "step": step,
                "lora": [p.detach().cpu() for p in params],
                "optimizer": optimizer.state_dict(),
                "lr_schedule": schedule.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "data": batches.state(),
                "rng": rng_state(gen),
                "seconds": _elapsed(started),
            },
            ckpt_path,
        )
        plot_losses(log.rows, out / "loss.png")

    # 5. The adapters learn the model's own loss on the cached latents.
    denoiser.train()
    stage_start, first = time.perf_counter(), step
    while step < config.stop:
        picked = batches.next()
        drop = torch.rand(len(picked), generator=gen) < config.caption_dropout
        rows = torch.where(drop, empty, picked)
        if config.text_encoder:  # through the adapted text encoder, at every step
            batch_text = family.text_from_tokens(pipe, tokens[rows])
        else:
            batch_text = {key: value[rows] for key, value in text.items()}
        loss = family.loss(pipe, latents[picked], batch_text, noise, gen)
        row = {"stage": family.denoiser, "step": step + 1, "loss": loss.item()}
        if config.vae:  # the decoder's own loss: its parameters are apart from the rest
            drawn = frame_reconstruction_loss(pipe, latents[picked], cache["frames"][picked], gen)
            row["vae_loss"] = drawn.item()
            loss = loss + drawn
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:  # each component's adapters by themselves
            for group in groups:
                torch.nn.utils.clip_grad_norm_(group, config.grad_clip)
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update(layers)
        step += 1
        log.write(row | {"seconds": _elapsed(started)})
        if progress is not None:
            rate = (time.perf_counter() - stage_start) / max(1, step - first)
            progress(step, config.stop, row["loss"], rate * (config.stop - step))
        if config.sample_every and step % config.sample_every == 0:
            with _averaged(params, ema):
                _write_samples(
                    pipe, base, config, captions, out / "samples" / f"step-{step:06d}.mp4"
                )
        if step % config.checkpoint_every == 0 or step == config.stop:
            checkpoint()

    # 6. Hand on the LoRA (its EMA weights, with an EMA).
    denoiser.eval()
    with _averaged(params, ema):
        return export_lora(lora_folder, pipe, base, config, step=step, data=data, captions=captions)


def _check_resumable(state: dict[str, Any], config: FinetuneConfig, out: Path, digest: str) -> None:
    if state.get("kind") != "finetune":
        raise InvalidRequest(
            f"{str(out)!r} holds a `promptreel train` run, not a fine-tune; use another `out`",
            argument="out",
            value=config.out,
        )
    now = config.model_dump()
    for key, value in state["config"].items():
        if key not in RESUMABLE_CHANGES and now.get(key) != value:
            raise InvalidRequest(
                f"{str(out)!r} holds a run with `{key}` = {value!r}, not {now.get(key)!r}; use "
                "another `out`, or start over (--fresh, resume=False)",
                argument=key,
                value=now.get(key),
            )
    if state["data_sha256"] != digest:
        raise InvalidRequest(
            f"{str(out)!r} holds a run on other data (its clips or captions have changed); use "
            "another `out`, or start over (--fresh, resume=False)",
            argument="data",
            value=config.data,
        )


def _handed_on(folder: Path, step: int) -> bool:
    """Whether `folder` holds the LoRA of `step`, complete."""
    try:
        card = json.loads((folder / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (folder / WEIGHTS_NAME).is_file() and card.get("steps") == step


@torch.no_grad()
def _write_samples(
    pipe: Any, base: Base, config: FinetuneConfig, captions: list[str], path: Path
) -> None:
    """One video: the sample prompts (or the first four distinct captions) in a grid, at the
    training shape, seed `config.seed`."""
    from ..video import Video

    prompts = list(config.sample_prompts) or list(dict.fromkeys(captions))[:4]
    shape = base.shape
    denoiser = getattr(pipe, base.family.denoiser)
    denoiser.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            frames = pipe(
                prompts,
                num_frames=shape.num_frames,
                height=shape.height,
                width=shape.width,
                num_inference_steps=config.sample_steps or base.card.num_inference_steps,
                guidance_scale=(
                    base.card.guidance_scale
                    if config.guidance_scale is None
                    else config.guidance_scale
                ),
                generator=torch.Generator().manual_seed(config.seed),
                output_type="np",
            ).frames
    finally:
        denoiser.train()
    frames = (np.asarray(frames) * 255).round().clip(0, 255).astype(np.uint8)  # B, F, H, W, 3
    cols = int(np.ceil(np.sqrt(len(frames))))
    rows = -(-len(frames) // cols)
    pad = np.zeros((rows * cols - len(frames), *frames.shape[1:]), np.uint8)
    grid = np.concatenate([frames, pad]).reshape(rows, cols, *frames.shape[1:])
    grid = grid.transpose(2, 0, 3, 1, 4, 5).reshape(frames.shape[1], rows * shape.height, -1, 3)
    path.parent.mkdir(exist_ok=True)
    record = {"prompts": prompts, "seed": config.seed, "grid": [rows, cols]}
    Video(np.ascontiguousarray(grid), shape.fps, record).save(path, overwrite=True)


def _elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


__all__ = [
    "FAMILIES",
    "Base",
    "FinetuneConfig",
    "LoraFamily",
    "add_lora",
    "export_lora",
    "find_base",
    "finetune",
    "finetune_config",
    "load_base",
    "load_finetune_config",
]
