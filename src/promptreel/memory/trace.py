"""The peak memory a computation needs, found by running it on the meta device.

A model built on the meta device has every tensor's shape and dtype and no data: running it
costs milliseconds whatever the size asked, and runs the model's own code (its attention
backend, a VAE's slicing and tiling, a decoder's chunking) rather than a formula of it.
`LiveBytes` watches every tensor the computation makes and adds up those still referenced:
its `peak` is what the computation holds at its fullest, beyond what existed before (the
weights). Checked against the resident-set peaks of the same models run on the CPU
(tests/test_plan.py).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


class LiveBytes(TorchFunctionMode):
    """While active: `live`, the bytes of tensors made inside and still referenced; `peak`,
    the most of them at once. A view or an in-place result adds nothing (its storage is an
    input's).

    Each torch function counts as its result: the memory a kernel uses inside is its own
    business, which on a GPU (flash attention, cuDNN) is small. Not so on the CPU with torch's
    own kernels, which promptreel runs (the same frames for any thread count): a convolution
    first unfolds its whole input batch into columns, kernel size times its input. With
    `cpu_kernels`, that buffer counts while the convolution runs.
    """

    def __init__(self, *, cpu_kernels: bool = False) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.cpu_kernels = cpu_kernels

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        given = {id(t.untyped_storage()) for t in _tensors((args, kwargs))}
        for tensor in _tensors(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            if id(storage) in given:
                continue
            given.add(id(storage))  # an op returning one storage twice
            size = storage.nbytes()
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, size)
        if self.cpu_kernels and getattr(func, "__name__", "") in ("conv2d", "conv3d"):
            self.peak = max(self.peak, self.live + _columns(args, kwargs or {}, out))
        return out

    def _free(self, size: int) -> None:
        self.live -= size


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _columns(args: Any, kwargs: dict[str, Any], out: torch.Tensor) -> int:
    """The column buffer of torch's own CPU convolution: (batch, in/groups x kernel, output
    positions), none for a 1x1 kernel at stride 1 without padding (a plain matrix product)."""
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    kernel = weight.shape[2:]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    padding = args[4] if len(args) > 4 else kwargs.get("padding", 0)
    plain = all(k == 1 for k in kernel) and stride in (1, (1,) * len(kernel), [1] * len(kernel))
    if plain and padding in (0, (0,) * len(kernel), [0] * len(kernel), "valid"):
        return 0
    positions = out.numel() // (out.shape[0] * out.shape[1])
    return out.shape[0] * weight.shape[1] * weight[0, 0].numel() * positions * out.element_size()
