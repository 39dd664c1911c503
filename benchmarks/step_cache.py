"""Step caching on the shipped `shapes` model: denoising speed-up against fidelity.

For each step count and each `--cache` level, `eval fidelity` on the 84 prompts (the same
seeds for every setting) gives colour, shape, direction and all three; each video's record
gives its denoising time. The speed-up is the median uncached denoising time over the median
cached one, at the same steps. Prints a Markdown table for docs/benchmarks.md and draws the
curve (joint fidelity against speed-up) into PLOT.

    python benchmarks/step_cache.py [--steps 10 20 50] [--seed 1] [--plot docs/step-cache.png]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from datetime import date
from pathlib import Path

import torch

LEVELS = ("off", "fast", "max")
COLOURS = {10: (200, 60, 40), 20: (40, 120, 200), 50: (40, 150, 80)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=Path("docs/step-cache.png"))
    args = parser.parse_args()

    from promptreel.eval.fidelity import evaluate

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for steps in args.steps:
            for level in LEVELS:
                out = Path(scratch) / f"{steps}-{level}"
                result = evaluate(
                    "shapes", seed=args.seed, num_inference_steps=steps, cache=level, out_dir=out
                )
                seconds = statistics.median(r["denoise_seconds"] for r in result["rows"])
                row = {"steps": steps, "cache": level, "seconds": seconds, **result["accuracy"]}
                rows.append(row)
                print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        off = next(r for r in rows if r["steps"] == row["steps"] and r["cache"] == "off")
        row["speedup"] = off["seconds"] / row["seconds"]

    print(
        f"\n{date.today()}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, eval fidelity seed {args.seed} (84 prompts)\n"
    )
    print("| steps | cache | denoise (median s) | speed-up | colour | shape | direction | all 3 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['steps']} | {r['cache']} | {r['seconds']:.3f} | {r['speedup']:.2f}x | "
            f"{r['colour']:.1%} | {r['shape']:.1%} | {r['direction']:.1%} | {r['joint']:.1%} |"
        )
    plot(rows, args.plot)
    print(f"\nplot: {args.plot}")


def plot(rows: list[dict], path: Path) -> None:
    """Joint fidelity (y) against denoising speed-up (x), one line per step count."""
    from PIL import Image, ImageDraw

    width, height, left, top, right, bottom = 640, 400, 60, 30, 620, 350
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    high_x = max(3.0, max(r["speedup"] for r in rows) + 0.25)
    low_y = min(0.5, min(r["joint"] for r in rows) - 0.05)

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + (right - left) * (x - 1) / (high_x - 1),
            bottom - (bottom - top) * (y - low_y) / (1 - low_y),
        )

    draw.rectangle((left, top, right, bottom), outline="gray")
    draw.text((left, 8), "shapes: all three attributes right vs denoising speed-up", "black")
    draw.text((left, bottom + 8), "1x", "black")
    draw.text((right - 20, bottom + 8), f"{high_x:.1f}x", "black")
    draw.text((4, top), "100%", "black")
    draw.text((4, bottom - 10), f"{low_y:.0%}", "black")
    for steps in dict.fromkeys(r["steps"] for r in rows):
        line = [r for r in rows if r["steps"] == steps]
        colour = COLOURS.get(steps, (0, 0, 0))
        points = [at(r["speedup"], r["joint"]) for r in line]
        draw.line(points, fill=colour, width=2)
        for r, (x, y) in zip(line, points, strict=True):
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
            draw.text((x + 6, y - 14), f"{steps} steps {r['cache']}", colour)
    image.save(path)


if __name__ == "__main__":
    main()
