"""Will it fit: each stage's peak memory under each memory setup, before any weight loads.

The weights are the components' own sizes at the setup's dtype. The activations are found by
running each component on the meta device (`trace.LiveBytes`), built from the model folder's
configs, with the inputs the pipeline gives it for this request: the text encoder on a padded
prompt, the denoiser on one step's batch (the guidance copies), the VAE decoding the latents
as the pipeline decodes them (all frames at once, per frame with slicing, in tiles, or in its
own chunks). So a model's attention backend, a VAE's tiling and a decoder's frame chunks
count as they run, not as a formula of them.

Where the weights sit during a stage follows the offload: all of them on the accelerator
(none), the component working (model), or a layer or two at a time (sequential, group). Host
memory holds the process, and every weight that is not on the accelerator (and, loading, all
of them). The time cost is relative to no offload at the model's dtype: rough factors, for
ranking the setups, not a clock.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
from copy import deepcopy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import DTYPES
from ..models.architectures import Architecture
from ..models.card import ModelCard
from ..models.families import BATCHES_VIDEOS
from ..request import GenerationRequest, Settings
from . import stored
from .trace import LiveBytes

STAGES = ("encode", "denoise", "decode")
OFFLOADS = ("none", "model", "group", "sequential")
# what a CUDA context takes on the GPU beside torch's allocator
CUDA_CONTEXT_BYTES = 500 * 2**20
# rough time factors against no offload (diffusers' docs: model offload costs little, group
# offload with streams near it, sequential offload is "much slower")
OFFLOAD_TIME = {"none": 1.0, "model": 1.1, "group": 1.3, "sequential": 4.0}
TILING_TIME = 1.3  # on the decode: overlapping tiles decode some pixels twice
CHUNKING_TIME = 1.05
FP8_TIME = 1.1  # on the denoise: every layer's weights cast up at every step
HALF_TIME = 0.5  # half precision against float32 on a GPU
STAGE_SHARE = {"encode": 0.02, "denoise": 0.9, "decode": 0.08}  # of a run, for the factors


class PlanError(Exception):
    """The planner cannot estimate this model (an architecture it does not know)."""


@dataclass(frozen=True)
class Setup:
    """The memory switches of one run, named as `generate`'s options."""

    dtype: str
    offload: str = "none"
    vae_slicing: bool = False
    vae_tiling: bool = False
    forward_chunking: bool = False
    fp8: bool = False

    @classmethod
    def of(cls, request: GenerationRequest, dtype: str) -> Setup:
        """The setup a request's own switches make, at the dtype it resolved to."""
        return cls(
            dtype,
            request.offload,
            request.vae_slicing,
            request.vae_tiling,
            request.forward_chunking,
            request.fp8,
        )


@dataclass(frozen=True)
class Plan:
    """The predicted peaks of one setup: per stage, bytes on the accelerator and in host RAM."""

    setup: Setup
    stages: dict[str, dict[str, int]]  # stage -> {"peak_vram_bytes", "peak_ram_bytes"}
    time_cost: float

    @property
    def peak_vram_bytes(self) -> int:
        return max(s["peak_vram_bytes"] for s in self.stages.values())

    @property
    def peak_ram_bytes(self) -> int:
        return max(s["peak_ram_bytes"] for s in self.stages.values())

    def fits(self, vram: int | None, ram: int | None) -> bool:
        return (vram is None or self.peak_vram_bytes <= vram) and (
            ram is None or self.peak_ram_bytes <= ram
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "setup": asdict(self.setup),
            "peak_vram_bytes": self.peak_vram_bytes,
            "peak_ram_bytes": self.peak_ram_bytes,
            "time_cost": round(self.time_cost, 3),
            "stages": self.stages,
        }


@dataclass(frozen=True)
class Footprint:
    """What a model needs for one request, whatever the setup: per component its weight bytes
    (at the dtype traced) and its largest layer's, the denoiser's parameters that `--fp8`
    stores in float8, and each stage's activation peak: the denoiser's with and without
    forward chunking, the VAE's with each of slicing and tiling."""

    dtype: str
    weights: dict[str, int]
    largest_layer: dict[str, int]
    fp8_parameters: int
    stage_components: dict[str, tuple[str, ...]]
    encode: int
    denoise: dict[bool, int]  # forward chunking -> peak
    decode: dict[tuple[bool, bool], int]  # (slicing, tiling) -> peak

    def as_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["denoise"] = [[k, v] for k, v in self.denoise.items()]
        fields["decode"] = [[list(k), v] for k, v in self.decode.items()]
        return fields

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Footprint:
        return cls(
            **{
                **fields,
                "stage_components": {k: tuple(v) for k, v in fields["stage_components"].items()},
                "denoise": {k: v for k, v in fields["denoise"]},
                "decode": {tuple(k): v for k, v in fields["decode"]},
            }
        )

    def activation(self, stage: str, setup: Setup) -> int:
        if stage == "encode":
            return self.encode
        if stage == "denoise":
            return self.denoise[setup.forward_chunking]
        return self.decode[(setup.vae_slicing, setup.vae_tiling)]


def setups(device: str, dtype: str, *, chunking: bool) -> list[Setup]:
    """The setups a model supports on `device`: offloads on a GPU only, VAE slicing and
    tiling, float8 weights (not on Apple's GPUs), and with `chunking` only those with forward
    chunking on (UNets)."""
    offloads = OFFLOADS if device != "cpu" else ("none",)
    fp8 = (False, True) if device != "mps" else (False,)
    return [
        Setup(dtype, offload, slicing, tiling, chunking, eight)
        for offload, slicing, tiling, eight in itertools.product(
            offloads, (False, True), (False, True), fp8
        )
    ]


def plan_all(
    card: ModelCard,
    architecture: Architecture,
    settings: Settings,
    dtype: str,
    device: str,
    process: int,
    limits: tuple[int | None, int | None],
) -> tuple[list[Plan], Plan | None]:
    """Every setup's plan, and the fastest that fits `limits` (GPU, host memory). Forward
    chunking is weighed only when nothing fits without it: its trace runs each feed-forward
    once per token (minutes on the meta device for a real UNet), and it saves the least."""
    plans: list[Plan] = []
    chosen = None
    for chunking in (False, True) if "unet" in architecture else (False,):
        wanted = setups(device, dtype, chunking=chunking)
        found = footprint(card, architecture, settings, dtype, wanted, device)
        plans += [plan(found, setup, device, process) for setup in wanted]
        chosen = best(plans, *limits)
        if chosen is not None:
            break
    return plans, chosen


def plan(footprint: Footprint, setup: Setup, device: str, process: int) -> Plan:
    """The peaks of `setup`, from what `footprint` measured at its dtype; `process` is what
    the process holds besides the model (Python, torch and the libraries: measured, as the
    planning process holds the same)."""
    scale = DTYPES[setup.dtype].itemsize / DTYPES[footprint.dtype].itemsize
    weights = {k: int(v * scale) for k, v in footprint.weights.items()}
    largest = {k: int(v * scale) for k, v in footprint.largest_layer.items()}
    denoiser = footprint.stage_components["denoise"][0]
    if setup.fp8:  # a byte a parameter, but for the layers diffusers keeps (norms, embeddings)
        eight = footprint.fp8_parameters
        weights[denoiser] -= eight * (DTYPES[setup.dtype].itemsize - 1)
    total = sum(weights.values())
    stages: dict[str, dict[str, int]] = {}
    for stage in STAGES:
        activation = int(footprint.activation(stage, setup) * scale)
        if setup.fp8 and stage == "denoise":  # the layer running, cast up
            activation += largest[denoiser]
        working = footprint.stage_components[stage]
        if setup.offload == "none":
            on_device = total
        elif setup.offload == "model":
            on_device = sum(weights[c] for c in working)
        else:  # a layer at a time; group offload prefetches the next one
            layers = 2 if setup.offload == "group" else 1
            on_device = layers * max((largest[c] for c in working), default=0)
        if device == "cpu":
            stages[stage] = {
                "peak_vram_bytes": 0,
                "peak_ram_bytes": process + total + activation,
            }
        else:
            held = total - on_device if setup.offload != "none" else 0
            loading = total if setup.offload == "none" else 0  # loaded on the host, then moved
            stages[stage] = {
                "peak_vram_bytes": CUDA_CONTEXT_BYTES + on_device + activation,
                "peak_ram_bytes": process + max(held, loading),
            }
    return Plan(setup, stages, _time_cost(setup, footprint.dtype, device))


def _time_cost(setup: Setup, native: str, device: str) -> float:
    cost = 0.0
    for stage, share in STAGE_SHARE.items():
        factor = OFFLOAD_TIME[setup.offload]
        if stage == "decode" and setup.vae_tiling:
            factor *= TILING_TIME
        if stage == "denoise" and setup.forward_chunking:
            factor *= CHUNKING_TIME
        if stage == "denoise" and setup.fp8:
            factor *= FP8_TIME
        cost += share * factor
    if device != "cpu" and DTYPES[setup.dtype].itemsize < DTYPES[native].itemsize:
        cost *= HALF_TIME
    elif device != "cpu" and DTYPES[setup.dtype].itemsize > DTYPES[native].itemsize:
        cost /= HALF_TIME
    return cost


def best(plans: list[Plan], vram: int | None, ram: int | None) -> Plan | None:
    """The fastest plan that fits; of equally fast ones, the one with fewest switches on (a
    switch that saves no time is not worth the change), then the least memory."""
    fitting = [p for p in plans if p.fits(vram, ram)]
    return min(fitting, key=_rank, default=None)


def _rank(p: Plan) -> tuple[float, int, int, int]:
    s = p.setup
    switches = (s.offload != "none") + s.vae_slicing + s.vae_tiling + s.forward_chunking + s.fp8
    return (round(p.time_cost, 6), switches, p.peak_vram_bytes, p.peak_ram_bytes)


# --- tracing on the meta device ------------------------------------------------------------


_traced: dict[str, Footprint] = {}  # the last footprints traced, by everything they depend on
_TRACED_KEPT = 32


def footprint(
    card: ModelCard,
    architecture: Architecture,
    settings: Settings,
    dtype: str,
    wanted: list[Setup],
    device: str,
) -> Footprint:
    """Build the model's components on the meta device from `architecture` (`folder_architecture`
    of a downloaded model, or `models.architectures`) and trace what each stage holds for
    `settings`, under the switches of `wanted`, on `device`'s kernels. The same request again
    (a rerun, a service's next job, a batch, another command) is not traced again."""
    # what the trace reads of the request: its shape, the guidance copies, SVD's chunk
    shape = (
        settings.num_frames,
        settings.height,
        settings.width,
        (settings.guidance_scale or 0) > 1,
        settings.params.get("decode_chunk_size"),
        _at_once(card, settings),
    )
    key = json.dumps(
        [card.name, architecture, shape, dtype, [asdict(w) for w in wanted], device],
        sort_keys=True,
        default=str,
    )
    if key not in _traced:
        if len(_traced) >= _TRACED_KEPT:
            _traced.pop(next(iter(_traced)))
        found = _kept(key)
        if found is None:
            found = _footprint(card, architecture, settings, dtype, wanted, device)
            stored.store(key, found.as_json())
        _traced[key] = found
    return _traced[key]


def _kept(key: str) -> Footprint | None:
    try:
        return Footprint.from_json(stored.load(key) or {})
    except (TypeError, KeyError, ValueError, AttributeError):  # none, or from another hand
        return None


def _footprint(
    card: ModelCard,
    architecture: Architecture,
    settings: Settings,
    dtype: str,
    wanted: list[Setup],
    device: str,
) -> Footprint:
    torch_dtype = DTYPES[dtype]
    components = _components(architecture, torch_dtype)
    denoiser_name = "unet" if "unet" in components else "transformer"
    if denoiser_name not in components or "vae" not in components:
        raise PlanError(f"{card.name} has no UNet or transformer and VAE to plan for")
    denoiser, vae = components[denoiser_name], components["vae"]
    encoders = [n for n in ("text_encoder", "image_encoder") if n in components]
    extra = [n for n in components if n not in (denoiser_name, "vae", *encoders)]
    stage_components = {
        "encode": tuple(encoders),
        "denoise": (denoiser_name, *extra),
        "decode": ("vae",),
    }
    weights = {name: _bytes(module) for name, module in components.items()}
    largest = {name: _largest_layer(module) for name, module in components.items()}
    videos = _at_once(card, settings)
    copies = 2 if (settings.guidance_scale or 0) > 1 else 1
    latents = _latent_shape(vae, settings)
    cpu = device == "cpu"
    chunk = settings.params.get("decode_chunk_size")  # SVD's frames per decoder call
    encode = sum(_trace(cpu, _encode, components[n], torch_dtype) for n in encoders)
    denoise = {}
    for chunking in sorted({s.forward_chunking for s in wanted}):
        if denoiser_name == "unet":
            _chunk(denoiser, on=chunking)
        denoise[chunking] = _trace(cpu, _denoise, denoiser, latents, copies, videos, torch_dtype)
    decode = {}
    for slicing, tiling in sorted({(s.vae_slicing, s.vae_tiling) for s in wanted}):
        if type(vae).__name__ == "AutoencoderKL":
            # frames are its batch, decoded at once or one by one: its memory is linear in
            # them, so two short traces give it (a sliced decode of 64 frames runs the
            # decoder 64 times, seconds on the meta device)
            one, two = (
                _trace(cpu, _decode, vae, _frames(latents, n), slicing, tiling, torch_dtype, chunk)
                for n in (1, 2)
            )
            decode[(slicing, tiling)] = one + (latents[1] * videos - 1) * (two - one)
        else:
            # a video's decode, traced; several at once hold about as much each, unless
            # sliced (one video at a time)
            decode[(slicing, tiling)] = _trace(
                cpu, _decode, vae, latents, slicing, tiling, torch_dtype, chunk
            ) * (1 if slicing else videos)
    return Footprint(
        dtype,
        weights,
        largest,
        _fp8_parameters(denoiser),
        stage_components,
        encode,
        denoise,
        decode,
    )


def _at_once(card: ModelCard, settings: Settings) -> int:
    """The videos of a request that go through the pipeline together (`BATCHES_VIDEOS`); the
    others are made one after another, each in one video's memory. (An image given to LTX
    runs its image pipeline, one call a seed: planned as a batch, on the safe side.)"""
    return settings.num_videos_per_prompt if card.family.pipeline_class in BATCHES_VIDEOS else 1


def _frames(latents: tuple[int, int, int, int], n: int) -> tuple[int, int, int, int]:
    channels, _, height, width = latents
    return (channels, n, height, width)


_built: dict[str, dict[str, nn.Module]] = {}  # the last architecture built, by its configs


def _components(architecture: Architecture, dtype: torch.dtype) -> dict[str, nn.Module]:
    """The architecture's components on the meta device; the last one built is kept, as
    planning one request traces it many times (and a service plans the same model again)."""
    key = json.dumps([architecture, str(dtype)], sort_keys=True, default=str)
    if key not in _built:
        _built.clear()
        _built[key] = {
            name: module
            for name, (class_name, config) in architecture.items()
            if (module := build(class_name, config, dtype)) is not None
        }
    return _built[key]


def folder_architecture(folder: Path, parts: dict[str, Path]) -> Architecture:
    """A downloaded model's components and their configs: the folder's (its model_index.json's
    entries with a config.json), and the other repos loaded with it (`parts`)."""
    from ..jsontext import loads

    index = loads((folder / "model_index.json").read_text())
    where = {name: folder / name for name, value in index.items() if isinstance(value, list)}
    where.update(parts)
    found: Architecture = {}
    for name, path in where.items():
        config_file = path / "config.json"
        if not config_file.is_file():
            continue  # a tokenizer, a scheduler, a feature extractor
        config = loads(config_file.read_text())
        class_name = config.get("_class_name") or (config.get("architectures") or [None])[0]
        if isinstance(class_name, str):
            found[name] = (class_name, config)
    return found


def build(class_name: str, config: dict[str, Any], dtype: torch.dtype) -> nn.Module | None:
    """The component on the meta device; None for a class that is no torch module."""
    for library in ("diffusers", "transformers"):
        cls = getattr(importlib.import_module(library), class_name, None)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, nn.Module):
            continue
        with torch.device("meta"):
            if library == "diffusers":
                module = cls.from_config(config)
            else:
                module = cls(cls.config_class.from_dict(config))
        # `.to("meta")` too: some layers make a parameter with the legacy `torch.Tensor([x])`,
        # which is on the CPU whatever the default device
        return module.to(device="meta", dtype=dtype).eval()
    return None


def _bytes(module: nn.Module) -> int:
    return sum(
        t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers())
    )


def _fp8_parameters(denoiser: nn.Module) -> int:
    """The parameters diffusers' layerwise casting stores in float8: its own choice of layers,
    made on a copy (it keeps norms, embeddings and the model's own exceptions as they are)."""
    copy = deepcopy(denoiser)
    copy.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=copy.dtype)
    return sum(p.numel() for p in copy.parameters() if p.dtype == torch.float8_e4m3fn)


def _largest_layer(module: nn.Module) -> int:
    leaves = [m for m in module.modules() if not list(m.children())]
    return max((_bytes(m) for m in leaves), default=0)


def _trace(cpu: bool, run: Any, *args: Any) -> int:
    tracker = LiveBytes(cpu_kernels=cpu)
    with torch.no_grad(), tracker:
        run(*args)
    return tracker.peak


def _chunk(unet: nn.Module, *, on: bool) -> None:
    from ..models.load import chunk_feed_forward

    chunk_feed_forward(unet, on)


def _latent_shape(vae: nn.Module, settings: Settings) -> tuple[int, int, int, int]:
    """(channels, latent frames, latent height, latent width) of the request."""
    name = type(vae).__name__
    config = vae.config
    if name in ("AutoencoderKL", "AutoencoderKLTemporalDecoder"):
        spatial, temporal = 2 ** (len(config.block_out_channels) - 1), 1
    elif name == "AutoencoderKLCogVideoX":
        spatial, temporal = (
            2 ** (len(config.block_out_channels) - 1),
            config.temporal_compression_ratio,
        )
    elif name == "AutoencoderKLLTXVideo":
        spatial, temporal = vae.spatial_compression_ratio, vae.temporal_compression_ratio
    elif name == "AutoencoderKLWan":
        spatial = 2 ** len(config.temperal_downsample)
        temporal = 2 ** sum(config.temperal_downsample)
    else:
        raise PlanError(f"the planner does not know {name} VAEs yet")
    frames = settings.num_frames if temporal == 1 else (settings.num_frames - 1) // temporal + 1
    return (
        getattr(config, "latent_channels", None) or config.z_dim,  # Wan's is z_dim
        frames,
        settings.height // spatial,
        settings.width // spatial,
    )


def _encode(encoder: nn.Module, dtype: torch.dtype) -> None:
    """One prompt (or image) through the encoder, padded as the pipelines pad it."""
    config = encoder.config
    if hasattr(config, "image_size"):
        encoder(torch.empty(1, 3, config.image_size, config.image_size, device="meta", dtype=dtype))
        return
    length = getattr(config, "max_position_embeddings", None) or _T5_LENGTH
    ids = torch.zeros(1, min(length, _T5_LENGTH), dtype=torch.long, device="meta")
    encoder(ids)


# T5 encoders have no length of their own: CogVideoX pads to 226, LTX to 128, Wan to 512
_T5_LENGTH = 512


def _denoise(
    model: nn.Module,
    latents: tuple[int, int, int, int],
    guidance_copies: int,
    videos: int,
    dtype: torch.dtype,
) -> None:
    """One denoising step's call, with the shapes the family's pipeline gives it: a batch of
    each video's guidance copies."""
    channels, frames, height, width = latents
    name = type(model).__name__
    config = model.config
    copies = guidance_copies * videos

    def empty(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, device="meta", dtype=dtype)

    t = torch.zeros(copies, device="meta", dtype=torch.long)
    if name in ("UNet3DConditionModel", "UNetMotionModel"):
        model(
            empty(copies, config.in_channels, frames, height, width),
            t,
            encoder_hidden_states=empty(copies, 77, config.cross_attention_dim),
        )
    elif name == "UNet2DConditionModel":  # an image model run on every frame at once
        batch = frames * (3 if config.in_channels == 8 else 1)
        model(
            empty(batch, config.in_channels, height, width),
            t[:1].expand(batch),
            encoder_hidden_states=empty(batch, 77, config.cross_attention_dim),
        )
    elif name == "UNetSpatioTemporalConditionModel":
        model(
            empty(copies, frames, config.in_channels, height, width),
            t,
            encoder_hidden_states=empty(copies, 1, config.cross_attention_dim),
            added_time_ids=empty(copies, 3),
        )
    elif name == "I2VGenXLUNet":
        model(
            empty(copies, config.in_channels, frames, height, width),
            t,
            fps=t,
            image_latents=empty(copies, channels, frames, height, width),
            image_embeddings=empty(copies, config.cross_attention_dim),
            encoder_hidden_states=empty(copies, 77, config.cross_attention_dim),
        )
    elif name == "CogVideoXTransformer3DModel":
        model(
            empty(copies, frames, config.in_channels, height, width),
            encoder_hidden_states=empty(copies, config.max_text_seq_length, config.text_embed_dim),
            timestep=t,
        )
    elif name == "LTXVideoTransformer3DModel":
        tokens = frames * height * width
        model(
            empty(copies, tokens, config.in_channels),
            encoder_hidden_states=empty(copies, 128, config.caption_channels),
            timestep=t,
            encoder_attention_mask=torch.ones(copies, 128, device="meta"),
            num_frames=frames,
            height=height,
            width=width,
        )
    elif name == "WanTransformer3DModel":  # the pipeline calls each guidance copy apart
        model(
            empty(videos, config.in_channels, frames, height, width),
            t[:videos],
            encoder_hidden_states=empty(videos, 512, config.text_dim),
        )
    else:
        raise PlanError(f"the planner does not know {name} yet")


def _decode(
    vae: nn.Module,
    latents: tuple[int, int, int, int],
    slicing: bool,
    tiling: bool,
    dtype: torch.dtype,
    chunk_size: int | None,
) -> None:
    """The VAE decoding the latents as the family's pipeline asks it to."""
    channels, frames, height, width = latents
    for flag, on, off in (
        (slicing, "enable_slicing", "disable_slicing"),
        (tiling, "enable_tiling", "disable_tiling"),
    ):
        # a VAE without the switch: the request refuses it; the plan shows it as without
        with contextlib.suppress(NotImplementedError, AttributeError):
            getattr(vae, on if flag else off)()
    name = type(vae).__name__
    if name == "AutoencoderKL":  # every frame in one batch
        vae.decode(torch.empty(frames, channels, height, width, device="meta", dtype=dtype))
    elif name == "AutoencoderKLTemporalDecoder":  # SVD: decode_chunk_size frames at a time
        chunk = min(frames, chunk_size or frames)
        vae.decode(
            torch.empty(chunk, channels, height, width, device="meta", dtype=dtype),
            num_frames=chunk,
        )
    else:
        vae.decode(torch.empty(1, channels, frames, height, width, device="meta", dtype=dtype))
