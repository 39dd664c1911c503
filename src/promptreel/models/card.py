"""What promptreel knows about a model: the `ModelCard`, and the `Family` it belongs to.

A family is one diffusers pipeline class: what it takes (text, image, video), the rules its
shapes must follow, and the extra settings (`--param`) it accepts. A card is one released model of
a family: where its weights live, its native size and defaults, its limits, its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Task = Literal["text-to-video", "image-to-video", "video-to-video"]


@dataclass(frozen=True)
class Param:
    """One model-specific setting, given as `--param KEY=VALUE`."""

    type: type  # int, float or bool
    help: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Family:
    """What every model of one diffusers pipeline class shares."""

    pipeline_class: str
    tasks: tuple[Task, ...]
    takes_text: bool
    size_multiple: int  # height and width must be multiples of this (VAE factor x patch size)
    frame_step: int = 1  # num_frames must be frame_step * k + frame_offset (temporal VAE factor)
    frame_offset: int = 0
    params: dict[str, Param] = field(default_factory=dict)
    # our argument name -> the pipeline's, where diffusers names it differently
    renames: dict[str, str] = field(default_factory=dict)
    # the pipeline class to use instead when an image is given (LTX ships one repo for both)
    image_pipeline_class: str | None = None
    # settings that must be strictly increasing, in this order (Text2Video-Zero: t0 < t1 < steps)
    increasing: tuple[str, ...] = ()
    # the pipeline class to use instead when a request has `control` (a ControlNet's)
    control_pipeline_class: str | None = None
    # An image pipeline run on every frame at once (Text2Video-Zero's way): one prompt a frame,
    # the same starting noise for every frame, and every frame's self-attention on the first.
    frames_as_batch: bool = False


@dataclass(frozen=True)
class ModelCard:
    """One model promptreel can run, with everything needed to validate a request for it."""

    name: str  # the alias users type: `modelscope`
    family: Family
    repo_id: str  # hub repo id, or a local folder for cards made from a folder
    width: int  # native size and defaults: what an unset option becomes
    height: int
    num_frames: int
    fps: int
    num_inference_steps: int
    guidance_scale: float
    dtype: str  # on a GPU; float32 on the CPU
    licence: str
    revision: str = "main"
    variant: str | None = None  # weight file variant to download and load (`fp16`)
    scheduler: str | None = None  # one of schedulers.SCHEDULERS; None keeps the repo's own
    scheduler_overrides: dict[str, object] = field(default_factory=dict)
    negative_prompt: str | None = None  # the one the model's authors recommend
    param_defaults: dict[str, bool | int | float] = field(default_factory=dict)
    fixed_size: bool = False  # runs only at its native width x height
    max_frames: int = 64
    max_pixels: int = 1280 * 720  # height * width
    components: dict[str, int] = field(default_factory=dict)  # parameter count per component
    # other repos the pipeline needs: init argument -> (repo id, class name)
    extra_repos: dict[str, tuple[str, str]] = field(default_factory=dict)
    description: str = ""
    local_path: str | None = None  # set when the card was made from a local folder
    takes_base: bool = False  # its repo is a Stable Diffusion 1.5 base `--base` may replace
    control: str | None = None  # the control kind, on a card made for a request with one
    base: str | None = None  # the `--base` (repo id or absolute folder) a card was made for

    @property
    def pipeline_class(self) -> str:
        return self.family.pipeline_class

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.family.tasks

    @property
    def takes_control(self) -> bool:
        return self.control is not None or self.family.control_pipeline_class is not None
