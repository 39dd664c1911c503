"""promptreel: local text-to-video generation with open diffusion models.

import promptreel
video = promptreel.generate("a red panda eating bamboo", model="modelscope", seed=7)
video.save("panda.mp4")
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import *  # noqa: F403  (every error class is public)

# Model folders are data, never code: diffusers reads this once, at import.
os.environ["DIFFUSERS_DISABLE_REMOTE_CODE"] = "1"

__version__ = importlib.metadata.version("promptreel")

__all__ = ["GenerateOptions", "GenerationRequest", "Video", "__version__", "generate", "unload"]
__all__ += errors.__all__

# Importing torch and diffusers takes seconds; `promptreel models` and `--help` should not wait.
_LAZY = {
    "generate": "promptreel.api",
    "unload": "promptreel.api",
    "GenerateOptions": "promptreel.request",
    "Video": "promptreel.video",
    "GenerationRequest": "promptreel.request",
}

if TYPE_CHECKING:
    from .api import generate, unload
    from .request import GenerateOptions, GenerationRequest
    from .video import Video


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'promptreel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
