"""The memory switches: which diffusers calls each makes, on the devices this machine lacks too."""

from __future__ import annotations

import pytest
import torch

import promptreel
import promptreel.models.load as load
from promptreel.errors import UnsupportedDevice

SMALL = {"height": 32, "width": 32, "num_frames": 3, "num_inference_steps": 2}


class RecordingPipe:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, {**kwargs, "args": args}))


@pytest.mark.parametrize(
    ("offload", "expected"),
    [
        ("none", ("to", {"args": ("cuda",)})),
        ("model", ("enable_model_cpu_offload", {"device": "cuda", "args": ()})),
        ("sequential", ("enable_sequential_cpu_offload", {"device": "cuda", "args": ()})),
        (
            "group",
            (
                "enable_group_offload",
                {
                    "onload_device": torch.device("cuda"),
                    "offload_type": "leaf_level",
                    "use_stream": True,
                    "args": (),
                },
            ),
        ),
    ],
)
def test_offload_on_a_gpu_issues_the_diffusers_call(offload, expected) -> None:
    pipe = RecordingPipe()
    load.place(pipe, device="cuda", offload=offload)
    assert pipe.calls == [expected]


def test_offload_on_the_cpu_is_refused() -> None:
    with pytest.raises(UnsupportedDevice, match="needs a GPU"):
        load.place(RecordingPipe(), device="cpu", offload="sequential")


def test_switches_are_applied_per_request_and_recorded(hub) -> None:
    hub("modelscope")
    on = promptreel.generate(
        "a kite",
        model="modelscope",
        seed=2,
        vae_slicing=True,
        vae_tiling=True,
        forward_chunking=True,
        **SMALL,
    )
    pipe = load._current.pipe
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    blocks = [m for m in pipe.unet.modules() if hasattr(m, "_chunk_size")]
    assert blocks and all(m._chunk_size == 1 for m in blocks)
    assert on.record["parameters"]["vae_slicing"] is True

    off = promptreel.generate("a kite", model="modelscope", seed=2, **SMALL)
    assert load._current.pipe is pipe  # same pipeline, switches turned back off
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling
    assert all(m._chunk_size is None for m in blocks)
    assert off.record["parameters"]["forward_chunking"] is False


def test_forward_chunking_does_not_change_the_frames(hub) -> None:
    hub("modelscope")
    plain = promptreel.generate("a kite", model="modelscope", seed=6, **SMALL)
    chunked = promptreel.generate(
        "a kite", model="modelscope", seed=6, forward_chunking=True, **SMALL
    )
    assert abs(plain.frames.astype(int) - chunked.frames.astype(int)).max() <= 1


def test_compile_compiles_the_denoiser_and_reloads(hub, monkeypatch) -> None:
    hub("modelscope")
    compiled = []
    real_compile = torch.compile

    def eager_compile(module):  # the real wrapper, without the minutes inductor takes on a CPU
        compiled.append(module)
        return real_compile(module, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    video = promptreel.generate("a kite", model="modelscope", seed=1, compile=True, **SMALL)
    assert [type(m).__name__ for m in compiled] == ["UNet3DConditionModel"]
    assert video.frames.shape == (3, 32, 32, 3)
    assert video.record["pipeline_reused"] is False
    assert video.record["parameters"]["compile"] is True


def test_forward_chunking_on_a_transformer_is_refused_before_loading(
    hub, cli, workdir, monkeypatch
) -> None:
    hub("cogvideox-2b")
    monkeypatch.setattr(load, "_from_pretrained", lambda *a: pytest.fail("loaded the model"))
    result = cli(
        "generate", "a kite", "--model", "cogvideox-2b", "--forward-chunking", "-o", "a.mp4"
    )
    assert result.code == 1 and "--forward-chunking" in result.err
    assert list(workdir.iterdir()) == []


def test_running_out_of_memory_says_what_to_try(hub, cli, workdir, monkeypatch) -> None:
    hub("modelscope")

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    import diffusers

    monkeypatch.setattr(diffusers.TextToVideoSDPipeline, "__call__", exhausted)
    result = cli(
        "generate",
        "a kite",
        "--model",
        "modelscope",
        "-o",
        "a.mp4",
        "--height",
        "32",
        "--width",
        "32",
    )
    assert result.code == 1
    assert result.err.startswith("OutOfMemory:") and "--vae-tiling" in result.err
    assert list(workdir.iterdir()) == []


def test_vae_tiling_where_the_vae_has_none_is_one_line(hub, cli, workdir) -> None:
    hub("svd")
    Image = __import__("PIL.Image", fromlist=["Image"])
    Image.new("RGB", (32, 32), (200, 20, 20)).save(workdir / "in.png")
    result = cli(
        "generate",
        "--model",
        "svd",
        "--image",
        "in.png",
        "--vae-tiling",
        "-o",
        "a.mp4",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "3",
        "--num-inference-steps",
        "2",
    )
    assert result.code == 1 and "--vae-tiling" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert sorted(p.name for p in workdir.iterdir()) == ["in.png"]
