"""Loading a diffusers pipeline safely, and keeping it loaded between requests.

Safetensors only, no remote code, no custom pipeline: a model folder is data, never code.
One pipeline stays loaded at a time: a second request on the same model reuses it, a request on
another model frees it first (two video models rarely fit in memory together).
"""

from __future__ import annotations

import gc
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers

from ..device import DTYPES, check_offload
from ..errors import InvalidRequest, ModelNotFound
from .card import ModelCard
from .model_index import check_model_index, read_model_index


@dataclass(frozen=True)
class LoadOptions:
    """What a loaded pipeline depends on: change any of these and it must be loaded anew."""

    folder: Path
    pipeline_class: str
    device: str
    dtype: str
    offload: str  # none | model | sequential | group
    fp8: bool  # the denoiser's weights stored in float8
    compile: bool
    parts: tuple[tuple[str, str], ...] = ()  # other repos loaded in: (argument, folder)


@dataclass
class _Loaded:
    options: LoadOptions
    pipe: Any
    scheduler: Any  # the repo's own, to restore after a request that swapped it


_current: _Loaded | None = None


def load_pipeline(card: ModelCard, options: LoadOptions) -> tuple[Any, Any, bool]:
    """The pipeline for `card`, its own scheduler, and whether it was already loaded."""
    global _current
    if _current is not None and _current.options == options:
        return _current.pipe, _current.scheduler, True
    unload()
    pipe = _from_pretrained(card, options)
    if options.fp8:  # before placing: the offload hooks move what this stores
        _denoiser(pipe).enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=DTYPES[options.dtype]
        )
    place(pipe, device=options.device, offload=options.offload)
    if options.compile:
        name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
        setattr(pipe, name, torch.compile(getattr(pipe, name)))
    pipe.set_progress_bar_config(disable=True)
    _alias_clip_text_model(pipe)
    _current = _Loaded(options, pipe, pipe.scheduler)
    return pipe, pipe.scheduler, False


def unload() -> None:
    """Free the loaded pipeline's memory."""
    global _current
    if _current is None:  # nothing to free, and a full collection costs 0.2 s after the imports
        return
    _current = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def place(pipe: Any, *, device: str, offload: str) -> None:
    """Put the pipeline on `device`, or let it stream there piece by piece (`offload`).

    model: whole components move to the GPU when used (saves about half the memory, small cost);
    sequential: layer by layer (least memory, much slower); group: groups of layers with
    prefetching (near `sequential` memory at near `model` speed).
    """
    check_offload(device, offload)
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "group":
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_type="leaf_level",
            use_stream=device == "cuda",
        )
    else:
        raise InvalidRequest(f"--offload must be none, model, sequential or group, not {offload}.")


def set_memory_switches(
    pipe: Any, *, vae_slicing: bool, vae_tiling: bool, forward_chunking: bool
) -> None:
    """Switch the per-request memory savers on or off (they persist on a loaded pipeline)."""
    vae = pipe.vae
    for flag, on, off in (
        (vae_slicing, "enable_slicing", "disable_slicing"),
        (vae_tiling, "enable_tiling", "disable_tiling"),
    ):
        try:
            getattr(vae, on if flag else off)()
        except NotImplementedError:  # diffusers' base class has the method but raises
            if flag:
                switch = on.split("_")[1]
                raise InvalidRequest(
                    f"the {type(vae).__name__} VAE cannot use {switch}; remove --vae-{switch} "
                    "(lower --param decode_chunk_size where the model has it)."
                ) from None
    chunk_feed_forward(_denoiser(pipe), forward_chunking)


def chunk_feed_forward(denoiser: Any, on: bool) -> None:
    """Chunk a UNet's feed-forward layers, or stop.

    The blocks diffusers' enable_forward_chunking reaches; walking them ourselves also gives
    the "off" switch that some models (SVD's UNet) lack."""
    for block in [m for m in denoiser.modules() if hasattr(m, "set_chunk_feed_forward")]:
        # chunk size 1 over dim 1 (frames or tokens): feed-forward memory drops by that length;
        # temporal blocks take no dim (theirs is fixed)
        size = 1 if on else None
        if "dim" in inspect.signature(block.set_chunk_feed_forward).parameters:
            block.set_chunk_feed_forward(size, dim=1)
        else:
            block.set_chunk_feed_forward(size)


def check_forward_chunking(folder: Path) -> None:
    """Before loading: only UNets chunk their feed-forward layers (CogVideoX, LTX and Wan
    transformers have no such switch)."""
    if "unet" not in read_model_index(folder):
        raise InvalidRequest(
            "--forward-chunking works only for UNet models; this one is a transformer. Remove "
            "it, or try --vae-tiling or --offload to save memory."
        )


def _denoiser(pipe: Any) -> Any:
    # not `unet or transformer`: a compiled module has no truth value
    return pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer


def _from_pretrained(card: ModelCard, options: LoadOptions) -> Any:
    check_model_index(options.folder)
    # promptreel reports loading as one stage of its own progress; the libraries' bars would
    # scribble over it (and over one-line errors)
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    dtype = DTYPES[options.dtype]
    folders = dict(options.parts)
    extra = {}
    for argument, (_, class_name) in card.extra_repos.items():
        cls = getattr(diffusers, class_name)
        extra[argument] = cls.from_pretrained(folders[argument], dtype=dtype, use_safetensors=True)
    cls = getattr(diffusers, options.pipeline_class)
    try:
        return cls.from_pretrained(
            options.folder,
            dtype=dtype,  # always: without it transformers parts keep the file's dtype
            variant=card.variant,
            use_safetensors=True,
            **extra,
        )
    except Exception as exc:  # a broken or foreign folder fails in many ways; name the first
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelNotFound(
            f"could not load {card.name} from {options.folder} (safetensors only): "
            f"{type(exc).__name__}: {first_line}"
        ) from exc


def _alias_clip_text_model(pipe: Any) -> None:
    """Let pipelines reach `text_encoder.text_model` on transformers 5.

    transformers 5 flattened CLIPTextModel (its layers are its own children now), but the
    I2VGen-XL pipeline (clip_skip=1 by default) and any `clip_skip` use still ask for
    `text_encoder.text_model.final_layer_norm`. The alias goes in the instance dict, not among
    the submodules, so state dicts and `.to()` never see a cycle.
    """
    encoder = getattr(pipe, "text_encoder", None)
    if hasattr(encoder, "final_layer_norm") and "text_model" not in encoder._modules:
        object.__setattr__(encoder, "text_model", encoder)
