"""A card as plain data, for `promptreel models`, `models show` and the HTTP API."""

from __future__ import annotations

from typing import Any

from .card import ModelCard
from .resolve import is_downloaded, locate


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
        "params": {
            key: {
                "type": p.type.__name__,
                "minimum": p.minimum,
                "maximum": p.maximum,
                "help": p.help,
            }
            for key, p in family.params.items()
        },
        "components": dict(card.components),
        "parameters_total": sum(card.components.values()),
        "extra_repos": {k: repo for k, (repo, _) in card.extra_repos.items()},
        "licence": card.licence,
        "downloaded": downloaded,
        "path": str(locate(card)) if downloaded else None,
    }
