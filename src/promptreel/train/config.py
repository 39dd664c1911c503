"""The training recipe: one dataclass, each field commented, loaded from a TOML file.

A TOML file sets any of the fields below at its top level; a key that is not a field is refused
in one line (a misspelt key silently ignored would train the wrong model for hours).

Where runs live: `out`, `data` and `vae_from` name a folder. A bare name (`shapes`) is a folder
of that name in `runs_home()`: `PROMPTREEL_RUNS`, else `runs/` in the user data folder
(`PROMPTREEL_HOME`, else the platform's place, as for the history). An absolute path (or one from
`~`) is itself. A relative path is refused: taken from the current folder it would write a run's
state (tens of MB) wherever the command runs, into a clone of the repository for one.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from ..home import home

# The prompts the trainer renders into its sample videos (one tile each).
SAMPLE_PROMPTS = (
    "a red circle moving right",
    "a blue square moving left",
    "a yellow triangle moving up",
    "a green circle moving down",
)


@dataclass
class TrainConfig:
    # --- data and run ---------------------------------------------------------------------
    data: str = "shapes-data"  # a folder with videos/ and metadata.jsonl (file, caption)
    data_count: int = 0  # > 0: render this many shapes clips into `data` if it has none yet
    data_seed: int = 0  # the seed of that rendering
    data_start_spread: float = 1.0  # where those clips start: 1 = anywhere, 0 = path centred
    out: str = "shapes"  # the run's folder: checkpoint, latents, log, samples, vae/ and model/
    seed: int = 1337  # every random choice of the run (init, batches, noise) follows from it
    threads: int = 2  # torch.set_num_threads; keep it to resume bit-identically
    num_frames: int = 16  # frames per training clip: a random window of each video
    vae_from: str = ""  # reuse a finished VAE: a run (its latents too, if the same data), or a
    # folder holding vae/ (a run's hand-on without its checkpoint, an exported pipeline)

    # --- stage 1: the VAE (one frame at a time, as the pipeline decodes) ------------------
    vae_channels: tuple[int, ...] = (32, 64, 64)  # widths per level; factor 2**(levels-1)
    vae_layers: int = 1  # resnet layers per level
    latent_channels: int = 4  # channels of a latent pixel
    vae_steps: int = 3000  # optimizer steps
    vae_batch: int = 32  # frames per step
    vae_lr: float = 1e-3  # AdamW peak learning rate (after warmup, cosine decay to 10 %)
    vae_kl_weight: float = 1e-6  # weight of the KL term: a nearly plain autoencoder
    vae_edge_weight: float = 1.0  # weight of the L1 loss on horizontal/vertical differences
    vae_shape_weight: float = 10.0  # extra L1 weight on the pixels of the shape (not black)

    # --- stage 2: text encoder + UNet on the frozen VAE's latents -------------------------
    text_width: int = 64  # CLIP hidden size, also the UNet's cross-attention width
    text_layers: int = 2  # CLIP transformer layers
    text_heads: int = 4  # CLIP attention heads
    text_max_length: int = 16  # tokens per prompt (the tokenizer's model_max_length)
    unet_channels: tuple[int, ...] = (64, 128)  # UNet3D widths per level
    unet_layers: int = 1  # resnet layers per level (the up path has one more)
    unet_heads: int = 4  # attention heads per block (diffusers' UNet3D `attention_head_dim`)
    prediction_type: str = "v_prediction"  # "epsilon" or "v_prediction"
    beta_schedule: str = "squaredcos_cap_v2"  # the noise schedule (a diffusers beta_schedule)
    snr_gamma: float = 0.0  # min-SNR-gamma loss weighting (Hang et al. 2023); 0 = off
    sampler: str = "dpm"  # the saved scheduler: "dpm" (DPM-Solver++ 2M) or "ddim"
    unet_steps: int = 20000  # optimizer steps
    unet_batch: int = 8  # clips per step
    unet_lr: float = 5e-4  # AdamW peak learning rate for the UNet and the text encoder
    caption_dropout: float = 0.1  # chance a caption is replaced by "" (classifier-free guidance)
    # The first UNet steps can train only at high noise, on windows from each clip's first
    # frame: there the caption must lay out the path frame by frame (docs/training.md).
    high_noise_steps: int = 0  # how many first steps; 0 = none
    high_noise_tmin: int = 700  # they draw t from [high_noise_tmin, 999]
    high_noise_frames: int = 8  # on windows of this many frames from the clip's first frame
    # Stop the run after this many UNet steps, with a checkpoint and the export of its EMA
    # weights (model/); 0 stops right after the VAE stage, with vae/. -1 runs to unet_steps.
    # Only where the run stops: the schedule and every step before follow unet_steps, so a
    # stopped run goes on, with a later stop, exactly as if it had never stopped.
    stop_after_unet_step: int = -1

    # --- both stages ----------------------------------------------------------------------
    warmup_steps: int = 200  # linear learning-rate warmup at the start of each stage
    weight_decay: float = 0.01  # AdamW weight decay
    grad_clip: float = 1.0  # clip the gradient norm to this; 0 = off
    ema_decay: float = 0.999  # exponential moving average of the weights; these are exported

    # --- watching and saving --------------------------------------------------------------
    sample_every: int = 2000  # render sample videos every this many UNet steps; 0 = never
    sample_steps: int = 20  # denoising steps of the sample videos and the exported default
    guidance_scale: float = 7.5  # classifier-free guidance of the sample videos
    sample_prompts: list[str] = field(default_factory=lambda: list(SAMPLE_PROMPTS))
    checkpoint_every: int = 500  # write a checkpoint every this many steps (both stages)

    @property
    def unet_stop(self) -> int:
        """The UNet step at which this run stops (0: right after the VAE stage)."""
        return self.unet_steps if self.stop_after_unet_step < 0 else self.stop_after_unet_step

    @property
    def vae_factor(self) -> int:
        """How many pixels one latent pixel stands for, on each side."""
        return 2 ** (len(self.vae_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def runs_home() -> Path:
    """The folder where training runs live, by name: PROMPTREEL_RUNS, else the user data
    folder's runs/ (never the repository: a run's state is tens of megabytes)."""
    if os.environ.get("PROMPTREEL_RUNS"):
        return Path(os.environ["PROMPTREEL_RUNS"]).expanduser()
    return home() / "runs"


def is_run_name(value: str) -> bool:
    """A bare folder name (`shapes`), which `run_path` puts in `runs_home()`."""
    return value not in ("", ".", "..") and not any(c in value for c in "/\\") and value[0] != "~"


def run_path(value: str, *, key: str = "out") -> Path:
    """The folder that a config's `out`, `data` or `vae_from` names: a run name is a folder in
    `runs_home()`; an absolute path (or one from ~) is itself; a relative path is refused."""
    if is_run_name(value):
        return runs_home() / value
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise InvalidRequest(
            f"`{key}` must be a run name (a folder in {runs_home()}) or an absolute path, not"
            f" {value!r}: a relative path would write wherever the command runs"
        )
    return path


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML config file's values, or InvalidRequest (one line): missing, unreadable, not TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidRequest(f"config {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"config {str(path)!r} cannot be read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequest(f"config {str(path)!r} is not valid TOML: {e}") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML recipe; refuse (InvalidRequest, one line) unknown keys and wrong types."""
    return config_from_dict(read_toml(path), where=f"config {str(Path(path))!r}")


def config_from_dict(data: dict[str, Any], *, where: str = "config") -> TrainConfig:
    """Build a TrainConfig from plain values, with the checks of `load_config`."""
    known = {f.name: f for f in fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise InvalidRequest(f"{where}: unknown key `{key}`{hint}")
        values[key] = _checked(key, value, known[key].type, where)
    config = TrainConfig(**values)
    _check_values(config, where)
    return config


def _checked(key: str, value: Any, annotation: Any, where: str) -> Any:
    """`value` converted to the field's type (lists to tuples, ints to floats), or refused."""
    kind = _resolve(annotation)
    origin = typing.get_origin(kind)
    if origin in (tuple, list):
        item = typing.get_args(kind)[0]
        if isinstance(value, list) and all(_is(v, item) for v in value):
            return origin(float(v) if item is float else v for v in value)
        return _wrong_type(key, value, f"a list of {item.__name__}", where)
    if _is(value, kind):
        return float(value) if kind is float else value
    return _wrong_type(key, value, kind.__name__, where)


def _resolve(annotation: Any) -> Any:
    """The field's type (the dataclass stores it as a string under `from __future__`)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"tuple": tuple, "list": list, **vars(types)})
    return annotation


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _wrong_type(key: str, value: Any, expected: str, where: str) -> Any:
    raise InvalidRequest(f"{where}: `{key}` must be {expected}, not {value!r}")


def _check_values(c: TrainConfig, where: str) -> None:
    """Refuse values that would fail later, deep inside a stage, naming the key."""
    rules = [
        (
            "prediction_type",
            c.prediction_type in ("epsilon", "v_prediction"),
            "epsilon or v_prediction",
        ),
        ("sampler", c.sampler in ("dpm", "ddim"), "dpm or ddim"),
        ("num_frames", 1 <= c.num_frames <= 16, "between 1 and 16"),
        ("high_noise_frames", 1 <= c.high_noise_frames <= 16, "between 1 and 16"),
        ("high_noise_tmin", 0 <= c.high_noise_tmin <= 999, "between 0 and 999"),
        ("vae_channels", 2 <= len(c.vae_channels) <= 4, "2 to 4 widths (a factor of 2 to 8)"),
        ("unet_channels", 1 <= len(c.unet_channels) <= 4, "1 to 4 widths"),
        ("ema_decay", 0.0 <= c.ema_decay < 1.0, "in [0, 1)"),
        ("caption_dropout", 0.0 <= c.caption_dropout < 1.0, "in [0, 1)"),
        ("data_start_spread", 0.0 <= c.data_start_spread <= 1.0, "in [0, 1]"),
        ("threads", c.threads >= 1, "at least 1"),
        ("text_max_length", 4 <= c.text_max_length <= 77, "between 4 and 77"),
    ]
    for name in (
        "vae_steps",
        "unet_steps",
        "high_noise_steps",
        "vae_batch",
        "unet_batch",
        "checkpoint_every",
    ):
        rules.append((name, getattr(c, name) >= (0 if name.endswith("steps") else 1), "positive"))
    stop = c.stop_after_unet_step
    rules.append(
        (
            "stop_after_unet_step",
            stop == -1 or 0 <= stop <= c.unet_steps,
            f"-1 (run to `unet_steps`) or between 0 and `unet_steps` ({c.unet_steps})",
        )
    )
    for key, ok, expected in rules:
        if not ok:
            raise InvalidRequest(f"{where}: `{key}` must be {expected}, not {getattr(c, key)!r}")
    check_folders(c, where)
    for key in ("vae_channels", "unet_channels"):
        if any(width % 8 for width in getattr(c, key)):
            raise InvalidRequest(f"{where}: `{key}` must be multiples of 8 (8 norm groups)")


def check_folders(c: TrainConfig, where: str = "config") -> None:
    """Refuse an `out`, `data` or `vae_from` that is neither a run name nor an absolute path."""
    for key in ("out", "data", "vae_from"):
        value = getattr(c, key)
        if key != "vae_from" or value:
            try:
                run_path(value, key=key)
            except InvalidRequest as e:
                raise InvalidRequest(f"{where}: {e}") from None
