"""`promptreel serve`: the HTTP API, the web page and a worker (in this process, or
`--backend ray`: on the actors of a Ray cluster, as `promptreel batch --backend ray`)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from ..errors import InvalidRequest
from .backends import Address, Backend, CpusPerWorker, Workers, check_backend
from .threads import threads_sleep

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MIN_TOKEN_CHARS = 16


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (not loopback: needs --token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="PROMPTREEL_TOKEN", help="Required by every API route when set."),
    ] = None,
    max_queue: Annotated[int, typer.Option(help="Queued jobs before new ones get 429.")] = 100,
    backend: Backend = "local",
    address: Address = None,
    workers: Workers = None,
    cpus_per_worker: CpusPerWorker = 1,
) -> None:
    """Run the HTTP API, the web page and a worker; queued jobs survive a crash."""
    token = token or None  # an empty --token "" (or PROMPTREEL_TOKEN=) is no token
    if host not in LOOPBACK and not token:
        raise InvalidRequest(
            f"--host {host} opens the service to the network; give --token TOKEN (or set "
            f"PROMPTREEL_TOKEN), e.g. this fresh one: {secrets.token_urlsafe(24)}; or keep the "
            "default 127.0.0.1."
        )
    if token is not None:
        _check_token(token)
    if not 0 < port < 65536:
        raise InvalidRequest(f"--port must be between 1 and 65535, not {port}.")
    if max_queue < 1:
        raise InvalidRequest(f"--max-queue must be at least 1, not {max_queue}.")
    check_backend(backend, address, workers, cpus_per_worker)
    threads_sleep()
    from ..jobs.lock import hold_service_lock
    from ..jobs.store import JobStore
    from ..server.app import create_app
    from ..server.run import serve as run_service

    hold_service_lock()  # refuse a second service on this data folder before anything else
    store = JobStore()
    worker = None
    if backend == "ray":
        from ..jobs.ray_worker import RayWorker

        worker = RayWorker(store, address=address, workers=workers, cpus_per_worker=cpus_per_worker)
        worker.connect()  # an unreachable cluster is one line now, not a service without jobs
    shown = f"[{host}]" if ":" in host else host
    page = f"http://{shown}:{port}/" + (f"#token={token}" if token else "")
    try:
        run_service(
            create_app(store, token=token, max_queued=max_queue, worker=worker),
            host,
            port,
            banner=f"promptreel: serving {page} (Ctrl-C stops)",
        )
    finally:
        if worker is not None:  # the port was taken, say: stop a Ray started here
            worker.stop()


def _check_token(token: str) -> None:
    """A token must be one a guess or a glance cannot give: long, and plain text that a header
    carries unchanged (no spaces, no control characters)."""
    if len(token) < MIN_TOKEN_CHARS or not all(c.isprintable() and not c.isspace() for c in token):
        raise InvalidRequest(
            f"--token must be at least {MIN_TOKEN_CHARS} characters, without spaces or control "
            f"characters (it has {len(token)}); use a fresh one such as "
            f"{secrets.token_urlsafe(24)}"
        )
