"""`promptreel download`: fetch exactly what a model needs into the Hugging Face cache.

Only configs, tokenizer files and safetensors weights of the components the pipeline uses, in
the card's variant: never the other variants, never the original-format checkpoints many repos
carry beside the diffusers folders.

Some repos (both Zeroscopes) publish only PyTorch pickles. A pickle can run code when loaded, so
promptreel never loads one as a model: `download` reads each such file once with torch's
restricted `weights_only` unpickler (tensors and plain containers only, no code) and writes a
safetensors copy beside it in the snapshot. Loading stays safetensors-only.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import diffusers
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from .. import jsontext
from ..errors import InvalidRequest, ModelNotDownloaded, ModelNotFound
from .card import ModelCard
from .cards import CONTROLNETS, ESTIMATORS
from .resolve import CARDS_BY_NAME, cached_snapshot, find_card

CONFIG_SUFFIXES = (".json", ".txt", ".model")  # configs, vocabularies, sentencepiece models
NEVER = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".msgpack", ".h5", ".onnx", ".py")
PICKLE_WEIGHTS = (".bin", ".bin.index.json")  # converted to safetensors after download


def download_model(
    model: str, *, confirm: Callable[[str], bool], controls: tuple[str, ...] = ()
) -> list[str]:
    """Download `model` (alias or repo id); returns the repo ids fetched.

    `controls` adds, for each kind, its ControlNet and the models that draw its images from a
    video. `confirm` gets the summary (files, total size, destination) before any weight is
    fetched and says whether to go on.
    """
    sources = _sources_of(model) + _control_sources(model, controls)
    cached = [cached_snapshot(s.repo, s.revision) for s in sources]
    if constants.HF_HUB_OFFLINE and all(cached):
        # all there already: only pickles may still want converting, which needs no network
        for snapshot in cached:
            convert_pickles(snapshot)
        return [s.repo for s in sources]
    plans = [(s.repo, s.revision, s.variant, _plan(s)) for s in sources]
    total = sum(size for *_, files in plans for _, size in files)
    count = sum(len(files) for *_, files in plans)
    summary = f"{model}: {count} files, {total / 1e9:.2f} GB into {constants.HF_HUB_CACHE}"
    if not confirm(summary):
        return []
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task(model, total=total)
        for repo, revision, _, files in plans:
            for name, size in files:
                path = _fetch(repo, name, revision)
                bar.advance(task, size)
            if any(name.endswith(PICKLE_WEIGHTS) for name, _ in files):
                bar.update(task, description=f"{model}: converting pickles to safetensors")
                # the snapshot folder is the file's ancestor at the depth of its repo path
                convert_pickles(Path(path).parents[len(PurePosixPath(name).parts) - 1])
    return [repo for repo, *_ in plans]


def select_files(
    files: dict[str, int],
    model_index: dict | None,
    variant: str | None,
    *,
    components: set[str] | None = None,
) -> list[tuple[str, int]]:
    """The files of a repo listing (name -> size) that loading the pipeline needs.

    `components` limits the folders to those the pipeline class takes: AnimateDiff on a
    Stable Diffusion repo needs no 1.2 GB safety checker. Per folder, weights come in the
    card's variant when the folder has it, else plain safetensors, else (converted later)
    pickles.
    """
    folders = [""]  # a single-model repo (a motion adapter) keeps everything at the top
    if model_index is not None:
        folders = [
            name
            for name, value in model_index.items()
            if not name.startswith("_")
            and isinstance(value, list)
            and value[0] is not None
            and (components is None or name in components)
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
        if not wanted:
            pickles = [n for n in inside if n.endswith(PICKLE_WEIGHTS)]
            wanted = [n for n in pickles if variant and f".{variant}." in PurePosixPath(n).name]
            wanted = wanted or [n for n in pickles if _is_plain(PurePosixPath(n).name, ".bin")]
        chosen += [(n, inside[n]) for n in wanted]
    return sorted(chosen)


def _is_plain(name: str, kind: str = ".safetensors") -> bool:
    """`x.safetensors`, `x-00001-of-00002.safetensors`, `x.safetensors.index.json`: no variant."""
    stem = name.split(kind)[0]
    return "." not in stem


def convert_pickles(snapshot: Path) -> list[Path]:
    """Write a safetensors copy of the pickle weights in every folder that has no safetensors."""
    import torch
    from safetensors.torch import save_file

    written = []
    for pickle in sorted(snapshot.rglob("*.bin")):
        target = pickle.with_name(_safetensors_name(pickle.name))
        if any(pickle.parent.glob("*.safetensors")):
            continue  # the folder has safetensors already (some variant): nothing to convert
        try:
            # weights_only: the restricted unpickler builds tensors and containers, never objects
            state = torch.load(pickle, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, or whatever a crafted file provokes
            raise ModelNotFound(
                f"{pickle.name} holds more than tensors, so promptreel will not load it "
                f"({type(exc).__name__}); pick another model or revision."
            ) from exc
        # tied weights share storage, which safetensors refuses; the loaders re-tie them
        tensors = {k: v.contiguous().clone() for k, v in state.items()}
        partial = target.with_name(f".{target.name}.partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        partial.chmod(0o644)  # as readable as the downloaded files, for a shared cache
        partial.replace(target)
        written.append(target)
    for index in sorted(snapshot.rglob("*.bin.index.json")):
        data = jsontext.loads(index.read_text())
        data["weight_map"] = {k: _safetensors_name(v) for k, v in data["weight_map"].items()}
        index.with_name(_safetensors_name(index.name)).write_text(json.dumps(data, indent=2))
    return written


def _safetensors_name(name: str) -> str:
    """The name the loaders look for: pytorch_model -> model, .bin -> .safetensors."""
    if name.startswith("pytorch_model"):
        name = "model" + name.removeprefix("pytorch_model")
    return name.replace(".bin", ".safetensors")


class _Source(NamedTuple):
    repo: str
    revision: str
    variant: str | None
    pipeline_class: str | None  # the class that will load it, when a card says


def _sources_of(model: str) -> list[_Source]:
    """Every repo a model needs."""
    if sum(model == card.repo_id for card in CARDS_BY_NAME.values()) > 1:
        return [_Source(model, "main", None, None)]  # a base several cards share (SD 1.5)
    if model in CARDS_BY_NAME or "/" in model:
        try:
            card: ModelCard | None = find_card(model)
        except ModelNotDownloaded:
            card = None  # a repo id we have no card for and no copy of: fetch it as it is
        except ModelNotFound:
            if "/" not in model:
                raise
            card = None  # a cached repo that is no video model (an SD 1.5 base): fetch it too
    else:
        card = find_card(model)  # raises the "unknown model, did you mean" error
    if card is None:
        return [_Source(model, "main", None, None)]
    if card.local_path is not None:
        where = "a local folder" if card.repo_id == card.local_path else "part of promptreel"
        raise ModelNotFound(f"{model} is {where}; there is nothing to download.")
    extra = [_Source(repo, "main", None, None) for repo, _ in card.extra_repos.values()]
    return [_Source(card.repo_id, card.revision, card.variant, card.pipeline_class), *extra]


def _control_sources(model: str, controls: tuple[str, ...]) -> list[_Source]:
    if not controls:
        return []
    card = CARDS_BY_NAME.get(model)
    if card is None or not card.takes_control:
        takers = ", ".join(c.name for c in CARDS_BY_NAME.values() if c.takes_control)
        raise InvalidRequest(
            f"{model} takes no control images; --control goes with a model that does: {takers}.",
            argument="control",
            value=controls[0],
        )
    unknown = [kind for kind in controls if kind not in CONTROLNETS]
    if unknown:
        raise InvalidRequest(
            f"unknown --control {unknown[0]!r}; the kinds are {', '.join(CONTROLNETS)}.",
            argument="control",
            value=unknown[0],
        )
    repos = [
        repo for kind in dict.fromkeys(controls) for repo in (CONTROLNETS[kind], *ESTIMATORS[kind])
    ]
    return [_Source(repo, "main", None, None) for repo in dict.fromkeys(repos)]


def _plan(source: _Source) -> list[tuple[str, int]]:
    repo, revision = source.repo, source.revision
    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
        listing = {s.rfilename: s.size or 0 for s in info.siblings or []}
        model_index = None
        if "model_index.json" in listing:
            path = _fetch(repo, "model_index.json", revision)
            model_index = jsontext.loads(Path(path).read_text())
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
    except ValueError:
        raise ModelNotFound(
            f"{repo}'s model_index.json is not valid JSON; it cannot load."
        ) from None
    except Exception as exc:  # connection errors of the hub's HTTP client share no base we import
        raise ModelNotDownloaded(
            f"could not reach the hub for {repo} ({exc}); check the network and retry."
        ) from exc
    components = None
    if source.pipeline_class is not None:
        init = getattr(diffusers, source.pipeline_class).__init__
        components = set(inspect.signature(init).parameters)
    return select_files(listing, model_index, source.variant, components=components)


def _fetch(repo: str, name: str, revision: str) -> str:
    return hf_hub_download(repo, name, revision=revision)
