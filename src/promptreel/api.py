"""The Python API: make a video (kept in the history), free the loaded pipeline.

    import promptreel
    video = promptreel.generate("a red panda eating bamboo", model="modelscope", seed=7)
    video.save("panda.mp4")
    promptreel.unload()

This sits above both the engine (`generation`) and the history (`jobs.history`), which know
nothing of each other.
"""

from __future__ import annotations

import os
from typing import TypedDict, Unpack

from .generation import ProgressFn, prepare, run
from .jobs.history import history_entry
from .models.load import unload
from .request import DEFAULT_MODEL, Device, Dtype, Offload, ParamValue, make_request
from .video import Video

__all__ = ["GenerateOptions", "generate", "unload"]


class GenerateOptions(TypedDict, total=False):
    """The keyword arguments of `generate`: the fields of `GenerationRequest` (diffusers' names)
    other than the prompt and the model. For editors; the request checks the values."""

    negative_prompt: str | None
    num_frames: int | None
    fps: float | None
    height: int | None
    width: int | None
    num_inference_steps: int | None
    guidance_scale: float | None
    seed: int | None
    scheduler: str | None
    image: str | os.PathLike[str] | None
    video: str | os.PathLike[str] | None
    params: dict[str, ParamValue]
    device: Device
    dtype: Dtype
    offload: Offload
    vae_slicing: bool
    vae_tiling: bool
    forward_chunking: bool
    compile: bool


def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    progress: ProgressFn | None = None,
    history: bool = True,
    **options: Unpack[GenerateOptions],
) -> Video:
    """Make a video; a bad request raises a PromptreelError before anything loads.

    With `history`, the generation is kept in the history (`promptreel history`), and the files
    the video is saved to are added to it. The loaded pipeline stays for the next call on the
    same model; `unload()` frees it.
    """
    request = make_request(prompt=prompt, model=model, **options)
    prepared = prepare(request)  # a refused request is no generation: it leaves no row
    with history_entry(request, source="python", enabled=history) as entry:
        video = run(prepared, progress=progress)
        entry.succeeded(video.record)
    video.on_save = entry.add_output
    return video
