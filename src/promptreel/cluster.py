"""Ray: joining (or starting) a cluster, and the actor that makes videos on it.

An actor may run on another machine: it settles the request against its own model folders,
and gets the request's input files as bytes (`packed`), written to a folder of its own for
the run.

The batch backend (`batch.ray_backend`) and the service's Ray worker (`jobs.ray_worker`) share
these: actors sized the same way, the same test of an actor that died under its job, the same
results coming back to the driver, which writes and records them itself.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import errors
from .errors import InvalidRequest, PromptreelError
from .generation import Progress
from .request import INPUT_FILES
from .video import Video
from .video.read import reason, refusal

REACH_TIMEOUT = 5.0  # seconds to reach a cluster's address before saying it cannot be


class VideoMaker:
    """The actor: makes videos from requests, its pipeline kept between them. Progress goes to
    `events` (a `ray.util.queue.Queue`) as (key, stage, step, total)."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)

    def make(
        self,
        request: dict[str, Any],
        key: int,
        events: Any,
        *,
        inputs: Inputs,
        folders: bool = True,
    ) -> tuple[Any, ...]:
        """`inputs`: the request's input files, as `packed` read them on the driver: this node
        may be another machine, without them."""
        from .generation import prepare, run
        from .request import make_request

        def report(progress: Progress) -> None:
            events.put_nowait((key, progress.stage, progress.step, progress.total))

        try:
            with tempfile.TemporaryDirectory(prefix="promptreel-inputs-") as folder:
                request = {**request, **_unpacked(inputs, Path(folder))}
                # settled on the actor's node, in its own model folders; `folders=False`
                # refuses a model given as a local folder, as the service does (`prepare`)
                prepared = prepare(make_request(**request), folders=folders)
                videos = run(prepared, progress=report)
        except PromptreelError as e:  # the job's own failure: not run again
            return ("error", type(e).__name__, str(e))
        control = videos[0].control
        return (
            "videos",
            [(video.frames, video.record) for video in videos],
            videos[0].fps,
            None if control is None else (control.frames, control.record),
        )


# an input field -> (its file or folder name, {file name in the folder, or "": its bytes})
Inputs = dict[str, tuple[str, dict[str, bytes]]]


def packed(request: dict[str, Any]) -> Inputs:
    """The request's input files (an image, a video, a folder of images) as bytes, for an
    actor on any node. A file gone since the request was checked is the job's own failure."""
    inputs: Inputs = {}
    for name in INPUT_FILES:
        given = request.get(name)
        if not given:
            continue
        path = Path(given)
        try:
            if path.is_dir():
                files = {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}
            else:
                files = {"": path.read_bytes()}
        except OSError as e:
            raise refusal(name, given)(f"cannot be read ({reason(e)}); put it back") from None
        inputs[name] = (path.name, files)
    return inputs


def _unpacked(inputs: Inputs, folder: Path) -> dict[str, str]:
    """Write `inputs` under `folder` by their own names (a record names the file it read):
    the request's fields, pointing at the copies."""
    fields = {}
    for name, (base, files) in inputs.items():
        target = folder / name / base
        target.parent.mkdir(parents=True)
        if "" in files:
            target.write_bytes(files[""])
        else:
            target.mkdir()
            for file_name, data in files.items():
                (target / file_name).write_bytes(data)
        fields[name] = str(target)
    return fields


@contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """The `ray` module, joined to the cluster at `address`, or to a local instance started
    here (and stopped on the way out) when there is none. A cluster that cannot be reached is
    one line (`InvalidRequest`), at once: `ray.init` would retry a dead address for minutes."""
    import ray

    _check_reachable(address)
    ours = not ray.is_initialized()
    if ours:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:  # what ray.init raises
            what = f"join the Ray cluster at {address}" if address else "start Ray"
            fix = "check --address" if address else "give --address of a running one"
            raise InvalidRequest(
                f"cannot {what}: {' '.join(str(e).split())}; {fix}.",
                argument="address",
                value=address,
            ) from None
    try:
        yield ray
    finally:
        if ours:
            ray.shutdown()


def _check_reachable(address: str | None) -> None:
    """Refuse a HOST:PORT nothing answers at."""
    if address is None:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # `auto`, `local`: Ray's own words, its own answer
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as e:
        raise InvalidRequest(
            f"cannot reach a Ray cluster at --address {address}: {e.strerror or e}; start one "
            "there (`ray start --head`) or give the address `ray status` prints.",
            argument="address",
            value=address,
        ) from None


def died_reason(runs: int) -> str:
    """Why a job whose actor died under it `runs` times failed for good."""
    return (
        f"the worker making it died {runs} times (killed, its node lost, or out of memory); "
        "if memory, try fewer frames or a smaller size."
    )


def video_maker(ray: Any, cpus_per_worker: int) -> Any:
    """The actor class to start: on a GPU of its own when the cluster has GPUs, else on
    `cpus_per_worker` CPUs. Never restarted by Ray: the caller replaces it and decides about
    the job it was running."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    return ray.remote(num_gpus=1 if gpus else 0, num_cpus=cpus_per_worker, max_restarts=0)(
        VideoMaker
    )


def actor_count(resources: dict[str, float], workers: int | None, cpus_per_worker: int) -> int:
    """How many actors the cluster can hold at once: one a GPU, else one per `cpus_per_worker`
    CPUs; `workers` asks for fewer. More would wait for resources that never come."""
    gpus = int(resources.get("GPU", 0))
    fit = gpus or int(resources.get("CPU", 0)) // cpus_per_worker
    if fit < 1:
        raise InvalidRequest(
            f"the Ray cluster has {int(resources.get('CPU', 0))} CPUs and no GPU: too few for "
            f"--cpus-per-worker {cpus_per_worker}; give fewer.",
            argument="cpus_per_worker",
        )
    return min(workers or fit, fit)


def died(ray: Any) -> tuple[type[BaseException], ...]:
    """What Ray raises for a job that did not end on its own: its actor killed, its node or
    its objects lost, out of memory. (A job's own failure comes back from `result`.)"""
    return (ray.exceptions.RayError,)


def result(ray: Any, ref: Any) -> list[Video] | PromptreelError:
    """What an actor's `make` gave: the videos, or the job's own error (a task that raised
    instead: a bug, said in one line). An actor that died raises one of `died(ray)`."""
    try:
        found = ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        return PromptreelError(f"{type(e.cause).__name__}: {e.cause}")
    if found[0] == "error":
        _, kind, message = found
        error_class = getattr(errors, kind, PromptreelError)
        return error_class(message)
    _, videos, fps, control = found
    shown = None if control is None else Video(control[0], fps, record=control[1])
    return [Video(frames, fps, record=record, control=shown) for frames, record in videos]
