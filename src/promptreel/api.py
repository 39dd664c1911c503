"""The Python API: make a video (kept in the history), free the loaded pipeline.

    import promptreel
    video = promptreel.generate("a red panda eating bamboo", model="modelscope", seed=7)
    video.save("panda.mp4")
    takes = promptreel.generate("a red panda", seed=7, num_videos_per_prompt=4)  # a list
    promptreel.unload()

This sits above both the engine (`generation`) and the history (`jobs.history`), which know
nothing of each other.
"""

from __future__ import annotations

import os
from typing import Unpack, overload

from . import control
from .errors import InvalidRequest, OutputError
from .generation import ProgressFn, prepare, run
from .jobs.history import history_entry
from .models import load
from .request import DEFAULT_MODEL, GenerateOptions, Settings, input_at, make_request
from .video import Video, check_output_path

__all__ = ["generate", "unload"]


@overload
def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    progress: ProgressFn | None = None,
    history: bool = True,
    save_control: str | os.PathLike[str] | None = None,
    **options: Unpack[GenerateOptions],
) -> Video: ...


@overload
def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    num_videos_per_prompt: int,
    progress: ProgressFn | None = None,
    history: bool = True,
    save_control: str | os.PathLike[str] | None = None,
    **options: Unpack[GenerateOptions],
) -> list[Video]: ...


def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    num_videos_per_prompt: int | None = None,
    progress: ProgressFn | None = None,
    history: bool = True,
    save_control: str | os.PathLike[str] | None = None,
    **options: Unpack[GenerateOptions],
) -> Video | list[Video]:
    """Make a video; a bad request raises a PromptreelError before anything loads.

    With `num_videos_per_prompt=N`, a list of N videos, on seeds seed, seed+1, ... (one
    generation in the history). With `history`, the generation is kept in the history
    (`promptreel history`), and the files the videos are saved to are added to it. With
    `control`, a video's `control` holds the control images it was steered by; `save_control`
    also writes them there (checked before anything loads). The loaded pipeline stays for the
    next call on the same model; `unload()` frees it.
    """
    count = (
        {} if num_videos_per_prompt is None else {"num_videos_per_prompt": num_videos_per_prompt}
    )
    request = make_request(prompt=prompt, model=model, **count, **options)

    def check_save_control(settings: Settings) -> None:
        if save_control is None:
            return
        if not isinstance(save_control, str | os.PathLike):
            raise InvalidRequest(
                f"save_control is a path, not {type(save_control).__name__}.",
                argument="save_control",
                value=save_control,
            )
        if request.control is None:
            raise InvalidRequest(
                "save_control writes the control images of a request with `control`; give "
                "control=KIND, or drop save_control.",
                argument="control",
            )
        check_output_path(save_control, fps=settings.fps, option="save_control")
        name = input_at(request, save_control)
        if name is not None:
            raise OutputError(
                f"save_control {save_control!r} is the {name} it reads; choose another"
            )

    # a refused request is no generation: it leaves no row
    prepared = prepare(request, check_settings=check_save_control)
    with history_entry(prepared.settled, source="python", enabled=history) as entry:
        videos = run(prepared, progress=progress)
        control = videos[0].control  # the same for every video
        if save_control is not None:
            assert control is not None
            entry.add_output(control.save(save_control))
        entry.succeeded(videos[0].record)
    for video in videos:
        video.on_save = entry.add_output
    if control is not None:
        control.on_save = entry.add_output
    return videos[0] if num_videos_per_prompt is None else videos


def unload() -> None:
    """Free the loaded pipeline, and the model that draws control images if one is loaded."""
    load.unload()
    control.unload()
