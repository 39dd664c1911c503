"""A card as plain data, for `promptreel models`, `models show` and the HTTP API."""

from __future__ import annotations

from typing import Any

from .card import ModelCard, Param
from .cards import CONTROLNETS, ESTIMATORS
from .families import CONTROL_PARAMS, FAMILIES
from .resolve import cached_snapshot, is_downloaded, locate


def card_info(card: ModelCard) -> dict[str, Any]:
    family = card.family
    step, offset = family.frame_step, family.frame_offset
    downloaded = is_downloaded(card)
    return {
        "name": card.name,
        "description": card.description,
        "repo_id": card.repo_id,
        "revision": card.revision,
        "pipeline_class": family.pipeline_class,
        "image_pipeline_class": family.image_pipeline_class,
        "tasks": list(family.tasks),
        "takes_text": family.takes_text,
        "width": card.width,
        "height": card.height,
        "num_frames": card.num_frames,
        "fps": card.fps,
        "num_inference_steps": card.num_inference_steps,
        "guidance_scale": card.guidance_scale,
        "scheduler": card.scheduler or "the repo's own",
        "dtype": {"cpu": "float32", "gpu": card.dtype},
        "variant": card.variant,
        "limits": {
            "size_multiple": family.size_multiple,
            "frames": f"{step}k+{offset}" if offset else f"multiple of {step}",
            "max_frames": card.max_frames,
            "max_pixels": card.max_pixels,
        },
        "params": _params(family.params),
        # what --control takes on this model, or None
        "control": _control_info(card),
        # the Stable Diffusion 1.5 checkpoint --base replaces, or None: the model's own UNet
        "base": {"default": card.repo_id} if card.takes_base else None,
        "components": dict(card.components),
        "parameters_total": sum(card.components.values()),
        "extra_repos": {k: repo for k, (repo, _) in card.extra_repos.items()},
        "licence": card.licence,
        "downloaded": downloaded,
        "path": str(locate(card)) if downloaded else None,
    }


def _params(params: dict[str, Param]) -> dict[str, Any]:
    return {
        key: {"type": p.type.__name__, "minimum": p.minimum, "maximum": p.maximum, "help": p.help}
        for key, p in params.items()
    }


def _control_info(card: ModelCard) -> dict[str, Any] | None:
    if card.family.control_pipeline_class is None:
        return None
    family = FAMILIES[card.family.control_pipeline_class]
    return {
        "pipeline_class": family.pipeline_class,
        "kinds": {
            kind: {
                "controlnet": repo,
                # drawn from a video by these (canny: OpenCV, no weights)
                "estimators": list(ESTIMATORS[kind]),
                "drawing_params": _params(CONTROL_PARAMS.get(kind, {})),
                "downloaded": all(
                    cached_snapshot(r, "main") is not None for r in (repo, *ESTIMATORS[kind])
                ),
            }
            for kind, repo in CONTROLNETS.items()
        },
        "params": _params(family.params),
    }
