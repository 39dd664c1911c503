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


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_save_removes_what_a_killed_writer_left(cli, workdir) -> None:
    """Temporaries of writers that are gone (or whose pid a newer process has taken) go; a live
    writer's, and files that only look alike, stay."""
    dead = workdir / f".clip.mp4.partial-{_dead_pid()}-0badf00d"
    dead.write_bytes(b"half a video")
    dead_folder = workdir / f".frames.partial-{_dead_pid()}-0badf00d"
    dead_folder.mkdir()
    (dead_folder / "frame-0001.png").write_bytes(b"half")
    reused = workdir / f".old.gif.partial-{os.getpid()}-12345678"  # our pid, but long before us
    reused.write_bytes(b"x")
    os.utime(reused, (0, 0))
    live = workdir / f".other.mp4.partial-{os.getpid()}-abcdef01"  # this process is writing it
    live.write_bytes(b"in progress")
    lookalikes = [workdir / ".clip.mp4.partial-notapid", workdir / ".notes.partial-1-xyz"]
    for path in lookalikes:
        path.write_text("keep me")
    result = cli("generate", "a red circle moving right", "-o", "new.mp4", "--quiet")
    assert result.code == 0, result.err
    assert not dead.exists() and not dead_folder.exists() and not reused.exists()
    assert live.exists() and all(path.exists() for path in lookalikes)


def test_kill_9_while_writing_leaves_nothing_after_the_next_run(tmp_path) -> None:
    """The real thing: kill -9 as the file is being written, then generate into that folder."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "HF_HUB_CACHE": str(HUB_CACHE), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "promptreel", "generate", "a kite", "--seed", "1"]
    command += ["--num-frames", "64", "--num-inference-steps", "2", "--quiet"]
    process = subprocess.Popen([*command, "-o", str(out / "clip.mp4")], env=env)
    deadline = time.monotonic() + 300
    while not any(out.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    left = {p.name for p in out.iterdir()}
    if left <= {"clip.mp4", "clip.mp4.json"}:
        pytest.skip(f"the kill landed after the rename ({sorted(left)}); nothing to clean")
    again = subprocess.run([*command, "-o", str(out / "again.mp4")], env=env, timeout=300)
    assert again.returncode == 0
    assert {p.name for p in out.iterdir()} - left == {"again.mp4", "again.mp4.json"}
    assert not [name for name in os.listdir(out) if ".partial-" in name]
