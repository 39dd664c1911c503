"""Tiny random-weight copies of every repo the built-in cards and the control-image estimators
use, keyed by real repo id."""

from collections.abc import Callable
from pathlib import Path

from tiny import estimators, sd15_family, transformer_family, unet_family

BUILDERS: dict[str, Callable[[Path], None]] = {
    **unet_family.BUILDERS,
    **sd15_family.BUILDERS,
    **transformer_family.BUILDERS,
    **estimators.BUILDERS,
}
