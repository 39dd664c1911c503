"""The request: one validated description of a video to make, shared by every surface.

`GenerationRequest` is the one definition of what a user can set. The CLI's `generate` options,
the HTTP job body, the record's `parameters`, `history rerun` and the page's form all derive from
it (tests/test_request_surfaces.py fails when one misses a field), so a new setting is: its field
here, its check in `settle`, and its use in the engine.

`settle` checks a request against a model card and fills the gaps with the card's native values,
giving `Settings`: every number the pipeline will be called with. Both happen before any model is
loaded, so a bad request costs nothing and leaves nothing behind.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from .errors import InvalidRequest
from .models.card import ModelCard, Param
from .models.families import CONTROL_PARAM_DEFAULTS, CONTROL_PARAMS
from .schedulers import SWAPPABLE

DEFAULT_MODEL = "shapes"  # ships inside the package: works offline from the first run
MAX_PROMPT_CHARS = 4000
MAX_MODEL_CHARS = 1000
MAX_SEED = 2**63 - 1
MAX_STEPS = 500
MAX_GUIDANCE = 50.0
MAX_FPS = 120.0
MAX_VIDEOS_PER_PROMPT = 16

Device = Literal["auto", "cpu", "cuda", "mps"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Offload = Literal["none", "model", "sequential", "group"]
Cache = Literal["off", "fast", "max"]
Memory = Literal["auto", "off"]
# `model`: the sampler the model ships with (pinned as such in a record, so that a card that
# later picks another default cannot change a rerun); the others are `schedulers.SCHEDULERS`.
Scheduler = Literal["model", "ddim", "dpm++", "euler", "euler-a", "unipc"]
MODEL_SCHEDULER = "model"
# What the control images show; models.cards.CONTROLNETS has the ControlNet for each.
Control = Literal["pose", "canny", "depth"]
ParamValue = bool | int | float | str
Whole = Annotated[int, Strict()]  # True is not 1, and "4" is not 4


def _scalar_values(params: object) -> object:
    if isinstance(params, dict):
        for key, value in params.items():
            if not isinstance(value, bool | int | float | str):
                raise ValueError(
                    f"values are numbers, true/false or text, but `{key}` is {value!r}"
                )
    return params


# a validator of the type, not of the model: the HTTP body, derived from the fields, has it too
Params = Annotated[dict[str, ParamValue], BeforeValidator(_scalar_values)]
Number = Annotated[float, Strict()]  # an int is fine, a bool is not

# The fields that name an input file: the CLI takes a path, the service an upload.
INPUT_FILES = ("image", "video", "control_video")
# What a record keeps outside its `parameters`: the texts, the model, the input files' hashes.
RECORDED_APART = ("prompt", "negative_prompt", "model", *INPUT_FILES)
# http://, s3://, hf://, and data: and file: (but not C:\ nor a file named "clip:1.png")
_URL = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*://|data:|file:)", re.IGNORECASE)

# What a prompt may hold: any text but control characters (C0 and C1, such as ESC and the 8-bit
# CSI U+009B: a terminal acts on them), tabs and line breaks apart; the bidirectional overrides
# and isolates that make text read differently than it is stored; and lone surrogates (bytes
# that were not UTF-8, as a shell passes them on). Zero-width and other format characters are
# allowed (emoji sequences need the joiner) but are not visible: a prompt needs one that is.
_ALLOWED_CONTROLS = "\t\n"
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})


def text_fault(text: str) -> str | None:
    """Why `text` cannot be a prompt (its first character that may not be in one), or None."""
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category == "Cs":
            return (
                f"holds U+{ord(char):04X} at character {position}, which is not valid UTF-8 "
                "text; check the encoding of the shell or file it came from"
            )
        if (category == "Cc" and char not in _ALLOWED_CONTROLS) or char in _BIDI_CONTROLS:
            kind = "a control character" if category == "Cc" else "a bidirectional override"
            return f"holds U+{ord(char):04X} ({kind}) at character {position}; remove it"
    return None


def visible(text: str) -> bool:
    """Whether `text` has a character that shows (not only spaces, zero-width or BOMs)."""
    return any(unicodedata.category(c) not in _INVISIBLE for c in text)


class GenerationRequest(BaseModel):
    """What the user asked for, with diffusers' argument names. None means "the model's own".

    Each field's description is its help text on the command line and in the API schema.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="What the video shows."
    )
    model: str = Field(
        DEFAULT_MODEL,
        max_length=MAX_MODEL_CHARS,
        description="Alias, hub repo id, or a local folder (not over HTTP).",
    )
    base: str | None = Field(
        None,
        max_length=MAX_MODEL_CHARS,
        description="Stable Diffusion 1.5 checkpoint under the model (animatediff, "
        "animatediff-v2v, text2video-zero): a hub repo id, or a folder (not over HTTP).",
    )
    negative_prompt: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="What to avoid (empty: nothing, not the model's default).",
    )
    num_frames: Whole | None = Field(None, description="Frames to generate.")
    fps: Number | None = Field(None, description="Frames per second of the file.")
    height: Whole | None = Field(None, description="Height in pixels.")
    width: Whole | None = Field(None, description="Width in pixels.")
    num_inference_steps: Whole | None = Field(None, description="Denoising steps.")
    guidance_scale: Number | None = Field(None, description="Classifier-free guidance.")
    seed: Whole | None = Field(None, description="Random seed (default: a random one).")
    num_videos_per_prompt: Whole = Field(
        1,
        description="Videos to make of the request, on seeds seed, seed+1, ...: in one batch "
        "where the pipeline makes several at once, else one after another.",
    )
    scheduler: Scheduler | None = Field(
        None, description="The sampler (model: the one the model ships with)."
    )
    image: Path | None = Field(None, description="Image to animate (a local file).")
    video: Path | None = Field(
        None,
        description="Video to transform, or to draw control images from with --control "
        "(a local file, or a folder of images).",
    )
    control: Control | None = Field(
        None, description="Steer the video with control images of this kind (canny: edges)."
    )
    control_video: Path | None = Field(
        None,
        description="The control images as they are: a video or a folder of images (pose "
        "skeletons, edge or depth maps).",
    )
    params: Params = Field(
        default_factory=dict, description="Model-specific settings (`promptreel models show`)."
    )
    lora: list[str] = Field(
        default_factory=list,
        description="LoRA to load, LORA[:SCALE] (scale 1 by default): a name (`promptreel "
        "loras`), a hub repo id, or a folder (not over HTTP).",
    )
    device: Device = Field("auto", description="Where to run.")
    dtype: Dtype = Field(
        "auto", description="Weights' precision (auto: float32 on the CPU, the model's on a GPU)."
    )
    offload: Offload = Field("none", description="Keep weights off the GPU until needed.")
    vae_slicing: StrictBool = Field(False, description="Decode one video at a time.")
    vae_tiling: StrictBool = Field(False, description="Decode in tiles (less memory).")
    forward_chunking: StrictBool = Field(
        False, description="Chunk feed-forward layers (less memory)."
    )
    fp8: StrictBool = Field(
        False,
        description="Keep the denoiser's weights in float8, cast up a layer at a time as it "
        "runs (diffusers' layerwise casting: about half the memory of half precision, a "
        "slightly different video).",
    )
    compile: StrictBool = Field(False, description="torch.compile the denoiser.")
    memory: Memory = Field(
        "auto",
        description="On a GPU, switch on the fastest memory setup that fits (`promptreel "
        "plan`), unless a switch is given; off: only the switches given.",
    )
    cache: Cache = Field(
        "off",
        description="Reuse work across denoising steps: fast (about 2x, nearly the same "
        "video), max (faster, less faithful).",
    )

    @field_validator("model", "base", mode="before")
    @classmethod
    def _model_name(cls, model: object, info: ValidationInfo) -> object:
        model = str(model) if isinstance(model, Path) else model
        if isinstance(model, str) and not model.strip():
            alias = "an alias, " if info.field_name == "model" else ""
            raise ValueError(f"is empty; give {alias}a hub repo id or a folder")
        return model

    @field_validator("lora", mode="before")
    @classmethod
    def _one_or_more(cls, lora: object) -> object:
        # `lora="style:0.8"` in Python is one LoRA, not a list of characters
        return [os.fspath(lora)] if isinstance(lora, str | os.PathLike) else lora

    @field_validator("prompt", "negative_prompt", mode="before")  # before: pydantic's own
    @classmethod  # check of the text would say less about bytes that are not UTF-8
    def _prompt_characters(cls, text: object) -> object:
        fault = text_fault(text) if isinstance(text, str) else None
        if fault is not None:
            raise ValueError(fault)
        return text

    @field_validator(*INPUT_FILES, mode="before")
    @classmethod
    def _local_file(cls, path: object) -> object:
        # diffusers' loaders would fetch a URL; promptreel reads local files only (it works
        # offline, and the service must not be made to fetch addresses for a client)
        if isinstance(path, str) and _URL.match(path) and not os.path.exists(path):
            raise ValueError(
                "is a URL; promptreel reads local files only: download it first "
                "(e.g. curl -o FILE URL) and give its path"
            )
        if isinstance(path, str) and not path.strip():
            raise ValueError("is empty; give the path of a file")
        return path


class GenerateOptions(TypedDict, total=False):
    """The keyword arguments of `generate`: the fields of `GenerationRequest` (diffusers' names)
    other than the prompt, the model and `num_videos_per_prompt` (given, `generate` returns a
    list). For editors; the request checks the values."""

    negative_prompt: str | None
    num_frames: int | None
    fps: float | None
    height: int | None
    width: int | None
    num_inference_steps: int | None
    guidance_scale: float | None
    seed: int | None
    scheduler: Scheduler | None
    base: str | os.PathLike[str] | None
    image: str | os.PathLike[str] | None
    video: str | os.PathLike[str] | None
    control: Control | None
    control_video: str | os.PathLike[str] | None
    params: dict[str, ParamValue]
    lora: str | list[str]
    device: Device
    dtype: Dtype
    offload: Offload
    vae_slicing: bool
    vae_tiling: bool
    forward_chunking: bool
    fp8: bool
    compile: bool
    memory: Memory
    cache: Cache


def make_request(**fields: object) -> GenerationRequest:
    """Build a request, turning pydantic's multi-line report into one line that names the field."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        message, argument = one_line(exc.errors())
        raise InvalidRequest(message, argument=argument, value=fields.get(argument or "")) from None


def one_line(
    errors: Sequence[Mapping[str, Any]], *, outside: tuple[str, ...] = ()
) -> tuple[str, str | None]:
    """Pydantic's report as one line that names the first field at fault, with that field.
    `outside`: the parts of an error's location that are not field names (FastAPI's `body`)."""
    err = errors[0] if errors else {}
    loc = [str(p) for p in err.get("loc", ()) if p not in outside]
    message = str(err.get("msg", "invalid request")).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    got = f" (got {_show_value(err['input'])})" if "input" in err else ""
    where = f"`{'.'.join(loc)}` " if loc else ""
    return f"{where}{message}{got}.", (loc[0] if loc else None)


def _show_value(value: object) -> str:
    if isinstance(value, int) and abs(value) >= 10**24:  # repr() refuses past 4300 digits
        return _show(value)
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Settings:
    """A request settled against a card: every value the pipeline is called with."""

    prompt: str | None
    negative_prompt: str | None
    num_frames: int
    height: int
    width: int
    fps: float
    num_inference_steps: int
    guidance_scale: float
    seed: int
    scheduler: str  # a name of schedulers.SCHEDULERS, or MODEL_SCHEDULER
    num_videos_per_prompt: int = 1
    params: dict[str, bool | int | float] = field(default_factory=dict)
    base: str | None = None  # the SD 1.5 base, for a card that takes one


def settled_request(request: GenerationRequest, settings: Settings) -> GenerationRequest:
    """`request` with every value the model settled on fixed (the seed above all): it makes the
    same video again, whatever the card's defaults become."""
    return request.model_copy(update=asdict(settings))


def recorded_parameters(settled: GenerationRequest) -> dict[str, Any]:
    """A record's `parameters`: every field of the settled request that the record does not
    keep apart. `history rerun` rebuilds the request from them."""
    return settled.model_dump(mode="json", exclude=set(RECORDED_APART))


@dataclass(frozen=True)
class InputVideo:
    """What a request's input video (to transform, or of control images) is: it sets the
    defaults of the output. A folder of images has no frame rate."""

    frames: int
    fps: float | None
    height: int
    width: int


def input_at(request: GenerationRequest, path: str | os.PathLike[str]) -> str | None:
    """The input field whose file (or folder) is at `path`, if any: an output must not replace
    what the request reads, whatever `--overwrite` says."""
    target = os.path.abspath(os.fspath(path))
    for name in INPUT_FILES:
        given = getattr(request, name)
        if given is None:
            continue
        try:
            same = os.path.abspath(given) == target or os.path.samefile(given, target)
        except OSError:  # one of them does not exist: then they are not the same file
            same = False
        if same:
            return name
    return None


def draws_control_images(request: GenerationRequest) -> bool:
    """Whether promptreel draws the control images itself, from `video`."""
    return request.control is not None and request.control_video is None


def settle(
    request: GenerationRequest, card: ModelCard, *, video: InputVideo | None = None
) -> Settings:
    """Check `request` against `card` and fill every unset value with the card's native one.

    With an input video (to transform, or of control images), the output by default keeps its
    frame rate and its shape: on a square model, the input's aspect ratio at as many pixels as
    the card's; otherwise the card's size, turned upright for a portrait clip. It keeps the
    input's frame count up to the card's (all of the control images': up to the model's
    limit). `card` is the one the request runs (`models.resolve.with_control`, `with_base`).
    """
    family = card.family
    # 1. What the model takes: text, an image, a video
    prompt = _check_prompt(request.prompt, card, "prompt")
    negative = _check_prompt(request.negative_prompt, card, "negative_prompt", optional=True)
    if negative is None and card.family.takes_text:
        # "" is "nothing to avoid", said explicitly: a rerun then stays without one, whatever
        # negative prompt the card may take on later
        negative = card.negative_prompt or ""
    _check_inputs(request, card)

    # 2. Frames, size, speed of playback
    video_frames = None if video is None else video.frames
    num_frames = request.num_frames
    if num_frames is None and video_frames:
        cap = card.max_frames if request.control is not None else card.num_frames
        num_frames = _valid_at_most(min(cap, video_frames), card)
    elif num_frames is None:
        num_frames = card.num_frames
    source = "control video" if request.control_video is not None else "input video"
    _check_frames(num_frames, card, video_frames, source)
    native = (card.height, card.width)
    if video is not None and card.height == card.width and not card.fixed_size:
        native = _same_shape(video, card)  # a square model draws any shape: keep the input's
    elif video is not None and video.height > video.width:
        native = (card.width, card.height)  # a portrait clip stays portrait
    height = native[0] if request.height is None else request.height
    width = native[1] if request.width is None else request.width
    _check_size(height, width, card)
    native_fps = card.fps if video is None or video.fps is None else video.fps
    fps = float(native_fps if request.fps is None else request.fps)
    _check_range("fps", fps, 1, MAX_FPS)

    # 3. Sampling
    steps = (
        card.num_inference_steps
        if request.num_inference_steps is None
        else request.num_inference_steps
    )
    _check_range("num_inference_steps", steps, 1, MAX_STEPS)
    guidance = card.guidance_scale if request.guidance_scale is None else request.guidance_scale
    _check_range("guidance_scale", guidance, 0.0, MAX_GUIDANCE)
    own = request.scheduler in (None, MODEL_SCHEDULER)
    if not own and family.pipeline_class not in SWAPPABLE:
        raise InvalidRequest(
            f"--scheduler is not supported for {card.name}: {family.pipeline_class} needs the "
            "scheduler it ships with; leave --scheduler unset.",
            argument="scheduler",
            value=request.scheduler,
        )
    videos = request.num_videos_per_prompt
    _check_range("num_videos_per_prompt", videos, 1, MAX_VIDEOS_PER_PROMPT)
    seed = secrets.randbelow(2**32) if request.seed is None else request.seed
    _check_range("seed", seed, 0, MAX_SEED)
    if seed + videos - 1 > MAX_SEED:  # video k is made on seed + k - 1
        raise InvalidRequest(
            f"{videos} videos take the seeds from {_show(seed)} up, past the largest "
            f"({_show(MAX_SEED)}); give --seed {_show(MAX_SEED - videos + 1)} or less.",
            argument="seed",
            value=seed,
        )
    drawing = CONTROL_PARAMS.get(request.control or "", {}) if draws_control_images(request) else {}
    params = {
        **card.param_defaults,
        **(CONTROL_PARAM_DEFAULTS.get(request.control or "", {}) if drawing else {}),
        **_check_params(request.params, card, drawing),
    }
    _check_increasing({**params, "num_inference_steps": steps}, card)
    if "strength" in params and int(steps * params["strength"]) < 1:
        # the pipelines denoise the last int(steps * strength) steps: none would crash them
        raise InvalidRequest(
            f"strength {params['strength']:g} of {steps} steps runs no denoising step (the "
            f"last {steps} x {params['strength']:g}, rounded down, are run); raise --param "
            "strength or --num-inference-steps.",
            argument="params",
            value=params["strength"],
        )
    if params.get("low_threshold", 0) > params.get("high_threshold", 2040):
        raise InvalidRequest(
            f"canny needs low_threshold <= high_threshold but has {params['low_threshold']} > "
            f"{params['high_threshold']}; adjust them with --param.",
            argument="params",
            value={k: params[k] for k in ("low_threshold", "high_threshold")},
        )
    return Settings(
        prompt=prompt,
        negative_prompt=negative,
        num_frames=num_frames,
        height=height,
        width=width,
        fps=fps,
        num_inference_steps=steps,
        guidance_scale=float(guidance),
        seed=seed,
        scheduler=request.scheduler or card.scheduler or MODEL_SCHEDULER,
        num_videos_per_prompt=videos,
        params=params,
        base=card.base or (card.repo_id if card.takes_base else None),
    )


def _check_prompt(
    text: str | None, card: ModelCard, name: str, *, optional: bool = False
) -> str | None:
    if not card.family.takes_text:
        if text is not None:
            raise InvalidRequest(
                f"{card.name} takes no text, only an image: remove the {name} "
                "(it would be ignored).",
                argument=name,
                value=text,
            )
        return None
    if text is None and optional:
        return None
    if optional and not visible(text or ""):
        return ""  # an empty negative prompt: nothing to avoid
    if text is None or not visible(text):
        raise InvalidRequest(
            f"{card.name} needs a {name}: give a text with something visible in it.",
            argument=name,
            value=text,
        )
    return text.strip()


def _check_inputs(request: GenerationRequest, card: ModelCard) -> None:
    tasks = card.tasks
    if request.control_video is not None and not card.takes_control:
        raise InvalidRequest(
            f"{card.name} takes no control images; remove --control-video.",
            argument="control_video",
            value=str(request.control_video),
        )
    if request.control_video is not None and request.control is None:
        raise InvalidRequest(
            "--control-video needs --control KIND (pose, canny or depth): say what its images "
            "show.",
            argument="control",
        )
    if request.control is not None:  # the card takes control: models.resolve.with_control
        if request.control_video is not None and request.video is not None:
            raise InvalidRequest(
                "give the control images (--control-video) or a video to draw them from "
                "(--video), not both.",
                argument="video",
                value=str(request.video),
            )
        if request.control_video is None and request.video is None:
            raise InvalidRequest(
                f"--control {request.control} needs its images: --control-video PATH (a video or "
                "a folder of them), or --video PATH to draw them from.",
                argument="control_video",
            )
    if "video-to-video" in tasks:
        if request.video is None:
            raise InvalidRequest(
                f"{card.name} transforms a video: give one with --video PATH.", argument="video"
            )
    elif request.video is not None and request.control is None:
        hint = " (or add --control KIND to draw control images from it)"
        raise InvalidRequest(
            f"{card.name} does not take a video; remove --video"
            f"{hint if card.takes_control else ''}.",
            argument="video",
            value=str(request.video),
        )
    if "image-to-video" in tasks:
        if request.image is None and "text-to-video" not in tasks:
            raise InvalidRequest(
                f"{card.name} animates an image: give one with --image PATH.", argument="image"
            )
    elif request.image is not None:
        raise InvalidRequest(
            f"{card.name} does not take an image; remove --image or pick an image-to-video model "
            "(see `promptreel models`).",
            argument="image",
            value=str(request.image),
        )


def _same_shape(video: InputVideo, card: ModelCard) -> tuple[int, int]:
    """Height and width of the input's shape, as many pixels as the card's native size at
    most, in multiples of its size rule: a 9:16 clip stays 9:16, not squashed to a square."""
    m = card.family.size_multiple
    area = card.height * card.width
    aspect = video.width / video.height
    height = max(m, int(math.sqrt(area / aspect)) // m * m)
    width = max(m, int(math.sqrt(area * aspect)) // m * m)
    return height, width


def _valid_at_most(frames: int, card: ModelCard) -> int:
    """The largest frame count the model takes that is at most `frames` (at least the least)."""
    step, offset = card.family.frame_step, card.family.frame_offset
    return max(frames - (frames - offset) % step, max(1, offset))


def _check_frames(num_frames: int, card: ModelCard, video_frames: int | None, source: str) -> None:
    step, offset = card.family.frame_step, card.family.frame_offset
    lowest = max(1, offset)
    if not lowest <= num_frames <= card.max_frames:
        raise InvalidRequest(
            f"`num_frames` must be between {lowest} and {card.max_frames} for {card.name} "
            f"but is {_show(num_frames)}.",
            argument="num_frames",
            value=num_frames,
        )
    if (num_frames - offset) % step:
        below = num_frames - (num_frames - offset) % step
        valid = ", ".join(str(n) for n in (below, below + step) if lowest <= n <= card.max_frames)
        rule = f"{step}k+{offset}" if offset else f"a multiple of {step}"
        raise InvalidRequest(
            f"`num_frames` must be {rule} for {card.name} but is {num_frames}; try {valid}.",
            argument="num_frames",
            value=num_frames,
        )
    if video_frames is not None and num_frames > video_frames:
        raise InvalidRequest(
            f"`num_frames` is {num_frames} but the {source} has only {video_frames} frames; "
            f"give --num-frames {video_frames} or fewer.",
            argument="num_frames",
            value=num_frames,
        )


def _check_size(height: int, width: int, card: ModelCard) -> None:
    if card.fixed_size and (height, width) != (card.height, card.width):
        raise InvalidRequest(
            f"{card.name} runs only at {card.width}x{card.height} but {width}x{height} was "
            "asked for; leave --width and --height unset.",
            argument="height" if height != card.height else "width",
            value=height if height != card.height else width,
        )
    m = card.family.size_multiple
    for name, value in (("height", height), ("width", width)):
        if value < m or value % m:
            raise InvalidRequest(
                f"`{name}` must be a positive multiple of {m} for {card.name} but is {value}.",
                argument=name,
                value=value,
            )
    if height * width > card.max_pixels:
        raise InvalidRequest(
            f"{width}x{height} is {height * width} pixels, more than the {card.max_pixels} "
            f"{card.name} supports; lower --width/--height.",
            argument="width",
            value=width,
        )


def _check_increasing(values: dict[str, bool | int | float], card: ModelCard) -> None:
    names = card.family.increasing
    chain = [values[n] for n in names if n in values]
    if any(a >= b for a, b in itertools.pairwise(chain)):
        shown = ", ".join(f"{n}={values[n]}" for n in names if n in values)
        raise InvalidRequest(
            f"{card.name} needs {' < '.join(names)} but has {shown}; adjust them with "
            "--param and --num-inference-steps.",
            argument="params",
            value={n: values[n] for n in names if n in values},
        )


def _check_range(
    name: str, value: float, lo: float, hi: float, *, argument: str | None = None
) -> None:
    if not lo <= value <= hi:
        raise InvalidRequest(
            f"`{name}` must be between {_show(lo)} and {_show(hi)} but is {_show(value)}.",
            argument=argument or name,
            value=value,
        )


def _show(number: float) -> str:
    if isinstance(number, int) and abs(number) >= 10**24:  # str() refuses past 4300 digits
        return f"a number of {len(format(number, 'x')) * 4 * 3 // 10} or so digits"
    text = f"{number:g}" if isinstance(number, float) else str(number)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def _check_params(
    given: dict[str, ParamValue], card: ModelCard, drawing: Mapping[str, Param]
) -> dict[str, bool | int | float]:
    known = {**card.family.params, **drawing}
    checked: dict[str, bool | int | float] = {}
    for key, raw in given.items():
        spec = known.get(key)
        if spec is None:
            names = ", ".join(sorted(known)) or "none"
            drawn = [kind for kind, params in CONTROL_PARAMS.items() if key in params]
            only = (
                f" ({key} is for drawing {drawn[0]} images from --video with --control {drawn[0]})"
                if drawn
                else ""
            )
            raise InvalidRequest(
                f"unknown --param `{key}` for {card.name}; it accepts: {names}{only}.",
                argument="params",
                value=key,
            )
        value = _parse_param(key, raw, spec.type)
        if spec.type is not bool:
            lo = float("-inf") if spec.minimum is None else spec.minimum
            hi = float("inf") if spec.maximum is None else spec.maximum
            _check_range(key, value, lo, hi, argument="params")
        checked[key] = value
    return checked


def _parse_param(key: str, raw: ParamValue, kind: type) -> bool | int | float:
    text = str(raw).strip().lower()
    if kind is bool:
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    else:
        try:
            value = kind(text)
        except ValueError:
            try:  # "1e3" for an int: exact when the float is a whole number
                value = int(float(text)) if kind is int and float(text).is_integer() else None
            except (ValueError, OverflowError):
                value = None
        if value is not None and value == value and abs(value) != float("inf"):  # no NaN/inf
            return value
    raise InvalidRequest(
        f"--param {key} expects {kind.__name__} but got {raw!r}.", argument="params", value=raw
    )
