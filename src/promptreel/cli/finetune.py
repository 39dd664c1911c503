"""`promptreel finetune CONFIG`: a LoRA for a downloaded model, learned from your own clips."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def finetune(
    config: Annotated[
        Path, typer.Argument(help="A TOML fine-tuning config (configs/finetune-*.toml).")
    ],
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
) -> None:
    """Fine-tune a model with a LoRA on a folder of clips and captions; resumes where it
    stopped, and prints the LoRA folder (docs/finetune.md)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..train.finetune import finetune as run_finetune
    from ..train.finetune import load_finetune_config

    settings = load_finetune_config(config)
    columns = (TextColumn("loss {task.fields[loss]:.4f}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("finetune", total=None, loss=float("nan"))

        def show(step: int, total: int, loss: float, eta: float) -> None:
            bar.update(task, completed=step, total=total, loss=loss)

        folder = run_finetune(settings, resume=not fresh, progress=show)
    print(folder)
