"""Every generation is kept: `promptreel history` lists, shows, reruns and removes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import promptreel
from promptreel.jobs.store import MIGRATIONS, JobStore
from promptreel.video import read_video

SMALL = ["--model", "modelscope", "--num-frames", "4", "--height", "32", "--width", "32"]
SMALL += ["--num-inference-steps", "2"]


@pytest.fixture
def model(hub) -> None:
    hub("modelscope")


def _history(cli) -> list[dict]:
    result = cli("history", "--json", "--limit", "100")
    assert result.code == 0, result.err
    return json.loads(result.out)["jobs"]


def test_cli_generation_is_recorded_with_its_file_and_timings(model, cli, workdir) -> None:
    result = cli("generate", "a red circle", *SMALL, "--seed", "5", "-o", "clip.mp4")
    assert result.code == 0, result.err
    [job] = _history(cli)
    assert job["status"] == "succeeded" and job["source"] == "cli"
    assert job["prompt"] == "a red circle" and job["seed"] == 5
    assert job["outputs"] == [str(workdir / "clip.mp4")]
    assert set(job["record"]["timings"]) >= {"load", "encode", "denoise", "decode"}
    assert job["request"]["num_frames"] == 4
    assert job["output_format"] == "mp4"

    shown = cli("history", "show", str(job["id"]))
    assert shown.code == 0 and "a red circle" in shown.out and "denoise" in shown.out


def test_a_refused_request_leaves_no_row(model, cli, workdir) -> None:
    for bad in (["--num-frames", "100000"], ["--fps", "0"], ["--param", "nope=1"]):
        result = cli("generate", "refused", *SMALL, *bad)
        assert result.code == 1 and "Traceback" not in result.err
    assert cli("generate", "refused", *SMALL, "-o", "missing/clip.mp4").code == 1
    with pytest.raises(promptreel.InvalidRequest):
        promptreel.generate("refused", model="modelscope", num_frames=100000)
    assert _history(cli) == []


def _out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every generation fails after its checks, as a GPU out of memory does."""
    import promptreel.generation

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise promptreel.OutOfMemory("cuda ran out of memory at the load stage")

    monkeypatch.setattr(promptreel.generation, "load_pipeline", out_of_memory)


def test_a_generation_that_fails_is_recorded_with_its_error(model, cli, workdir, monkeypatch):
    _out_of_memory(monkeypatch)
    result = cli("generate", "too big", *SMALL)
    assert result.code == 1
    [job] = _history(cli)
    assert job["status"] == "failed"
    assert "out of memory" in job["reason"] and job["outputs"] == []


def test_history_keeps_ids_and_seeds_on_a_narrow_terminal(model, cli, workdir, monkeypatch) -> None:
    """At 80 columns a long prompt and a long model name are cut; id, status, seed stay."""
    store = JobStore()
    long_model = "someone/a-model-repository-with-a-very-long-name"
    first = store.add({"model": long_model, "prompt": "a fox " * 100, "seed": 4294967295},
                      source="cli", status="queued")  # fmt: skip
    second = store.add({"model": "shapes", "prompt": "x\x9b2J\x1b[31m", "seed": 7}, source="cli")
    for columns in (80, 60):
        monkeypatch.setenv("COLUMNS", str(columns))
        lines = cli("history").out.splitlines()
        assert lines[0].split()[:4] == ["id", "when", "status", "seed"], lines[0]
        assert lines[1].split()[0] == str(second) and lines[2].split()[0] == str(first)
        assert "4294967295" in lines[2] and "queued" in lines[2] and "someone/" in lines[2]
        # below what the kept columns need (about 70 here), lines wrap rather than lose them
        assert columns < 80 or all(len(line) <= columns for line in lines), lines
        assert r"\x9b" in lines[1]  # shown escaped, never raw:
        assert "\x9b" not in "".join(lines) and "\x1b" not in "".join(lines)


def test_no_history_keeps_it_out(model, cli, workdir) -> None:
    assert cli("generate", "unseen", *SMALL, "--no-history").code == 0
    assert _history(cli) == []


def test_python_api_records_and_notes_saved_files(model, workdir) -> None:
    video = promptreel.generate(
        "a blue square", model="modelscope", num_frames=4, height=32, width=32,
        num_inference_steps=2, seed=9,
    )  # fmt: skip
    video.save(workdir / "a.webm")
    video.save(workdir / "b.gif")
    [job] = JobStore().list()[0]
    assert job.source == "python" and job.status == "succeeded" and job.seed == 9
    assert job.outputs == [str(workdir / "a.webm"), str(workdir / "b.gif")]
    promptreel.generate(
        "off the books", model="modelscope", num_frames=4, height=32, width=32,
        num_inference_steps=2, history=False,
    )  # fmt: skip
    assert JobStore().list()[1] == 1


def test_list_is_newest_first_and_filters(model, cli, workdir, monkeypatch) -> None:
    for prompt in ("a red circle", "a blue square", "a red square"):
        assert cli("generate", prompt, *SMALL, "--no-history").code == 0
        assert cli("generate", prompt, *SMALL).code == 0
    _out_of_memory(monkeypatch)
    assert cli("generate", "bad", *SMALL).code == 1
    jobs = _history(cli)
    assert [j["prompt"] for j in jobs] == ["bad", "a red square", "a blue square", "a red circle"]
    found = json.loads(cli("history", "--json", "--search", "red").out)["jobs"]
    assert [j["prompt"] for j in found] == ["a red square", "a red circle"]
    failed = json.loads(cli("history", "--json", "--status", "failed").out)["jobs"]
    assert [j["prompt"] for j in failed] == ["bad"]
    assert json.loads(cli("history", "--json", "--model", "zeroscope").out)["jobs"] == []
    # LIKE wildcards in the search are taken literally
    assert json.loads(cli("history", "--json", "--search", "%").out)["jobs"] == []
    table = cli("history")
    assert table.code == 0 and "a blue square" in table.out
    assert cli("history", "--status", "done").code == 1


def test_rerun_makes_the_same_frames_with_a_random_seed(model, cli, workdir) -> None:
    """No --seed given: the seed drawn is recorded, so the rerun repeats it."""
    assert cli("generate", "a yellow triangle", *SMALL, "-o", "first.mp4").code == 0
    [job] = _history(cli)
    again = cli("history", "rerun", str(job["id"]), "-o", "again.mp4")
    assert again.code == 0, again.err
    first, _ = read_video(workdir / "first.mp4")
    second, _ = read_video(workdir / "again.mp4")
    assert np.array_equal(first, second)
    jobs = _history(cli)
    assert len(jobs) == 2 and jobs[0]["seed"] == job["seed"]


def test_rerun_keeps_the_settled_values_not_todays_defaults(model, cli, workdir) -> None:
    assert cli("generate", "a white ball", *SMALL, "-o", "one.gif").code == 0
    [job] = _history(cli)
    again = cli("history", "rerun", str(job["id"]))  # no -o: a fresh .gif here
    assert again.code == 0, again.err
    made = Path(again.out.strip())
    assert made.suffix == ".gif" and made.exists()
    rerun = _history(cli)[0]
    assert rerun["request"]["num_inference_steps"] == 2
    assert rerun["request"]["fps"] == job["record"]["parameters"]["fps"]


def test_rm_asks_then_removes_the_row_and_its_files(model, cli, workdir) -> None:
    assert cli("generate", "to remove", *SMALL, "-o", "gone.mp4").code == 0
    (workdir / "mine.txt").write_text("not promptreel's")
    [job] = _history(cli)
    refused = cli("history", "rm", str(job["id"]))  # stdin is not a terminal: it cannot ask
    assert refused.code == 1 and "--yes" in refused.err
    assert (workdir / "gone.mp4").exists()
    removed = cli("history", "rm", str(job["id"]), "--yes")
    assert removed.code == 0, removed.err
    assert sorted(p.name for p in workdir.iterdir()) == ["mine.txt"]
    assert _history(cli) == []
    assert cli("history", "rm", str(job["id"]), "--yes").code == 1


def test_rm_of_a_png_folder_removes_only_its_frames(model, cli, workdir) -> None:
    assert cli("generate", "frames", *SMALL, "-o", "frames/").code == 0
    [job] = _history(cli)
    assert cli("history", "rm", str(job["id"]), "-y").code == 0
    assert not (workdir / "frames").exists()


def test_rm_leaves_a_file_a_later_run_replaced(model, cli, workdir) -> None:
    assert cli("generate", "first", *SMALL, "-o", "same.mp4").code == 0
    assert cli("generate", "second", *SMALL, "-o", "same.mp4", "--overwrite").code == 0
    second, first = _history(cli)
    assert cli("history", "rm", str(first["id"]), "--yes").code == 0
    assert (workdir / "same.mp4").exists()  # the second run's video, not the first's
    assert cli("history", "rm", str(second["id"]), "--yes").code == 0
    assert list(workdir.iterdir()) == []


def test_rerun_refuses_an_input_that_changed(hub, cli, workdir) -> None:
    hub("svd")
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(workdir / "in.png")
    made = cli(
        "generate",
        "--model",
        "svd",
        "--image",
        "in.png",
        "--num-frames",
        "3",
        "--height",
        "32",
        "--width",
        "32",
        "--num-inference-steps",
        "2",
        "-o",
        "a.mp4",
    )
    assert made.code == 0, made.err
    [job] = _history(cli)
    assert job["request"]["image"] == str(workdir / "in.png")  # absolute: found from anywhere
    Image.new("RGB", (32, 32), (40, 40, 200)).save(workdir / "in.png")
    again = cli("history", "rerun", str(job["id"]), "-o", "b.mp4")
    assert again.code == 1
    assert again.err.startswith(f"InvalidRequest: job {job['id']}'s image")
    assert "has changed" in again.err and not (workdir / "b.mp4").exists()


def test_unknown_ids_are_one_line_errors(cli, workdir) -> None:
    for args in (("show", "7"), ("rerun", "7"), ("rm", "7", "--yes")):
        result = cli("history", *args)
        assert result.code == 1
        assert result.err.startswith("InvalidRequest: there is no generation 7")
        assert len(result.err.strip().splitlines()) == 1
    for bad in ("0", str(2**63)):
        result = cli("history", "show", bad)
        assert result.code == 2 and "ID" in result.err


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    JobStore(path).add({"model": "m", "prompt": "p"}, source="cli", status="running")
    JobStore(path)  # opening again neither fails nor re-applies
    import sqlite3

    db = sqlite3.connect(path)
    rows = db.execute("SELECT version, name FROM migrations").fetchall()
    assert rows == [(i + 1, name) for i, (name, _) in enumerate(MIGRATIONS)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


def test_unwritable_home_is_a_clear_error(cli, workdir, monkeypatch) -> None:
    blocker = workdir / "file"
    blocker.write_text("")
    monkeypatch.setenv("PROMPTREEL_HOME", str(blocker / "sub"))
    result = cli("history")
    assert result.code == 1
    assert result.err.startswith("OutputError: cannot use the history database")
    assert "--no-history" in result.err


def test_a_rerun_is_the_same_video_after_the_models_defaults_change(
    cli, workdir, monkeypatch
) -> None:
    """Sampler, negative prompt, frames, steps, guidance: a card that changes any default
    after a generation changes new videos, never its rerun."""
    import dataclasses

    from promptreel.models import resolve

    assert cli("generate", "a red circle moving right", "--seed", "4", "-o", "a.mp4").code == 0
    card = resolve.CARDS_BY_NAME["shapes"]
    changed = dataclasses.replace(
        card,
        scheduler="euler",
        negative_prompt="blurry",
        num_inference_steps=card.num_inference_steps + 2,
        guidance_scale=card.guidance_scale + 1.0,
    )
    monkeypatch.setitem(resolve.CARDS_BY_NAME, "shapes", changed)
    assert cli("history", "rerun", "1", "-o", "again.mp4", "--no-history").code == 0
    made = "a red circle moving right"
    assert cli("generate", made, "--seed", "4", "-o", "new.mp4", "--no-history").code == 0
    first, again, new = (read_video(workdir / n)[0] for n in ("a.mp4", "again.mp4", "new.mp4"))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, new)  # the changed defaults do change a new video


def test_a_row_holds_its_seed_and_settled_values_even_when_the_run_fails(
    model, cli, workdir, monkeypatch
) -> None:
    _out_of_memory(monkeypatch)
    assert cli("generate", "a kite", *SMALL).code == 1
    [job] = _history(cli)
    assert job["status"] == "failed" and isinstance(job["seed"], int)
    assert job["request"]["seed"] == job["seed"] and job["request"]["fps"] is not None


def test_a_rerun_of_a_relative_model_folder_works_from_another_folder(hub, cli, workdir):
    import shutil

    shutil.copytree(hub("modelscope"), workdir / "my model ü")
    made = cli("generate", "a kite", "--model", "./my model ü", *SMALL[2:], "-o", "a.mp4")
    assert made.code == 0, made.err
    (workdir / "sub").mkdir()
    os.chdir(workdir / "sub")
    again = cli("history", "rerun", "1", "-o", "b.mp4")
    assert again.code == 0, again.err
    assert np.array_equal(read_video(workdir / "a.mp4")[0], read_video(workdir / "sub/b.mp4")[0])


def test_search_that_matches_nothing_says_so(model, cli, workdir) -> None:
    assert cli("generate", "a kite", *SMALL).code == 0
    assert "nothing matches" in cli("history", "--search", "zebra").err
