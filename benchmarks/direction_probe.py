"""Does a shapes model's denoiser use the direction word of its prompt?

For clips of a shapes dataset, the v-prediction loss of the model's UNet at several noise levels
with three prompts: the true canonical caption, the same caption with the opposite direction,
and the empty prompt. If the true and opposite-direction losses are equal, the denoiser ignores
direction, and no guidance scale at sampling can bring it back (guidance scales the difference
that the text makes). Prints a Markdown table for docs/training.md.

MODEL is a pipeline folder, or a training run's `out` folder: then the weights of its latest
checkpoint, EMA or with `--raw` the raw ones (a gap opens in the raw weights first).

    python benchmarks/direction_probe.py MODEL DATA_FOLDER [--clips 64] [--frames 8]
        [--timesteps 950 999] [--raw]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

TIMESTEPS = (100, 300, 500, 700, 850, 950, 999)


def main() -> None:
    from diffusers import DDPMScheduler, DiffusionPipeline

    from promptreel.train.model import tokenize
    from promptreel.train.shapes import CANONICAL_TEMPLATE, OPPOSITE_DIRECTION, read_dataset
    from promptreel.train.trainer import encode_clips, export_model
    from promptreel.video import read_video

    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip, from the start")
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS))
    parser.add_argument("--raw", action="store_true", help="a run's raw weights, not its EMA")
    args = parser.parse_args()

    if (args.model / "checkpoint.pt").exists():
        with tempfile.TemporaryDirectory() as folder:
            export_model(args.model, folder, ema=not args.raw)
            pipe = DiffusionPipeline.from_pretrained(folder)
    else:
        pipe = DiffusionPipeline.from_pretrained(args.model)
    rows = read_dataset(args.data)
    picked = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[: args.clips]
    chosen = [rows[i] for i in picked.tolist()]
    clips = [read_video(args.data / r["file"], first=args.frames)[0] for r in chosen]
    with torch.no_grad():
        x0, scale = encode_clips(pipe.vae, torch.from_numpy(np.stack(clips)))
    x0 = x0 / scale * pipe.vae.config.scaling_factor  # the scale the model was trained at

    def caption(row: dict, direction: str) -> str:
        return CANONICAL_TEMPLATE.format(
            colour=row["colour"], shape=row["shape"], direction=direction
        )

    prompts = {
        "true caption": [caption(r, r["direction"]) for r in chosen],
        "opposite direction": [caption(r, OPPOSITE_DIRECTION[r["direction"]]) for r in chosen],
        "empty prompt": [""] * len(chosen),
    }
    schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    print("| t | " + " | ".join(prompts) + " |")
    print("|---" * (len(prompts) + 1) + "|")
    with torch.no_grad():
        hidden = {k: pipe.text_encoder(tokenize(pipe.tokenizer, p))[0] for k, p in prompts.items()}
        for t in args.timesteps:
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
            steps = torch.full((len(chosen),), t)
            noisy = schedule.add_noise(x0, noise, steps)
            target = schedule.get_velocity(x0, noise, steps)
            losses = [
                ((pipe.unet(noisy, steps, encoder_hidden_states=h).sample - target) ** 2).mean()
                for h in hidden.values()
            ]
            print(f"| {t} | " + " | ".join(f"{float(v):.4f}" for v in losses) + " |", flush=True)


if __name__ == "__main__":
    main()
