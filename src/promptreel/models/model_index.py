"""Reading a folder's model_index.json, and refusing one that would run code."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .. import jsontext
from ..errors import ModelNotFound

# Libraries a model_index.json may name, besides diffusers' own pipeline modules
# (`["stable_diffusion", "StableDiffusionSafetyChecker"]`). Anything else would make diffusers
# import code that came with the weights.
TRUSTED_LIBRARIES = frozenset({"diffusers", "transformers", None})


def read_model_index(folder: Path) -> dict[str, Any]:
    """The folder's model_index.json, checked to be the mapping diffusers expects."""
    try:
        index = jsontext.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ModelNotFound(
            f"{folder} is not a diffusers pipeline folder (model_index.json is missing or is "
            "not a mapping with a _class_name)."
        )
    return index


def check_model_index(folder: Path) -> dict[str, Any]:
    """The model index, refused if it points at code outside diffusers and transformers."""
    index = read_model_index(folder)
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        if not _trusted_library(value[0]):
            raise ModelNotFound(
                f"{folder}: component {name!r} comes from {value[0]!r}, which would run code "
                "shipped with the model; promptreel loads only diffusers and transformers classes."
            )
    return index


def _trusted_library(library: object) -> bool:
    if library in TRUSTED_LIBRARIES:
        return True
    return (
        isinstance(library, str)
        and library.isidentifier()
        and importlib.util.find_spec(f"diffusers.pipelines.{library}") is not None
    )
