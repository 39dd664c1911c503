"""Cross-frame attention: Text2Video-Zero's way of making an image model draw one scene.

Run over a batch of frames, an image UNet draws each frame on its own. Text2Video-Zero (Khachatryan
et al. 2023, section 3.3) replaces every self-attention with attention on the FIRST frame's keys
and values, so each frame takes its look (identity, background, colours) from that one. Cross-
attention (on the prompt) is unchanged.

diffusers has this as `CrossFrameAttnProcessor`, but in a module that moved between releases
(under `pipelines.deprecated` since 0.33) and with the guidance copies as a fixed `batch_size`
that a caller must get right for each pipeline (2 for classifier-free guidance, 3 for
InstructPix2Pix, 1 without guidance). This one is given the number of frames instead, which
does not change with the guidance: the batch is always (copies x frames), copies first.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class FirstFrameAttention:
    """An attention processor: self-attention of every frame on its copy's first frame."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **_: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is None:  # self-attention: keys and values of the first frame
            frames = hidden_states.unflatten(0, (-1, self.num_frames))
            context = frames[:, :1].expand_as(frames).flatten(0, 1)
        elif attn.norm_cross:
            context = attn.norm_encoder_hidden_states(encoder_hidden_states)
        else:
            context = encoder_hidden_states
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        # (batch, tokens, heads * dim) -> (batch, heads, tokens, dim)
        query, key, value = (
            t.unflatten(-1, (attn.heads, -1)).transpose(1, 2) for t in (query, key, value)
        )
        mask = None
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, key.shape[2], query.shape[0])
            mask = mask.view(query.shape[0], attn.heads, -1, mask.shape[-1])
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=attn.scale)
        out = out.transpose(1, 2).flatten(2).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))  # projection, dropout


def anchor_to_first_frame(pipe: Any, num_frames: int) -> None:
    """Give the UNet (and a ControlNet) cross-frame attention for a batch of `num_frames`."""
    for name in ("unet", "controlnet"):
        model = getattr(pipe, name, None)
        if model is not None:
            model.set_attn_processor(FirstFrameAttention(num_frames))
