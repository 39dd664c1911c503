"""Reusing work across denoising steps (`--cache fast|max`), and saying what was reused.

UNets (ModelScope, Zeroscope, shapes, and every other UNet family) get DeepCache
(`deep_cache`): full steps dense at the start, where the picture is decided, and sparse after;
the steps between run only the UNet's shallowest branch. On the shapes model at its 10 steps,
`fast` runs 3 steps in full (0, 1, 4): about 2x faster denoising, and `eval fidelity` scores
the same as without (docs/benchmarks.md). Uniform spacing (every third or fourth step) loses
colour there: the second full step must come early.

Transformers (CogVideoX, LTX-Video, Wan) get diffusers' FirstBlockCache: each call runs the
first block, and when its output changed less than a threshold since the last call of the
same guidance copy, the rest of the blocks return their last change instead of running.
diffusers keeps its state per guidance copy (Wan calls the two apart), unlike Pyramid
Attention Broadcast, whose one counter per attention would give the unconditional call the
conditional call's cross-attention there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from diffusers import FirstBlockCacheConfig
from torch import nn

from .deep_cache import deep_cache

# DeepCache: the share of steps run in full
FULL_SHARE = {"fast": 0.3, "max": 0.2}
# FirstBlockCache: how much the first block's output may change (relative mean absolute
# difference) before the other blocks run again; 0.05 is diffusers' default
THRESHOLD = {"fast": 0.05, "max": 0.1}


def full_steps(steps: int, share: float) -> list[int]:
    """The steps DeepCache runs in full: n = ceil(share x steps) of them, step
    round(steps x (k / n)^2) for k < n, so dense at the start and sparse at the end."""
    n = max(1, math.ceil(share * steps))
    return sorted({round(steps * (k / n) ** 2) for k in range(n)})


@contextmanager
def step_cache(pipe: Any, level: str, steps: int) -> Iterator[dict[str, Any]]:
    """Reuse work across the steps of the pipeline calls inside the block. Yields the
    record's `cache` entry, completed when the block ends; the pipeline is left as it was."""
    record: dict[str, Any] = {"level": level}
    if level == "off":
        yield record
        return
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        full = full_steps(steps, FULL_SHARE[level])
        record.update(method="DeepCache", full_steps=full)
        with deep_cache(unet, frozenset(full)) as cache:
            yield record
        record.update(unet_calls=cache.full + cache.reused, reused_calls=cache.reused)
        return
    transformers = [
        model for name in ("transformer", "transformer_2") if (model := getattr(pipe, name, None))
    ]
    if any(len(_blocks(model)) < 2 for model in transformers):
        # nothing to skip after the first block: run as asked, and say so
        record.update(method=None, why="FirstBlockCache needs two transformer blocks or more")
        yield record
        return
    threshold = THRESHOLD[level]
    record.update(method="FirstBlockCache", threshold=threshold)
    counts = BlockCounts()
    try:
        for model in transformers:
            # enabled for one request and removed after: no state left from another
            model.enable_cache(FirstBlockCacheConfig(threshold=threshold))
            counts.watch(_blocks(model))
        yield record
    finally:
        counts.close()
        for model in transformers:
            if model.is_cache_enabled:
                model.disable_cache()
    record.update(block_runs=counts.runs, blocks_reused=counts.reused)


def _blocks(model: nn.Module) -> nn.ModuleList:
    for name in ("transformer_blocks", "blocks"):
        blocks = getattr(model, name, None)
        if isinstance(blocks, nn.ModuleList):
            return blocks
    raise ValueError(f"{type(model).__name__} has no transformer blocks to cache")


class BlockCounts:
    """How many block calls ran and how many returned a kept result: a block whose children
    were never called during its call did not run."""

    def __init__(self) -> None:
        self.runs = 0
        self.reused = 0
        self._ran = False
        self._handles: list[Any] = []

    def watch(self, blocks: nn.ModuleList) -> None:
        for block in blocks:
            self._handles.append(block.register_forward_pre_hook(self._enter))
            self._handles.append(block.register_forward_hook(self._leave))
            for child in block.children():
                self._handles.append(child.register_forward_pre_hook(self._child))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _enter(self, *_: Any) -> None:
        self._ran = False

    def _child(self, *_: Any) -> None:
        self._ran = True

    def _leave(self, *_: Any) -> None:
        self.runs += 1
        self.reused += not self._ran
