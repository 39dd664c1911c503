"""The samplers a user can pick with `--scheduler`, by the names the community uses."""

from __future__ import annotations

from typing import Any

# name -> (diffusers class, settings that make it the sampler people mean by that name)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}

# Only these families denoise with a discrete epsilon/v-prediction schedule that all of the
# samplers above understand. CogVideoX, SVD, LTX and Wan ship schedulers of their own (CogVideoX
# DDIM/DPM variants, EDM sigmas, flow matching); swapping those in silently gives noise.
SWAPPABLE = frozenset(
    {
        "TextToVideoSDPipeline",
        "VideoToVideoSDPipeline",
        "AnimateDiffPipeline",
        "AnimateDiffControlNetPipeline",
        "AnimateDiffVideoToVideoPipeline",
        "TextToVideoZeroPipeline",
        "StableDiffusionControlNetPipeline",
        "StableDiffusionInstructPix2PixPipeline",
        "I2VGenXLPipeline",
    }
)


def make_scheduler(name: str, base_config: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """A scheduler `name`, keeping the repo's training schedule (betas, prediction type).

    `overrides` are a card's settings on top (AnimateDiff's guide wants linear betas, no
    sample clipping): they win over both the repo's config and the sampler's defaults.
    """
    import diffusers  # seconds to import: not for `--help` or a refused request

    class_name, settings = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    return cls.from_config(base_config, **{**settings, **overrides})
