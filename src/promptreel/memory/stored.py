"""Footprints kept on disk: a command plans in a new process each time, and tracing a model
on the meta device costs more than the rest of a small run's bookkeeping (0.3-0.5 s on the
shapes model). A footprint depends on the request's shape, the model's configs and the code
that traced it, so the key holds all three; a kept one is never wrong, only unused.

A cache that cannot be read or written is passed over: it must never cost a video.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers

from ..home import home

_CODE = [Path(__file__).with_name(name) for name in ("plan.py", "trace.py")]


def _folder() -> Path:
    return home() / "cache" / "footprints"


def _name(key: str) -> str:
    digest = hashlib.sha256(key.encode())
    for path in _CODE:
        digest.update(path.read_bytes())
    for version in (torch.__version__, diffusers.__version__, transformers.__version__):
        digest.update(version.encode())
    return digest.hexdigest() + ".json"


def load(key: str) -> dict[str, Any] | None:
    """The footprint kept under `key`, as `store` was given it, or None."""
    try:
        return json.loads((_folder() / _name(key)).read_text())
    except (OSError, ValueError):
        return None


def store(key: str, value: dict[str, Any]) -> None:
    """Keep `value` under `key`: written aside and renamed, so a reader sees all or nothing."""
    try:
        folder = _folder()
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / _name(key)
        temp = final.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps(value))
        os.replace(temp, final)
    except OSError:
        pass
