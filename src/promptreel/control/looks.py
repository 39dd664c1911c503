"""Whether a `--control-video` holds control images of the kind asked for.

A ControlNet given a photograph where it expects an edge map still runs, and makes a video
steered by nothing sensible; the user has most likely given the source video to the wrong
option. So images that plainly are not of the kind are refused, in one line that says which
option draws them. The tests are loose on purpose: compressed edge maps are not pure black and
white, and a dark or grey clip may pass; what is refused is clearly something else.
"""

from __future__ import annotations

import numpy as np

# A pixel is coloured when its channels differ by more than this (compression keeps a grey
# map within a few levels), and dark below this level.
_COLOURED = 48
_DARK = 64
_SAMPLES = 8  # frames looked at, spread over the clip

# kind -> (what it looks like, the most coloured share it may have, the least dark share)
_LOOKS = {
    "canny": ("white edges on black", 0.02, 0.5),
    "depth": ("grey depth maps", 0.02, 0.0),
    "pose": ("pose skeletons on black", 1.0, 0.5),
}


def control_fault(kind: str, frames: np.ndarray) -> str | None:
    """Why `frames` (uint8 (T, H, W, 3)) are plainly not control images of `kind`, or None."""
    looks, most_coloured, least_dark = _LOOKS[kind]
    picked = frames[np.linspace(0, len(frames) - 1, min(len(frames), _SAMPLES)).astype(int)]
    pixels = picked.reshape(-1, 3).astype(np.int16)
    coloured = float(np.mean(pixels.max(axis=1) - pixels.min(axis=1) > _COLOURED))
    dark = float(np.mean(pixels.max(axis=1) < _DARK))
    hint = f"to draw {kind} images from a video, give it with --video instead"
    if coloured > most_coloured:
        return f"does not look like {looks}: {coloured:.0%} of its pixels are in colour; {hint}"
    if dark < least_dark:
        return f"does not look like {looks}: only {dark:.0%} of it is dark; {hint}"
    return None
