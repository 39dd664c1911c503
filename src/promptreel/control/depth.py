"""Depth maps from Depth Anything V2 Small: the control images of the SD 1.5 depth ControlNet.

That ControlNet was trained on MiDaS output: relative inverse depth, near bright and far dark,
in three equal channels. Depth Anything V2 predicts the same kind of quantity (relative
disparity), so its output is used as it comes, resized to the frame.

Each image's depth is only known up to scale and shift, and normalising every frame on its own
(as the image annotators do) makes a video flicker as things enter and leave the view; so the
whole clip shares one minimum and one maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

# Frames a forward pass: the ViT-S sees ~37 x 37 patches a frame (518 pixels, patch 14), so four
# frames stay well under a gigabyte of activations on any device.
BATCH = 4


@dataclass
class DepthEstimator:
    processor: Any
    model: DepthAnythingForDepthEstimation
    device: str
    dtype: torch.dtype


def load(folder: Path, *, device: str, dtype: torch.dtype) -> DepthEstimator:
    """The processor and network in `folder` (safetensors only, no remote code)."""
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=False)
    model = DepthAnythingForDepthEstimation.from_pretrained(
        folder, use_safetensors=True, dtype=dtype
    )
    return DepthEstimator(processor, model.to(device).eval(), device, dtype)


@torch.inference_mode()
def depth_maps(estimator: DepthEstimator, frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB frames -> uint8 (T, H, W, 3) depth maps, near = 255."""
    height, width = frames.shape[1:3]
    depth = np.empty(frames.shape[:3], np.float32)
    for start in range(0, len(frames), BATCH):
        batch = list(frames[start : start + BATCH])
        inputs = estimator.processor(
            images=batch, return_tensors="pt", input_data_format="channels_last"
        )
        pixels = inputs["pixel_values"].to(estimator.device, estimator.dtype)
        predicted = estimator.model(pixel_values=pixels).predicted_depth  # (B, h, w)
        # bicubic to the frame, as the processor's own post-processing does; in float32, since
        # half precision has too few steps for 256 grey levels over a deep scene
        resized = torch.nn.functional.interpolate(
            predicted.float()[:, None], size=(height, width), mode="bicubic", align_corners=False
        )
        depth[start : start + len(batch)] = resized[:, 0].cpu().numpy()
    low, high = float(depth.min()), float(depth.max())
    if high > low:
        grey = np.round((depth - low) * (255.0 / (high - low))).astype(np.uint8)
    else:  # a flat prediction says nothing about depth: no control rather than noise
        grey = np.zeros(depth.shape, np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
