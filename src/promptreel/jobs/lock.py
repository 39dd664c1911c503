"""One service per data folder.

Starting the service queues its cut-short jobs again and removes half-written files; a second
service on the same folder would do that to the first one's live job. So the service holds an
exclusive lock on `HOME/serve.lock` (released by the OS however the process ends) before it
touches anything, and a second one is refused.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

from ..errors import InvalidRequest, OutputError
from ..home import home

try:
    import fcntl
except ImportError:  # Windows: one service per folder is then up to the user
    fcntl = None  # type: ignore[assignment]

_held: dict[Path, IO[str]] = {}


def hold_service_lock() -> None:
    """Take the data folder's service lock for this process (a no-op if it holds it)."""
    path = home() / "serve.lock"
    if path in _held or fcntl is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as e:
        raise OutputError(
            f"cannot use the data folder {home()}: {e.strerror or e}; set PROMPTREEL_HOME to a "
            "writable folder."
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            # a file system without locks (some network mounts): one service is up to the user
            handle.close()
            return
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise InvalidRequest(
            f"another promptreel serve (pid {owner}) is using {home()}; stop it, or set "
            "PROMPTREEL_HOME to another folder."
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    _held[path] = handle


def release_service_lock() -> None:
    handle = _held.pop(home() / "serve.lock", None)
    if handle is not None:
        handle.close()
