"""How fast can a recipe's UNet3D learn to let the caption set a pattern along space or time?

A synthetic task with nothing else to learn. The input is pure noise at t = 999, and there are
two fixed random "captions". The target is a ramp from -1 to 1 along x (`--axis space`) or
along the frames (`--axis time`), its sign set by the caption. A UNet that can use a caption
for a pattern over frames, not just within a frame, drives the loss from the ramp's variance
(0.38 over 16 frames) toward 0. Direction in the shapes world needs the `time` case; colour and
shape need only the `space` case.

    python benchmarks/text_time_probe.py CONFIG [--axis time] [--frames 16] [--steps 100]
"""

from __future__ import annotations

import argparse
import time

import torch

LOG_EVERY = 20


def main() -> None:
    from promptreel.train.config import load_config
    from promptreel.train.model import build_unet
    from promptreel.train.shapes import SIDE

    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--axis", choices=("space", "time"), default="time")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    config = load_config(args.config)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    side = SIDE // config.vae_factor
    unet = build_unet(config, latent_size=side)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.unet_lr)
    length = args.frames if args.axis == "time" else side
    ramp = torch.linspace(-1, 1, length)
    ramp = ramp.view(1, 1, -1, 1, 1) if args.axis == "time" else ramp.view(1, 1, 1, 1, -1)
    captions = torch.randn(2, config.text_max_length, config.text_width)
    shape = (args.batch, config.latent_channels, args.frames, side, side)
    t = torch.full((args.batch,), 999)
    started = time.perf_counter()
    print("| step | loss | seconds |\n|---|---|---|")
    for step in range(1, args.steps + 1):
        which = torch.randint(0, 2, (args.batch,))
        target = (ramp * (2.0 * which - 1).view(-1, 1, 1, 1, 1)).expand(shape)
        pred = unet(torch.randn(shape), t, encoder_hidden_states=captions[which]).sample
        loss = ((pred - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % LOG_EVERY == 0:
            print(f"| {step} | {loss.item():.4f} | {time.perf_counter() - started:.0f} |")


if __name__ == "__main__":
    main()
