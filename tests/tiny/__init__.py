"""Tiny random-weight copies of every repo the built-in cards use, keyed by real repo id."""

from collections.abc import Callable
from pathlib import Path

from tiny import transformer_family, unet_family

BUILDERS: dict[str, Callable[[Path], None]] = {
    **unet_family.BUILDERS,
    **transformer_family.BUILDERS,
}
