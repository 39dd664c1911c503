"""The `--backend local|ray` options `batch` and `serve` share, and their one check."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InvalidRequest

Backend = Annotated[
    str, typer.Option(help="local (this process) or ray (actors on a Ray cluster).")
]
Address = Annotated[
    str | None,
    typer.Option(
        help="With --backend ray: the cluster's address (default: start one here).",
        show_default=False,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        help="With --backend ray: how many actors (default: one per GPU, else per "
        "--cpus-per-worker CPUs).",
        show_default=False,
    ),
]
CpusPerWorker = Annotated[
    int, typer.Option(help="With --backend ray, without GPUs: CPUs an actor.")
]


def check_backend(
    backend: str, address: str | None, workers: int | None, cpus_per_worker: int
) -> None:
    """Refuse what the backend cannot take, in one line, before anything runs."""
    if backend == "local":
        for option, value in (("address", address), ("workers", workers)):
            if value is not None:
                raise InvalidRequest(
                    f"--{option} is for --backend ray; add it, or remove --{option}.",
                    argument=option,
                )
        return
    if backend != "ray":
        raise InvalidRequest(
            f"--backend must be local or ray, not {backend!r}.", argument="backend"
        )
    if cpus_per_worker < 1 or (workers is not None and workers < 1):
        raise InvalidRequest(
            "--workers and --cpus-per-worker must be at least 1.", argument="workers"
        )
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InvalidRequest(
            "--backend ray needs Ray: pip install 'promptreel[ray]' (or pip install ray).",
            argument="backend",
        ) from None
