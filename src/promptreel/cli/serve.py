"""`promptreel serve`: the HTTP API, the web page and a worker."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InvalidRequest

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
) -> None:
    """Run the HTTP API, the web page and a worker; queued jobs survive a crash."""
    token = token or None  # an empty --token "" (or PROMPTREEL_TOKEN=) is no token
    if host not in LOOPBACK and not token:
        raise InvalidRequest(
            f"--host {host} opens the service to the network; give --token TOKEN (or set "
            "PROMPTREEL_TOKEN), or keep the default 127.0.0.1."
        )
    if not 0 < port < 65536:
        raise InvalidRequest(f"--port must be between 1 and 65535, not {port}.")
    if max_queue < 1:
        raise InvalidRequest(f"--max-queue must be at least 1, not {max_queue}.")
    from ..jobs.lock import hold_service_lock
    from ..server.app import create_app
    from ..server.run import serve as run_service

    hold_service_lock()  # refuse a second service on this data folder before anything else
    shown = f"[{host}]" if ":" in host else host
    page = f"http://{shown}:{port}/" + (f"#token={token}" if token else "")
    run_service(
        create_app(token=token, max_queued=max_queue),
        host,
        port,
        banner=f"promptreel: serving {page} (Ctrl-C stops)",
    )
