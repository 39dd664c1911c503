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
from typing import Unpack

from . import control
from .errors import InvalidRequest, OutputError
from .generation import ProgressFn, prepare, run
from .jobs.history import history_entry
from .models import load
from .request import DEFAULT_MODEL, GenerateOptions, Settings, input_at, make_request
from .video import Video, check_output_path

__all__ = ["generate", "unload"]


def generate(
    prompt: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    progress: ProgressFn | None = None,
    history: bool = True,
    save_control: str | os.PathLike[str] | None = None,
    **options: Unpack[GenerateOptions],
) -> Video:
    """Make a video; a bad request raises a PromptreelError before anything loads.

    With `history`, the generation is kept in the history (`promptreel history`), and the files
    the video is saved to are added to it. With `control`, the video's `control` holds the
    control images it was steered by; `save_control` also writes them there (checked before
    anything loads). The loaded pipeline stays for the next call on the same model; `unload()`
    frees it.
    """
    request = make_request(prompt=prompt, model=model, **options)

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
        video = run(prepared, progress=progress)
        if save_control is not None:
            assert video.control is not None
            entry.add_output(video.control.save(save_control))
        entry.succeeded(video.record)
    video.on_save = entry.add_output
    if video.control is not None:
        video.control.on_save = entry.add_output
    return video


def unload() -> None:
    """Free the loaded pipeline, and the model that draws control images if one is loaded."""
    load.unload()
    control.unload()
