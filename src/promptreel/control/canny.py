"""Canny edge maps: the control images of the SD 1.5 canny ControlNet.

That ControlNet was trained on white edges on black (its annotator ran `cv2.Canny` on each
image), three equal channels; so each frame here is made grey and passed to `cv2.Canny` with the
request's two hysteresis thresholds. No weights, so nothing to load or download.
"""

from __future__ import annotations

import cv2
import numpy as np


def edges(frames: np.ndarray, *, low_threshold: float, high_threshold: float) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB frames -> uint8 (T, H, W, 3) edge maps (255 on an edge, else 0).

    A gradient above `high_threshold` starts an edge; one above `low_threshold` continues it.
    """
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out[index] = cv2.Canny(grey, low_threshold, high_threshold)[:, :, None]
    return out
