"""One request in, one `Video` out: resolve the model, check, load (cached), run, report.

video = generate("a red panda eating bamboo", model="modelscope", num_frames=16, seed=7)
video.save("panda.mp4")
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
from PIL import Image

from .device import check_offload, pick_device, pick_dtype
from .errors import InvalidRequest, OutOfMemory
from .models.card import ModelCard
from .models.load import (
    LoadOptions,
    check_forward_chunking,
    load_pipeline,
    set_memory_switches,
    unload,
)
from .models.resolve import find_card, locate
from .request import (
    DEFAULT_MODEL,
    MAX_FPS,
    GenerationRequest,
    InputVideo,
    Settings,
    make_request,
    settle,
)
from .schedulers import SCHEDULERS, make_scheduler
from .video import Video, read_image, read_video

STAGES = ("load", "encode", "denoise", "decode", "write")


@dataclass(frozen=True)
class Progress:
    """Where a job is: a stage of STAGES, and for `denoise` the step out of the total."""

    stage: str
    step: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    progress: ProgressFn | None = None,
    history: bool = True,
    **options: Any,
) -> Video:
    """Make a video. `options` are the fields of `GenerationRequest` (diffusers' names).

    With `history`, the generation is kept in the history (`promptreel history`), and the
    files the video is saved to are added to it.
    """
    from .jobs.history import history_entry

    request = make_request(prompt=prompt, model=model, **options)
    with history_entry(request, source="python", enabled=history) as entry:
        video = run(request, progress=progress)
        entry.succeeded(video.record)
    video.on_save = entry.add_output
    return video


def check(request: GenerationRequest, *, folders: bool = True) -> Settings:
    """Everything `run` checks before loading weights; raises the same PromptreelError.
    The service calls it before it queues a job, so a bad request is refused at once."""
    return _prepare(request, folders=folders).settings


@dataclass
class _Prepared:
    card: ModelCard
    device: str
    dtype: str
    settings: Settings
    pipeline_class: str
    kwargs: dict[str, Any]
    folder: Path
    image: Image.Image | None
    frames_in: np.ndarray | None


def _prepare(request: GenerationRequest, *, folders: bool) -> _Prepared:
    """Step 1 of `run`: everything that can be checked without weights."""
    card = find_card(request.model, folders=folders)
    device = pick_device(request.device)
    dtype = pick_dtype(request.dtype, device, card.dtype)
    check_offload(device, request.offload)
    frames_in, fps_in = _read_input_video(request, card)
    video_in = None
    if frames_in is not None:
        video_in = InputVideo(len(frames_in), fps_in, frames_in.shape[1], frames_in.shape[2])
    settings = settle(request, card, video=video_in)
    image = read_image(request.image) if request.image is not None else None
    pipeline_class = card.family.pipeline_class
    if image is not None and card.family.image_pipeline_class:
        pipeline_class = card.family.image_pipeline_class
    kwargs = _call_arguments(settings, card, pipeline_class)
    folder = locate(card)  # after the request's own checks: those are the ones to fix first
    if request.forward_chunking:
        check_forward_chunking(folder)
    if "eta" in settings.params:
        _check_eta(settings.scheduler, folder)
    return _Prepared(
        card, device, dtype, settings, pipeline_class, kwargs, folder, image, frames_in
    )


def run(
    request: GenerationRequest, *, progress: ProgressFn | None = None, folders: bool = True
) -> Video:
    """Run a validated request; raises a PromptreelError before loading anything if it is bad.
    `folders=False` refuses a model given as a local folder (the service's rule)."""
    report = progress or (lambda _: None)
    # 1. Check everything that can be checked without weights
    p = _prepare(request, folders=folders)
    card, device, dtype, settings = p.card, p.device, p.dtype, p.settings
    kwargs, folder, image, frames_in = p.kwargs, p.folder, p.image, p.frames_in
    pipeline_class = p.pipeline_class

    # 2. Load, or reuse the loaded pipeline
    started = time.perf_counter()
    report(Progress("load"))
    options = LoadOptions(
        folder=folder,
        pipeline_class=card.family.pipeline_class,
        device=device,
        dtype=dtype,
        offload=request.offload,
        compile=request.compile,
    )
    pipe, own_scheduler, reused = load_pipeline(card, options)
    if pipeline_class != card.family.pipeline_class:
        pipe = getattr(diffusers, pipeline_class).from_pipe(pipe)
    set_memory_switches(
        pipe,
        vae_slicing=request.vae_slicing,
        vae_tiling=request.vae_tiling,
        forward_chunking=request.forward_chunking,
    )
    pipe.scheduler = (
        make_scheduler(settings.scheduler, own_scheduler.config, card.scheduler_overrides)
        if settings.scheduler
        else own_scheduler
    )
    timings = {"load": time.perf_counter() - started}

    # 3. Run: encode the prompt, denoise, decode
    if image is not None:
        kwargs["image"] = image
    if frames_in is not None:
        kwargs["video"] = [
            Image.fromarray(f).resize((settings.width, settings.height), Image.Resampling.LANCZOS)
            for f in frames_in[: settings.num_frames]
        ]
    clock = _StageClock(report, timings)
    pipe.progress_bar = clock.progress_bar
    torch.manual_seed(settings.seed)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    try:
        with _torch_kernels():
            output = pipe(**kwargs, generator=generator, output_type="np")
    except torch.OutOfMemoryError:
        unload()  # free what the failed job held, so the next one starts clean
        raise OutOfMemory(
            f"{device} ran out of memory at the {clock.stage} stage of {card.name} at "
            f"{settings.width}x{settings.height}, {settings.num_frames} frames; try --vae-tiling, "
            "--offload model (or sequential), fewer frames or a smaller size."
        ) from None
    clock.finish()
    frames = _to_uint8(output.frames if hasattr(output, "frames") else output.images)

    record = _record(
        request, card, settings, kwargs, pipe, folder=folder, device=device, dtype=dtype
    )
    record["timings"] = {k: round(v, 3) for k, v in timings.items()}
    record["pipeline_reused"] = reused
    return Video(frames=frames, fps=settings.fps, record=record)


@contextmanager
def _torch_kernels() -> Iterator[None]:
    """Run on torch's own CPU kernels, not oneDNN's.

    The same seed must give the same frames however many threads run it (and however many a
    busy CPU lets run): oneDNN's convolutions split their sums by the thread count (measured on
    the shapes UNet's temporal convolutions), torch's own do not. (`mkldnn.flags()` would also
    warn about Intel GPUs on every call.)
    """
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


class _StageClock:
    """Times encode / denoise / decode by watching the pipeline's own progress bar.

    Every diffusers pipeline opens `self.progress_bar(total=steps)` around its denoising loop
    and calls `update()` once a step: before the bar, it encodes the prompt; after it, it
    decodes. Replacing that method on the instance gives the same stages for every family.
    """

    def __init__(self, report: ProgressFn, timings: dict[str, float]) -> None:
        self.report = report
        self.timings = timings
        self.mark = time.perf_counter()
        self.step = 0
        self.total = 0
        self.iterable: Any = None
        self.stage = "encode"
        report(Progress("encode"))

    def _lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.mark
        self.mark = now

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> _StageClock:
        self._lap("encode" if "denoise" not in self.timings else "decode")
        self.total += total if total is not None else len(iterable)
        self.iterable = iterable
        self.stage = "denoise"
        self.report(Progress("denoise", self.step, self.total))
        return self

    def __enter__(self) -> _StageClock:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._lap("denoise")
        if exc_type is None:  # a failed or cancelled step does not move on to decoding
            self.stage = "decode"
            self.report(Progress("decode", self.step, self.total))

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def update(self, n: int = 1) -> None:
        self.step += n
        self.report(Progress("denoise", self.step, self.total))

    def finish(self) -> None:
        self._lap("decode")


def _check_eta(scheduler: str | None, folder: Path) -> None:
    """`eta` is an argument of DDIM-type samplers only; pipelines drop it silently for others,
    and the record would claim a setting that never ran."""
    if scheduler is not None:
        class_name = SCHEDULERS[scheduler][0]
    else:
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        class_name = config["_class_name"]
    if "eta" not in inspect.signature(getattr(diffusers, class_name).step).parameters:
        raise InvalidRequest(
            f"--param eta has no effect with {class_name}; add --scheduler ddim, or drop eta."
        )


def _read_input_video(
    request: GenerationRequest, card: ModelCard
) -> tuple[np.ndarray | None, float]:
    if request.video is None or "video-to-video" not in card.tasks:
        return None, 0.0  # settle() refuses a video the model does not take
    # only the frames the model will use: a long 4K clip must not fill the memory
    wanted = min(request.num_frames or card.num_frames, card.max_frames)
    frames, fps = read_video(request.video, first=wanted)
    return frames, min(max(fps, 1.0), MAX_FPS)


def _call_arguments(settings: Settings, card: ModelCard, pipeline_class: str) -> dict[str, Any]:
    """The pipeline's keyword arguments, in its own names.

    What a pipeline has no argument for, promptreel uses itself or not at all: every file gets
    the fps, and a video-to-video model takes its frames and size from the resized input video.
    """
    accepted = inspect.signature(getattr(diffusers, pipeline_class).__call__).parameters
    values: dict[str, Any] = {
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "num_frames": settings.num_frames,
        "height": settings.height,
        "width": settings.width,
        "fps": settings.fps,
        "num_inference_steps": settings.num_inference_steps,
        "guidance_scale": settings.guidance_scale,
    }
    kwargs = {
        card.family.renames.get(name, name): value
        for name, value in values.items()
        if value is not None and card.family.renames.get(name, name) in accepted
    }
    if "fps" in kwargs or "target_fps" in kwargs:
        # pipelines condition on a whole number of frames per second
        key = "fps" if "fps" in kwargs else "target_fps"
        kwargs[key] = round(kwargs[key])
    return {**kwargs, **settings.params}


def _to_uint8(frames: Any) -> np.ndarray:
    """Frames as uint8 (frames x height x width x 3), whatever nesting the pipeline returns."""
    array = np.asarray(frames)
    while array.ndim > 4:
        assert array.shape[0] == 1, f"expected one video, got {array.shape[0]}"
        array = array[0]
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def _record(
    request: GenerationRequest,
    card: ModelCard,
    settings: Settings,
    kwargs: dict[str, Any],
    pipe: Any,
    *,
    folder: Path,
    device: str,
    dtype: str,
) -> dict[str, Any]:
    """How the video was made: enough to make it again, bit for bit, on the same machine."""
    # what the pipeline was called with, in its own names (SVD's fps is a whole number)
    arguments = {
        k: v for k, v in kwargs.items() if k not in ("image", "video", "prompt", "negative_prompt")
    }
    inputs = {
        name: {"file": path.name, "sha256": file_sha256(path)}
        for name, path in (("image", request.image), ("video", request.video))
        if path is not None
    }
    return {
        "promptreel_record": 1,
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "model": {
            "name": card.name,
            "repo_id": card.repo_id,
            "revision": folder.name if card.local_path is None else card.revision,
            "pipeline_class": type(pipe).__name__,
            "variant": card.variant,
        },
        # the request as settled: enough to make the same video again with promptreel
        "parameters": {
            "num_frames": settings.num_frames,
            "height": settings.height,
            "width": settings.width,
            "fps": settings.fps,
            "num_inference_steps": settings.num_inference_steps,
            "guidance_scale": settings.guidance_scale,
            "params": settings.params,
        },
        "pipeline_arguments": arguments,
        "seed": settings.seed,
        "scheduler": {"name": settings.scheduler, "class": type(pipe.scheduler).__name__},
        "dtype": dtype,
        "device": device,
        "memory": {
            "offload": request.offload,
            "vae_slicing": request.vae_slicing,
            "vae_tiling": request.vae_tiling,
            "forward_chunking": request.forward_chunking,
            "compile": request.compile,
        },
        "inputs": inputs,
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("promptreel", "diffusers", "torch", "transformers")
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, as records note each input."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
