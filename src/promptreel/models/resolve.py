"""From what the user typed after `--model` to a card and a folder of weights on disk.

`--model` may be a registry alias (`modelscope`), a hub repo id (`damo-vilab/text-to-video-ms-1.7b`)
or a local folder in diffusers layout. Hub models are looked up in the Hugging Face cache only:
generating never downloads; `promptreel download` does, explicitly, with the size shown first.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from pathlib import Path

from huggingface_hub import constants

from .. import jsontext
from ..errors import InvalidRequest, ModelNotDownloaded, ModelNotFound
from .card import ModelCard
from .cards import CARDS, CONTROLNET_PARAMETERS, CONTROLNETS
from .families import FAMILIES
from .hub_cache import snapshot_folder, valid_repo_id
from .model_index import check_model_index

CARDS_BY_NAME = {card.name: card for card in CARDS}


def find_card(model: str, *, folders: bool = True) -> ModelCard:
    """The card for an alias, a hub repo id or (with `folders`) a local folder.

    The service passes `folders=False`: over HTTP a model name must never reach the file system.
    """
    if not model.strip():
        raise ModelNotFound("the model name is empty; give an alias, a hub repo id or a folder.")
    if model in CARDS_BY_NAME:
        return CARDS_BY_NAME[model]
    if not folders and not valid_repo_id(model):
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


def with_control(card: ModelCard, kind: str | None) -> ModelCard:
    """The card a request with `--control KIND` runs: its family's ControlNet pipeline, with the
    ControlNet for that kind as one more repo to load."""
    if kind is None:
        return card
    if card.family.control_pipeline_class is None:
        takers = ", ".join(c.name for c in CARDS if c.takes_control)
        raise InvalidRequest(
            f"{card.name} takes no control images; remove --control, or use a model that "
            f"does: {takers}.",
            argument="control",
            value=kind,
        )
    family = FAMILIES[card.family.control_pipeline_class]
    components = dict(card.components)
    if components:
        components["controlnet"] = CONTROLNET_PARAMETERS
    return dataclasses.replace(
        card,
        family=family,
        control=kind,
        extra_repos={**card.extra_repos, "controlnet": (CONTROLNETS[kind], "ControlNetModel")},
        # the plain pipeline's own settings (Text2Video-Zero's t0, t1) do not apply
        param_defaults={k: v for k, v in card.param_defaults.items() if k in family.params},
        components=components,
    )


def with_base(card: ModelCard, base: str | None, *, folders: bool = True) -> ModelCard:
    """The card with its Stable Diffusion 1.5 base swapped for `base` (a repo id in the cache or,
    with `folders`, a folder in diffusers layout). Whether the base is SD 1.5-shaped is
    `check_base`'s question, once its files are found."""
    if base is None:
        return card
    if not card.takes_base:
        takers = ", ".join(c.name for c in CARDS if c.takes_base)
        raise InvalidRequest(
            f"{card.name} has its own UNet and takes no base model; remove --base (the models "
            f"that take one: {takers}).",
            argument="base",
            value=base,
        )
    try:
        folder = Path(base).expanduser()
        is_folder = folders and folder.is_dir()
    except (RuntimeError, ValueError, OSError):
        is_folder = False
    if is_folder:
        folder = folder.resolve()
        return dataclasses.replace(
            card,
            repo_id=str(folder),
            revision="local",
            variant=_variant(folder),
            local_path=str(folder),
            base=str(folder),
        )
    if not valid_repo_id(base):
        where = "a folder or " if folders else ""
        raise InvalidRequest(
            f"--base {base!r} is not {where}a hub repo id (org/name); give a Stable Diffusion "
            "1.5 checkpoint" + (" in the server's cache." if not folders else "."),
            argument="base",
            value=base,
        )
    snapshot = cached_snapshot(base, "main")
    return dataclasses.replace(
        card,
        repo_id=base,
        revision="main",
        variant=_variant(snapshot) if snapshot is not None else None,
        local_path=None,
        base=base,
    )


# What makes a UNet a Stable Diffusion 1.5 one, whatever its size: 4 latent channels in and
# out, conditioned on CLIP ViT-L/14's 768-wide text features, no added conditioning. SD 2.x
# (1024), SDXL (2048 and its text_time embedding), inpainting (9 in) and InstructPix2Pix (8 in)
# UNets all differ in one of these.
SD15_UNET = {
    "_class_name": "UNet2DConditionModel",
    "in_channels": 4,
    "out_channels": 4,
    "cross_attention_dim": 768,
    "addition_embed_type": None,
}


def check_base(card: ModelCard, folder: Path) -> None:
    """Refuse a `--base` that is not SD 1.5-shaped, or whose blocks the card's other parts (a
    motion adapter, a ControlNet) do not fit: read from the configs, not guessed from a name."""
    if card.base is None:
        return
    unet = _read_json(folder / "unet" / "config.json")
    if not unet:
        raise InvalidRequest(
            f"--base {card.base!r} has no readable unet/config.json; give a Stable Diffusion "
            "1.5 checkpoint in diffusers layout.",
            argument="base",
            value=card.base,
        )
    for key, wanted in SD15_UNET.items():
        if unet.get(key) != wanted:
            raise InvalidRequest(
                f"--base {card.base!r} is not a Stable Diffusion 1.5 model: its UNet's {key} is "
                f"{unet.get(key)!r}, SD 1.5's is {wanted!r}; give an SD 1.5 checkpoint.",
                argument="base",
                value=card.base,
            )
    for argument, (repo, _) in card.extra_repos.items():
        snapshot = cached_snapshot(repo, "main")
        part = _read_json(snapshot / "config.json") if snapshot is not None else {}
        channels = part.get("block_out_channels")
        if channels is not None and channels != unet.get("block_out_channels"):
            raise InvalidRequest(
                f"--base {card.base!r} does not fit the {argument.replace('_', ' ')}: its UNet's "
                f"blocks are {unet.get('block_out_channels')}, {repo}'s are {channels}.",
                argument="base",
                value=card.base,
            )


def locate(card: ModelCard) -> Path:
    """The folder holding the card's weights (its local folder or its snapshot in the cache),
    once every repo it needs is there."""
    missing = [r for r in _extra_repo_ids(card) if cached_snapshot(r, "main") is None]
    if card.local_path is not None:
        if not (Path(card.local_path) / "model_index.json").is_file():
            if card.base is not None:
                fix = "give a Stable Diffusion 1.5 checkpoint in diffusers layout."
            elif card.repo_id != card.local_path:
                fix = "reinstall promptreel (its weights ship with the package)."
            else:
                fix = "give a folder in diffusers layout."
            raise ModelNotDownloaded(
                f"{card.name}'s folder {card.local_path} has no model_index.json; {fix}"
            )
        _refuse_missing(card, missing)
        folder = Path(card.local_path)
        _check_weights(card, folder)
        return folder
    snapshot = cached_snapshot(card.repo_id, card.revision)
    _refuse_missing(card, ([card.repo_id] if snapshot is None else []) + missing)
    assert snapshot is not None
    _check_weights(card, snapshot)
    return snapshot


def check_components(card: ModelCard, folder: Path) -> None:
    """Before loading: the folder has every component the pipeline takes that its
    model_index.json names. A base fetched for AnimateDiff lacks the safety checker that
    Text2Video-Zero's pipelines load, say."""
    import diffusers  # seconds to import: not for `promptreel models`

    init = getattr(diffusers, card.family.pipeline_class).__init__
    taken = set(inspect.signature(init).parameters)
    index = _read_json(folder / "model_index.json")
    missing = [
        name
        for name, value in index.items()
        if name in taken
        and isinstance(value, list)
        and any(v is not None for v in value)
        and not (folder / name).is_dir()
    ]
    if not missing:
        return
    if card.local_path is not None:
        fix = "give a folder with all of them"
    else:
        fix = f"run `promptreel download {card.base or card.name}` to fetch them"
    raise ModelNotDownloaded(
        f"{card.base or card.name} has no {', '.join(missing)} in {folder}, which "
        f"{card.family.pipeline_class} loads; {fix}.",
        argument="base" if card.base is not None else None,
        value=card.base,
    )


def _check_weights(card: ModelCard, folder: Path) -> None:
    """Before loading: every model folder of the pipeline has safetensors weights (loading reads
    nothing else), or the message says how to get them."""
    index = _read_json(folder / "model_index.json")
    parts = [
        name
        for name, value in index.items()
        if isinstance(value, list) and (folder / name / "config.json").is_file()
    ]
    pickled = [p for p in parts if not any((folder / p).glob("*.safetensors"))]
    if not pickled:
        return
    whose = f"--base {card.base}" if card.base is not None else card.name
    if card.local_path is not None:  # a folder of the user's own
        fix = (
            "convert it to safetensors (e.g. load and save_pretrained it with diffusers, "
            "safe_serialization=True)"
        )
    else:
        fix = f"run `promptreel download {card.base or card.name}` to convert pickle weights "
        fix += "to safetensors (offline too)"
    raise ModelNotDownloaded(
        f"{whose} has no safetensors weights for {', '.join(pickled)} in {folder}; {fix}.",
        argument="base" if card.base is not None else None,
        value=card.base,
    )


def _refuse_missing(card: ModelCard, missing: list[str]) -> None:
    if not missing:
        return
    commands = []
    for repo in missing:
        if repo == card.base:
            command = f"promptreel download {repo}"
        elif card.control is not None and repo == CONTROLNETS[card.control]:
            command = f"promptreel download {card.name} --control {card.control}"
        else:
            command = f"promptreel download {card.name}"
        if command not in commands:
            commands.append(command)
    raise ModelNotDownloaded(
        f"{card.name} needs {', '.join(missing)}, which is not in the local Hugging Face "
        f"cache ({constants.HF_HUB_CACHE}); run `{'` and `'.join(commands)}` first.",
        argument="base" if card.base in missing else None,
        value=card.base if card.base in missing else None,
    )


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
    # the family's hub cards: a shipped model (shapes, 64x64 only) sets no family's defaults;
    # a ControlNet pipeline is a family only inside a request with --control
    hub_cards = [c for c in CARDS if c.local_path is None]
    runnable = {c.family.pipeline_class: c for c in reversed(hub_cards)}
    runnable |= {
        c.family.image_pipeline_class: c
        for c in reversed(hub_cards)
        if c.family.image_pipeline_class and c.family.image_pipeline_class not in runnable
    }
    template = runnable.get(class_name)
    if template is None:
        if class_name == "StableDiffusionPipeline":
            takers = ", ".join(c.name for c in CARDS if c.takes_base)
            raise ModelNotFound(
                f"{name} is a Stable Diffusion image model, not a video pipeline; a Stable "
                f"Diffusion 1.5 one runs as --base {name} under {takers}."
            )
        raise ModelNotFound(
            f"{name} is a {class_name}, not a video pipeline promptreel runs; the families it "
            f"runs are: {', '.join(sorted(runnable))}."
        )
    family = FAMILIES[class_name]
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
        takes_base=False,  # a saved pipeline is whole: its UNet is its own
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
    folder = snapshot_folder(repo_id, revision)
    if folder is None:
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
    if not valid_repo_id(text):
        raise ModelNotFound(
            f"{text!r} is neither a folder nor a valid hub repo id (org/name, letters, digits, "
            "'-', '_' and '.'); check the spelling."
        )
    return True
