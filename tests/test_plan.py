"""`promptreel plan` and the estimate in every record: checked against what runs measure."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

import promptreel
from promptreel.memory.trace import LiveBytes
from promptreel.models.architectures import ARCHITECTURES

MIB = 2**20


def _kernel_peak() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())[1]) * 1024


def _measured(run) -> int:
    """What `run` held at its peak beyond what existed before, by the kernel's high-water mark,
    on the kernels promptreel runs (torch's own), after a first run has set up whatever it
    keeps (thread pools, kernel caches)."""
    torch.backends.mkldnn.enabled = False
    with torch.no_grad():
        run()
    gc.collect()
    before = int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())[1]) * 1024
    Path("/proc/self/clear_refs").write_text("5")
    with torch.no_grad():
        run()
    torch.backends.mkldnn.enabled = True
    return _kernel_peak() - before


def _traced(run) -> int:
    tracker = LiveBytes(cpu_kernels=True)
    with torch.no_grad(), tracker:
        run()
    return tracker.peak


def _mid_vae(device: str) -> AutoencoderKL:
    with torch.device(device):
        return AutoencoderKL(
            block_out_channels=(64, 128, 256, 256),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
        ).eval()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's peak RSS")
@pytest.mark.parametrize("frames", [2, 4])
def test_the_meta_trace_is_within_a_quarter_of_the_cpu_peak(frames: int) -> None:
    """A mid-sized random VAE decoding for real on the CPU, and traced on the meta device: its
    tensors are large, so the kernel's high-water mark sees every one of them."""
    torch.manual_seed(0)
    vae_cpu, vae_meta = _mid_vae("cpu"), _mid_vae("meta")
    z = torch.randn(frames, 4, 32, 32)
    measured = _measured(lambda: vae_cpu.decode(z))
    traced = _traced(lambda: vae_meta.decode(z.to("meta")))
    assert measured > 500 * MIB  # torch's own convolutions unfold their input
    assert abs(traced - measured) <= 0.25 * measured, (traced / MIB, measured / MIB)


def test_a_record_has_the_plan_beside_the_measured_peaks() -> None:
    """Within 30 %: a process that ran before reuses heap it freed, which its resident set does
    not show again (the mid-sized VAE above, traced alone, is within 25 %)."""
    for _ in range(2):  # loading, then with the pipeline already loaded
        video = promptreel.generate("a red circle moving up", seed=1, history=False)
        memory = video.record["memory"]
        assert set(memory["planned"]) == {"encode", "denoise", "decode"}
        for stage, planned in memory["planned"].items():
            measured = memory["measured"][stage]["peak_ram_bytes"]
            assert abs(planned["peak_ram_bytes"] - measured) <= 0.3 * measured, stage
            assert planned["peak_vram_bytes"] == 0  # all of it in RAM on the CPU


def test_plan_on_the_cpu_lists_each_switch_and_its_peaks(cli) -> None:
    shown = cli("plan", "--num-frames", "32", "--json")
    assert shown.code == 0, shown.err
    result = json.loads(shown.out)
    assert (result["model"], result["device"], result["num_frames"]) == ("shapes", "cpu", 32)
    setups = [p["setup"] for p in result["plans"]]
    assert {s["offload"] for s in setups} == {"none"}  # nothing to offload to on the CPU
    assert len(setups) == 8  # slicing x tiling x fp8 (chunking only when nothing fits without)
    by = {
        (s["vae_slicing"], s["vae_tiling"], s["forward_chunking"], s["fp8"]): p
        for s, p in zip(setups, result["plans"], strict=True)
    }
    plain = by[(False, False, False, False)]
    # decoding one frame at a time needs less than all 32 at once
    sliced = by[(True, False, False, False)]["stages"]["decode"]["peak_ram_bytes"]
    assert sliced < plain["stages"]["decode"]["peak_ram_bytes"]
    # float8 weights: less while denoising, and slower
    eight = by[(False, False, False, True)]
    assert (
        eight["stages"]["denoise"]["peak_ram_bytes"] < plain["stages"]["denoise"]["peak_ram_bytes"]
    )
    assert eight["time_cost"] > plain["time_cost"]
    for plan in result["plans"]:
        assert plan["peak_ram_bytes"] == max(s["peak_ram_bytes"] for s in plan["stages"].values())
    # of the fastest, the one with fewest switches: it fits
    assert result["best"]["setup"] == plain["setup"]


def test_plan_for_a_gpu_weighs_the_offloads_and_picks_what_fits(cli) -> None:
    shown = cli("plan", "--vram", "12GiB", "--num-frames", "64", "--json")
    result = json.loads(shown.out)
    assert result["device"] == "cuda" and result["vram_bytes"] == 12 * 2**30
    offloads = {p["setup"]["offload"] for p in result["plans"]}
    assert offloads == {"none", "model", "group", "sequential"}
    best = result["best"]["setup"]
    assert best["offload"] == "none" and not best["vae_tiling"]
    # on a GPU's kernels the feed-forward is the denoiser's peak: chunking lowers it
    denoise = [
        json.loads(cli("plan", "--vram", "12GiB", "--num-frames", "64", *chunk, "--json").out)[
            "plans"
        ][0]["stages"]["denoise"]["peak_vram_bytes"]
        for chunk in ([], ["--forward-chunking"])
    ]
    assert denoise[1] < denoise[0]
    # less memory than the fastest needs: the fastest of what is left
    fastest = result["best"]["peak_vram_bytes"]
    tight = cli("plan", "--vram", f"{fastest - 1}B", "--num-frames", "64", "--json")
    chosen = json.loads(tight.out)["best"]
    assert chosen["peak_vram_bytes"] < fastest and chosen["time_cost"] >= 1.0
    shown = cli("plan", "--vram", "1MiB", "--num-frames", "64")
    assert shown.code == 0 and shown.out.splitlines()[-1].startswith("nothing fits")


def test_plan_with_switches_reports_that_setup(cli) -> None:
    shown = cli("plan", "--vram", "8GB", "--offload", "model", "--vae-slicing", "--json")
    plans = json.loads(shown.out)["plans"]
    assert [p["setup"] for p in plans] == [
        {
            "dtype": "float32",
            "offload": "model",
            "vae_slicing": True,
            "vae_tiling": False,
            "forward_chunking": False,
            "fp8": False,
        }
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--vram", "lots"], "InvalidRequest: --vram 'lots' is not a size; give one like 12GiB"),
        (["--offload", "model"], "UnsupportedDevice: --offload model needs a GPU"),
        (["--device", "cuda"], "InvalidRequest: this machine has no GPU to measure; give --vram"),
        (["--num-frames", "0"], "InvalidRequest: `num_frames`"),
    ],
)
def test_plan_refuses_in_one_line(cli, args, line) -> None:
    shown = cli("plan", *args)
    assert shown.code == 1 and shown.err.startswith(line) and shown.err.count("\n") == 1


@pytest.fixture
def pretend_gpu(monkeypatch):
    """`prepare` as on a machine with a CUDA GPU of the given size (it loads nothing)."""
    import promptreel.generation as generation

    def install(total: int) -> None:
        monkeypatch.setattr(generation, "pick_device", lambda requested: "cuda")
        monkeypatch.setattr(generation, "accelerator_memory", lambda device: total)

    return install


def _prepared(**fields):
    from promptreel.generation import prepare
    from promptreel.request import make_request

    return prepare(make_request(prompt="a red circle", num_frames=64, **fields))


def test_memory_auto_on_a_gpu_switches_on_the_fastest_setup_that_fits(pretend_gpu, cli) -> None:
    result = json.loads(cli("plan", "--vram", "12GiB", "--num-frames", "64", "--json").out)
    plans = {json.dumps(p["setup"], sort_keys=True): p for p in result["plans"]}
    plain = next(
        p
        for p in result["plans"]
        if p["setup"]["offload"] == "none"
        and not any(p["setup"][k] for k in ("vae_slicing", "vae_tiling", "forward_chunking", "fp8"))
    )

    pretend_gpu(12 * 2**30)  # room for all: nothing to switch on
    request = _prepared().request
    assert (request.offload, request.vae_slicing, request.vae_tiling) == ("none", False, False)

    pretend_gpu(plain["peak_vram_bytes"] - 1)  # one byte short: the fastest that fits instead
    request = _prepared().request
    chosen = {
        "dtype": "float32",
        "offload": request.offload,
        "vae_slicing": request.vae_slicing,
        "vae_tiling": request.vae_tiling,
        "forward_chunking": request.forward_chunking,
        "fp8": request.fp8,
    }
    assert chosen != plain["setup"]
    assert plans[json.dumps(chosen, sort_keys=True)]["peak_vram_bytes"] < plain["peak_vram_bytes"]

    # a switch given by hand, or --memory off: the request as it was
    assert _prepared(vae_tiling=True).request.vae_slicing is False
    assert _prepared(memory="off").request.vae_slicing is False

    pretend_gpu(2**20)  # nothing fits: refused before anything loads
    with pytest.raises(promptreel.OutOfMemory, match=r"needs about .* GiB on the cuda"):
        _prepared()


# Published peak GPU memory of real models (docs/benchmarks.md has the sources), planned from
# the shipped architectures before any download. "allocated" numbers are torch's allocator
# peak (max_memory_allocated), so without the CUDA context the plan adds; the others (a
# model card's or a doc's "GB of VRAM") are taken as the whole device's.
PUBLISHED = [
    # diffusers-torchao benchmark: A100, 720x480, 49 frames, no offload, no tiling
    ({"model": "cogvideox-2b", "dtype": "float16"}, 24.51, "allocated"),
    # CogVideoX's maintainer on issue 92 of its repo: model offload, ~18 GB
    ({"model": "cogvideox-2b", "dtype": "float16", "offload": "model"}, 18.0, "allocated"),
    # diffusers' CogVideoX docs (2024): model offload and VAE tiling, 11 GB
    (
        {"model": "cogvideox-2b", "dtype": "float16", "offload": "model", "vae_tiling": True},
        11.0,
        "allocated",
    ),
    # diffusers' text-to-video docs: 64 frames, fp16, model offload, VAE slicing: 7 GB
    (
        {
            "model": "modelscope",
            "num_frames": 64,
            "dtype": "float16",
            "offload": "model",
            "vae_slicing": True,
        },
        7.0,
        "device",
    ),
    # diffusers' Wan docs: 832x480, 33 frames, bf16, model offload: 11 GB
    (
        {"model": "wan2.1-t2v-1.3b", "num_frames": 33, "dtype": "bfloat16", "offload": "model"},
        11.0,
        "device",
    ),
    # "State of open video generation models in Diffusers": 768x512, 121 frames, bf16, on the GPU
    (
        {"model": "ltx-video", "num_frames": 121, "width": 768, "height": 512, "dtype": "bfloat16"},
        17.75,
        "allocated",
    ),
]


@pytest.mark.parametrize(("fields", "gib", "metric"), PUBLISHED, ids=lambda v: str(v)[:40])
def test_plans_of_real_models_are_within_a_quarter_of_published_peaks(fields, gib, metric) -> None:
    """From the shipped architectures, as `plan` does before a download (this test's cache
    holds tiny stand-ins under the same repo ids, which `plan` would prefer)."""
    from promptreel.memory.plan import CUDA_CONTEXT_BYTES, Setup, footprint, plan
    from promptreel.models.resolve import CARDS_BY_NAME
    from promptreel.request import make_request, settle

    request = make_request(prompt="a plan", **fields)
    card = CARDS_BY_NAME[request.model]
    setup = Setup.of(request, request.dtype)
    found = footprint(
        card, ARCHITECTURES[card.name], settle(request, card), request.dtype, [setup], "cuda"
    )
    planned = plan(found, setup, "cuda", process=0)
    peak = planned.peak_vram_bytes - (CUDA_CONTEXT_BYTES if metric == "allocated" else 0)
    assert abs(peak / 2**30 - gib) <= 0.25 * gib, (peak / 2**30, gib)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_a_shipped_architecture_has_its_cards_parameter_count(name: str) -> None:
    """The configs planned from before a download are the released models': built on the
    meta device, each component has exactly the parameters its card counts."""
    from promptreel.memory.plan import build
    from promptreel.models.resolve import CARDS_BY_NAME

    for component, (class_name, config) in ARCHITECTURES[name].items():
        module = build(class_name, config, torch.float32)
        count = sum({id(p): p.numel() for p in module.parameters()}.values())
        assert count == CARDS_BY_NAME[name].components[component], component


def test_when_nothing_fits_plan_says_how_many_frames_would(cli) -> None:
    def planned(*args: str) -> dict:
        return json.loads(cli("plan", *args, "--json").out)

    small = planned("--vram", "12GiB", "--num-frames", "16")
    lean = min(p["peak_vram_bytes"] for p in small["plans"])
    result = planned("--vram", f"{lean}B", "--num-frames", "64")
    assert result["best"] is None
    frames = result["largest"]["num_frames"]
    assert 16 <= frames < 64
    assert planned("--vram", f"{lean}B", "--num-frames", str(frames))["best"] is not None
    shown = cli("plan", "--vram", f"{lean}B", "--num-frames", "64")
    assert shown.out.splitlines()[-1].startswith(f"nothing fits; {frames} frames at 64x64 would")


def test_fp8_stores_the_denoiser_in_float8_where_the_planner_said(hub) -> None:
    from promptreel.generation import prepare
    from promptreel.memory.plan import Setup, folder_architecture, footprint
    from promptreel.models import load
    from promptreel.request import make_request

    hub("modelscope")
    small = {"model": "modelscope", "height": 32, "width": 32, "num_frames": 4, "seed": 3}
    small |= {"num_inference_steps": 2, "history": False}
    plain = promptreel.generate("a fox", **small)
    eight, again = (promptreel.generate("a fox", fp8=True, **small) for _ in range(2))
    assert eight.record["parameters"]["fp8"] is True
    assert np.array_equal(eight.frames, again.frames)  # the same seed, the same frames
    assert not np.array_equal(eight.frames, plain.frames)  # three bits of mantissa show
    stored = [p for p in load._current.pipe.unet.parameters() if p.dtype == torch.float8_e4m3fn]
    kept = [p for p in load._current.pipe.unet.parameters() if p.dtype == torch.float32]
    assert stored and kept  # norms and embeddings stay as they were
    p = prepare(
        make_request(prompt="a fox", fp8=True, **{k: small[k] for k in small if k != "history"})
    )
    setup = Setup.of(p.request, p.dtype)
    found = footprint(
        p.card, folder_architecture(p.folder, p.parts), p.settings, p.dtype, [setup], p.device
    )
    assert found.fp8_parameters == sum(t.numel() for t in stored)


def test_fp8_is_refused_on_apple_gpus(monkeypatch) -> None:
    import promptreel.generation as generation

    monkeypatch.setattr(generation, "pick_device", lambda requested: "mps")
    with pytest.raises(promptreel.UnsupportedDevice, match=r"^--fp8 needs float8 tensors"):
        _prepared(fp8=True)


def test_a_footprint_traced_once_is_kept_for_the_next_process(monkeypatch, promptreel_home) -> None:
    import promptreel.memory.plan as planner

    request = _prepared()
    setup = planner.Setup.of(request.request, request.dtype)

    def footprint():
        architecture = planner.folder_architecture(request.folder, request.parts)
        return planner.footprint(
            request.card, architecture, request.settings, request.dtype, [setup], request.device
        )

    monkeypatch.setattr(planner, "_traced", {})
    first = footprint()
    assert list((promptreel_home / "cache" / "footprints").glob("*.json"))
    monkeypatch.setattr(planner, "_traced", {})  # a new process: nothing in memory
    monkeypatch.setattr(planner, "_footprint", lambda *a: pytest.fail("traced again"))
    assert footprint() == first
    # a kept footprint that cannot be read is traced again, not trusted
    monkeypatch.undo()
    for broken in ("{not json", "{}", "[]"):
        for kept in (promptreel_home / "cache" / "footprints").glob("*.json"):
            kept.write_text(broken)
        monkeypatch.setattr(planner, "_traced", {})
        assert footprint() == first


def test_plan_shows_what_each_other_precision_would_need(cli) -> None:
    """Without --dtype the table is at the dtype a run takes; every other precision the device
    runs gets its fastest setup that fits, from the same traces."""
    result = json.loads(cli("plan", "--vram", "12GiB", "--num-frames", "16", "--json").out)
    assert result["dtype"] == "float32"  # shapes' own
    others = {o["dtype"]: o for o in result["other_dtypes"]}
    assert set(others) == {"float16", "bfloat16"}
    plain = next(p for p in result["plans"] if p["setup"] == result["best"]["setup"])
    half = others["float16"]["best"]
    assert half["setup"] == {**plain["setup"], "dtype": "float16"}
    assert (
        half["stages"]["denoise"]["peak_vram_bytes"] < plain["stages"]["denoise"]["peak_vram_bytes"]
    )
    assert half["time_cost"] < plain["time_cost"]
    on_cpu = json.loads(cli("plan", "--device", "cpu", "--json").out)
    assert [o["dtype"] for o in on_cpu["other_dtypes"]] == ["bfloat16"]  # no float16 on the CPU
    shown = cli("plan", "--vram", "1MiB")
    assert "at --dtype float16: nothing fits (the leanest needs" in shown.out
    given = json.loads(cli("plan", "--dtype", "bfloat16", "--device", "cpu", "--json").out)
    assert given["other_dtypes"] == []  # that one alone
