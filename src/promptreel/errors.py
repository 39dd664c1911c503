"""The one exception tree of promptreel.

    PromptreelError            anything the user can act on; shown as one line, exit code 1
    ├── InvalidRequest         the request breaks a rule (bad prompt, frames, size, param ...)
    ├── InputError             an --image / --video that does not exist or does not decode
    ├── OutputError            an output path we cannot or will not write
    ├── ModelNotFound          an unknown model name, repo id or folder
    ├── ModelNotDownloaded     a known model missing from the local cache while offline
    ├── UnsupportedDevice      a device, dtype or memory switch this machine cannot do
    ├── OutOfMemory            the accelerator ran out of memory mid-job (with what to try)
    └── Cancelled              the job was cancelled between two steps

Every message names the argument and the value, and says what to do. Where one request field
is at fault, the error also carries it as data (`argument`, by the request's field name, and
`value`), so that a caller (the service, a script) never parses the message to find it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "Cancelled",
    "InputError",
    "InvalidRequest",
    "ModelNotDownloaded",
    "ModelNotFound",
    "OutOfMemory",
    "OutputError",
    "PromptreelError",
    "UnsupportedDevice",
]


class PromptreelError(Exception):
    """An error the user can act on; the CLI prints `ClassName: message` and exits 1.

    `argument` is the request field at fault (`num_frames`, `video`), if one is; `value` what it
    held.
    """

    def __init__(self, message: str, *, argument: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value


class InvalidRequest(PromptreelError):
    pass


class InputError(PromptreelError):
    """An input file that cannot be used. `reason` is the message without the file's path
    (the service names an upload by its field, not by the path it was saved to)."""

    def __init__(
        self,
        message: str,
        *,
        argument: str | None = None,
        value: object = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, argument=argument, value=value)
        self.reason = message if reason is None else reason


class OutputError(PromptreelError):
    pass


class ModelNotFound(PromptreelError):
    pass


class ModelNotDownloaded(PromptreelError):
    pass


class UnsupportedDevice(PromptreelError):
    pass


class OutOfMemory(PromptreelError):
    pass


class Cancelled(PromptreelError):
    pass


@contextmanager
def about(argument: str, value: object) -> Iterator[None]:
    """Errors raised inside that name no field are about `argument` (holding `value`): the
    model resolver and the device probe need not know which request field fed them."""
    try:
        yield
    except PromptreelError as exc:
        if exc.argument is None:
            exc.argument, exc.value = argument, value
        raise
