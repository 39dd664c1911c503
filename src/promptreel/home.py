"""The user data folder: the history database, the service's files, training runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def home() -> Path:
    """The user data folder: PROMPTREEL_HOME, else the platform's place for app data."""
    if os.environ.get("PROMPTREEL_HOME"):
        return Path(os.environ["PROMPTREEL_HOME"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "promptreel"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "promptreel"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "promptreel"
