"""The generation engine: one checked request in, one `Video` out.

    prepared = prepare(request)   # every check that needs no weights; raises PromptreelError
    video = run(prepared, progress=print)

`prepare` resolves the model, reads the input files and settles the request against the card,
so a bad request is refused before anything loads (the CLI, the worker and the service's queue
all call it first). `run` loads the pipeline (reusing the one loaded), denoises and decodes, and
returns the frames with their record. The engine knows nothing of the history: the public
`promptreel.generate` (api.py) records that around it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import os
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

from . import jsontext
from .device import check_offload, pick_device, pick_dtype
from .errors import InvalidRequest, ModelNotFound, OutOfMemory, about
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
    INPUT_FILES,
    MAX_FPS,
    MODEL_SCHEDULER,
    GenerationRequest,
    InputVideo,
    Settings,
    recorded_parameters,
    settle,
    settled_request,
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


@dataclass(frozen=True)
class Prepared:
    """A request checked against its model and machine, with its inputs read: what `run` needs
    besides the weights. `settings` are the values the pipeline will be called with."""

    request: GenerationRequest
    card: ModelCard
    device: str
    dtype: str
    settings: Settings
    pipeline_class: str
    kwargs: dict[str, Any]
    folder: Path
    image: Image.Image | None
    frames_in: np.ndarray | None

    @property
    def settled(self) -> GenerationRequest:
        """The request with every value settled (the seed drawn, the card's defaults taken) and
        every path made absolute (a model folder, the input files): what a history row keeps,
        to run it again from any folder."""
        paths: dict[str, object] = {
            name: Path(os.path.abspath(path))
            for name in INPUT_FILES
            if (path := getattr(self.request, name)) is not None
        }
        if self.card.local_path is not None and self.card.repo_id == self.card.local_path:
            paths["model"] = os.path.abspath(self.card.local_path)
        return settled_request(self.request, self.settings).model_copy(update=paths)


def prepare(
    request: GenerationRequest,
    *,
    folders: bool = True,
    check_settings: Callable[[Settings], None] | None = None,
) -> Prepared:
    """Everything that can be checked without weights; raises the PromptreelError `run` would.

    `folders=False` refuses a model given as a local folder (the service's rule).
    `check_settings` is the caller's own check of the settled values (an output file that
    cannot take them, say: a GIF at an input video's 60 fps); it runs before the model is
    looked for, so every refusal of the request comes before "not downloaded".
    """
    with about("model", request.model):
        card = find_card(request.model, folders=folders)
    with about("device", request.device):
        device = pick_device(request.device)
    with about("dtype", request.dtype):
        dtype = pick_dtype(request.dtype, device, card.dtype)
    with about("offload", request.offload):
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
    if check_settings is not None:
        check_settings(settings)
    with about("model", request.model):
        folder = locate(card)  # after the request's own checks: those are the ones to fix first
    if request.forward_chunking:
        with about("forward_chunking", True):
            check_forward_chunking(folder)
    if "eta" in settings.params:
        with about("params", settings.params["eta"]):
            _check_eta(settings.scheduler, folder)
    return Prepared(
        request, card, device, dtype, settings, pipeline_class, kwargs, folder, image, frames_in
    )


def run(prepared: Prepared, *, progress: ProgressFn | None = None) -> Video:
    """Make the video of a prepared request: load (or reuse) the pipeline, denoise, decode."""
    report = progress or (lambda _: None)
    p = prepared
    request, card, device, dtype, settings = p.request, p.card, p.device, p.dtype, p.settings
    kwargs, folder = dict(p.kwargs), p.folder

    # 1. Load, or reuse the loaded pipeline
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
    if p.pipeline_class != card.family.pipeline_class:
        pipe = getattr(diffusers, p.pipeline_class).from_pipe(pipe)
    set_memory_switches(
        pipe,
        vae_slicing=request.vae_slicing,
        vae_tiling=request.vae_tiling,
        forward_chunking=request.forward_chunking,
    )
    pipe.scheduler = (
        own_scheduler
        if settings.scheduler == MODEL_SCHEDULER
        else make_scheduler(settings.scheduler, own_scheduler.config, card.scheduler_overrides)
    )
    timings = {"load": time.perf_counter() - started}

    # 2. Run: encode the prompt, denoise, decode
    if p.image is not None:
        kwargs["image"] = p.image
    if p.frames_in is not None:
        kwargs["video"] = [
            Image.fromarray(f).resize((settings.width, settings.height), Image.Resampling.LANCZOS)
            for f in p.frames_in[: settings.num_frames]
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

    # 3. Say how it was made
    record = _record(p, kwargs, pipe)
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


def _check_eta(scheduler: str, folder: Path) -> None:
    """`eta` is an argument of DDIM-type samplers only; pipelines drop it silently for others,
    and the record would claim a setting that never ran."""
    if scheduler != MODEL_SCHEDULER:
        class_name = SCHEDULERS[scheduler][0]
    else:
        path = folder / "scheduler" / "scheduler_config.json"
        try:
            class_name = str(jsontext.loads(path.read_text())["_class_name"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ModelNotFound(f"{path} is not a scheduler config diffusers reads.") from None
        if not hasattr(diffusers, class_name):
            raise ModelNotFound(f"{path} names {class_name!r}, not a scheduler of diffusers.")
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
        "negative_prompt": settings.negative_prompt or None,  # "": none, as pipelines have it
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


def _record(p: Prepared, kwargs: dict[str, Any], pipe: Any) -> dict[str, Any]:
    """How the video was made: enough to make it again, bit for bit, on the same machine."""
    settings = p.settings
    # what the pipeline was called with, in its own names (SVD's fps is a whole number)
    texts_and_files = ("prompt", "negative_prompt", *INPUT_FILES)
    arguments = {k: v for k, v in kwargs.items() if k not in texts_and_files}
    inputs = {
        name: {"file": path.name, "sha256": file_sha256(path)}
        for name in INPUT_FILES
        if (path := getattr(p.request, name)) is not None
    }
    return {
        "promptreel_record": 2,
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "model": {
            "name": p.card.name,
            "repo_id": p.card.repo_id,
            "revision": p.folder.name if p.card.local_path is None else p.card.revision,
            "pipeline_class": type(pipe).__name__,
            "variant": p.card.variant,
        },
        # the request as settled, every field: `history rerun` makes the same video from it
        "parameters": recorded_parameters(p.settled),
        "pipeline_arguments": arguments,
        "seed": settings.seed,
        "scheduler": {"name": settings.scheduler, "class": type(pipe.scheduler).__name__},
        "dtype": p.dtype,  # as resolved: `auto` in the parameters, `float32` here
        "device": p.device,
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
