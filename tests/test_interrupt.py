"""Section 5: an error or Ctrl-C at any moment leaves no partial file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import HUB_CACHE, files_in

import promptreel.generation


@pytest.fixture(autouse=True)
def modelscope(hub) -> None:
    hub("modelscope")


def test_ctrl_c_while_denoising_leaves_nothing(cli, workdir, monkeypatch) -> None:
    def interrupt(self, n: int = 1) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(promptreel.generation._StageClock, "update", interrupt)
    result = cli(
        "generate",
        "a kite",
        "--model",
        "modelscope",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "3",
        "--num-inference-steps",
        "2",
        "--seed",
        "1",
    )
    assert result.code == 130
    assert result.err.strip().splitlines() == [
        "Interrupted: stopped; no partial file was left behind"
    ]
    assert files_in(workdir) == set()


def test_ctrl_c_that_a_library_turns_into_another_error_still_reads_as_interrupted(
    cli, workdir, monkeypatch
) -> None:
    """Ctrl-C inside numpy's import once surfaced as `ImportError: cannot load module more than
    once per process`: the interrupt, not the error it left, is what the user must see."""

    def interrupt_inside_an_import(self, n: int = 1) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here, as it would inside a module being imported
        except KeyboardInterrupt:
            raise ImportError("cannot load module more than once per process") from None

    monkeypatch.setattr(promptreel.generation._StageClock, "update", interrupt_inside_an_import)
    result = cli(
        "generate", "a kite", "--model", "modelscope", "--height", "32", "--width", "32",
        "--num-frames", "3", "--num-inference-steps", "2", "--seed", "1",
    )  # fmt: skip
    assert result.code == 130
    assert result.err.strip().splitlines() == [
        "Interrupted: stopped; no partial file was left behind"
    ]
    assert files_in(workdir) == set()


@pytest.mark.parametrize("moment", ["starting", "denoising", "writing"])
def test_sigint_to_a_running_command_leaves_a_whole_video_or_nothing(tmp_path, moment) -> None:
    """A real SIGINT, as a terminal sends it, at three moments of a real process."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "HF_HUB_CACHE": str(HUB_CACHE), "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "promptreel",
        "generate",
        "a kite",
        "--seed",
        "1",
        "--height",
        "64",
        "--width",
        "64",
        "--num-frames",
        "64",
        "--num-inference-steps",
        "40",
        "--output",
        str(out / "clip.mp4"),
        "--quiet",
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    if moment == "starting":
        time.sleep(0.5)
    else:
        deadline = time.monotonic() + 300
        # denoising: once the process has been busy a while; writing: once the hidden file shows
        while time.monotonic() < deadline and process.poll() is None:
            if moment == "writing" and any(out.iterdir()):
                break
            if moment == "denoising" and time.monotonic() > deadline - 290:
                break
            time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    names = sorted(p.name for p in out.iterdir())
    # the signal may land after the rename: then the whole video stays, else nothing does
    assert names in (["clip.mp4", "clip.mp4.json"], []), names
    if not names:
        assert process.returncode in (130, -signal.SIGINT), err
