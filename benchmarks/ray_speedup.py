"""A batch on Ray: 2 actors against 1 (and the local backend), on this machine.

The batch: 8 prompts of the shapes model at its defaults, at `--seeds` seeds each. Each run
is a fresh
`promptreel batch` process with a fresh data folder (nothing skipped), Ray's start-up and the
actors' first pipeline load included, as a user runs it. Runs alternate; medians. Prints a
Markdown table for docs/benchmarks.md.

    python benchmarks/ray_speedup.py [--runs 2] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PROMPTS = [
    f"a {colour} {shape} moving {direction}"
    for colour, shape, direction in [
        ("red", "circle", "right"),
        ("blue", "square", "up"),
        ("yellow", "triangle", "left"),
        ("purple", "circle", "down"),
        ("white", "square", "right"),
        ("green", "triangle", "up"),
        ("orange", "circle", "left"),
        ("pink", "square", "down"),
    ]
]
SETUPS = {
    "local backend (one process, 2 threads)": ["--backend", "local"],
    "ray, 1 actor (1 CPU)": ["--backend", "ray", "--workers", "1", "--cpus-per-worker", "1"],
    "ray, 2 actors (1 CPU each)": ["--backend", "ray", "--workers", "2", "--cpus-per-worker", "1"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in SETUPS}
    with tempfile.TemporaryDirectory() as scratch:
        rows = Path(scratch) / "prompts.txt"
        rows.write_text("\n".join(PROMPTS) + "\n")
        for run in range(args.runs):
            for index, (name, options) in enumerate(SETUPS.items()):
                folder = Path(scratch) / f"run{run}-setup{index}"  # nothing to skip
                env = {**os.environ, "PROMPTREEL_HOME": str(folder / "home")}
                started = time.perf_counter()
                command = [sys.executable, "-m", "promptreel", "batch", str(rows), "--quiet"]
                command += ["--output-dir", str(folder / "videos"), "--seeds", f"1-{args.seeds}"]
                subprocess.run([*command, *options], env=env, check=True)
                times[name].append(time.perf_counter() - started)
                print(f"{name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    one = statistics.median(times["ray, 1 actor (1 CPU)"])
    print(
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores; {8 * args.seeds} shapes "
        f"videos at their defaults, medians of {args.runs}\n"
    )
    print("| backend | batch wall (s) | against 1 actor |")
    print("|---|---|---|")
    for name in SETUPS:
        seconds = statistics.median(times[name])
        print(f"| {name} | {seconds:.1f} | {one / seconds:.2f}x |")


if __name__ == "__main__":
    main()
