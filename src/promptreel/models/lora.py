"""LoRA adapters at generation time: `--lora LORA[:SCALE]`, found, checked and put on a pipeline.

A LORA is the name of one shipped with promptreel (`src/promptreel/loras/NAME`) or kept in the
user data folder (`PROMPTREEL_HOME/loras/NAME`), a folder, or a hub repo id in the cache. Its
weights are one safetensors file (diffusers' `pytorch_lora_weights.safetensors`, or the folder's
only one). Before anything loads, the shapes of a diffusers/peft-format LoRA are checked against
the model's own weights (read from the safetensors headers, not loaded): a LoRA made for another
base is refused in one line. The adapters then go on the loaded pipeline for one request and
come off after it, so the pipeline is not loaded again and the next request does not carry them.
A LoRA's `vae.` part (`promptreel finetune` with `vae = true`: the VAE's decoder), which the
pipeline's `load_lora_weights` leaves aside, goes on the VAE by `load_lora_adapter`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, ModelNotDownloaded
from ..home import home
from .hub_cache import snapshot_folder, valid_repo_id

SHIPPED = Path(__file__).resolve().parent.parent / "loras"
WEIGHTS_NAME = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes
MAX_SCALE = 10.0
# diffusers/peft keys: `unet.<module>.lora_A.weight`; other formats (kohya's `lora_unet_...`)
# are converted by diffusers when loading and are not checked ahead
_PEFT_KEY = re.compile(
    r"(?P<part>[a-z_]+)\.(?P<module>.+)\.lora_(?P<half>[AB])(?:\.default)?\.weight"
)


@dataclass(frozen=True)
class Lora:
    """One `--lora`: what the user gave, its scale, and its weights file."""

    ref: str
    scale: float
    file: Path

    @property
    def given(self) -> str:
        """As a settled request keeps it: the reference and the scale, always."""
        return f"{self.ref}:{self.scale:g}"


def user_loras() -> Path:
    return home() / "loras"


def named_loras() -> dict[str, Path]:
    """The LoRAs known by name: shipped ones, then the user's (a user's may not hide one
    shipped: names mean the same thing on every machine)."""
    found: dict[str, Path] = {}
    for root in (user_loras(), SHIPPED):
        if root.is_dir():
            found |= {d.name: d for d in sorted(root.iterdir()) if d.is_dir()}
    return found


def parse(entry: str) -> tuple[str, float]:
    """`LORA[:SCALE]` -> (LORA, SCALE); the scale is 1 when none is given."""
    ref, sep, tail = entry.rpartition(":")
    if sep:
        try:
            scale = float(tail)
        except ValueError:
            ref, scale = entry, 1.0  # a ':' that is part of the name (C:\..., hf://...)
        else:
            if not math.isfinite(scale) or abs(scale) > MAX_SCALE:
                raise InvalidRequest(
                    f"--lora {entry!r}: the scale must be a number between -{MAX_SCALE:g} and "
                    f"{MAX_SCALE:g}.",
                    argument="lora",
                    value=entry,
                )
    else:
        ref, scale = entry, 1.0
    if not ref.strip():
        raise InvalidRequest(
            f"--lora {entry!r} names no LoRA; give a name (`promptreel loras`), a folder or a hub "
            "repo id, then :SCALE if not 1.",
            argument="lora",
            value=entry,
        )
    return ref, scale


def resolve(entry: str, *, folders: bool = True) -> Lora:
    """The LoRA an entry names; `folders=False` (the service) takes names and repo ids only."""
    ref, scale = parse(entry)
    named = named_loras()
    if ref in named:
        folder = named[ref]
    elif folders and _is_dir(ref):
        folder = Path(ref).expanduser().resolve()
        ref = str(folder)  # absolute: a rerun finds it from any folder
    elif valid_repo_id(ref):
        folder = snapshot_folder(ref)
        if folder is None:
            raise ModelNotDownloaded(
                f"--lora {ref} is not in the local Hugging Face cache; run `promptreel download "
                f"{ref}` first.",
                argument="lora",
                value=entry,
            ) from None
    else:
        head, _, tail = ref.rpartition(":")
        # LORA:SCALE with a scale that is not a number
        if head and (head in named or (folders and _is_dir(head))):
            raise InvalidRequest(
                f"--lora {entry!r}: the scale {tail!r} is not a number; give {head}:0.8, say.",
                argument="lora",
                value=entry,
            )
        names = ", ".join(sorted(named)) or "none yet"
        where = "a folder, " if folders else ""
        raise InvalidRequest(
            f"--lora {ref!r} is not a known LoRA ({names}), {where}or a hub repo id; see "
            "`promptreel loras`.",
            argument="lora",
            value=entry,
        )
    return Lora(ref, scale, _weights_file(folder, entry))


def _is_dir(ref: str) -> bool:
    try:
        return Path(ref).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False


def _weights_file(folder: Path, entry: str) -> Path:
    files = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("."))
    if (folder / WEIGHTS_NAME).is_file():
        return folder / WEIGHTS_NAME
    if len(files) == 1:
        return files[0]
    if files:
        raise InvalidRequest(
            f"--lora {entry!r}: {folder} holds several safetensors files "
            f"({', '.join(f.name for f in files)}); keep one, or name it {WEIGHTS_NAME}.",
            argument="lora",
            value=entry,
        )
    pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    why = (
        f"holds only pickle files ({', '.join(sorted(pickles))}), which can run code; "
        "promptreel loads safetensors only: convert it first"
        if pickles
        else "holds no .safetensors file"
    )
    raise InvalidRequest(f"--lora {entry!r}: {folder} {why}.", argument="lora", value=entry)


def check_fits(lora: Lora, folder: Path, *, motion_adapter: Path | None = None) -> None:
    """Refuse a LoRA whose layers the model at `folder` does not have, or has in other shapes
    (a LoRA of another base), from the safetensors headers alone. A motion adapter's layers
    count as the UNet's: AnimateDiff's pipeline puts them into its UNet under the same names,
    and a motion LoRA adapts them."""
    from safetensors import safe_open

    try:
        with safe_open(str(lora.file), "pt") as f:
            names = list(f.keys())  # a safe_open handle is not iterable
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in names}
    except Exception as exc:  # a corrupt or truncated file: its first line says why
        raise InvalidRequest(
            f"--lora {lora.ref}: {lora.file.name} is not a safetensors file that reads "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).",
            argument="lora",
            value=lora.given,
        ) from None
    bases: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = _PEFT_KEY.fullmatch(key)
        if match is None:
            continue
        part, module, half = match["part"], match["module"], match["half"]
        if part not in bases:
            bases[part] = _weight_shapes(folder / part)
            if part == "unet" and motion_adapter is not None:
                bases[part] |= _weight_shapes(motion_adapter)
        if not bases[part]:
            raise InvalidRequest(
                f"--lora {lora.ref} adapts a `{part}`, which this model does not have: it was "
                "made for another kind of model.",
                argument="lora",
                value=lora.given,
            )
        base = bases[part].get(f"{module}.weight")
        fits = base is not None and (base[1] == shape[1] if half == "A" else base[0] == shape[0])
        if not fits:
            found = "no such layer" if base is None else f"its weight is {list(base)}"
            raise InvalidRequest(
                f"--lora {lora.ref} was made for another base model: it adapts {part}.{module} "
                f"as {list(shape)}, and this model has {found}.",
                argument="lora",
                value=lora.given,
            )


def _weight_shapes(component: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(component.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            names = list(f.keys())
            shapes |= {key: tuple(f.get_slice(key).get_shape()) for key in names}
    return shapes


@contextmanager
def applied(pipe: Any, loras: list[Lora]) -> Iterator[None]:
    """The LoRAs on `pipe` for the time of one request, blended by their scales."""
    if not loras:
        yield
        return
    _give_unet_the_peft_mixin(pipe)
    names = [f"promptreel_{i}" for i in range(len(loras))]
    on_vae: dict[str, float] = {}  # adapters of the VAE's decoder: their names and scales
    try:
        for name, lora in zip(names, loras, strict=True):
            try:
                pipe.load_lora_weights(
                    str(lora.file.parent), weight_name=lora.file.name, adapter_name=name
                )
                if _adapts_vae(lora.file):
                    _load_vae_part(pipe, lora, name)
                    on_vae[name] = lora.scale
            except (ValueError, RuntimeError, KeyError) as exc:  # a format diffusers cannot map
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise InvalidRequest(
                    f"--lora {lora.ref} does not load onto this model: {first}",
                    argument="lora",
                    value=lora.given,
                ) from None
        pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
        if on_vae:
            pipe.vae.set_adapters(list(on_vae), weights=list(on_vae.values()))
        yield
    finally:
        loaded = [n for n in names if n in _adapter_names(pipe)]
        if loaded:
            pipe.delete_adapters(loaded)
        vae_loaded = [n for n in names if n in getattr(pipe.vae, "peft_config", {})]
        if vae_loaded:
            pipe.vae.delete_adapters(vae_loaded)


def _adapts_vae(file: Path) -> bool:
    """Whether a LoRA file holds a `vae.` part (promptreel finetune's `vae = true`), which
    the pipeline's `load_lora_weights` leaves aside."""
    from safetensors import safe_open

    with safe_open(str(file), "pt") as f:
        return any(key.startswith("vae.") for key in f.keys())  # noqa: SIM118 (no __iter__)


def _load_vae_part(pipe: Any, lora: Lora, name: str) -> None:
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "load_lora_adapter"):
        raise InvalidRequest(
            f"--lora {lora.ref} adapts a VAE, and this model's VAE cannot take a LoRA.",
            argument="lora",
            value=lora.given,
        )
    vae.load_lora_adapter(
        str(lora.file.parent), weight_name=lora.file.name, prefix="vae", adapter_name=name
    )


def _adapter_names(pipe: Any) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _give_unet_the_peft_mixin(pipe: Any) -> None:
    """diffusers 0.42's UNet3DConditionModel lacks `PeftAdapterMixin`, which the pipeline's own
    `load_lora_weights` needs: give this instance a class that has it (docs/finetune.md shows
    plain diffusers users the same lines)."""
    from diffusers.loaders.peft import PeftAdapterMixin

    unet = getattr(pipe, "unet", None)
    if unet is None or isinstance(unet, PeftAdapterMixin):
        return
    base = type(unet)
    unet.__class__ = type(base.__name__, (PeftAdapterMixin, base), {})


def can_load(pipeline_class: str) -> bool:
    import diffusers

    return hasattr(getattr(diffusers, pipeline_class), "load_lora_weights")
