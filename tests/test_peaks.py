"""What a run used: each stage's measured peak memory, in the record, `inspect` and history."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest

import promptreel
from promptreel.memory import peaks as peaks_module
from promptreel.memory.peaks import StagePeaks

MIB = 2**20


@pytest.mark.parametrize("way", ["kernel mark", "sampled"])
def test_a_stage_peak_sees_what_the_stage_held(way, monkeypatch) -> None:
    if way == "sampled":  # as on macOS and Windows
        monkeypatch.setattr(peaks_module, "_reset_kernel_mark", lambda: False)
    peaks = StagePeaks("cpu")
    try:
        peaks.take()
        block = np.ones(300 * MIB // 8)  # written, so resident
        time.sleep(0.05)  # longer than a sampling period
        del block
        during = peaks.take()
        after = peaks.take()
    finally:
        peaks.close()
    assert during["peak_vram_bytes"] is None  # no accelerator here
    assert during["peak_ram_bytes"] - after["peak_ram_bytes"] >= 250 * MIB


def test_the_record_has_each_stage_peak(cli, workdir) -> None:
    video = promptreel.generate("a red circle moving up", seed=1, history=False)
    measured = video.record["memory"]["measured"]
    assert set(measured) == set(video.record["timings"]) == {"load", "encode", "denoise", "decode"}
    total = psutil.virtual_memory().total
    for stage in measured.values():
        assert 100 * MIB < stage["peak_ram_bytes"] < total  # torch and the model are resident
        assert stage["peak_vram_bytes"] is None

    video.save(workdir / "v.mp4")
    shown = cli("inspect", "v.mp4")
    assert shown.code == 0
    table = shown.out.splitlines()[-5:]
    assert table[0].split() == (
        ["stage", "time", "peak", "RAM", "peak", "VRAM", "planned", "RAM", "planned", "VRAM"]
    )
    assert [line.split()[0] for line in table[1:]] == ["load", "encode", "denoise", "decode"]
    assert all(line.split()[4] in ("MiB", "GiB") and line.split()[5] == "-" for line in table[1:])
    # the plan has no load stage; its stages are in MiB beside the measured ones
    assert table[1].split()[6:] == ["-", "-"]
    assert all(line.split()[7] in ("MiB", "GiB") for line in table[2:])


def test_inspect_shows_a_dash_for_what_a_foreign_record_lacks(cli, workdir) -> None:
    video = promptreel.generate("a red circle moving up", seed=1, history=False)
    video.record["memory"] = {"measured": {"denoise": {"peak_ram_bytes": "lots"}}}
    video.record["timings"] = {"denoise": True}
    video.save(workdir / "v.mp4")
    shown = cli("inspect", "v.mp4")
    assert shown.code == 0
    assert shown.out.splitlines()[-1].split() == ["denoise", "-", "-", "-"]
