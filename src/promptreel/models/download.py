"""`promptreel download`: fetch exactly what a model needs into the Hugging Face cache.

Only configs, tokenizer files and safetensors weights of the components the pipeline uses, in
the card's variant: never pickles (.bin, .ckpt, .pt), never the other variants, never the
original-format checkpoints many repos carry beside the diffusers folders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from ..errors import ModelNotDownloaded, ModelNotFound
from .card import ModelCard
from .resolve import CARDS_BY_NAME, find_card

CONFIG_SUFFIXES = (".json", ".txt", ".model")  # configs, vocabularies, sentencepiece models
NEVER = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".msgpack", ".h5", ".onnx", ".py")


def download_model(model: str, *, confirm: Callable[[str], bool] | None = None) -> list[str]:
    """Download `model` (alias or repo id); returns the repo ids fetched."""
    repos = _repos_of(model)
    plans = [
        (repo, revision, variant, _plan(repo, revision, variant))
        for repo, revision, variant in repos
    ]
    total = sum(size for *_, files in plans for _, size in files)
    count = sum(len(files) for *_, files in plans)
    question = (
        f"{model}: {count} files, {total / 1e9:.2f} GB into {constants.HF_HUB_CACHE}. Download?"
    )
    if confirm is not None and not confirm(question):
        return []
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task(model, total=total)
        for repo, revision, _, files in plans:
            for name, size in files:
                _fetch(repo, name, revision)
                bar.advance(task, size)
    return [repo for repo, *_ in plans]


def select_files(
    files: dict[str, int], model_index: dict | None, variant: str | None
) -> list[tuple[str, int]]:
    """The files of a repo listing (name -> size) that loading the pipeline needs.

    Per folder, weights come in the card's variant when the folder has it, else plain
    safetensors; a component with neither cannot be loaded safely, and is refused.
    """
    folders = [""]  # a single-model repo (a motion adapter) keeps everything at the top
    if model_index is not None:
        folders = [
            name
            for name, value in model_index.items()
            if not name.startswith("_") and isinstance(value, list) and value[0] is not None
        ]
    chosen: list[tuple[str, int]] = [(n, s) for n, s in files.items() if n == "model_index.json"]
    for folder in folders:
        inside = {n: s for n, s in files.items() if str(PurePosixPath(n).parent) == (folder or ".")}
        chosen += [
            (n, s)
            for n, s in inside.items()
            if n.endswith(CONFIG_SUFFIXES) and ".safetensors" not in n and n != "model_index.json"
        ]
        weights = [n for n in inside if ".safetensors" in n and not n.endswith(NEVER)]
        wanted = [n for n in weights if variant and f".{variant}." in PurePosixPath(n).name]
        if not wanted:
            wanted = [n for n in weights if _is_plain(PurePosixPath(n).name)]
        if not wanted and any(n.endswith(NEVER) for n in inside):
            raise ModelNotFound(
                f"the {folder or 'model'} weights exist only as pickle files (.bin); promptreel "
                "loads safetensors only. Convert them, or pick another model."
            )
        chosen += [(n, inside[n]) for n in wanted]
    return sorted(chosen)


def _is_plain(name: str) -> bool:
    """`x.safetensors`, `x-00001-of-00002.safetensors`, `x.safetensors.index.json`: no variant."""
    stem = name.split(".safetensors")[0]
    return "." not in stem


def _repos_of(model: str) -> list[tuple[str, str, str | None]]:
    """(repo id, revision, variant) of every repo a model needs."""
    if model in CARDS_BY_NAME or "/" in model:
        try:
            card: ModelCard | None = find_card(model)
        except ModelNotDownloaded:
            card = None  # a repo id we have no card for and no copy of: fetch it as it is
    else:
        card = find_card(model)  # raises the "unknown model, did you mean" error
    if card is None:
        return [(model, "main", None)]
    if card.local_path is not None and card.repo_id == card.local_path:
        raise ModelNotFound(f"{model} is a local folder; there is nothing to download.")
    extra = [(repo, "main", None) for repo, _ in card.extra_repos.values()]
    return [(card.repo_id, card.revision, card.variant), *extra]


def _plan(repo: str, revision: str, variant: str | None) -> list[tuple[str, int]]:
    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
        listing = {s.rfilename: s.size or 0 for s in info.siblings or []}
        model_index = None
        if "model_index.json" in listing:
            path = _fetch(repo, "model_index.json", revision)
            with open(path) as f:
                model_index = json.load(f)
    except OfflineModeIsEnabled:
        raise ModelNotDownloaded(
            "downloading needs the network, and HF_HUB_OFFLINE is set; unset it and retry."
        ) from None
    except GatedRepoError:
        raise ModelNotDownloaded(
            f"{repo} is gated: accept its licence on its hub page, then set HF_TOKEN and retry."
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotFound(
            f"{repo} does not exist on the hub (or is private: set HF_TOKEN)."
        ) from None
    except Exception as exc:  # connection errors of the hub's HTTP client share no base we import
        raise ModelNotDownloaded(
            f"could not reach the hub for {repo} ({exc}); check the network and retry."
        ) from exc
    return select_files(listing, model_index, variant)


def _fetch(repo: str, name: str, revision: str) -> str:
    return hf_hub_download(repo, name, revision=revision)
