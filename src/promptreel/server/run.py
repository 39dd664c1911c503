"""Running the service: bind first, then start; stop the worker at the first Ctrl-C.

uvicorn alone would run the app's startup (which queues cut-short jobs again and starts the
worker) before it finds the port taken, and at Ctrl-C it waits for open connections (a page's
event stream) before the app's shutdown stops the worker; a second Ctrl-C then kills the
process with the job still marked running.
"""

from __future__ import annotations

import signal
import socket
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from ..errors import InvalidRequest

GRACE = 5  # seconds open connections get to finish at shutdown


def serve(app: FastAPI, host: str, port: int, *, banner: str) -> None:
    """Serve `app` on host:port until Ctrl-C or SIGTERM; print `banner` once it listens."""
    sock = _bind(host, port)
    worker = app.state.worker

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn's own also raises the signal again once it has stopped, which would
            # turn a clean stop into "Interrupted"
            if not self.should_exit:
                print(
                    "promptreel: stopping; a running job goes back to the queue",
                    file=sys.stderr,
                    flush=True,
                )
            worker.stop_soon()  # the job goes back to the queue at its next step
            if self.should_exit and sig == signal.SIGINT:
                # a second Ctrl-C: uvicorn skips the app's shutdown, so requeue here
                worker.requeue_running()
                self.force_exit = True
            self.should_exit = True

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(banner, file=sys.stderr, flush=True)

    # no access log: video and event URLs carry the token (`?token=`), and a log keeps it
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACE
    )
    server = Server(config)
    # a closed terminal stops the service like Ctrl-C (uvicorn itself handles INT and TERM)
    signal.signal(signal.SIGHUP, server.handle_exit)
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if sys.platform != "win32":  # on Windows the option lets two servers share a port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InvalidRequest(
            f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port or --host."
        ) from None
    sock.set_inheritable(True)
    return sock
