"""Tiny T5 and UMT5 tokenizers, trained in code so that tests never download one.

The real repos ship Google's sentencepiece models (32k and 256k pieces). These files have the same
names and layout, built from a ~140-piece unigram model trained on the sentences below, which cover
every ASCII letter, digit and punctuation mark so that any English prompt tokenizes without
`<unk>`.

Loading a folder that has `spiece.model` but no `tokenizer.json` (the T5 layout that CogVideoX and
LTX-Video ship) makes transformers 5 convert the sentencepiece model, which needs `protobuf`;
building the UMT5 `tokenizer.json` goes through the same conversion.
"""

from __future__ import annotations

import io
import json
import string
import tempfile
from functools import cache
from pathlib import Path

import sentencepiece as spm

_SENTENCES = (
    "A cat walks along the beach at sunset, waves rolling in.",
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "How vexingly quick daft zebras jump?",
    "Sphinx of black quartz, judge my vow.",
    "A drone flies over a snowy mountain range in the early morning.",
    "An astronaut rides a horse on Mars, cinematic lighting, 4k.",
    "Close-up of a hummingbird drinking nectar from a red flower.",
    "Time-lapse of clouds moving over a city skyline at night.",
    "A panda eats bamboo in a lush green forest.",
    "Slow motion shot of a water droplet splashing into a glass.",
    "A golden retriever puppy plays with a ball in the garden.",
    "Two people dance in the rain under a yellow umbrella.",
    "A steaming cup of coffee on a wooden table, soft light.",
    "Fireworks explode over the harbor; the crowd cheers.",
    "A vintage car drives down a desert highway (1960s style).",
    "Aerial view of a river winding through autumn trees.",
    "A robot paints a portrait in a sunny studio.",
    "Snow falls quietly on a small village at dusk.",
    "A chef slices fresh vegetables on a cutting board.",
    "Jellyfish glow in the deep blue ocean.",
    "The camera pans left across a field of sunflowers.",
    "A child blows bubbles in the park; they float away.",
    "Lightning strikes over the prairie during a storm.",
    "A sailboat glides across a calm lake at 6:30 am.",
    "Neon signs flicker on a wet street in Tokyo.",
    "A squirrel gathers acorns beside an old oak tree.",
    "Hot air balloons rise above the valley at dawn.",
    "A train crosses a stone bridge in the Swiss Alps.",
    "Question: what happens next? Answer: the door opens.",
    "Price: $20, 50% off, item #7 & more @ store.",
    'She said "hello" and waved; he replied [quietly] {smiling}.',
    "Use a/b, x|y, a+b=c, 3*4, ~approx, ^caret, `tick`, back\\slash, <tag>, under_score.",
    string.ascii_lowercase,
    string.ascii_uppercase,
    string.digits,
    string.punctuation,
)

_SPECIAL = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}


@cache
def _spiece_model() -> bytes:
    """Train the unigram model once per process; training is deterministic (one thread)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_SENTENCES),
        model_writer=model,
        model_type="unigram",
        vocab_size=140,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _piece_count() -> int:
    return spm.SentencePieceProcessor(model_proto=_spiece_model()).get_piece_size()


def _token(content: str) -> dict[str, object]:
    return {
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
    }


def _write_json(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_files(folder: Path, extra_ids: int, model_max_length: int) -> int:
    """Write spiece.model and the T5-style configs; return the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(_spiece_model())
    pieces = _piece_count()
    extras = [f"<extra_id_{i}>" for i in range(extra_ids)]
    # T5 numbers the sentinels downwards from the top: <extra_id_0> is the last id.
    extra_id = {token: pieces + extra_ids - 1 - i for i, token in enumerate(extras)}
    decoder = {str(i): _token(t) for i, t in enumerate(("<pad>", "</s>", "<unk>"))}
    decoder |= {str(i): _token(t) for t, i in sorted(extra_id.items(), key=lambda kv: kv[1])}
    for entry in decoder.values():
        entry["special"] = True
    _write_json(
        folder / "tokenizer_config.json",
        {
            "added_tokens_decoder": decoder,
            "additional_special_tokens": extras,
            "clean_up_tokenization_spaces": True,
            "eos_token": "</s>",
            "extra_ids": extra_ids,
            "legacy": True,
            "model_max_length": model_max_length,
            "pad_token": "<pad>",
            "sp_model_kwargs": {},
            "tokenizer_class": "T5Tokenizer",
            "unk_token": "<unk>",
        },
    )
    _write_json(
        folder / "special_tokens_map.json",
        {"additional_special_tokens": extras} | {k: _token(v) for k, v in _SPECIAL.items()},
    )
    return pieces + extra_ids


def write_t5_tokenizer(folder: Path, model_max_length: int = 226) -> int:
    """Write the T5 v1.1 tokenizer layout of CogVideoX and LTX-Video; return the vocab size.

    Those repos ship spiece.model, tokenizer_config.json, special_tokens_map.json and
    added_tokens.json, and no tokenizer.json.
    """
    vocab_size = _write_files(folder, extra_ids=100, model_max_length=model_max_length)
    extra_id = {f"<extra_id_{i}>": vocab_size - 1 - i for i in range(100)}
    _write_json(folder / "added_tokens.json", dict(sorted(extra_id.items())))
    return vocab_size


def write_umt5_tokenizer(folder: Path) -> int:
    """Write the umt5-xxl tokenizer layout of Wan 2.1; return the vocab size.

    That repo ships spiece.model, tokenizer.json, tokenizer_config.json and
    special_tokens_map.json, with UMT5's 300 sentinel tokens.
    """
    from transformers import T5Tokenizer

    vocab_size = _write_files(folder, extra_ids=300, model_max_length=int(1e30))
    with tempfile.TemporaryDirectory() as converted:
        T5Tokenizer.from_pretrained(folder).save_pretrained(converted)
        (folder / "tokenizer.json").write_bytes((Path(converted) / "tokenizer.json").read_bytes())
    return vocab_size
