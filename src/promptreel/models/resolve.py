"""From what the user typed after `--model` to a card and a folder of weights on disk.

`--model` may be a registry alias (`modelscope`), a hub repo id (`damo-vilab/text-to-video-ms-1.7b`)
or a local folder in diffusers layout. Hub models are looked up in the Hugging Face cache only:
generating never downloads; `promptreel download` does, explicitly, with the size shown first.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from .. import jsontext
from ..errors import ModelNotDownloaded, ModelNotFound
from .card import ModelCard
from .cards import CARDS
from .families import FAMILIES
from .model_index import check_model_index

CARDS_BY_NAME = {card.name: card for card in CARDS}
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


def find_card(model: str, *, folders: bool = True) -> ModelCard:
    """The card for an alias, a hub repo id or (with `folders`) a local folder.

    The service passes `folders=False`: over HTTP a model name must never reach the file system.
    """
    if not model.strip():
        raise ModelNotFound("the model name is empty; give an alias, a hub repo id or a folder.")
    if model in CARDS_BY_NAME:
        return CARDS_BY_NAME[model]
    if not folders and not (REPO_ID.fullmatch(model) and ".." not in model and "--" not in model):
        raise ModelNotFound(
            f"unknown model {model!r}: give a built-in name (GET /v1/models) or a hub repo id "
            "(org/name) in the server's cache."
        )
    try:
        folder = Path(model).expanduser()
        is_folder = folders and folder.is_dir()
    except (RuntimeError, ValueError, OSError):  # "~nobody", a NUL byte, a name too long
        raise ModelNotFound(f"{model!r} is not a model name, a repo id or a folder.") from None
    if is_folder:
        # absolute, so that the loaded-pipeline cache never confuses two folders named alike
        return card_from_folder(folder.resolve(), name=model)
    if _looks_like_repo_id(model):
        matches = [c for c in CARDS if model in (c.repo_id, *_extra_repo_ids(c))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = " or ".join(c.name for c in matches)
            raise ModelNotFound(f"{model} is used by several models; pick one: --model {names}.")
        snapshot = cached_snapshot(model, "main")
        if snapshot is None:
            raise ModelNotDownloaded(
                f"{model} is not a built-in model and is not in the local Hugging Face cache "
                f"({constants.HF_HUB_CACHE}); run `promptreel download {model}` first."
            )
        return card_from_folder(snapshot, name=model, repo_id=model)
    close = difflib.get_close_matches(model, list(CARDS_BY_NAME), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFound(
        f"unknown model {model!r}: {hint}See `promptreel models` for the built-in ones, or give "
        "a hub repo id (org/name) or a folder in diffusers layout."
    )


def locate(card: ModelCard) -> Path:
    """The folder holding the card's weights: its local folder or its snapshot in the cache."""
    if card.local_path is not None:
        if not (Path(card.local_path) / "model_index.json").is_file():
            raise ModelNotDownloaded(
                f"{card.name}'s folder {card.local_path} has no model_index.json; "
                + (
                    "reinstall promptreel (its weights ship with the package)."
                    if card.repo_id != card.local_path
                    else "give a folder in diffusers layout."
                )
            )
        return Path(card.local_path)
    snapshot = cached_snapshot(card.repo_id, card.revision)
    missing = [card.repo_id] if snapshot is None else []
    missing += [r for r in _extra_repo_ids(card) if cached_snapshot(r, "main") is None]
    if missing:
        raise ModelNotDownloaded(
            f"{card.name} needs {', '.join(missing)}, which is not in the local Hugging Face "
            f"cache ({constants.HF_HUB_CACHE}); run `promptreel download {card.name}` first."
        )
    assert snapshot is not None
    pickled = [
        p.parent.name for p in snapshot.glob("*/*.bin") if not any(p.parent.glob("*.safetensors"))
    ]
    if pickled:
        raise ModelNotDownloaded(
            f"{card.name} is cached with pickle weights only ({', '.join(sorted(set(pickled)))}); "
            f"run `promptreel download {card.name}` to convert them to safetensors (offline too)."
        )
    return snapshot


def locate_extra(repo_id: str) -> Path:
    """The cached snapshot of a repo a card needs besides its own (a motion adapter)."""
    snapshot = cached_snapshot(repo_id, "main")
    if snapshot is None:
        raise ModelNotDownloaded(f"{repo_id} is not in the local cache; run `promptreel download`.")
    return snapshot


def is_downloaded(card: ModelCard) -> bool:
    try:
        locate(card)
    except ModelNotDownloaded:
        return False
    return True


def card_from_folder(folder: Path, *, name: str, repo_id: str | None = None) -> ModelCard:
    """A card for weights we have no card for, built from the folder's own configs.

    The family comes from `model_index.json`; the defaults start from the built-in card of the
    same family (the values that family's models are trained for) and the native size from the
    folder's configs where they say it.
    """
    index = check_model_index(folder)
    class_name = index["_class_name"]
    family = FAMILIES.get(class_name)
    if family is None:
        raise ModelNotFound(
            f"{name} is a {class_name}, not a video pipeline promptreel runs; the families it "
            f"runs are: {', '.join(sorted(FAMILIES))}."
        )
    # the family's hub cards: a shipped model (shapes, 64x64 only) sets no family's defaults
    hub_cards = [c for c in CARDS if c.local_path is None]
    template = next((c for c in hub_cards if c.family.pipeline_class == class_name), None)
    if template is None:
        template = next(c for c in hub_cards if c.family.image_pipeline_class == class_name)
    size = _native_size(folder) or (template.height, template.width)
    return dataclasses.replace(
        template,
        name=name,
        family=family,
        repo_id=repo_id or str(folder),
        revision=folder.name if repo_id else "local",
        height=size[0],
        width=size[1],
        variant=_variant(folder),
        scheduler=None,
        scheduler_overrides={},
        components={},
        extra_repos={},
        licence="see the model's own card",
        description=f"{class_name} from {repo_id or folder}",
        local_path=str(folder),
    )


def _native_size(folder: Path) -> tuple[int, int] | None:
    """Height and width the denoiser was trained at, from its sample size and the VAE factor."""
    unet = _read_json(folder / "unet" / "config.json")
    vae = _read_json(folder / "vae" / "config.json")
    sample = unet.get("sample_size")
    blocks = vae.get("block_out_channels")
    if isinstance(sample, int) and isinstance(blocks, list) and blocks:
        side = sample * 2 ** (len(blocks) - 1)
        return side, side
    transformer = _read_json(folder / "transformer" / "config.json")
    h, w = transformer.get("sample_height"), transformer.get("sample_width")
    factor = vae.get("spatial_compression_ratio") or 8
    if isinstance(h, int) and isinstance(w, int):
        return h * factor, w * factor
    return None


def _variant(folder: Path) -> str | None:
    """The weight variant a folder holds only in variant form (`*.fp16.safetensors`), if any."""
    plain = [p for p in folder.glob("*/*.safetensors") if len(p.name.split(".")) == 2]
    if plain:
        return None
    variants = {p.name.split(".")[-2] for p in folder.glob("*/*.*.safetensors")}
    return variants.pop() if len(variants) == 1 else None


def _read_json(path: Path) -> dict:
    try:
        return jsontext.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def cached_snapshot(repo_id: str, revision: str) -> Path | None:
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return (
        folder
        if (folder / "model_index.json").exists() or (folder / "config.json").exists()
        else None
    )


def _extra_repo_ids(card: ModelCard) -> list[str]:
    return [repo for repo, _ in card.extra_repos.values()]


def _looks_like_repo_id(text: str) -> bool:
    if "/" not in text:
        return False
    if not REPO_ID.fullmatch(text) or ".." in text or "--" in text:
        raise ModelNotFound(
            f"{text!r} is neither a folder nor a valid hub repo id (org/name, letters, digits, "
            "'-', '_' and '.'); check the spelling."
        )
    return True
