"""What promptreel adds around diffusers, on the shipped shapes model at its defaults.

1. Start-up of commands that do not generate (`--help`, `models`, `loras`): they must not
   import torch, diffusers or transformers.
2. End to end: `promptreel generate` against the seed-style diffusers script (import diffusers,
   `DiffusionPipeline.from_pretrained`, DPM-Solver, call, `export_to_video`), alternating runs,
   on a quiet machine and while a busy process loads one core.
3. The loop: in one process with the pipeline loaded, promptreel's `run` against calling the
   same pipeline directly with the same arguments.
4. Encoding the frames per output format.

Prints Markdown tables for docs/benchmarks.md.

    python benchmarks/overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PROMPT = "a red circle moving right"
SEED_SCRIPT = """
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler
from diffusers.utils import export_to_video

pipe = DiffusionPipeline.from_pretrained({folder!r})
pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
generator = torch.Generator().manual_seed(1)
frames = pipe({prompt!r}, num_inference_steps=10, guidance_scale=4.0, num_frames=16,
              height=64, width=64, generator=generator).frames[0]
export_to_video(frames, {out!r}, fps=8)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "PROMPTREEL_HOME": str(Path(scratch) / "home")}
        startup(env, args.runs)
        end_to_end(env, Path(scratch), args.runs)
    loop(args.runs)
    encoding(args.runs)


def _wall(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command (the CPU time of it and its children)."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def startup(env: dict[str, str], runs: int) -> None:
    print("| command | median wall (s) | imports torch/diffusers/transformers |")
    print("|---|---|---|")
    for argv in (["--help"], ["models"], ["loras"]):
        command = [sys.executable, "-m", "promptreel", *argv]
        seconds = statistics.median(_wall(command, env)[0] for _ in range(runs))
        probe = (
            "import sys, runpy; sys.argv = ['promptreel', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('promptreel', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules)))"
        )
        heavy = (
            subprocess.run(
                [sys.executable, "-c", probe, *argv], env=env, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"| promptreel {' '.join(argv)} | {seconds:.2f} | {heavy} |")
    print()


def _burn(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def end_to_end(env: dict[str, str], scratch: Path, runs: int) -> None:
    from promptreel.models.cards import SHAPES_FOLDER

    script = scratch / "seed_script.py"
    out = scratch / "seed.mp4"
    script.write_text(SEED_SCRIPT.format(folder=str(SHAPES_FOLDER), prompt=PROMPT, out=str(out)))
    ours = [
        sys.executable,
        "-m",
        "promptreel",
        "generate",
        PROMPT,
        "--seed",
        "1",
        "--quiet",
        "--overwrite",
        "-o",
        str(scratch / "ours.mp4"),
    ]
    seed = [sys.executable, str(script)]
    print(
        "| machine | seed-style script wall / CPU (s) | promptreel wall / CPU (s) | "
        "wall ratio | CPU ratio |"
    )
    print("|---|---|---|---|---|")
    for load in ("quiet", "one core busy"):
        stop = multiprocessing.Event()
        busy = multiprocessing.Process(target=_burn, args=(stop,))
        if load != "quiet":
            busy.start()
        times: dict[str, list[tuple[float, float]]] = {"seed": [], "ours": []}
        _wall(seed, env), _wall(ours, env)  # warm the file cache
        for _ in range(runs):  # alternating: drifts in the machine's speed hit both alike
            times["seed"].append(_wall(seed, env))
            times["ours"].append(_wall(ours, env))
        if load != "quiet":
            stop.set()
            busy.join()
        (seed_wall, seed_cpu), (our_wall, our_cpu) = (
            tuple(statistics.median(t[i] for t in times[k]) for i in (0, 1))
            for k in ("seed", "ours")
        )
        print(
            f"| {load} | {seed_wall:.2f} / {seed_cpu:.2f} | {our_wall:.2f} / {our_cpu:.2f} | "
            f"{our_wall / seed_wall:.2f} | {our_cpu / seed_cpu:.2f} |"
        )
    print()


def loop(runs: int) -> None:
    """promptreel's `run` on a loaded pipeline against the same pipeline called directly."""
    import torch

    import promptreel
    from promptreel.generation import prepare, run
    from promptreel.request import make_request

    request = make_request(prompt=PROMPT, seed=1)
    promptreel.generate(PROMPT, seed=1, history=False)  # loads the pipeline, kept loaded
    prepared = prepare(request)
    pipes: list = []
    import promptreel.generation as generation

    real = generation.step_cache
    generation.step_cache = lambda pipe, *a: (pipes.append(pipe), real(pipe, *a))[1]
    run(prepared)
    generation.step_cache = real
    pipe = pipes[0]
    ours, direct = [], []
    for _ in range(runs):
        started = time.perf_counter()
        run(prepared)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        with torch.no_grad():
            torch.backends.mkldnn.enabled = False  # the kernels promptreel runs on
            pipe(**prepared.kwargs, generator=torch.Generator().manual_seed(1), output_type="np")
            torch.backends.mkldnn.enabled = True
        direct.append(time.perf_counter() - started)
    ours_s, direct_s = statistics.median(ours), statistics.median(direct)
    print("| in one process, pipeline loaded | median (s) |")
    print("|---|---|")
    print(f"| the diffusers pipeline called directly | {direct_s:.3f} |")
    print(f"| promptreel's run (timing, peaks, record) | {ours_s:.3f} |")
    print(f"| added | {100 * (ours_s / direct_s - 1):+.1f} % |\n")


def encoding(runs: int) -> None:
    import numpy as np

    import promptreel

    video = promptreel.generate(PROMPT, seed=1, history=False)
    big = promptreel.Video(
        frames=np.random.default_rng(0).integers(0, 256, (49, 480, 720, 3), dtype=np.uint8),
        fps=8.0,
        record=video.record,
    )
    print("| frames | format | median (s) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, clip in (("16 x 64x64 (shapes)", video), ("49 x 720x480 (noise)", big)):
            for suffix in (".mp4", ".webm", ".gif", "/"):
                target = f"{scratch}/out{suffix}"  # a str: Path would drop the "/"
                seconds = []
                for _ in range(runs):
                    started = time.perf_counter()
                    clip.save(target, overwrite=True)
                    seconds.append(time.perf_counter() - started)
                kind = suffix[1:] if suffix != "/" else "png folder"
                print(f"| {name} | {kind} | {statistics.median(seconds):.3f} |")
    print()


if __name__ == "__main__":
    main()
