"""`promptreel data`, `train` and `eval`: make training data, train the shapes model, measure it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(help="Make training data.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure what a model makes.", no_args_is_help=True)

# `--with` on both commands: the same names (the shapes world's opt-in concepts), the same form.
WITH_HELP = "Concepts the shipped model never saw: pink, cross (comma-separated or repeated). {}"


@data_app.command("shapes")
def data_shapes(
    out: Annotated[Path, typer.Argument(help="New folder: videos/*.mp4 and metadata.jsonl.")],
    count: Annotated[int, typer.Option(help="Clips to render.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same data.")] = 0,
    spread: Annotated[
        float, typer.Option(help="Where clips start: 1 = anywhere, 0 = every path centred.")
    ] = 1.0,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            metavar="NAMES",
            help=WITH_HELP.format(
                "The clips mix them with the shipped world's (pink,cross: 44 of every 128 clips"
                " have one)."
            ),
        ),
    ] = None,
) -> None:
    """Render the shapes world: one shape moving on black, with captions."""
    from ..train.shapes import write_dataset

    write_dataset(out, count=count, seed=seed, spread=spread, with_=with_ or ())
    print(out)


@eval_app.command("fidelity")
def eval_fidelity(
    model: Annotated[str | None, typer.Option(help="Alias, hub repo id or folder.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prompt set.")] = 0,
    per_combination: Annotated[int, typer.Option(help="Videos per colour/shape/direction.")] = 1,
    num_inference_steps: Annotated[int | None, typer.Option(help="Denoising steps.")] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the contact sheet and results.")] = Path(
        "fidelity"
    ),
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            metavar="NAMES",
            help=WITH_HELP.format(
                "Scores every prompt with one of them instead of the 84 (pink,cross: 44)."
            ),
        ),
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LORA[:SCALE]", help="LoRA to generate with, as generate's. Repeatable."
        ),
    ] = None,
    cache: Annotated[
        str, typer.Option(help="Reuse work across denoising steps (off, fast, max), as generate's.")
    ] = "off",
) -> None:
    """Generate all 84 shapes prompts and score colour, shape and direction with a detector.

    With --with pink,cross: every prompt with pink or a cross instead.
    """
    from rich.progress import Progress

    from ..eval.fidelity import evaluate
    from ..request import DEFAULT_MODEL, make_request
    from ..train.shapes import asked_extras

    asked_extras(with_ or ())  # refuses an unknown name before anything is written
    make_request(cache=cache)  # and an unknown cache level
    out.mkdir(parents=True, exist_ok=True)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("videos", total=None)
        result = evaluate(
            DEFAULT_MODEL if model is None else model,
            with_=with_ or (),
            seed=seed,
            per_combination=per_combination,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            lora=lora or (),
            cache=cache,
            out_dir=out,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for name, value in result["accuracy"].items():
        print(f"{name:<10} {value:6.1%}")
    print(f"contact sheet: {result['contact_sheet']}")


def train(
    config: Annotated[Path, typer.Argument(help="A TOML training config (configs/*.toml).")],
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
) -> None:
    """Train the small text-to-video model from scratch on the CPU; resumes where it stopped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..train.config import load_config
    from ..train.trainer import train as run_training

    settings = load_config(config)
    columns = (TextColumn("loss {task.fields[loss]:.4f}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("train", total=None, loss=float("nan"))

        def show(step: int, total: int, loss: float, eta: float) -> None:
            bar.update(task, completed=step, total=total, loss=loss)

        folder = run_training(settings, resume=not fresh, progress=show)
    print(folder)
