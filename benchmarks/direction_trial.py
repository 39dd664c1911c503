"""A short stage-2 trial on a finished run's VAE: does the caption come to set direction?

Renders COUNT clips (every colour x shape x direction equally often) whose start is drawn with
`--spread` (`shapes.sample_clip`), encodes them with the VAE of `--run`, and trains a fresh text
encoder and UNet of CONFIG on 8-frame windows from the clip start. For the first `--switch`
steps the noise level t is drawn from [`--tmin`, 999], then from [0, 999] on the first
`--late-frames` frames. Every 100 steps it
prints the v-loss at t = 999, 850 and 600 of 64 training clips with the true canonical caption
and with the opposite direction: a gap between the two means the denoiser uses the direction
word. At the end it saves the EMA weights as a pipeline folder, `--save`, and scores it with
`promptreel eval fidelity` (84 canonical prompts; contact sheet in `--save`-fidelity).

    python benchmarks/direction_trial.py configs/shapes.toml --spread 0 --tmin 700 --switch 900
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

FRAMES = 8
PROBE_CLIPS = 64


def main() -> None:
    from promptreel.eval.fidelity import evaluate
    from promptreel.train import model as M
    from promptreel.train import shapes as S
    from promptreel.train.config import load_config
    from promptreel.train.trainer import EMA, diffusion_loss, encode_clips, load_checkpoint

    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--run", type=Path, default=Path("runs/shapes"))
    parser.add_argument("--spread", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=2016)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--tmin", type=int, default=700)
    parser.add_argument("--switch", type=int, default=900)
    parser.add_argument("--late-frames", type=int, default=FRAMES, help="frames after --switch")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches and noise")
    parser.add_argument("--threads", type=int, help="default: the config's")
    parser.add_argument("--save", type=Path, default=Path("runs/direction-trial"))
    args = parser.parse_args()

    config = load_config(args.config)
    torch.set_num_threads(args.threads or config.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(0)
    combinations = list(itertools.product(S.COLOURS, S.SHAPES, S.DIRECTIONS))
    clips, captions = [], []
    for c, s, d in itertools.islice(itertools.cycle(combinations), args.count):
        clips.append(S.sample_clip(rng, colour=c, shape=s, direction=d, spread=args.spread))
        captions.append(S.caption(clips[-1], rng))
    state = load_checkpoint(args.run / "checkpoint.pt")
    tokenizer = M.CLIPTokenizer.from_pretrained(args.run / "tokenizer")
    vae = M.build_vae(config)
    vae.load_state_dict(state["vae"])
    vae.eval().requires_grad_(False)
    started = time.perf_counter()
    pixels = torch.from_numpy(np.stack([S.render(clip) for clip in clips]))
    latents, scale = encode_clips(vae, pixels)
    vae.register_to_config(scaling_factor=scale)
    print(f"rendered and encoded {len(clips)} clips in {time.perf_counter() - started:.0f} s")

    text_encoder = M.build_text_encoder(config, tokenizer)
    unet = M.build_unet(config, latent_size=latents.shape[-1])
    modules = [text_encoder, unet]
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.unet_lr, weight_decay=config.weight_decay)
    warmup = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps)
    )
    ema = EMA(modules, 0.99)  # a short run: average over ~100 steps, not 1000
    noise = M.noise_scheduler(config)
    gen = torch.Generator().manual_seed(args.seed + 1)
    ids, empty = M.tokenize(tokenizer, captions), M.tokenize(tokenizer, [""])[0]
    probe = torch.arange(PROBE_CLIPS) * (len(clips) // PROBE_CLIPS)
    true_ids = M.tokenize(tokenizer, [S.canonical_caption(clips[i]) for i in probe])
    flip = S.OPPOSITE_DIRECTION
    opposite = [replace(clips[i], direction=flip[clips[i].direction]) for i in probe]
    opposite_ids = M.tokenize(tokenizer, [S.canonical_caption(clip) for clip in opposite])

    @torch.no_grad()
    def gap(step: int, frames: int) -> None:
        x0 = latents[probe, :, :frames]
        cells = []
        for t in (999, 850, 600):
            eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
            steps = torch.full((len(probe),), t)
            noisy, target = noise.add_noise(x0, eps, steps), noise.get_velocity(x0, eps, steps)
            losses = []
            for ids_ in (true_ids, opposite_ids):
                pred = unet(noisy, steps, encoder_hidden_states=text_encoder(ids_)[0]).sample
                losses.append(float(((pred - target) ** 2).mean()))
            cells.append(f"{losses[0]:.4f} / {losses[1]:.4f}")
        print(f"| {step} | " + " | ".join(cells) + " |", flush=True)

    print("| step | t = 999: true / opposite | t = 850 | t = 600 |\n|---|---|---|---|")
    for step in range(1, args.steps + 1):
        picked = torch.randint(0, len(latents), (config.unet_batch,), generator=gen)
        frames = FRAMES if step <= args.switch else args.late_frames
        x0 = latents[picked, :, :frames]
        drop = torch.rand(len(picked), generator=gen) < config.caption_dropout
        batch_ids = torch.where(drop[:, None], empty[None], ids[picked])
        t_min = args.tmin if step <= args.switch else 0
        loss = diffusion_loss(unet, text_encoder, x0, batch_ids, noise, config, gen, t_min=t_min)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        warmup.step()
        ema.update(modules)
        if step % 100 == 0:
            gap(step, frames)

    text_encoder_ema, unet_ema = ema.copy_to(modules)
    M.save_pipeline(
        args.save,
        tokenizer_folder=args.run / "tokenizer",
        text_encoder=text_encoder_ema,
        vae=vae,
        unet=unet_ema,
        scheduler=M.sampler(config),
    )
    results = evaluate(str(args.save), out_dir=args.save.with_name(f"{args.save.name}-fidelity"))
    print(json.dumps(results["accuracy"]))


if __name__ == "__main__":
    main()
