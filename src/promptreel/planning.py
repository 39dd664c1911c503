"""Planning a request's memory: `promptreel plan`, and the estimate each record keeps.

The engine's half of the planner: it checks and settles the request as `generate` would (so
a plan is refused for what a run would be refused for), then hands the model's folder and the
settled numbers to `memory.plan`, which traces the components on the meta device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import psutil

from .device import accelerator_memory, check_offload, pick_device, pick_dtype
from .errors import InvalidRequest, ModelNotDownloaded, about
from .generation import prepare
from .memory.plan import Setup, best, folder_architecture, footprint, plan, plan_all, setups
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
    process = psutil.Process().memory_info().rss  # all a generating process holds besides
    if vram is None and device != "cpu":
        if pick_device("auto") == "cpu":
            raise InvalidRequest(
                f"this machine has no GPU to measure; give --vram SIZE to plan for a "
                f"{device} GPU (12GiB, say).",
                argument="vram",
            )
        vram = accelerator_memory(device)
    if ram is None:
        ram = psutil.virtual_memory().total
    limit = vram if device != "cpu" else None
    if explicit:
        setup = Setup.of(request, dtype)
        found = footprint(card, architecture, settings, dtype, [setup], device)
        plans = [plan(found, setup, device, process)]
        chosen = best(plans, limit, ram)
    else:
        plans, chosen = plan_all(card, architecture, settings, dtype, device, process, (limit, ram))
    dtypes = []
    if not explicit:  # the other precisions the device runs, from the same traces
        traced = {  # the footprints plan_all traced for these setups: kept, not traced again
            chunking: footprint(
                card,
                architecture,
                settings,
                dtype,
                setups(device, dtype, chunking=chunking),
                device,
            )
            for chunking in {p.setup.forward_chunking for p in plans}
        }
        for other in _other_dtypes(device, dtype):
            theirs = [
                plan(
                    traced[p.setup.forward_chunking], replace(p.setup, dtype=other), device, process
                )
                for p in plans
            ]
            fastest = best(theirs, limit, ram)
            leanest = min(theirs, key=lambda p: (p.peak_vram_bytes, p.peak_ram_bytes))
            dtypes.append(
                {
                    "dtype": other,
                    "best": None if fastest is None else fastest.as_json(),
                    "leanest": leanest.as_json(),
                }
            )
    largest = None
    if chosen is None:  # what would: fewer frames, else a smaller size, with the leanest setup
        # (the leanest without forward chunking: chunked traces take minutes, see plan_all)
        unchunked = [p for p in plans if not p.setup.forward_chunking]
        leanest = min(unchunked or plans, key=lambda p: (p.peak_vram_bytes, p.peak_ram_bytes)).setup

        def fits(trial: Settings) -> bool:
            found = footprint(card, architecture, trial, dtype, [leanest], device)
            return plan(found, leanest, device, process).fits(limit, ram)

        trial = _largest_that_fits(card, settings, fits)
        if trial is not None:
            largest = {
                "num_frames": trial.num_frames,
                "width": trial.width,
                "height": trial.height,
                "setup": asdict(leanest),
            }
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
        "largest": largest,  # when nothing fits: the most frames, else the size, that would
        # the other precisions: each one's fastest setup that fits, and its leanest
        "other_dtypes": dtypes,
    }


def _other_dtypes(device: str, dtype: str) -> list[str]:
    """The precisions besides `dtype` that `--dtype` may run on `device` (no float16 on the
    CPU): the plan shows what each would need."""
    runs = ("float32", "bfloat16") if device == "cpu" else ("float16", "bfloat16", "float32")
    return [other for other in runs if other != dtype]


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


def _largest_that_fits(
    card: ModelCard, settings: Settings, fits: Callable[[Settings], bool]
) -> Settings | None:
    """The request with the most frames that fit (the model's frame rule kept); when not even
    the fewest do, the largest size at the fewest frames (its shape and size rule kept)."""
    step, offset = card.family.frame_step, card.family.frame_offset
    counts = [n for n in range(offset or step, settings.num_frames, step) if n >= 1]
    low, high = 0, len(counts) - 1  # binary search: fitting is monotonic in frames
    found = None
    while low <= high:
        middle = (low + high) // 2
        if fits(replace(settings, num_frames=counts[middle])):
            found, low = counts[middle], middle + 1
        else:
            high = middle - 1
    if found is not None:
        return replace(settings, num_frames=found)
    if card.fixed_size or not counts:
        return None
    multiple = card.family.size_multiple
    for tenths in range(9, 0, -1):
        width = settings.width * tenths // 10 // multiple * multiple
        height = settings.height * tenths // 10 // multiple * multiple
        trial = replace(settings, num_frames=counts[0], width=width, height=height)
        if width and height and fits(trial):
            return trial
    return None
