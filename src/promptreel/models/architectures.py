"""The architectures of built-in models, for planning one before it is downloaded.

Each is the released repo's component configs, as far as they shape memory: built on the meta
device, every one has exactly the parameter count its card states (tests/test_plan.py), which
was itself checked against the repo's weight files (models/cards.py). Where diffusers' own
defaults are the released model's, the config is empty. A downloaded model is planned from its
own configs instead.
"""

from __future__ import annotations

from typing import Any

# component -> (class name, config); the library is the one that has the class
Architecture = dict[str, tuple[str, dict[str, Any]]]

_SD_VAE = (
    "AutoencoderKL",
    {
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "layers_per_block": 2,
        "latent_channels": 4,
    },
)
_CLIP_H_TEXT_23 = (
    "CLIPTextModel",
    {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 23,
        "projection_dim": 512,
        "hidden_act": "gelu",
        "vocab_size": 49408,
        "max_position_embeddings": 77,
    },
)
_T5_XXL = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
}
_MODELSCOPE: Architecture = {
    "unet": ("UNet3DConditionModel", {}),  # diffusers' defaults are ModelScope's
    "text_encoder": _CLIP_H_TEXT_23,
    "vae": _SD_VAE,
}
_SVD: Architecture = {
    "unet": ("UNetSpatioTemporalConditionModel", {}),
    "image_encoder": (
        "CLIPVisionModelWithProjection",
        {
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_attention_heads": 16,
            "num_hidden_layers": 32,
            "projection_dim": 1024,
            "image_size": 224,
            "patch_size": 14,
            "hidden_act": "gelu",
        },
    ),
    "vae": (
        "AutoencoderKLTemporalDecoder",
        {
            "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4,
            "layers_per_block": 2,
            "latent_channels": 4,
        },
    ),
}

ARCHITECTURES: dict[str, Architecture] = {
    "modelscope": _MODELSCOPE,
    "zeroscope": _MODELSCOPE,
    "zeroscope-xl": _MODELSCOPE,
    "cogvideox-2b": {
        "transformer": ("CogVideoXTransformer3DModel", {}),  # the defaults are the 2B's
        "text_encoder": ("T5EncoderModel", _T5_XXL),
        "vae": ("AutoencoderKLCogVideoX", {}),
    },
    "cogvideox-5b": {
        "transformer": (
            "CogVideoXTransformer3DModel",
            {
                "num_attention_heads": 48,
                "num_layers": 42,
                "use_rotary_positional_embeddings": True,
            },
        ),
        "text_encoder": ("T5EncoderModel", _T5_XXL),
        "vae": ("AutoencoderKLCogVideoX", {}),
    },
    "svd": _SVD,
    "svd-xt": _SVD,
    "wan2.1-t2v-1.3b": {
        "transformer": (
            "WanTransformer3DModel",
            {
                "patch_size": [1, 2, 2],
                "num_attention_heads": 12,
                "attention_head_dim": 128,
                "in_channels": 16,
                "out_channels": 16,
                "text_dim": 4096,
                "freq_dim": 256,
                "ffn_dim": 8960,
                "num_layers": 30,
                "cross_attn_norm": True,
                "qk_norm": "rms_norm_across_heads",
                "eps": 1e-6,
            },
        ),
        "text_encoder": ("UMT5EncoderModel", {**_T5_XXL, "vocab_size": 256384}),
        "vae": ("AutoencoderKLWan", {}),
    },
    "ltx-video": {
        "transformer": ("LTXVideoTransformer3DModel", {}),
        "text_encoder": ("T5EncoderModel", _T5_XXL),
        "vae": ("AutoencoderKLLTXVideo", {}),
    },
}
