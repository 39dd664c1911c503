"""The Python API: make a video (kept in the history), free the loaded pipeline.

    import promptreel
    video = promptreel.generate("a red panda eating bamboo", model="modelscope", seed=7)
    video.save("panda.mp4")
    promptreel.unload()

This sits above both the engine (`generation`) and the history (`jobs.history`), which know
nothing of each other.
"""

from __future__ import annotations

from typing import Unpack

from .generation import ProgressFn, prepare, run
from .jobs.history import history_entry
from .models.load import unload
from .request import DEFAULT_MODEL, GenerateOptions, make_request
from .video import Video

__all__ = ["generate", "unload"]


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
    with history_entry(prepared.settled, source="python", enabled=history) as entry:
        video = run(prepared, progress=progress)
        entry.succeeded(video.record)
    video.on_save = entry.add_output
    return video
