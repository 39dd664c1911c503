"""Planning a request's memory: `promptreel plan`, and the estimate each record keeps.

The engine's half of the planner: it checks and settles the request as `generate` would (so
a plan is refused for what a run would be refused for), then hands the model's folder and the
settled numbers to `memory.plan`, which traces the components on the meta device.
"""

from __future__ import annotations

from typing import Any

import psutil

from .device import check_offload, pick_device, pick_dtype
from .errors import ModelNotDownloaded, about
from .generation import prepare
from .memory.plan import Setup, best, folder_architecture, footprint, plan, setups
from .models.architectures import ARCHITECTURES, Architecture
from .models.card import ModelCard
from .models.resolve import find_card
from .request import GenerationRequest, Settings, settle


def plan_request(
    request: GenerationRequest, *, vram: int | None, ram: int | None, explicit: bool
) -> dict[str, Any]:
    """Every setup's plan for `request` (only the one its switches name, if `explicit`), and the
    fastest that fits in `vram` and `ram` (by default the GPU's and the machine's own)."""
    gpu = vram is not None or request.device in ("cuda", "mps")
    if request.device == "auto" and not gpu:
        gpu = pick_device("auto") != "cpu"
    device = ("cuda" if request.device == "auto" else request.device) if gpu else "cpu"
    # checked and settled as on the CPU: the GPU's switches are this plan's to weigh; and the
    # prompt's words change nothing (the pipelines pad it to a fixed length)
    update: dict[str, Any] = {"device": "cpu", "dtype": "float32", "offload": "none"}
    update["compile"] = False
    with about("model", request.model):
        card = find_card(request.model)
    if request.prompt is None and card.family.takes_text:
        update["prompt"] = "a plan"
    card, settings, architecture = _model(request.model_copy(update=update), card)
    with about("dtype", request.dtype):
        dtype = pick_dtype(request.dtype, device, card.dtype)
    with about("offload", request.offload):
        check_offload(device, request.offload)
    if explicit:
        wanted = [Setup.of(request, dtype)]
    else:
        wanted = setups(device, dtype, unet="unet" in architecture)
    found = footprint(card, architecture, settings, dtype, wanted, device)
    process = psutil.Process().memory_info().rss  # all a generating process holds besides
    plans = [plan(found, setup, device, process) for setup in wanted]
    if vram is None and device == "cuda":
        import torch

        vram = torch.cuda.get_device_properties(0).total_memory
    if ram is None:
        ram = psutil.virtual_memory().total
    chosen = best(plans, vram if device != "cpu" else None, ram)
    return {
        "model": card.name,
        "device": device,
        "dtype": dtype,
        "num_frames": settings.num_frames,
        "height": settings.height,
        "width": settings.width,
        "vram_bytes": vram if device != "cpu" else None,
        "ram_bytes": ram,
        "plans": [p.as_json() for p in plans],
        "best": None if chosen is None else chosen.as_json(),
    }


def _model(request: GenerationRequest, card: ModelCard) -> tuple[ModelCard, Settings, Architecture]:
    """The card the request runs, its settled values, and the architecture to trace: the
    downloaded model's own configs, or a built-in model's shipped ones before it is downloaded."""
    try:
        prepared = prepare(request)
    except ModelNotDownloaded:
        if card.name not in ARCHITECTURES or request.base or request.control or request.lora:
            raise
        return card, settle(request, card), ARCHITECTURES[card.name]
    return prepared.card, prepared.settings, folder_architecture(prepared.folder, prepared.parts)
