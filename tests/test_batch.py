"""`promptreel batch`: many videos from a file or a sweep, checked first, resumable, and the same
files `promptreel generate` makes for each row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from promptreel.jobs.store import JobStore
from promptreel.video import read_frames

FAST = ["--num-inference-steps", "2", "--num-frames", "8"]


def _frames(path: Path) -> np.ndarray:
    return read_frames(path, argument="video")[0]


def _batch_rows() -> list:
    return [j for j in JobStore().list(limit=1000)[0] if j.source == "batch"]


def test_a_file_of_prompts_makes_one_playing_video_each(cli, workdir) -> None:
    (workdir / "prompts.txt").write_text(
        "a red circle moving right\n\n# a comment line\na blue square moving up\n"
        "a yellow triangle moving left\n"
    )
    result = cli("batch", "prompts.txt", *FAST)
    assert result.code == 0, result.err
    out = workdir / "prompts"  # named after the file
    names = sorted(p.name for p in out.glob("*.mp4"))
    assert names == [
        "001-a-red-circle-moving-right-s0.mp4",
        "002-a-blue-square-moving-up-s0.mp4",
        "003-a-yellow-triangle-moving-left-s0.mp4",
    ]
    for name in names:
        assert _frames(out / name).shape == (8, 64, 64, 3)
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 0, "cancelled": 0}
    assert [j["line"] for j in summary["jobs"]] == [1, 4, 5]  # the file's own line numbers
    sheet = Image.open(out / "contact-sheet.png")
    assert sheet.height == 3 * (96 + 4) + 4  # a row a video
    assert len(_batch_rows()) == 3 and all(j.status == "succeeded" for j in _batch_rows())
    assert "3 done, 0 skipped" in result.out

    # the same file as `promptreel generate` makes with that row's settings
    made = cli("generate", "a blue square moving up", "--seed", "0", "-o", "one.mp4", *FAST)
    assert made.code == 0, made.err
    assert np.array_equal(_frames(workdir / "one.mp4"), _frames(out / names[1]))


def test_a_rerun_skips_what_succeeded_and_retries_what_failed(cli, workdir, monkeypatch) -> None:
    (workdir / "p.txt").write_text("a red circle moving right\na blue square moving up\n")
    out = workdir / "p"
    # the second video cannot be written: a folder is in its way
    (out / "002-a-blue-square-moving-up-s0.mp4").mkdir(parents=True)
    first = cli("batch", "p.txt", "--quiet", *FAST)
    assert first.code == 1  # a failed video fails the command (quiet or not); the batch went on
    assert first.out == ""
    summary = json.loads((out / "batch.json").read_text())
    assert [j["status"] for j in summary["jobs"]] == ["done", "failed"]
    assert summary["jobs"][1]["reason"]  # why, in one line

    (out / "002-a-blue-square-moving-up-s0.mp4").rmdir()
    made = (out / "001-a-red-circle-moving-right-s0.mp4").stat().st_mtime_ns
    second = cli("batch", "p.txt", *FAST)
    assert second.code == 0, second.err
    summary = json.loads((out / "batch.json").read_text())
    assert [j["status"] for j in summary["jobs"]] == ["skipped", "done"]
    assert (out / "001-a-red-circle-moving-right-s0.mp4").stat().st_mtime_ns == made
    assert len(_batch_rows()) == 3  # one row a run of a video: done, failed, done again

    # the same batch from another folder, the output folder named another way: all done
    monkeypatch.chdir(out)
    fourth = cli("batch", "../p.txt", "--output-dir", str(out), *FAST)
    statuses = [j["status"] for j in json.loads((out / "batch.json").read_text())["jobs"]]
    assert fourth.code == 0 and statuses == ["skipped", "skipped"]
    monkeypatch.chdir(workdir)

    # a file deleted by hand is made again, though its row says it succeeded
    (out / "001-a-red-circle-moving-right-s0.mp4").unlink()
    third = cli("batch", "p.txt", *FAST)
    statuses = [j["status"] for j in json.loads((out / "batch.json").read_text())["jobs"]]
    assert third.code == 0 and statuses == ["done", "skipped"]


@pytest.mark.parametrize(
    ("name", "text", "line", "error"),
    [
        ("rows.jsonl", '{"prompt": "a"}\n\n{"prompt": "b", "num_frames": -3}\n', 3, "num_frames"),
        ("rows.jsonl", '{"prompt": "a"}\n{"prompt": "b", "colour": "red"}\n', 2, "'colour'"),
        ("rows.jsonl", '{"prompt": "a"}\n["b"]\n', 2, "JSON object"),
        ("rows.jsonl", '{"prompt": "a"}\n{"prompt": "b"\n', 2, "not JSON"),
        ("rows.csv", "prompt,guidance_scale\na,4\nb,lots\n", 3, "guidance_scale"),
        ("rows.csv", "prompt,model\na,shapes\nb,no-such-model\n", 3, "no-such-model"),
        ("rows.txt", "a red circle\n" + "x" * 5000 + "\n", 2, "prompt"),
        ("rows.csv", "prompt\na\nb\x00c\n", 3, "U+0000"),
        ("rows.csv", "prompt,seed,prompt\na,1,b\n", 1, "'prompt' is given twice"),
        ("rows.csv", "Prompt\na\n", 1, "'Prompt' is not a request field"),
        ("rows.csv", 'prompt\na\n"b\n', 3, "not CSV"),
    ],
)
def test_a_bad_row_is_refused_by_its_line_and_nothing_runs(
    cli, workdir, name, text, line, error
) -> None:
    (workdir / name).write_text(text)
    result = cli("batch", name, *FAST)
    assert result.code == 1
    assert f"{name} line {line}:" in result.err and error in result.err, result.err
    assert result.err.count("\n") == 1
    assert not (workdir / Path(name).stem).exists() and _batch_rows() == []


def test_a_grid_over_a_switch(cli, workdir) -> None:
    result = cli("batch", "--prompt", "a red circle", "--grid", "vae_tiling=false,true", *FAST)
    assert result.code == 0, result.err
    jobs = json.loads((workdir / "batch" / "batch.json").read_text())["jobs"]
    assert [j["varied"] for j in jobs] == [{"vae_tiling": False}, {"vae_tiling": True}]


def test_a_seed_sweep_and_a_grid(cli, workdir) -> None:
    result = cli(
        "batch", "--prompt", "a red circle moving right", "--seeds", "1-2",
        "--grid", "guidance_scale=1,4", "--output-dir", "sweep", *FAST,
    )  # fmt: skip
    assert result.code == 0, result.err
    names = sorted(p.name for p in (workdir / "sweep").glob("*.mp4"))
    assert names == [
        f"001-a-red-circle-moving-right-s{seed}-guidance-scale-{scale}.mp4"
        for seed in (1, 2)
        for scale in (1, 4)
    ]
    frames = {name: _frames(workdir / "sweep" / name) for name in names}
    assert not np.array_equal(frames[names[0]], frames[names[2]])  # another seed
    assert not np.array_equal(frames[names[0]], frames[names[1]])  # another guidance
    jobs = json.loads((workdir / "sweep" / "batch.json").read_text())["jobs"]
    assert [j["varied"] for j in jobs][:2] == [
        {"seed": 1, "guidance_scale": 1.0},
        {"seed": 1, "guidance_scale": 4.0},
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--seeds", "8-1"], "--seeds '8-1'"),
        (["--seeds", "one"], "--seeds 'one'"),
        (["--grid", "guidance_scale"], "--grid expects SETTING=V1,V2"),
        (["--grid", "colour=1,2"], "--grid 'colour'"),
        (["--grid", "seed=1,2"], "--seeds sweeps the seed"),
        (["--grid", "num_frames=8,many"], "num_frames"),
        (["--format", "avi"], "--format must be one of"),
        (["--seeds", "1-2", "--seed", "5"], "--seed and --seeds are both given"),
        (["--grid", "fps=8,12", "--fps", "8"], "--fps and --grid fps are both given"),
    ],
)
def test_bad_sweeps_are_refused_in_one_line(cli, workdir, args, error) -> None:
    result = cli("batch", "--prompt", "a red circle", *args, *FAST)
    assert result.code == 1 and error in result.err and result.err.count("\n") == 1, result.err
    assert list(workdir.iterdir()) == []


def test_ctrl_c_keeps_what_finished_and_a_rerun_completes_it(cli, workdir, monkeypatch) -> None:
    import promptreel.batch.local as local

    (workdir / "p.txt").write_text("a red circle moving right\na blue square moving up\n")
    real = local.run
    calls = []

    def interrupted_second(prepared, progress=None):
        calls.append(prepared)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(prepared, progress=progress)

    monkeypatch.setattr(local, "run", interrupted_second)
    result = cli("batch", "p.txt", "--quiet", *FAST)
    assert result.code == 130 and result.out == ""
    out = workdir / "p"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "001-a-red-circle-moving-right-s0.mp4",
        "001-a-red-circle-moving-right-s0.mp4.json",
        "batch.json",
    ]
    summary = json.loads((out / "batch.json").read_text())
    assert [j["status"] for j in summary["jobs"]] == ["done", "cancelled"]
    assert sorted(j.status for j in _batch_rows()) == ["cancelled", "succeeded"]

    monkeypatch.setattr(local, "run", real)
    again = cli("batch", "p.txt", *FAST)
    summary = json.loads((out / "batch.json").read_text())
    assert again.code == 0 and [j["status"] for j in summary["jobs"]] == ["skipped", "done"]


def test_the_same_rows_as_csv_jsonl_and_options_make_the_same_files(cli, workdir) -> None:
    (workdir / "rows.csv").write_text(
        "prompt,seed,guidance_scale,num_frames,lora\n"
        "a red circle moving right,3,5,8,\n"
        '"a blue square, moving up",4,,4,shapes-pink-cross:0.5\n'
    )
    (workdir / "rows.jsonl").write_text(
        '{"prompt": "a red circle moving right", "seed": 3, "guidance_scale": 5, '
        '"num_frames": 8}\n'
        '{"prompt": "a blue square, moving up", "seed": 4, "num_frames": 4, '
        '"lora": ["shapes-pink-cross:0.5"]}\n'
    )
    steps = ["--num-inference-steps", "2"]
    for name in ("rows.csv", "rows.jsonl"):
        result = cli("batch", name, *steps)
        assert result.code == 0, result.err
    csv_files = sorted(p.name for p in (workdir / "rows").glob("*.mp4"))
    assert csv_files == [
        "001-a-red-circle-moving-right-s3.mp4",
        "002-a-blue-square-moving-up-s4.mp4",
    ]
    # a cell left empty takes the model's own value (shapes: guidance 4)
    for name in csv_files:
        record = json.loads((workdir / "rows" / f"{name}.json").read_text())
        assert record["parameters"]["guidance_scale"] == (5.0 if name.startswith("001") else 4.0)
    assert json.loads((workdir / "rows" / f"{csv_files[1]}.json").read_text())["loras"]
    # .csv and .jsonl write to the same folder (rows/): the second run found it all done
    summary = json.loads((workdir / "rows" / "batch.json").read_text())
    assert summary["counts"]["skipped"] == 2


def test_a_row_s_input_file_is_found_beside_the_batch_file(cli, workdir, monkeypatch, hub) -> None:
    from conftest import plain_video

    hub("zeroscope-xl")
    (workdir / "jobs" / "clips").mkdir(parents=True)
    plain_video(workdir / "jobs" / "clips" / "in.mp4", frames=8, side=64)
    (workdir / "jobs" / "rows.jsonl").write_text(
        '{"prompt": "a kite", "video": "clips/in.mp4", "model": "zeroscope-xl", '
        '"height": 32, "width": 32, "num_frames": 3}\n'
    )
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("batch", "../jobs/rows.jsonl", *FAST)
    assert result.code == 0, result.err
    assert [p.name for p in (elsewhere / "rows").glob("*.mp4")] == ["001-a-kite-s0.mp4"]
