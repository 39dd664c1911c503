"""Control images for ControlNet, extracted from a source video's frames.

`promptreel generate ... --video dance.mp4 --control pose` reads the frames, resizes them to the
request's size, and asks `extract` for one control image a frame, in the form the SD 1.5
ControlNets were trained on:

    canny   white Canny edges on black (OpenCV; no weights)
    depth   relative depth, near bright (Depth Anything V2 Small)
    pose    OpenPose skeletons on black (RT-DETR person boxes, then ViTPose keypoints)

The estimators' weights come from the local Hugging Face cache only, as safetensors, never with
remote code; `promptreel download` fetches them (`models.cards.ESTIMATORS` says which), and
`missing_estimators` tells whether they are there. One estimator stays loaded, like the one
pipeline of `models.load`, so the next video of the same kind does not load it again; asking for
another kind (or device, or dtype) frees it first.

This is a foundation layer: it imports only from `models`, `errors` and `device`. torch,
transformers and OpenCV are imported when first needed, so that the command line stays quick.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotDownloaded, ModelNotFound
from ..models.cards import ESTIMATORS
from ..models.resolve import cached_snapshot

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["KINDS", "extract", "missing_estimators", "unload"]

KINDS = tuple(ESTIMATORS)  # the control kinds; models.cards has what each needs

# What a repo must hold to be loaded: the hub's config files and the safetensors weights (a
# download cut short may have left the configs alone).
REPO_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")


@dataclass
class _Loaded:
    key: tuple[str, str, torch.dtype]  # kind, device, dtype
    estimator: Any


_loaded: _Loaded | None = None


def extract(
    kind: str,
    frames: np.ndarray,
    *,
    params: Mapping[str, float],
    device: str,
    dtype: torch.dtype,
) -> np.ndarray:
    """frames: uint8 (T, H, W, 3) RGB; returns uint8 (T, H, W, 3) RGB control images of the same
    size.

    `params` holds the request's settings for the kind (canny: `low_threshold`,
    `high_threshold`). Raises ModelNotDownloaded when the kind's estimator is not in the cache.
    """
    import numpy as np

    if kind not in KINDS:
        raise ValueError(f"control kind {kind!r} is not one of {', '.join(KINDS)}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must be uint8 (T, H, W, 3) RGB, not {frames.dtype} {tuple(frames.shape)}"
        )
    if kind == "canny":
        from .canny import edges

        return edges(
            frames,
            low_threshold=params["low_threshold"],
            high_threshold=params["high_threshold"],
        )
    estimator = _estimator(kind, device, dtype)
    if kind == "depth":
        from .depth import depth_maps

        return depth_maps(estimator, frames)
    from .pose import skeletons

    return skeletons(estimator, frames)


def missing_estimators(kind: str) -> list[str]:
    """The repo ids that `kind` needs and the local Hugging Face cache does not hold."""
    return [repo for repo in ESTIMATORS[kind] if _snapshot(repo) is None]


def unload() -> None:
    """Free the loaded estimator, if any (its memory goes back to the device)."""
    global _loaded
    if _loaded is None:
        return
    device = _loaded.key[1]
    _loaded = None
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _snapshot(repo: str) -> Path | None:
    folder = cached_snapshot(repo, "main")
    if folder is None or not all((folder / name).is_file() for name in REPO_FILES):
        return None
    return folder


def _estimator(kind: str, device: str, dtype: torch.dtype) -> Any:
    """The loaded estimator for `kind` on `device` in `dtype`: the one kept, or a new one."""
    global _loaded
    key = (kind, device, dtype)
    if _loaded is not None and _loaded.key == key:
        return _loaded.estimator
    unload()
    missing = missing_estimators(kind)
    if missing:
        from huggingface_hub import constants

        needs = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        raise ModelNotDownloaded(
            f"the {kind} estimator needs {needs}, which {verb} not in the local Hugging Face "
            f"cache ({constants.HF_HUB_CACHE}); run `promptreel download <model> --control "
            f"{kind}` for the model you use."
        )
    folders = [folder for repo in ESTIMATORS[kind] if (folder := _snapshot(repo))]
    import transformers

    # promptreel reports loading as one stage of its own; the library's bars would scribble
    # over it (and over one-line errors)
    transformers.utils.logging.disable_progress_bar()
    try:
        if kind == "depth":
            from .depth import load as load_depth

            estimator: Any = load_depth(folders[0], device=device, dtype=dtype)
        else:
            from .pose import load as load_pose

            estimator = load_pose(folders[0], folders[1], device=device, dtype=dtype)
    except Exception as exc:  # a broken or foreign folder fails in many ways; name the first
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelNotFound(
            f"could not load the {kind} estimator from "
            f"{', '.join(str(f) for f in folders)} (safetensors only): "
            f"{type(exc).__name__}: {first_line}"
        ) from exc
    _loaded = _Loaded(key, estimator)
    return estimator
