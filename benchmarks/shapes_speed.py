"""How long the shipped `shapes` model takes, as a user runs it: the whole `promptreel generate`
command (a fresh process: imports, loading, the work, writing) and, from the video's record,
the denoising plus decoding. Prints a Markdown table for docs/benchmarks.md.

    python benchmarks/shapes_speed.py [--runs 5] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "a red circle moving right",
    "a blue square moving up",
    "a yellow triangle moving left",
    "a purple circle moving down",
    "a white square moving right",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="default: the card's")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            out = Path(folder) / f"{run}.mp4"
            command = [sys.executable, "-m", "promptreel", "generate", PROMPTS[run % len(PROMPTS)]]
            command += ["--seed", str(run), "--output", str(out), "--quiet", "--no-history"]
            if args.steps is not None:
                command += ["--num-inference-steps", str(args.steps)]
            started = time.perf_counter()
            subprocess.run(command, check=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
            wall = time.perf_counter() - started
            record = json.loads(out.with_name(out.name + ".json").read_text())
            timings = record["timings"]
            rows.append((wall, timings["denoise"] + timings["decode"], timings, record))
    record = rows[0][3]
    print(
        f"model {record['model']['name']} ({record['model']['revision']}), "
        f"{record['parameters']['num_frames']} frames "
        f"{record['parameters']['width']}x{record['parameters']['height']}, "
        f"{record['parameters']['num_inference_steps']} steps, "
        f"guidance {record['parameters']['guidance_scale']}, torch threads: default\n"
    )
    print("| run | whole command (s) | denoise + decode (s) | load | encode | denoise | decode |")
    print("|---|---|---|---|---|---|---|")
    for index, (wall, work, t, _) in enumerate(rows):
        print(
            f"| {index} | {wall:.2f} | {work:.2f} | {t['load']:.2f} | {t['encode']:.2f} "
            f"| {t['denoise']:.2f} | {t['decode']:.2f} |"
        )
    walls, works = [r[0] for r in rows], [r[1] for r in rows]
    print(f"| median | {statistics.median(walls):.2f} | {statistics.median(works):.2f} | | | | |")


if __name__ == "__main__":
    main()
