"""`promptreel finetune`: LoRA fine-tuning of the UNet3D models on a folder of clips.

On the shipped `shapes` model (its UNet is tiny) and the tiny random-weight ModelScope stand-in
under its real repo id: the adapters lower the loss on a fixed batch; the LoRA saved is
diffusers' own format, which plain diffusers loads through the lines docs/finetune.md shows,
and which changes the frames to those the fine-tuned model makes; a run stopped and resumed
gives the same LoRA, bit for bit, as one never stopped; every data layout is read; every
refusal is one line. Clips are 4 frames, runs a few steps: seconds each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from promptreel.errors import InputError, InvalidRequest, ModelNotDownloaded
from promptreel.train.clips import Shape, data_sha256, find_clips, read_clip
from promptreel.train.finetune import (
    add_lora,
    find_base,
    finetune,
    finetune_config,
    load_base,
    load_finetune_config,
)
from promptreel.video import Video

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "finetune.md"
MODELSCOPE = "damo-vilab/text-to-video-ms-1.7b"
CAPTIONS = ["a pink square moving right", "a pink circle moving up"]


def write_clips(folder: Path, captions: list[str] = CAPTIONS) -> list[Path]:
    """One clip a caption as videos/NNN.mp4: a pink square moving on black, 16 frames of 64x64
    at 8 fps (the shapes world's shape), a different path each."""
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(len(captions)):
        frames = np.zeros((16, 64, 64, 3), np.uint8)
        for t in range(16):
            x, y = 4 + 2 * t, 10 + 20 * index
            frames[t, y : y + 14, x : x + 14] = (250, 120, 190)
        file = folder / "videos" / f"{index:03d}.mp4"
        Video(frames, 8).save(file)
        files.append(file)
    return files


def as_pairs(folder: Path, captions: list[str] = CAPTIONS) -> Path:
    for file, caption in zip(write_clips(folder, captions), captions, strict=True):
        file.with_suffix(".txt").write_text(caption + "\n")
    return folder


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread, as the configs below say (two threads on cores that other processes
    share wait on each other: 10x slower here); the session's count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config(data: Path, out: Path, **changes: Any) -> Any:
    values = {
        "model": "shapes",
        "threads": 1,
        "data": str(data),
        "out": str(out),
        "num_frames": 4,
        "steps": 4,
        "lr": 1e-2,
        "checkpoint_every": 1,
        **changes,
    }
    return finetune_config(values)


# --- the data folder --------------------------------------------------------------------------


def test_every_layout_is_read_as_the_same_data(tmp_path: Path) -> None:
    pairs = as_pairs(tmp_path / "pairs")
    rows = [{"file": f"videos/{i:03d}.mp4", "caption": c} for i, c in enumerate(CAPTIONS)]
    layouts = {
        "metadata.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        # Hugging Face's videofolder columns, a quoted caption, a byte-order mark
        "metadata.csv": "\ufefffile_name,text\n"
        + "".join(f'{r["file"]},"{r["caption"]}"\n' for r in rows),
    }
    found = {"pairs": find_clips(pairs)}
    for name, text in layouts.items():
        folder = tmp_path / name
        write_clips(folder)
        (folder / name).write_text(text, encoding="utf-8")
        found[name] = find_clips(folder)
    folder = tmp_path / "diffusers"
    write_clips(folder)
    (folder / "prompts.txt").write_text("\n".join(CAPTIONS) + "\n\n")
    (folder / "videos.txt").write_text("videos/000.mp4\nvideos/001.mp4\n")
    found["prompts.txt + videos.txt"] = find_clips(folder)

    for name, clips in found.items():
        assert [c.caption for c in clips] == CAPTIONS, name
        assert [c.file.name for c in clips] == ["000.mp4", "001.mp4"], name
    # the hash is of contents and captions, whatever the layout or the folder
    assert len({data_sha256(clips) for clips in found.values()}) == 1
    (pairs / "videos" / "000.txt").write_text("a pink square moving left")
    assert data_sha256(find_clips(pairs)) != data_sha256(found["pairs"])


def test_a_clip_is_sampled_in_time_scaled_and_cropped_to_the_training_shape(
    tmp_path: Path,
) -> None:
    # 30 fps, 80x48 (landscape): frame i has red level 12 i; a green band at each side
    frames = np.zeros((20, 48, 80, 3), np.uint8)
    frames[..., 0] = (np.arange(20) * 12)[:, None, None]
    frames[:, :, :12, 1] = frames[:, :, -12:, 1] = 255
    Video(frames, 30).save(tmp_path / "a.mp4")
    (tmp_path / "a.txt").write_text("a clip")
    (clip,) = find_clips(tmp_path)

    out = read_clip(clip, Shape(num_frames=4, height=32, width=32, fps=8), folder=tmp_path)

    assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
    # 8 fps from 30: the source frames nearest to k / 8 s, so motion keeps its speed
    red = out[..., 0].reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(red, [0, 48, 96, 132], atol=4)
    # scaled to 53x32 (aspect kept), the middle 32 columns kept: the side bands are cut away
    assert out[..., 1].max() < 40
    with pytest.raises(InputError, match=r"is 0\.67 s long.*8 frames at 8 fps") as info:
        read_clip(clip, Shape(num_frames=8, height=32, width=32, fps=8), folder=tmp_path)
    assert info.value.argument == "data"


# --- the adapters -----------------------------------------------------------------------------


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path: Path) -> None:
    settings = config(as_pairs(tmp_path / "data"), tmp_path / "run")
    base = find_base(settings)
    family = base.family
    pipe = load_base(base, "cpu")
    clips = find_clips(tmp_path / "data")
    x0 = torch.stack([family.encode_video(pipe, torch.from_numpy(read_clip(c, base.shape,
        folder=tmp_path / "data"))) for c in clips])  # fmt: skip
    text = family.encode_text(pipe, [c.caption for c in clips])
    schedule = family.noise_schedule(pipe)

    def loss() -> torch.Tensor:  # the same noise and noise levels every time
        return family.loss(pipe, x0, text, schedule, torch.Generator().manual_seed(0))

    before = loss().item()
    layers = add_lora(pipe, family, settings)
    assert loss().item() == before  # B starts at zero: the model is unchanged at step 0
    params = [p for layer in layers for p in layer.parameters()]
    assert all(p.requires_grad for p in params)
    assert not any(p.requires_grad for p in pipe.vae.parameters())
    trainable = {n for n, p in pipe.unet.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(6):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.8 * before


def test_temporal_false_leaves_the_temporal_attention_alone(tmp_path: Path) -> None:
    settings = config(as_pairs(tmp_path / "data"), tmp_path / "run", temporal=False)
    base = find_base(settings)
    pipe = load_base(base, "cpu")
    add_lora(pipe, base.family, settings)
    adapted = {n.split(".lora_")[0] for n, _ in pipe.unet.named_parameters() if ".lora_" in n}
    assert adapted and not any("temp_attentions" in n or "transformer_in" in n for n in adapted)
    assert any(".attn2.to_k" in n for n in adapted)  # the cross-attention to the caption


# --- a run on the ModelScope stand-in, and plain diffusers --------------------------------------


def documented_lines() -> str:
    """The plain-diffusers block of docs/finetune.md, exactly as written there."""
    text = DOCS.read_text()
    match = re.search(r"<!-- plain-diffusers -->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/finetune.md lost its plain-diffusers block"
    return match.group(1)


def frames(pipe: Any) -> np.ndarray:
    return pipe(
        "a pink square moving right",
        num_frames=4,
        height=64,
        width=64,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).frames[0]


def test_the_lora_is_diffusers_format_and_plain_diffusers_loads_it(hub, tmp_path: Path) -> None:
    hub("modelscope")
    settings = config(as_pairs(tmp_path / "data"), tmp_path / "run", model="modelscope",
                      height=64, width=64, steps=3, rank=4, alpha=8)  # fmt: skip
    folder = finetune(settings)

    assert folder == tmp_path / "run" / "lora"
    assert sorted(p.name for p in folder.iterdir()) == [
        "lora.json",
        "pytorch_lora_weights.safetensors",
    ]
    with safe_open(str(folder / "pytorch_lora_weights.safetensors"), "pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in keys}
    pattern = r"unet\.(.+)\.lora_[AB]\.weight"
    assert keys and all(re.fullmatch(pattern, k) for k in keys)
    assert "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight" in keys
    assert "unet.transformer_in.transformer_blocks.0.attn1.to_q.lora_B.weight" in keys
    assert any(".temp_attentions." in k for k in keys)
    assert dtypes == {torch.float16}  # ModelScope runs in half precision: so does its LoRA
    peft = json.loads(metadata["lora_adapter_metadata"])
    assert (peft["unet.r"], peft["unet.lora_alpha"]) == (4, 8)

    card = json.loads((folder / "lora.json").read_text())
    assert card["base"]["model"] == "modelscope" and card["base"]["repo_id"] == MODELSCOPE
    assert re.fullmatch(r"[0-9a-f]{40}", card["base"]["revision"])  # the snapshot's commit
    assert (card["rank"], card["alpha"], card["steps"]) == (4, 8, 3)
    assert card["target_modules"] == ["to_q", "to_k", "to_v", "to_out.0"]
    layers = card["layers"]
    assert layers["spatial"]["count"] > 0 and layers["temporal"]["count"] > 0
    assert 2 * (layers["spatial"]["count"] + layers["temporal"]["count"]) == len(keys)
    assert card["data"]["sha256"] == data_sha256(find_clips(tmp_path / "data"))
    assert card["data"] | {"sha256": ""} == {"sha256": "", "clips": 2, "num_frames": 4,
        "height": 64, "width": 64, "fps": 8}  # fmt: skip

    # Plain diffusers, through exactly the documented lines.
    from diffusers import TextToVideoSDPipeline

    plain = TextToVideoSDPipeline.from_pretrained(MODELSCOPE, variant="fp16", dtype=torch.float32)
    plain.set_progress_bar_config(disable=True)
    without = frames(plain)
    namespace: dict[str, Any] = {}
    exec(documented_lines().replace("path/to/lora", str(folder)), namespace)
    pipe = namespace["pipe"]
    pipe.set_progress_bar_config(disable=True)
    loaded = frames(pipe)
    assert np.abs(loaded - without).mean() > 1e-3  # the LoRA changes the frames ...

    # ... to those of the fine-tuned model (its adapters rounded to float16, as saved)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    base = find_base(settings)
    tuned = load_base(base, "cpu")
    layers_ = add_lora(tuned, base.family, settings)
    with torch.no_grad():
        params = [p for layer in layers_ for p in layer.parameters()]
        for p, saved in zip(params, state["lora"], strict=True):
            p.copy_(saved.half().float())
    np.testing.assert_allclose(frames(tuned), loaded, atol=1e-5)


# --- resuming, the card, the command ----------------------------------------------------------


def test_the_text_inputs_are_what_the_pipeline_conditions_on(tmp_path: Path) -> None:
    """Cached or through the text encoder at every step, a caption becomes exactly the states
    `encode_prompt` gives the denoiser (or the LoRA would learn other conditioning)."""
    settings = config(as_pairs(tmp_path / "data"), tmp_path / "run")
    base = find_base(settings)
    pipe = load_base(base, "cpu")
    family = base.family
    captions = ["a pink cross moving up", "a red circle moving right", ""]
    expected = pipe.encode_prompt(captions, "cpu", 1, False)[0]
    cached = family.encode_text(pipe, captions)["encoder_hidden_states"]
    stepwise = family.text_from_tokens(pipe, family.tokens(pipe, captions))["encoder_hidden_states"]
    assert torch.equal(cached, expected) and torch.equal(stepwise, expected)


def test_text_encoder_and_vae_adapters_go_in_the_same_file_and_load_in_plain_diffusers(
    tmp_path: Path,
) -> None:
    """`text_encoder = true` and `vae = true`: their adapters are saved beside the UNet's, under
    diffusers' `text_encoder.` keys and `vae.` keys; `--lora` and plain diffusers (the
    documented lines) make the same frames; and each part is wired: without it, other frames."""
    import promptreel
    from promptreel.models.cards import CARDS

    settings = config(as_pairs(tmp_path / "data"), tmp_path / "run", text_encoder=True,
                      vae=True, steps=4, lr=1e-2)  # fmt: skip
    folder = finetune(settings)
    weights = load_file(folder / "pytorch_lora_weights.safetensors")
    parts = {key.split(".")[0] for key in weights}
    assert parts == {"unet", "text_encoder", "vae"}
    # transformers 5's CLIPTextModel has no `text_model.` level; its module names are the keys
    assert "text_encoder.encoder.layers.0.mlp.fc1.lora_A.weight" in weights
    assert "vae.decoder.conv_out.lora_B.weight" in weights
    assert not any(key.startswith("vae.encoder.") for key in weights)  # latents stay as cached
    assert all(weights[k].abs().max() > 0 for k in weights if ".lora_B." in k)
    card = json.loads((folder / "lora.json").read_text())
    assert card["components"] == ["unet", "text_encoder", "vae"]
    text_keys = [k for k in weights if k.startswith("text_encoder.")]
    assert 2 * card["layers"]["text_encoder"]["count"] == len(text_keys) == 24
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(row["vae_loss"] > 0 for row in log)

    options = {"num_frames": 4, "num_inference_steps": 2, "seed": 5, "history": False}
    before = promptreel.generate("a pink square moving right", **options)
    ours = promptreel.generate("a pink square moving right", lora=str(folder), **options)
    after = promptreel.generate("a pink square moving right", **options)
    assert np.array_equal(before.frames, after.frames)  # every part came off again
    shapes = next(card for card in CARDS if card.name == "shapes").local_path
    lines = documented_lines().replace(
        '"damo-vilab/text-to-video-ms-1.7b", variant="fp16"', repr(shapes)
    )

    def plain(lora: Path) -> np.ndarray:
        namespace: dict[str, Any] = {}
        exec(lines.replace("path/to/lora", str(lora)), namespace)
        pipe = namespace["pipe"]
        pipe.set_progress_bar_config(disable=True)
        torch.backends.mkldnn.enabled = False  # as promptreel runs
        try:
            frames = pipe(
                "a pink square moving right",
                **ours.record["pipeline_arguments"],
                generator=torch.Generator("cpu").manual_seed(5),
                output_type="np",
            ).frames[0]
        finally:
            torch.backends.mkldnn.enabled = True
        return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)

    assert np.array_equal(plain(folder), ours.frames)
    for part in ("text_encoder", "vae"):
        without = tmp_path / f"without-{part}"
        without.mkdir()
        kept = {k: v for k, v in weights.items() if not k.startswith(f"{part}.")}
        save_file(kept, without / "pytorch_lora_weights.safetensors")
        assert not np.array_equal(plain(without), ours.frames), part


def saved(folder: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """A LoRA file's tensors (as bytes) and metadata."""
    with safe_open(str(folder / "pytorch_lora_weights.safetensors"), "pt") as f:
        tensors = {key: f.get_tensor(key).numpy().tobytes() for key in f.keys()}  # noqa: SIM118 (no __iter__)
        return tensors, f.metadata()


def test_a_stopped_and_resumed_run_gives_the_same_lora_bit_for_bit(tmp_path: Path) -> None:
    data = as_pairs(tmp_path / "data")
    # their state must resume too, and the text encoder's and the VAE's adapters
    common = {"ema_decay": 0.9, "caption_dropout": 0.3, "text_encoder": True, "vae": True}
    whole = finetune(config(data, tmp_path / "whole", **common))
    stopped = finetune(config(data, tmp_path / "parts", stop_after_step=2, **common))
    assert json.loads((stopped / "lora.json").read_text())["steps"] == 2
    resumed = finetune(config(data, tmp_path / "parts", **common))

    # every tensor bit for bit (the header's order is safetensors' own: a Rust hash map's)
    assert saved(resumed) == saved(whole)
    card = json.loads((resumed / "lora.json").read_text())
    assert card == json.loads((whole / "lora.json").read_text())
    assert card["steps"] == 4 and card["weights"] == "ema"
    log = [json.loads(x) for x in (tmp_path / "parts" / "log.jsonl").read_text().splitlines()]
    whole_log = [json.loads(x) for x in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in whole_log]
    assert [r["step"] for r in log] == [1, 2, 3, 4]

    # Run again: nothing to do, the same folder. A change to what it learns is refused.
    before = (tmp_path / "parts" / "log.jsonl").read_text()
    assert finetune(config(data, tmp_path / "parts", **common)) == resumed
    assert (tmp_path / "parts" / "log.jsonl").read_text() == before
    with pytest.raises(InvalidRequest, match=re.escape("`lr` = 0.01, not 0.001")) as info:
        finetune(config(data, tmp_path / "parts", lr=1e-3, **common))
    assert info.value.argument == "lr"


def test_the_command_trains_from_a_toml_config_and_prints_the_lora(
    cli, tmp_path: Path, promptreel_home: Path
) -> None:
    data = as_pairs(tmp_path / "data")
    toml = tmp_path / "finetune.toml"
    toml.write_text(
        f'model = "shapes"\ndata = "{data}"\nout = "pink"\nnum_frames = 4\nsteps = 2\nthreads = 1\n'
        'sample_every = 2\nsample_steps = 2\nsample_prompts = ["a pink square moving up"]\n'
    )
    done = cli("finetune", toml)
    assert done.code == 0, done.err
    run = promptreel_home / "runs" / "pink"  # where `train`'s runs live
    assert Path(done.out.strip()) == run / "lora"
    assert {"checkpoint.pt", "cache.pt", "log.jsonl", "loss.png"} <= {p.name for p in run.iterdir()}
    assert (run / "samples" / "step-000002.mp4").stat().st_size > 0
    card = json.loads((run / "lora" / "lora.json").read_text())
    # shapes' own tokenizer knows every word of its world, and not "pink"
    assert card["trigger_words"] == ["pink"]
    assert card["dtype"] == "float32" and card["base"]["revision"] == "2026-12-01.2"

    toml.write_text(toml.read_text().replace("steps = 2", "stepz = 2"))
    refused = cli("finetune", toml)
    assert refused.code == 1
    assert refused.err.strip().splitlines() == [
        f"InvalidRequest: config {str(toml)!r}: unknown key `stepz`; did you mean `steps`?"
    ]


# --- refusals ---------------------------------------------------------------------------------


def test_the_shipped_configs_load() -> None:
    paths = sorted((ROOT / "configs").glob("finetune-*.toml"))
    assert paths
    for path in paths:
        settings = load_finetune_config(path)
        assert settings.model and settings.data and settings.out, path


@pytest.mark.parametrize(
    ("changes", "argument", "message"),
    [
        ({"rank": "8"}, "rank", "`rank` = '8': input should be a valid integer"),
        ({"ranks": 8}, "ranks", "unknown key `ranks`; did you mean `rank`?"),
        ({"data": "clips/mine"}, "data", "must be a run name"),
        ({"stop_after_step": 9}, "stop_after_step", "from 1 to `steps` \\(4\\)"),
        ({"device": "gpu"}, "device", "input should be 'auto', 'cpu', 'cuda' or 'mps'"),
    ],
)
def test_a_config_is_refused_naming_the_key(
    tmp_path: Path, changes: dict[str, Any], argument: str, message: str
) -> None:
    values = {"model": "shapes", "data": str(tmp_path), "out": str(tmp_path / "run"), "steps": 4}
    with pytest.raises(InvalidRequest, match=message) as info:
        finetune_config(values | changes)
    assert info.value.argument == argument


def refusal(tmp_path: Path, **changes: Any) -> Exception:
    with pytest.raises(Exception) as info:
        finetune(config(tmp_path / "data", tmp_path / "run", **changes))
    error = info.value
    assert len(str(error).splitlines()) == 1, str(error)
    return error


def test_an_empty_data_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not a caption of anything")
    error = refusal(tmp_path)
    assert isinstance(error, InputError) and error.argument == "data"
    assert "holds no clips; give a.mp4 + a.txt pairs" in str(error)


def test_an_unreadable_clip_is_refused_before_the_model_loads(tmp_path: Path, monkeypatch) -> None:
    as_pairs(tmp_path / "data")
    (tmp_path / "data" / "videos" / "001.mp4").write_bytes(b"\x00not a video" * 100)
    monkeypatch.setattr("promptreel.train.finetune.load_base", lambda *a: pytest.fail("loaded"))
    error = refusal(tmp_path)
    assert isinstance(error, InputError) and error.argument == "data"
    assert "clip 'videos/001.mp4' is not a video this can read" in str(error)
    assert not (tmp_path / "run").exists()  # a refused run leaves nothing


@pytest.mark.parametrize("layout", ["pairs", "jsonl"])
def test_a_missing_caption_is_refused(tmp_path: Path, layout: str) -> None:
    if layout == "pairs":
        as_pairs(tmp_path / "data")
        (tmp_path / "data" / "videos" / "001.txt").unlink()
        expected = "videos/001.mp4 has no caption; write it in videos/001.txt"
    else:
        write_clips(tmp_path / "data")
        rows = [{"file_name": "videos/000.mp4", "text": "a clip"}, {"file_name": "videos/001.mp4"}]
        (tmp_path / "data" / "metadata.jsonl").write_text("\n".join(map(json.dumps, rows)))
        expected = "metadata.jsonl line 2: the caption of 'videos/001.mp4' is missing"
    error = refusal(tmp_path)
    assert isinstance(error, InputError) and error.argument == "data"
    assert expected in str(error)


def test_a_family_without_lora_support_is_refused(tmp_path: Path) -> None:
    as_pairs(tmp_path / "data")
    for model in ("svd", "i2vgen-xl", "text2video-zero"):  # refused before "not downloaded"
        error = refusal(tmp_path, model=model)
        assert isinstance(error, InvalidRequest) and error.argument == "model"
        assert str(error).startswith(f"{model} is a ") and "cannot fine-tune" in str(error)
        assert "\n" not in str(error)
    assert str(refusal(tmp_path, model="svd")) == (
        "svd is a StableVideoDiffusionPipeline model, which promptreel cannot fine-tune yet; it "
        "fine-tunes TextToVideoSDPipeline, AnimateDiffPipeline, CogVideoXPipeline, LTXPipeline, "
        "WanPipeline models: shapes, modelscope, zeroscope, cogvideox-2b, cogvideox-5b, "
        "animatediff, ltx-video, wan2.1-t2v-1.3b"
    )


def test_a_model_not_downloaded_is_refused(tmp_path: Path) -> None:
    as_pairs(tmp_path / "data")
    error = refusal(tmp_path, model="zeroscope", height=64, width=64)
    assert isinstance(error, ModelNotDownloaded) and error.argument == "model"
    assert "run `promptreel download zeroscope` first" in str(error)


def test_a_shape_the_model_cannot_train_at_is_refused(tmp_path: Path) -> None:
    as_pairs(tmp_path / "data")
    error = refusal(tmp_path, height=128)
    assert isinstance(error, InvalidRequest) and error.argument == "height"
    assert "`height` = 128: shapes trains only at 64x64 (its fixed size)" in str(error)


@pytest.mark.parametrize(
    ("model", "key"),
    [("cogvideox-2b", "text_encoder"), ("animatediff", "text_encoder"), ("cogvideox-2b", "vae"),
     ("wan2.1-t2v-1.3b", "vae")],
)  # fmt: skip
def test_a_part_the_family_cannot_adapt_is_refused_before_loading(
    hub, tmp_path: Path, model: str, key: str
) -> None:
    """A text-encoder LoRA where the family adapts its denoiser only (T5, a motion LoRA), a VAE
    LoRA where the VAE is not a frame-by-frame AutoencoderKL: one line naming the key."""
    hub(model)
    as_pairs(tmp_path / "data")
    error = refusal(tmp_path, model=model, num_frames=None, height=None, width=None, **{key: True})
    assert isinstance(error, InvalidRequest) and error.argument == key
    assert f"set `{key} = false`" in str(error)
    assert not (tmp_path / "run").exists()
