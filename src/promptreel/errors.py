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

Every message names the argument and the value, and says what to do.
"""


class PromptreelError(Exception):
    """An error the user can act on; the CLI prints `ClassName: message` and exits 1."""


class InvalidRequest(PromptreelError):
    pass


class InputError(PromptreelError):
    pass


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
