"""Which device and dtype a request runs on: the hardware probe and the `auto` choices."""

from __future__ import annotations

import torch

from .errors import UnsupportedDevice

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def pick_device(requested: str) -> str:
    """`auto` is the first accelerator present; a named one must be there."""
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if requested == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available.get(requested, False):
        raise UnsupportedDevice(
            f"--device {requested} is not available on this machine; use --device auto or cpu."
        )
    return requested


def pick_dtype(requested: str, device: str, card_dtype: str) -> str:
    """`auto` is float32 on the CPU (half precision is slow or unsupported there) and the
    model's own dtype on an accelerator."""
    if requested == "auto":
        return "float32" if device == "cpu" else card_dtype
    if device == "cpu" and requested == "float16":
        raise UnsupportedDevice(
            "--dtype float16 does not run on the CPU; use --dtype float32 or bfloat16."
        )
    return requested


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def check_offload(device: str, offload: str) -> None:
    """Offloading moves weights between main and GPU memory; on the CPU there is nothing to gain."""
    if offload != "none" and device == "cpu":
        raise UnsupportedDevice(
            f"--offload {offload} needs a GPU (the device is cpu); use --offload none."
        )


def accelerator_memory(device: str) -> int:
    """The memory a GPU offers to torch: CUDA's total, or what Metal recommends on a Mac."""
    if device == "cuda":
        return torch.cuda.get_device_properties(0).total_memory
    return torch.mps.recommended_max_memory()
