"""Section 4: every bad request is refused before any model loads, in one line, leaving nothing.

None of these installs a model in the cache: a refusal that only came after loading would show
up here as "not in the local Hugging Face cache" instead of the expected message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import files_in, plain_video
from PIL import Image

from promptreel.jobs.store import JobStore

CASES = {
    "empty prompt": (["", "--model", "modelscope"], "needs a prompt"),
    "blank prompt": (["   \t", "--model", "zeroscope"], "needs a prompt"),
    "no prompt": (["--model", "cogvideox-2b"], "needs a prompt"),
    "prompt for an image-only model": (
        ["a cat", "--model", "svd", "--image", "{image}"],
        "takes no text",
    ),
    "zero frames": (["a cat", "--model", "modelscope", "--num-frames", "0"], "num_frames"),
    "too many frames": (["a cat", "--model", "animatediff", "--num-frames", "500"], "num_frames"),
    "frames break 8k+1 (cogvideox)": (
        ["a cat", "--model", "cogvideox-2b", "--num-frames", "48"],
        "8k+1",
    ),
    "frames break 4k+1 (wan)": (
        ["a cat", "--model", "wan2.1-t2v-1.3b", "--num-frames", "6"],
        "4k+1",
    ),
    "frames break 8k+1": (["a cat", "--model", "ltx-video", "--num-frames", "24"], "8k+1"),
    "zero steps": (["a cat", "--num-inference-steps", "0"], "num_inference_steps"),
    "huge steps": (["a cat", "--num-inference-steps", "100000"], "num_inference_steps"),
    "odd height": (["a cat", "--height", "250"], "height"),
    "negative width": (["a cat", "--width", "-8"], "width"),
    "too many pixels": (
        ["a cat", "--model", "modelscope", "--height", "4096", "--width", "4096"],
        "pixels",
    ),
    "not the one size": (["a cat", "--height", "128", "--width", "128"], "only at 64x64"),
    "zero fps": (["a cat", "--fps", "0"], "fps"),
    "negative guidance": (["a cat", "--guidance-scale", "-1"], "guidance_scale"),
    "huge guidance": (["a cat", "--guidance-scale", "1e9"], "guidance_scale"),
    "negative seed": (["a cat", "--seed", "-1"], "seed"),
    "image-to-video without image": (["--model", "svd"], "--image"),
    "i2v with text but no image": (["a cat", "--model", "cogvideox-5b-i2v"], "--image"),
    "text-only model given an image": (["a cat", "--image", "{image}"], "does not take an image"),
    "text-only model given a video": (["a cat", "--video", "{video}"], "does not take a video"),
    "upscaler without video": (["a cat", "--model", "zeroscope-xl"], "--video"),
    "more frames than the input video has": (
        ["a cat", "--model", "zeroscope-xl", "--video", "{video}", "--num-frames", "10"],
        "only 4 frames",
    ),
    "image that does not decode": (["--model", "svd", "--image", "{garbage}"], "{garbage_name}"),
    "missing image": (["--model", "svd", "--image", "no-such.png"], "no-such.png"),
    "video that does not decode": (
        ["a cat", "--model", "zeroscope-xl", "--video", "{garbage}"],
        "{garbage_name}",
    ),
    "unknown model": (["a cat", "--model", "modelscop"], "modelscope"),
    "unknown repo id offline": (["a cat", "--model", "someone/not-here"], "promptreel download"),
    "model not downloaded": (["a cat", "--model", "wan2.1-t2v-1.3b"], "promptreel download"),
    "output folder missing": (["a cat", "--output", "nowhere/clip.mp4"], "nowhere"),
    "output suffix unknown": (["a cat", "--output", "clip.avi"], ".avi"),
    "unknown param": (["a cat", "--param", "motion_bucket_id=5"], "motion_bucket_id"),
    "param without value": (["a cat", "--param", "eta"], "KEY=VALUE"),
    "param of wrong type": (
        ["--model", "svd", "--image", "{image}", "--param", "motion_bucket_id=fast"],
        "motion_bucket_id",
    ),
    "param out of range": (
        ["--model", "svd", "--image", "{image}", "--param", "noise_aug_strength=-3"],
        "noise_aug_strength",
    ),
    "negative prompt for an image-only model": (
        ["--model", "svd", "--image", "{image}", "--negative-prompt", "blur"],
        "takes no text",
    ),
    "t0 < t1 < steps": (
        ["a cat", "--model", "text2video-zero", "--num-inference-steps", "20"],
        "t0 < t1 < num_inference_steps",
    ),
    "fixed size": (
        ["a cat", "--model", "cogvideox-5b-i2v", "--image", "{image}", "--width", "480"],
        "720x480",
    ),
    "unknown scheduler": (["a cat", "--scheduler", "plms"], "scheduler"),
    "scheduler on a flow model": (
        ["a cat", "--model", "wan2.1-t2v-1.3b", "--scheduler", "ddim"],
        "scheduler",
    ),
    "offload on the cpu": (["a cat", "--device", "cpu", "--offload", "model"], "GPU"),
    "float16 on the cpu": (["a cat", "--device", "cpu", "--dtype", "float16"], "float16"),
    "missing accelerator": (["a cat", "--device", "cuda"], "cuda"),
    "unknown device": (["a cat", "--device", "tpu"], "device"),
    "unknown option": (["a cat", "--frames", "8"], "--frames"),
    "a seed of 330 digits": (["a cat", "--seed", "9" * 330], "seed"),
    "steps of 330 digits": (["a cat", "--num-inference-steps", "9" * 330], "num_inference_steps"),
    "escape codes in the prompt": (["a \x1b[31mred\x1b[0m cat"], "U+001B"),
    "an 8-bit CSI in the prompt": (["a \x9b2J cat"], "U+009B"),
    "a C1 control in the negative prompt": (["a cat", "--negative-prompt", "x\x85y"], "U+0085"),
    "a carriage return in the prompt": (["a cat\rdog"], "U+000D"),
    "a bidirectional override in the prompt": (["a \u202ecat"], "U+202E"),
    "bytes that are not UTF-8 in the prompt": (["a \udcff cat"], "not valid UTF-8"),
    "bytes that are not UTF-8 in the negative prompt": (
        ["a cat", "--negative-prompt", "\udce9t\udce9"],
        "not valid UTF-8",
    ),
    "a prompt of zero-width spaces": (["\u200b\u200b"], "something visible"),
    "a prompt of a byte-order mark and spaces": (["\ufeff  \u2060"], "something visible"),
    "a repo id with a space": (["a cat", "--model", "org/na me"], "valid hub repo id"),
    "a repo id climbing out": (["a cat", "--model", "../x/y"], "valid hub repo id"),
    "param far beyond its range": (
        ["--model", "svd", "--image", "{image}", "--param", "noise_aug_strength=1e308"],
        "noise_aug_strength",
    ),
    "int param given a fraction": (
        ["--model", "svd", "--image", "{image}", "--param", "motion_bucket_id=1.5"],
        "motion_bucket_id",
    ),
    "gif faster than browsers play": (["a cat", "--fps", "60", "--output", "fast.gif"], "fps"),
    "gif at the input video's 60 fps": (
        ["a cat", "--model", "zeroscope-xl", "--video", "{video60}", "-o", "up.gif"],
        "60 fps",
    ),
    "GIF in capitals at the input's 60 fps": (
        ["a cat", "--model", "zeroscope-xl", "--video", "{video60}", "--output", "up.GIF"],
        "60 fps",
    ),
    "image from https": (
        ["--model", "svd", "--image", "https://example.com/a.png"],
        "'https://example.com/a.png'",
    ),
    "image from a file URL": (["--model", "svd", "--image", "file:///tmp/cat.png"], "URL"),
    "video from http": (
        ["a cat", "--model", "zeroscope-xl", "--video", "http://example.com/clip.mp4"],
        "download it first",
    ),
    "video from a data URL": (
        ["a cat", "--model", "zeroscope-xl", "--video", "data:video/mp4;base64,AAAA"],
        "URL",
    ),
    "empty image path": (["--model", "svd", "--image", ""], "empty"),
    "image from a URL with a space before it": (
        ["--model", "svd", "--image", " https://example.com/a.png"],
        "' https://example.com/a.png'",
    ),
    "an image named like a scheme is a file, not a URL": (
        ["--model", "svd", "--image", "{colon}"],
        "promptreel download",
    ),
    "a --param given twice": (["a cat", "--param", "eta=0.1", "--param", "eta=0.5"], "twice"),
    "empty output": (["a cat", "--output", ""], "empty"),
    "empty model name": (["a cat", "--model", ""], "empty"),
}


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No model is downloaded, so a check that ran only after loading would fail differently."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))


@pytest.fixture
def inputs(workdir: Path) -> dict[str, str]:
    Image.new("RGB", (64, 64), (200, 30, 30)).save(workdir / "cat.png")
    (workdir / "garbage.png").write_bytes(b"\x89PNG not really an image")
    plain_video(workdir / "clip.mp4", frames=4, side=64)
    plain_video(workdir / "clip60.mp4", frames=4, side=64, fps=60)
    (workdir / "keep.mp4").write_bytes(b"precious")
    Image.new("RGB", (64, 64)).save(workdir / "clip:1.png")
    return {
        "colon": "clip:1.png",
        "image": "cat.png",
        "video": "clip.mp4",
        "video60": "clip60.mp4",
        "garbage": "garbage.png",
        "garbage_name": "garbage.png",
    }


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_leaving_nothing(case, cli, workdir, inputs) -> None:
    args, expected = CASES[case]
    args = [a.format(**inputs) for a in args]
    before = files_in(workdir)
    result = cli("generate", *args)
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert expected.format(**inputs).lower() in lines[0].lower(), lines[0]
    assert result.out == ""
    assert files_in(workdir) == before
    assert (workdir / "keep.mp4").read_bytes() == b"precious"
    assert JobStore().list()[1] == 0, "a refused request is no generation: no history row"


def test_existing_output_is_never_overwritten_without_asking(cli, workdir, inputs) -> None:
    result = cli("generate", "a cat", "--output", "keep.mp4")
    assert result.code != 0
    assert "keep.mp4" in result.err
    assert (workdir / "keep.mp4").read_bytes() == b"precious"


def test_debug_shows_the_traceback(cli, workdir, monkeypatch) -> None:
    import promptreel.cli

    monkeypatch.setattr(promptreel.cli, "DEBUG", True)
    with pytest.raises(Exception, match="needs a prompt"):
        from promptreel.cli import main

        main(["generate", "", "--model", "modelscope"])


@pytest.mark.parametrize("command", [["generate", "a cat"], ["history"], ["models"]])
def test_a_working_folder_deleted_under_the_shell_is_one_line(tmp_path, command) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = 'cd "$1" && rmdir "$1" && shift && exec "$@"'
    args = ["sh", "-c", script, "sh", str(gone), sys.executable, "-m", "promptreel", *command]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("shell-init")]
    assert lines == [lines[0]] and "current folder no longer exists" in lines[0], result.stderr


@pytest.mark.parametrize("limit", ["0", "-5", "1000001", "9" * 30])
def test_history_limit_out_of_range_is_one_line(cli, limit) -> None:
    result = cli("history", "--limit", limit)
    assert result.code in (1, 2) and len(result.err.strip().splitlines()) == 1, result.err
    assert "--limit" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("name", ["two\nlines.mp4", "esc\x1b[2J.mp4", "csi\x9b.mp4", "tab\t.gif"])
def test_an_output_name_with_a_control_character_is_refused(cli, workdir, name) -> None:
    result = cli("generate", "a cat", "--output", name)
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "control character" in result.err and "\x1b" not in result.err
    assert files_in(workdir) == set()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_no_output_in_a_folder_that_cannot_be_written_is_refused_first(cli, workdir) -> None:
    workdir.chmod(0o555)
    try:
        result = cli("generate", "a red circle moving right")
    finally:
        workdir.chmod(0o755)
    assert result.code == 1 and "not writable" in result.err and "--output" in result.err
    assert JobStore().list()[1] == 0  # refused before it ran: no generation, no row


def test_no_output_in_a_folder_that_cannot_be_written_is_refused_first_even_as_root(
    cli, workdir, monkeypatch
) -> None:
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if str(path) == "." else real_access(path, mode)
    )
    result = cli("generate", "a red circle moving right")
    assert result.code == 1 and "not writable" in result.err, result.err
    assert JobStore().list()[1] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["a cat", "--model", "evil\x1b[2J\x9b31m"],
        ["a cat", "--model", "x", "--param", "k\x1b]0;title\x07=1"],
        ["a cat", "--scheduler", "\x9b2J"],
        ["--model", "svd", "--image", "no\x1b[31m.png"],
    ],
)
def test_a_refusal_never_sends_a_control_character_to_the_terminal(cli, workdir, args) -> None:
    result = cli("generate", *args)
    assert result.code in (1, 2) and result.err.count("\n") == 1, result.err
    assert not any(0x80 <= ord(c) < 0xA0 or (ord(c) < 32 and c != "\n") for c in result.err)
