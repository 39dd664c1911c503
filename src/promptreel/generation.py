"""The generation engine: one checked request in, its videos out.

    prepared = prepare(request)   # every check that needs no weights; raises PromptreelError
    videos = run(prepared, progress=print)   # `num_videos_per_prompt` of them, one by default

`prepare` resolves the model, reads the input files and settles the request against the card,
so a bad request is refused before anything loads (the CLI, the worker and the service's queue
all call it first). `run` loads the pipeline (reusing the one loaded), denoises and decodes, and
returns the frames with their record: video k on seed `seed + k - 1`, all in one batch where
the pipeline makes several videos at once (`families.BATCHES_VIDEOS`), else one call a seed.
The engine knows nothing of the history: the public `promptreel.generate` (api.py) records
that around it.
"""

from __future__ import annotations

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
import psutil
import torch
from PIL import Image

from . import control as estimators
from . import jsontext
from .control.looks import control_fault
from .device import DTYPES, accelerator_memory, check_offload, pick_device, pick_dtype
from .errors import (
    InvalidRequest,
    ModelNotDownloaded,
    ModelNotFound,
    OutOfMemory,
    UnsupportedDevice,
    about,
)
from .memory.peaks import StagePeaks
from .memory.plan import Setup, folder_architecture, footprint, plan, plan_all
from .models import lora as lora_files
from .models.card import ModelCard
from .models.cards import CARDS, ESTIMATORS
from .models.cross_frame import anchor_to_first_frame
from .models.families import BATCHES_VIDEOS
from .models.load import (
    LoadOptions,
    check_forward_chunking,
    load_pipeline,
    set_memory_switches,
    unload,
)
from .models.lora import Lora
from .models.resolve import (
    check_base,
    check_components,
    find_card,
    locate,
    locate_extra,
    with_base,
    with_control,
)
from .models.step_cache import step_cache
from .request import (
    INPUT_FILES,
    MAX_FPS,
    MODEL_SCHEDULER,
    GenerationRequest,
    InputVideo,
    Settings,
    draws_control_images,
    recorded_parameters,
    settle,
    settled_request,
)
from .schedulers import SCHEDULERS, make_scheduler
from .video import Video, read_frames, read_image
from .video.read import input_sha256, refusal

# what `--memory auto` chooses, and what given by hand overrides it
MEMORY_SWITCHES = ("offload", "vae_slicing", "vae_tiling", "forward_chunking", "fp8")
# `control`: drawing control images from a source video (pose, depth: a model of their own)
STAGES = ("load", "control", "encode", "denoise", "decode", "write")


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
    parts: dict[str, Path]  # the other repos loaded with it (adapter, ControlNet): snapshots
    loras: tuple[Lora, ...] = ()
    notes: tuple[str, ...] = ()  # what a user may not expect (input frames left out)

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
        folder_card = self.card.local_path is not None and self.card.repo_id == self.card.local_path
        if folder_card and self.card.base is None:
            paths["model"] = os.path.abspath(self.card.local_path)
        paths["lora"] = [lora.given for lora in self.loras]  # scales said, folders absolute
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
    with about("base", request.base):
        card = with_base(card, request.base, folders=folders)
    with about("control", request.control):
        card = with_control(card, request.control)
    with about("lora", request.lora):
        loras = tuple(lora_files.resolve(entry, folders=folders) for entry in request.lora)
        if loras and not lora_files.can_load(card.family.pipeline_class):
            takers = ", ".join(c.name for c in CARDS if lora_files.can_load(c.pipeline_class))
            raise InvalidRequest(
                f"{card.name} cannot load a LoRA ({card.family.pipeline_class} has no LoRA "
                f"loader); remove --lora, or use a model that can: {takers}.",
                argument="lora",
                value=request.lora[0],
            )
    with about("device", request.device):
        device = pick_device(request.device)
    with about("dtype", request.dtype):
        dtype = pick_dtype(request.dtype, device, card.dtype)
    with about("offload", request.offload):
        check_offload(device, request.offload)
    if request.fp8 and device == "mps":
        raise UnsupportedDevice(
            "--fp8 needs float8 tensors, which Apple's GPUs (mps) do not have; drop --fp8, or "
            "save memory with --offload model or --vae-tiling.",
            argument="fp8",
            value=True,
        )
    if request.cache != "off" and request.compile:
        raise InvalidRequest(
            f"--cache {request.cache} cannot run on a compiled denoiser (the cache changes "
            "which layers run from step to step); drop --compile or use --cache off.",
            argument="cache",
            value=request.cache,
        )
    frames_in, fps_in = _read_input_video(request, card)
    video_in = None
    if frames_in is not None:
        video_in = InputVideo(len(frames_in), fps_in, frames_in.shape[1], frames_in.shape[2])
    settings = settle(request, card, video=video_in)
    if request.control is not None and request.control_video is not None:
        assert frames_in is not None
        fault = control_fault(request.control, frames_in)
        if fault is not None:
            raise refusal("control_video", request.control_video)(fault)
    image = read_image(request.image) if request.image is not None else None
    pipeline_class = card.family.pipeline_class
    if image is not None and card.family.image_pipeline_class:
        pipeline_class = card.family.image_pipeline_class
    kwargs = _call_arguments(settings, card, pipeline_class)
    if check_settings is not None:
        check_settings(settings)
    with about("model", request.model):
        folder = locate(card)  # after the request's own checks: those are the ones to fix first
    with about("base", request.base):
        check_base(card, folder)
    with about("model", request.model):  # a base's missing parts name `base` themselves
        check_components(card, folder)
    parts = {argument: locate_extra(repo) for argument, (repo, _) in card.extra_repos.items()}
    for lora in loras:
        lora_files.check_fits(lora, folder, motion_adapter=parts.get("motion_adapter"))
    if draws_control_images(request):
        _check_estimators(card)
    if request.forward_chunking:
        with about("forward_chunking", True):
            check_forward_chunking(folder)
    if device != "cpu" and request.memory == "auto" and not explicit_switches(request):
        request = _fastest_that_fits(request, card, folder, parts, settings, dtype, device)
    if "eta" in settings.params:
        with about("params", settings.params["eta"]):
            _check_eta(settings.scheduler, folder)
    notes = ()
    if (
        request.num_frames is None
        and frames_in is not None
        and len(frames_in) > settings.num_frames
    ):
        source = "control video" if request.control_video is not None else "video"
        why = "its limit" if settings.num_frames == card.max_frames else "its default"
        notes = (
            f"{card.name} uses the first {settings.num_frames} frames of the {source} "
            f"({why}); --num-frames sets how many.",
        )
    return Prepared(
        request,
        card,
        device,
        dtype,
        settings,
        pipeline_class,
        kwargs,
        folder,
        image,
        frames_in,
        parts,
        loras,
        notes,
    )


def explicit_switches(request: GenerationRequest) -> list[str]:
    """The memory switches a request sets to other than their defaults: given any, `--memory
    auto` leaves the setup to them."""
    fields = GenerationRequest.model_fields
    return [name for name in MEMORY_SWITCHES if getattr(request, name) != fields[name].default]


def _fastest_that_fits(
    request: GenerationRequest,
    card: ModelCard,
    folder: Path,
    parts: dict[str, Path],
    settings: Settings,
    dtype: str,
    device: str,
) -> GenerationRequest:
    """`--memory auto` on a GPU: the request with the switches of the fastest setup that fits
    the GPU (and the machine's RAM); refused before loading when none does."""
    process = psutil.Process().memory_info().rss
    vram, ram = accelerator_memory(device), psutil.virtual_memory().total
    architecture = folder_architecture(folder, parts)
    plans, chosen = plan_all(card, architecture, settings, dtype, device, process, (vram, ram))
    if chosen is None:
        least = min(plans, key=lambda p: p.peak_vram_bytes)
        raise OutOfMemory(
            f"{card.name} at {settings.width}x{settings.height}, {settings.num_frames} frames "
            f"needs about {least.peak_vram_bytes / 2**30:.1f} GiB on the {device} at the least "
            f"(`promptreel plan` shows how), and it has {vram / 2**30:.1f} GiB; try fewer "
            "frames or a smaller size.",
            argument="memory",
            value="auto",
        )
    return request.model_copy(
        update={
            "offload": chosen.setup.offload,
            "vae_slicing": chosen.setup.vae_slicing,
            "vae_tiling": chosen.setup.vae_tiling,
            "forward_chunking": chosen.setup.forward_chunking,
            "fp8": chosen.setup.fp8,
        }
    )


def run(prepared: Prepared, *, progress: ProgressFn | None = None) -> list[Video]:
    """Make the videos of a prepared request: load (or reuse) the pipeline, denoise, decode."""
    report = progress or (lambda _: None)
    p = prepared
    device = p.device
    clock = _StageClock(report, StagePeaks(device))
    process = psutil.Process().memory_info().rss  # before this run's weights, if it loads them
    try:
        videos = _run(p, clock)
    finally:
        clock.peaks.close()
    planned = _planned(p, process, videos[0].record["pipeline_reused"])
    for video in videos:
        video.record["memory"]["planned"] = planned
    return videos


def _planned(p: Prepared, process: int, reused: bool) -> dict[str, Any] | None:
    """The planner's estimate for this run's own switches: every run is one more check of it.
    A video is never lost to its estimate: a model the planner cannot trace has none."""
    setup = Setup.of(p.request, p.dtype)
    try:
        architecture = folder_architecture(p.folder, p.parts)
        found = footprint(p.card, architecture, p.settings, p.dtype, [setup], p.device)
    except Exception:
        return None
    if reused:  # the weights were in the process already when it was measured
        process -= sum(found.weights.values())
    return plan(found, setup, p.device, process).stages


def _run(p: Prepared, clock: _StageClock) -> list[Video]:
    request, card, device, dtype, settings = p.request, p.card, p.device, p.dtype, p.settings
    kwargs, folder = dict(p.kwargs), p.folder

    # 1. Load, or reuse the loaded pipeline
    clock.enter("load")
    options = LoadOptions(
        folder=folder,
        pipeline_class=card.family.pipeline_class,
        device=device,
        dtype=dtype,
        offload=request.offload,
        fp8=request.fp8,
        compile=request.compile,
        # by snapshot: another ControlNet, or a new download of one, is another pipeline
        parts=tuple(sorted((argument, str(path)) for argument, path in p.parts.items())),
    )
    if not draws_control_images(request):
        estimators.unload()  # kept only while jobs in a row draw the same kind of images
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
    clock.lap("load")

    # 2. The input frames, at the request's size; control images drawn from them if asked
    renames = card.family.renames
    if p.image is not None:
        kwargs["image"] = p.image
    control = None
    if p.frames_in is not None:
        frames = _resized(p.frames_in[: settings.num_frames], settings)
        if card.control is None:
            kwargs[renames.get("video", "video")] = _images(frames)
        elif draws_control_images(request):
            clock.enter("control")
            control = estimators.extract(
                card.control,
                frames,
                params={k: v for k, v in settings.params.items() if k not in card.family.params},
                device=device,
                dtype=DTYPES[dtype],
            )
            clock.lap("control")
        else:
            control = frames
        if control is not None:
            kwargs[renames.get("control_video", "control_video")] = _images(control)

    # 3. Run: encode the prompt, denoise, decode; the videos in one batch, or a call a seed
    n = settings.num_videos_per_prompt
    seeds = [settings.seed + k for k in range(n)]
    at_once = p.pipeline_class in BATCHES_VIDEOS
    if at_once and n > 1:
        kwargs["num_videos_per_prompt"] = n
    calls = [seeds] if at_once else [[seed] for seed in seeds]
    clock.calls = len(calls)
    pipe.progress_bar = clock.progress_bar
    frames: list[np.ndarray] = []
    reuses: list[dict[str, Any]] = []
    try:
        with _torch_kernels(), lora_files.applied(pipe, list(p.loras)):
            for call_seeds in calls:
                clock.enter("encode")
                # a cache keeps state from step to step: a fresh one for each call
                with step_cache(pipe, request.cache, settings.num_inference_steps) as reuse:
                    frames += _call(pipe, kwargs, p, call_seeds)
                reuses.append(reuse)
                clock.finish()
    except torch.OutOfMemoryError:
        unload()  # free what the failed job held, so the next one starts clean
        estimators.unload()
        raise OutOfMemory(
            f"{device} ran out of memory at the {clock.stage} stage of {card.name} at "
            f"{settings.width}x{settings.height}, {settings.num_frames} frames; try --vae-tiling, "
            "--offload model (or sequential), fewer frames or a smaller size."
        ) from None

    # 4. Say how they were made: one record, each video's own seed
    record = _record(p, kwargs, pipe)
    record["timings"] = {k: round(v, 3) for k, v in clock.timings.items()}
    record["memory"] = {"measured": clock.memory}
    record["cache"] = _summed(reuses)
    record["pipeline_reused"] = reused
    records = [{**record, "seed": seed} for seed in seeds]
    if n > 1:
        how = "one batch" if at_once else "one call a seed"
        for number, each in enumerate(records, start=1):
            each["videos_per_prompt"] = {"n": n, "number": number, "how": how}
    shown = None
    if control is not None:
        shown = Video(control, settings.fps, record={**records[0], "content": "control"})
    return [
        Video(frames=each, fps=settings.fps, record=each_record, control=shown)
        for each, each_record in zip(frames, records, strict=True)
    ]


def _call(pipe: Any, kwargs: dict[str, Any], p: Prepared, seeds: list[int]) -> list[np.ndarray]:
    """One pipeline call: a video a seed, each from its own generator (diffusers draws each
    video's noise from its own generator of a list), so that a video of a batch starts from
    the noise it would alone."""
    torch.manual_seed(seeds[0])
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    arguments = dict(kwargs)
    if p.card.family.frames_as_batch:
        _frames_as_batch(pipe, arguments, p.settings, generators[0])
    generator = generators if len(generators) > 1 else generators[0]
    output = pipe(**arguments, generator=generator, output_type="np")
    return _videos(output.frames if hasattr(output, "frames") else output.images)


def _summed(reuses: list[dict[str, Any]]) -> dict[str, Any]:
    """The record's `cache` of several calls: their counts added up (the rest is the same)."""
    return {
        key: sum(r[key] for r in reuses) if type(value) is int else value
        for key, value in reuses[0].items()
    }


def _resized(frames: np.ndarray, settings: Settings) -> np.ndarray:
    size = (settings.width, settings.height)
    if frames.shape[1:3] == (settings.height, settings.width):
        return frames
    return np.stack(
        [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames]
    )


def _images(frames: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(f) for f in frames]


def _frames_as_batch(pipe: Any, kwargs: dict[str, Any], settings: Settings, generator: Any) -> None:
    """Run an image pipeline over every frame at once, as Text2Video-Zero does: one prompt a
    frame, the same starting noise for all of them (drawn once from the seed), and every
    frame's self-attention looking at the first frame, so the frames stay one scene."""
    n = settings.num_frames
    kwargs["prompt"] = [kwargs["prompt"]] * n
    if kwargs.get("negative_prompt") is not None:
        kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * n
    shape = (
        1,
        pipe.vae.config.latent_channels,
        settings.height // pipe.vae_scale_factor,
        settings.width // pipe.vae_scale_factor,
    )
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    kwargs["latents"] = noise.to(pipe.unet.dtype).repeat(n, 1, 1, 1)
    anchor_to_first_frame(pipe, n)


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
    """Times the stages and measures their peak memory (`memory`: stage -> peaks).

    Encode, denoise and decode are found by watching the pipeline's own progress bar: every
    diffusers pipeline opens `self.progress_bar(total=steps)` around its denoising loop and
    calls `update()` once a step; before the bar, it encodes the prompt; after it, it decodes.
    Replacing that method on the instance gives the same stages for every family.
    """

    def __init__(self, report: ProgressFn, peaks: StagePeaks) -> None:
        self.report = report
        self.peaks = peaks
        self.timings: dict[str, float] = {}
        self.memory: dict[str, dict[str, int | None]] = {}
        self.mark = time.perf_counter()
        self.step = 0
        self.total = 0
        self.iterable: Any = None
        self.stage = "load"
        self.calls = 1  # pipeline calls of the run: the first one's steps are counted for all
        self.call = 0

    def enter(self, stage: str) -> None:
        """Start `stage`; what ran since the last lap is not counted. The steps stay where they
        are: a run's next pipeline call goes on from them."""
        self.stage = stage
        self.report(Progress(stage, self.step, self.total))
        self.peaks.take()
        self.mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.mark
        self.mark = now
        peaks = self.peaks.take()
        if stage in self.memory:  # a pipeline with two denoising loops: the higher
            peaks = {k: _larger(v, self.memory[stage][k]) for k, v in peaks.items()}
        self.memory[stage] = peaks

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> _StageClock:
        self.lap("encode" if self.stage == "encode" else "decode")
        if self.call == 0:
            self.total += (total if total is not None else len(iterable)) * self.calls
        self.iterable = iterable
        self.stage = "denoise"
        self.report(Progress("denoise", self.step, self.total))
        return self

    def __enter__(self) -> _StageClock:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.lap("denoise")
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
        """A pipeline call has returned: what ran since the denoising was its decode."""
        self.lap("decode")
        self.call += 1


def _larger(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


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
) -> tuple[np.ndarray | None, float | None]:
    """The frames of the input video (to transform, to draw control images from, or of control
    images) and its frame rate; a folder of control images has none."""
    if card.control is not None and request.control_video is not None:
        argument, path = "control_video", request.control_video
    elif request.video is not None and (card.control or "video-to-video" in card.tasks):
        argument, path = "video", request.video
    else:
        return None, None  # settle() refuses an input the model does not take
    # only the frames the model will use: a long 4K clip must not fill the memory (and one
    # more, to tell the user when frames were left out without being asked to)
    default = card.max_frames if card.control is not None else card.num_frames
    # (a count below 1 is settle()'s to refuse, after this read of one frame and one more)
    wanted = max(1, min(request.num_frames or default, card.max_frames))
    frames, fps = read_frames(path, argument=argument, first=wanted + 1)
    return frames, None if fps is None else min(max(fps, 1.0), MAX_FPS)


def _check_estimators(card: ModelCard) -> None:
    """Before loading: the models that draw pose and depth images are in the cache."""
    assert card.control is not None
    missing = estimators.missing_estimators(card.control)
    if missing:
        raise ModelNotDownloaded(
            f"drawing {card.control} images needs {', '.join(missing)}, which is not in the "
            f"local Hugging Face cache; run `promptreel download {card.name} --control "
            f"{card.control}` first.",
            argument="control",
            value=card.control,
        )


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
    # the pipeline's own settings; the others (canny's thresholds) are promptreel's
    pipeline_params = {k: v for k, v in settings.params.items() if k in card.family.params}
    return {**kwargs, **pipeline_params}


def _videos(frames: Any) -> list[np.ndarray]:
    """The videos of a pipeline's output, each as uint8 (frames x height x width x 3), whatever
    nesting the pipeline returns (an image pipeline's frames are one video)."""
    array = np.asarray(frames)
    while array.ndim > 5:
        assert array.shape[0] == 1, f"expected one batch, got {array.shape[0]}"
        array = array[0]
    if array.ndim == 4:
        array = array[None]
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return [np.ascontiguousarray(video) for video in array]


def _record(p: Prepared, kwargs: dict[str, Any], pipe: Any) -> dict[str, Any]:
    """How the video was made: enough to make it again, bit for bit, on the same machine."""
    settings = p.settings
    # what the pipeline was called with, in its own names (SVD's fps is a whole number)
    renamed = {p.card.family.renames.get(name, name) for name in INPUT_FILES}
    texts_and_files = {"prompt", "negative_prompt", "latents", *INPUT_FILES, *renamed}
    arguments = {k: v for k, v in kwargs.items() if k not in texts_and_files}
    inputs = {
        name: {"file": path.name, "sha256": input_sha256(path)}
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
            # the other repos loaded with it (a motion adapter, a ControlNet), at their commits
            "parts": {
                argument: {"repo_id": repo, "revision": p.parts[argument].name}
                for argument, (repo, _) in p.card.extra_repos.items()
            },
            "base": p.settings.base,
        },
        "control": None if p.card.control is None else _control_record(p),
        "loras": [
            {
                "lora": lora.ref,
                "scale": lora.scale,
                "file": lora.file.name,
                "sha256": input_sha256(lora.file),
            }
            for lora in p.loras
        ],
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


def _control_record(p: Prepared) -> dict[str, Any]:
    """What steered the video: the kind, the ControlNet, and what drew the images (the
    estimators at their commits, or OpenCV's version for canny), to draw them again."""
    assert p.card.control is not None
    record: dict[str, Any] = {
        "kind": p.card.control,
        "controlnet": p.card.extra_repos["controlnet"][0],
        "images": "given",
    }
    if draws_control_images(p.request):
        record["images"] = "drawn from the video"
        record["drawn_with"] = {
            repo: locate_extra(repo).name for repo in ESTIMATORS[p.card.control]
        } or {"opencv": importlib.metadata.version("opencv-python-headless")}
    return record
