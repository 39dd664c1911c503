"""promptreel: local text-to-video generation with open diffusion models.

import promptreel
video = promptreel.generate("a red panda eating bamboo", model="modelscope", seed=7)
video.save("panda.mp4")
"""

import os
from typing import Any

# Model folders are data, never code: diffusers reads this once, at import.
os.environ["DIFFUSERS_DISABLE_REMOTE_CODE"] = "1"

__all__ = ["GenerationRequest", "PromptreelError", "Video", "generate"]

# Importing torch and diffusers takes seconds; `promptreel models` and `--help` should not wait.
_LAZY = {
    "generate": "promptreel.generation",
    "Video": "promptreel.video",
    "GenerationRequest": "promptreel.request",
    "PromptreelError": "promptreel.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'promptreel' has no attribute {name!r}")
