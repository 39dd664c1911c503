"""What a run used: the peak host and accelerator memory of each stage, measured.

Host memory is the process's peak resident set. On Linux the kernel keeps that high-water mark
(`VmHWM`) and lets a process reset it (`/proc/self/clear_refs`, "5"), so each stage's peak is
exact and costs nothing. Elsewhere a thread samples the resident set every few milliseconds,
which can miss a spike shorter than that.

Accelerator memory is torch's allocator statistics: the peak allocated bytes on CUDA (reset per
stage); MPS keeps no peak, so the same thread samples what is allocated.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import psutil
import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_SAMPLE_SECONDS = 0.005


class StagePeaks:
    """Call `take()` at the end of each stage: the peaks since the last call (or since made)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._kernel_mark = sys.platform.startswith("linux") and _reset_kernel_mark()
        self._sampled = {"ram": 0, "vram": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not self._kernel_mark or device == "mps":
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._reset()

    def take(self) -> dict[str, int | None]:
        """`{"peak_ram_bytes": ..., "peak_vram_bytes": ...}` since the last call; VRAM is None
        on the CPU."""
        ram = _kernel_peak() if self._kernel_mark else self._sampled["ram"]
        vram: int | None = None
        if self.device == "cuda":
            vram = torch.cuda.max_memory_allocated()
        elif self.device == "mps":
            vram = self._sampled["vram"]
        self._reset()
        return {"peak_ram_bytes": ram, "peak_vram_bytes": vram}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _reset(self) -> None:
        if self._kernel_mark:
            _reset_kernel_mark()
        self._sampled = {"ram": _resident(), "vram": _mps_allocated(self.device)}
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def _sample(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            sampled = self._sampled  # one dict a stage: `_reset` swaps it whole
            if not self._kernel_mark:
                sampled["ram"] = max(sampled["ram"], _resident())
            sampled["vram"] = max(sampled["vram"], _mps_allocated(self.device))


def _reset_kernel_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return _kernel_peak() > 0
    except (OSError, ValueError):  # an older kernel, or a sandbox that forbids it
        return False


def _kernel_peak() -> int:
    match = re.search(r"^VmHWM:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise ValueError("no VmHWM in /proc/self/status")
    return int(match.group(1)) * 1024


def _resident() -> int:
    return psutil.Process().memory_info().rss


def _mps_allocated(device: str) -> int:
    return torch.mps.current_allocated_memory() if device == "mps" else 0
