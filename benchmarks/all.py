"""The speed and memory benchmarks side by side in one run, each script in its own process:
per-step time and peak memory per model size and setting (model_sizes.py), step caching's
speed-up with fidelity (step_cache.py, at the card's 10 steps unless --steps says more),
CLI start-up, end to end against the seed-style script, the loop and encoding (overhead.py),
and a batch on 2 Ray actors against 1 (ray_speedup.py). The output is Markdown for
docs/benchmarks.md.

    python benchmarks/all.py [--steps 10 20 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", nargs="+", default=["10"])
    parser.add_argument("--runs", default="5")
    args = parser.parse_args()
    # the plot in docs/ is of the whole curve; a shorter run draws its own elsewhere
    plot = "docs/step-cache.png" if args.steps == ["10", "20", "50"] else "/tmp/step-cache.png"
    for title, script, options in (
        ("Per-step time and peak memory per model size and setting", "model_sizes.py", []),
        (
            "Step caching: speed-up and fidelity",
            "step_cache.py",
            ["--steps", *args.steps, "--plot", plot],
        ),
        ("Start-up, end to end, the loop, encoding", "overhead.py", ["--runs", args.runs]),
        ("A batch on Ray: 2 actors against 1", "ray_speedup.py", []),
    ):
        print(f"### {title}\n", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *options], check=True)
        print(flush=True)


if __name__ == "__main__":
    main()
