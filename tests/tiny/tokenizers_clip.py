"""A tiny CLIP tokenizer, generated in code so tests never download the 1 MB real vocabulary.

The files are the ones a real Stable Diffusion-style repo ships in `tokenizer/` (vocab.json,
merges.txt, special_tokens_map.json, tokenizer_config.json), in CLIP's byte-level BPE format: the
256 byte symbols, the same with the end-of-word marker `</w>`, a few merges, then
<|startoftext|> and <|endoftext|> last. Every byte has a symbol, so any prompt tokenizes.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTokenizer

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MODEL_MAX_LENGTH = 77

# Words whose merges we add, so the tokenizer really merges (`cat` -> `cat</w>`) as CLIP's does.
_MERGE_WORDS = (
    "the",
    "and",
    "of",
    "in",
    "on",
    "with",
    "cat",
    "dog",
    "astronaut",
    "riding",
    "horse",
    "video",
    "surfing",
    "sunset",
)


def _byte_symbols() -> list[str]:
    """CLIP's (GPT-2's) byte -> printable unicode symbols, in vocabulary order (`!` is id 0)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    unprintable = [byte for byte in range(256) if byte not in printable]
    return [chr(code) for code in (*printable, *range(256, 256 + len(unprintable)))]


def _merges() -> list[tuple[str, str]]:
    """Left-to-right merges spelling each word of `_MERGE_WORDS` as one end-of-word token."""
    merges: list[tuple[str, str]] = []
    for word in _MERGE_WORDS:
        symbols = [*word[:-1], word[-1] + "</w>"]
        merged = symbols[0]
        for symbol in symbols[1:]:
            if (merged, symbol) not in merges:
                merges.append((merged, symbol))
            merged += symbol
    return merges


def write_clip_tokenizer(folder: Path, pad_token: str = EOS) -> CLIPTokenizer:
    """Write the tiny tokenizer into `folder` and load it back, as a pipeline would.

    `pad_token` follows the real repo: `<|endoftext|>` for SD 1.x, `!` for the OpenCLIP-based
    (SD 2.x-style) text encoders of ModelScope, Zeroscope and I2VGen-XL.
    """
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    merges = _merges()
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(a + b for a, b in merges), BOS, EOS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": pad_token, "unk_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {
        **special,
        "add_prefix_space": False,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "tokenizer_class": "CLIPTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return CLIPTokenizer.from_pretrained(folder)
