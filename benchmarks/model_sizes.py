"""Per-step time and peak memory per model size and memory setting, with the planner's
estimate beside each measurement.

The sizes: the shipped shapes model, and the same architecture with its UNet's channels
widened 4x and 8x (random weights: the time and memory of a forward pass do not depend on
what the weights are). Each setting runs twice in one process and the second run counts (the
first loads). Prints a Markdown table for docs/benchmarks.md.

    python benchmarks/model_sizes.py [--widths 1 4 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from datetime import date
from pathlib import Path

PROMPT = "a red circle moving right"
SETTINGS = {
    "none": {},
    "vae slicing": {"vae_slicing": True},
    "vae tiling": {"vae_tiling": True},
    "fp8": {"fp8": True},
    "cache fast": {"cache": "fast"},
    "cache max": {"cache": "max"},
}
MIB = 2**20


def widened(folder: Path, width: int) -> Path:
    """A copy of the shapes model whose UNet has `width` times the channels, random weights."""
    import torch
    from diffusers import UNet3DConditionModel

    from promptreel.models.cards import SHAPES_FOLDER

    shutil.copytree(SHAPES_FOLDER, folder)
    if width > 1:
        config = json.loads((folder / "unet" / "config.json").read_text())
        config["block_out_channels"] = [c * width for c in config["block_out_channels"]]
        torch.manual_seed(0)
        unet = UNet3DConditionModel.from_config(config)
        shutil.rmtree(folder / "unet")
        unet.save_pretrained(folder / "unet", safe_serialization=True)
    return folder


def _peaks(record: dict, stage: str) -> str:
    measured, planned = record["memory"]["measured"], record["memory"]["planned"]
    return (
        f"{measured[stage]['peak_ram_bytes'] / MIB:.0f} / "
        f"{planned[stage]['peak_ram_bytes'] / MIB:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()

    import promptreel

    print(
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; shapes' defaults: 16 frames at 64x64, 10 steps\n"
    )
    print(
        "| UNet | setting | per step (s) | denoise peak RAM measured / planned (MiB) | "
        "decode peak RAM measured / planned (MiB) |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for width in args.widths:
            folder = widened(Path(scratch) / f"shapes-x{width}", width)
            parameters = None
            for name, setting in SETTINGS.items():
                for _ in range(2):
                    video = promptreel.generate(
                        PROMPT, model=str(folder), seed=1, history=False, **setting
                    )
                if parameters is None:
                    from promptreel.models import load

                    unet = load._current.pipe.unet
                    parameters = sum(p.numel() for p in unet.parameters())
                record = video.record
                steps = record["parameters"]["num_inference_steps"]
                print(
                    f"| {parameters / 1e6:.1f}M (x{width}) | {name} | "
                    f"{record['timings']['denoise'] / steps:.3f} | {_peaks(record, 'denoise')} | "
                    f"{_peaks(record, 'decode')} |",
                    flush=True,
                )
            promptreel.unload()


if __name__ == "__main__":
    main()
