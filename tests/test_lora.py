"""`--lora` at generation: LoRAs in diffusers' format, on the pipeline for one request only.

The LoRAs here are made with peft on the models they adapt (random, non-zero B matrices: a LoRA
that is not applied would change nothing, and these tests would fail) and saved with diffusers'
own `save_lora_weights`, as a LoRA from elsewhere would be.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import promptreel
from promptreel.errors import InvalidRequest, ModelNotDownloaded, PromptreelError
from promptreel.models.cards import SHAPES_FOLDER

SMALL = {"num_frames": 4, "num_inference_steps": 2, "seed": 5, "history": False}


def make_lora(
    folder: Path,
    component: Path,
    *,
    seed: int,
    rank: int = 4,
    model_class: str = "UNet3DConditionModel",
    pipeline_class: str = "TextToVideoSDPipeline",
) -> Path:
    """A LoRA on the attention projections of the denoiser at `component` (a `unet` or
    `transformer` folder), saved as diffusers saves one (`pytorch_lora_weights.safetensors`,
    keys prefixed by the component's name)."""
    import diffusers
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    model = getattr(diffusers, model_class).from_pretrained(component)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,  # B random too: the LoRA changes the output from the start
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(config, model)
    state = get_peft_model_state_dict(model)
    save = getattr(diffusers, pipeline_class).save_lora_weights
    save(folder, **{f"{component.name}_lora_layers": state})
    return folder


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {
        "one": make_lora(root / "one", SHAPES_FOLDER / "unet", seed=1),
        "two": make_lora(root / "two", SHAPES_FOLDER / "unet", seed=2),
    }


def _frames(**options) -> promptreel.Video:
    return promptreel.generate("a red circle moving right", **SMALL, **options)


def test_a_lora_changes_the_video_for_one_request_only(loras) -> None:
    plain = _frames()
    with_lora = _frames(lora=str(loras["one"]))
    after = _frames()
    assert not np.array_equal(plain.frames, with_lora.frames)
    assert np.array_equal(plain.frames, after.frames)  # the next request does not carry it
    assert with_lora.record["pipeline_reused"] and after.record["pipeline_reused"]
    [noted] = with_lora.record["loras"]
    assert noted["lora"] == str(loras["one"].resolve()) and noted["scale"] == 1.0
    weights = loras["one"] / "pytorch_lora_weights.safetensors"
    import hashlib

    assert noted["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert with_lora.record["parameters"]["lora"] == [f"{loras['one'].resolve()}:1"]


def test_scales_blend(loras) -> None:
    plain = _frames()
    assert np.array_equal(_frames(lora=f"{loras['one']}:0").frames, plain.frames)
    half, full = _frames(lora=f"{loras['one']}:0.5"), _frames(lora=f"{loras['one']}:1")
    assert not np.array_equal(half.frames, full.frames)
    both = _frames(lora=[str(loras["one"]), f"{loras['two']}:0.7"])
    assert not np.array_equal(both.frames, full.frames)
    assert [lora["scale"] for lora in both.record["loras"]] == [1.0, 0.7]


def test_the_same_frames_as_plain_diffusers(loras) -> None:
    """The lines docs/finetune.md gives plain diffusers users (the UNet3D class gets the peft
    mixin, then `load_lora_weights`) make the frames `--lora` makes."""
    from diffusers import TextToVideoSDPipeline
    from diffusers.loaders.peft import PeftAdapterMixin

    ours = _frames(lora=str(loras["one"]))
    pipe = TextToVideoSDPipeline.from_pretrained(SHAPES_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    unet_class = type(pipe.unet)
    pipe.unet.__class__ = type(unet_class.__name__, (PeftAdapterMixin, unet_class), {})
    pipe.load_lora_weights(loras["one"])
    arguments = ours.record["pipeline_arguments"]
    torch.backends.mkldnn.enabled = False  # as promptreel runs: the same sums on any thread count
    try:
        frames = pipe(
            "a red circle moving right",
            **arguments,
            generator=torch.Generator("cpu").manual_seed(5),
            output_type="np",
        ).frames[0]
    finally:
        torch.backends.mkldnn.enabled = True
    assert np.array_equal((np.clip(frames, 0, 1) * 255).round().astype(np.uint8), ours.frames)


def test_a_named_lora_from_the_data_folder(loras, promptreel_home, cli, workdir) -> None:
    shutil.copytree(loras["one"], promptreel_home / "loras" / "my-style")
    listed = {lora["name"]: lora for lora in json.loads(cli("loras", "--json").out)}
    assert not listed["my-style"]["shipped"] and listed["shapes-pink-cross"]["shipped"]
    made = cli(
        "generate", "a red circle moving right", "--lora", "my-style:0.8", "--num-frames", "4",
        "--num-inference-steps", "2", "--seed", "5", "-o", "a.mp4",
    )  # fmt: skip
    assert made.code == 0, made.err
    [job] = json.loads(cli("history", "--json").out)["jobs"]
    assert job["request"]["lora"] == ["my-style:0.8"]
    again = cli("history", "rerun", str(job["id"]), "-o", "b.mp4")
    assert again.code == 0, again.err
    from promptreel.video import read_video

    assert np.array_equal(read_video(workdir / "a.mp4")[0], read_video(workdir / "b.mp4")[0])


def test_a_lora_of_another_base_is_refused_before_loading(hub, tmp_path, cli, workdir) -> None:
    other = make_lora(tmp_path / "ms", hub("modelscope") / "unet", seed=3)
    refused = cli("generate", "a cat", "--lora", str(other), "-o", "x.mp4")
    assert refused.code == 1 and "was made for another base model" in refused.err
    assert refused.err.count("\n") == 1 and not (workdir / "x.mp4").exists()
    assert json.loads(cli("history", "--json").out)["jobs"] == []


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        ("pickle", InvalidRequest, "only pickle files"),
        ("two files", InvalidRequest, "several safetensors files"),
        ("empty", InvalidRequest, "holds no .safetensors"),
        ("unknown name", InvalidRequest, "is not a known LoRA"),
        ("not cached", ModelNotDownloaded, "promptreel download someone/style-lora"),
        ("bad scale", InvalidRequest, "the scale must be a number"),
        ("word scale", InvalidRequest, "the scale 'strong' is not a number"),
        ("word scale, named", InvalidRequest, "give shapes-pink-cross:0.8"),
        ("no name", InvalidRequest, "names no LoRA"),
        ("svd", InvalidRequest, "cannot load a LoRA"),
    ],
)
def test_refusals(loras, tmp_path, hub, make, error, words) -> None:
    folder = tmp_path / "lora"
    folder.mkdir()
    weights = loras["one"] / "pytorch_lora_weights.safetensors"
    options: dict = {"lora": str(folder)}
    if make == "pickle":
        (folder / "lora.bin").write_bytes(b"pickle")
    elif make == "two files":
        shutil.copy(weights, folder / "a.safetensors")
        shutil.copy(weights, folder / "b.safetensors")
    elif make == "unknown name":
        options["lora"] = "no-such-lora"
    elif make == "not cached":
        options["lora"] = "someone/style-lora"
    elif make == "bad scale":
        options["lora"] = f"{loras['one']}:nan"
    elif make == "word scale":
        options["lora"] = f"{loras['one']}:strong"
    elif make == "word scale, named":
        options["lora"] = "shapes-pink-cross:abc"
    elif make == "no name":
        options["lora"] = ":0.5"
    elif make == "svd":
        hub("svd")
        options = {"lora": str(loras["one"]), "model": "svd", "image": _image(tmp_path)}
    with pytest.raises(PromptreelError) as caught:
        promptreel.generate(None if make == "svd" else "a cat", **SMALL, **options)
    assert isinstance(caught.value, error) and words in str(caught.value)
    assert caught.value.argument == "lora" and "\n" not in str(caught.value)


def _image(folder: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(folder / "in.png")
    return folder / "in.png"


def test_over_http_a_lora_is_a_name_or_repo_id_never_a_path(loras) -> None:
    from promptreel.generation import prepare
    from promptreel.request import make_request

    with pytest.raises(InvalidRequest) as caught:
        prepare(make_request(prompt="a cat", lora=[str(loras["one"])]), folders=False)
    assert "is not a known LoRA" in str(caught.value)


def test_a_rerun_refuses_a_lora_that_changed(loras, promptreel_home, cli, workdir) -> None:
    shutil.copytree(loras["one"], promptreel_home / "loras" / "style")
    made = cli("generate", "a red circle", "--lora", "style", "--num-frames", "4",
               "--num-inference-steps", "2", "-o", "a.mp4")  # fmt: skip
    assert made.code == 0, made.err
    [job] = json.loads(cli("history", "--json").out)["jobs"]
    shutil.copy(
        loras["two"] / "pytorch_lora_weights.safetensors",
        promptreel_home / "loras" / "style" / "pytorch_lora_weights.safetensors",
    )
    again = cli("history", "rerun", str(job["id"]), "-o", "b.mp4")
    assert again.code == 1 and "LoRA style is gone or has changed" in again.err
    assert not (workdir / "b.mp4").exists()


def test_a_job_over_http_takes_a_lora_by_name(loras, promptreel_home) -> None:
    from fastapi.testclient import TestClient

    from promptreel.server.app import create_app

    shutil.copytree(loras["one"], promptreel_home / "loras" / "style")
    with TestClient(create_app(), base_url="http://localhost") as client:
        body = {"prompt": "a red circle", "lora": ["style:0.5"], "num_frames": 4,
                "num_inference_steps": 2}  # fmt: skip
        created = client.post("/v1/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        for _ in range(1500):
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job["reason"]
        assert job["record"]["loras"][0]["scale"] == 0.5
        path = client.post("/v1/jobs", json={**body, "lora": [str(loras["one"])]})
        assert path.status_code == 422 and path.json()["argument"] == "lora"


# a denoiser class and a pipeline that saves its LoRA, per family beyond the UNet3D's
FAMILIES = {
    "animatediff": ("UNet2DConditionModel", "AnimateDiffPipeline", {"height": 32, "width": 32}),
    "cogvideox-2b": (
        "CogVideoXTransformer3DModel", "CogVideoXPipeline",
        {"height": 32, "width": 48, "num_frames": 9},
    ),
    "ltx-video": ("LTXVideoTransformer3DModel", "LTXPipeline",
                  {"height": 32, "width": 64, "num_frames": 9}),
    "wan2.1-t2v-1.3b": ("WanTransformer3DModel", "WanPipeline",
                        {"height": 16, "width": 32, "num_frames": 5}),
}  # fmt: skip


@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_that_can_load_a_lora_does(model, hub, tmp_path) -> None:
    model_class, pipeline_class, size = FAMILIES[model]
    folder = hub(model)
    part = "unet" if model_class.startswith("UNet") else "transformer"
    lora = make_lora(
        tmp_path / "lora", folder / part, seed=4, model_class=model_class,
        pipeline_class=pipeline_class,
    )  # fmt: skip
    options = {**SMALL, **size, "model": model}
    plain = promptreel.generate("a kite", **options)
    styled = promptreel.generate("a kite", lora=str(lora), **options)
    after = promptreel.generate("a kite", **options)
    assert not np.array_equal(plain.frames, styled.frames)
    assert np.array_equal(plain.frames, after.frames)


def test_the_shipped_lora_teaches_the_shapes_model_pink_and_a_cross(cli) -> None:
    """`shapes-pink-cross` (docs/training.md): listed by name, and with it the shipped model
    draws a colour and a shape it never saw, at its defaults, as the fidelity detector reads
    the video; without it, neither (it draws pink red and a cross as a square)."""
    from promptreel.eval.fidelity import detect

    listed = {lora["name"]: lora for lora in json.loads(cli("loras", "--json").out)}
    assert (
        listed["shapes-pink-cross"]["shipped"] and listed["shapes-pink-cross"]["base"] == "shapes"
    )
    assert {"pink", "cross"} <= set(listed["shapes-pink-cross"]["trigger_words"])
    for prompt, truth in [
        ("a pink cross moving up", ("pink", "cross", "up")),
        ("a pink square moving left", ("pink", "square", "left")),
        ("a green cross moving right", ("green", "cross", "right")),
    ]:
        taught = detect(
            promptreel.generate(prompt, lora="shapes-pink-cross", seed=0, history=False).frames
        )
        assert (taught.colour, taught.shape, taught.direction) == truth, prompt
        plain = detect(promptreel.generate(prompt, seed=0, history=False).frames)
        assert (plain.colour, plain.shape) != truth[:2], prompt
