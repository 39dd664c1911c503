"""DeepCache for diffusers' UNets: on most steps, reuse the deep features of the last full one.

A UNet's deep blocks change little from one denoising step to the next; its shallowest layers
carry the detail. DeepCache (Ma et al., 2023, "DeepCache: Accelerating Diffusion Models for
Free") runs the whole UNet on some steps and, on the steps between, only the shallowest branch:
`conv_in` (and a UNet3D's first temporal attention), then the last layer of the last up block,
fed the fresh skip connection from `conv_in` and, in place of everything deeper, that layer's
input at the last full step. Every deeper block returns what it returned then.

Which calls are full is a set of call numbers (one call a step: the pipelines batch the
guidance copies). The blocks keep diffusers' own code: a reused call runs the last up block's
own `forward` with its per-layer lists cut to the last layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


class DeepCache:
    """Installed on a UNet for one request; `full` and `reused` count its calls."""

    def __init__(self, unet: Any, full_calls: frozenset[int]) -> None:
        self.unet = unet
        self.full_calls = full_calls
        self.full = 0
        self.reused = 0
        self._outputs: dict[nn.Module, Any] = {}  # each deep block's, at the last full call
        self._kept_input: Any = None  # the last layer's hidden input there, less the skip
        self._shape: tuple[int, ...] | None = None  # of the last full call's sample
        self._handles: list[Any] = []

    @property
    def _deep(self) -> list[nn.Module]:
        unet = self.unet
        return [*unet.down_blocks, unet.mid_block, *unet.up_blocks[:-1]]

    def install(self) -> None:
        unet, last = self.unet, self.unet.up_blocks[-1]
        self._handles += [
            unet.register_forward_pre_hook(self._before_call, with_kwargs=True),
            unet.register_forward_hook(self._after_call),
            last.resnets[-1].register_forward_pre_hook(self._keep_last_input, with_kwargs=True),
            *(block.register_forward_hook(self._keep_output) for block in self._deep),
        ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._after_call()
        self._outputs.clear()
        self._kept_input = None

    @property
    def _reusing(self) -> bool:
        return "forward" in self.unet.up_blocks[-1].__dict__

    def _before_call(self, unet: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        sample = args[0] if args else kwargs["sample"]
        call = self.full + self.reused
        # a reused call needs a full one before it of the same shape
        if call in self.full_calls or self._shape != tuple(sample.shape):
            self.full += 1
            self._shape = tuple(sample.shape)
            return
        self.reused += 1
        for block in self._deep:
            block.forward = _returning(self._outputs[block])
        self.unet.up_blocks[-1].forward = self._last_layer_only

    def _after_call(self, *_: Any) -> None:
        for block in [*self._deep, self.unet.up_blocks[-1]]:
            block.__dict__.pop("forward", None)

    def _keep_output(self, block: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not self._reusing:
            self._outputs[block] = output

    def _keep_last_input(self, resnet: nn.Module, args: tuple[Any, ...], kwargs: dict) -> None:
        if not self._reusing:
            # its input comes first, by position or (AnimateDiff's blocks) by name
            joined = args[0] if args else next(iter(kwargs.values()))
            skip = self.unet.conv_in.out_channels  # the skip joined to it is conv_in's output
            self._kept_input = joined[:, :-skip]

    def _last_layer_only(self, hidden_states: Any, res_hidden_states_tuple: Any, **kwargs: Any):
        block = self.unet.up_blocks[-1]
        # every per-layer list: resnets, attentions, temporal convolutions and attentions,
        # motion modules (whatever this kind of block zips over)
        lists = {
            name: layers
            for name, layers in block.named_children()
            if isinstance(layers, nn.ModuleList) and len(layers) == len(block.resnets)
        }
        for name, layers in lists.items():
            setattr(block, name, nn.ModuleList([layers[-1]]))
        try:
            # its own forward, on the kept input and the fresh skip from conv_in
            skip = res_hidden_states_tuple[:1]
            return type(block).forward(block, self._kept_input, skip, **kwargs)
        finally:
            for name, layers in lists.items():
                setattr(block, name, layers)


def _returning(output: Any) -> Any:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return output

    return forward


@contextmanager
def deep_cache(unet: Any, full_calls: frozenset[int]) -> Iterator[DeepCache]:
    """DeepCache on `unet` for the calls inside the block, removed after (the pipeline stays
    loaded for the next request, which must run the whole UNet unless it asks)."""
    cache = DeepCache(unet, full_calls)
    cache.install()
    try:
        yield cache
    finally:
        cache.remove()
