"""The training commands as a user runs them: data, then train, then generate with the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_shapes_writes_a_dataset_and_refuses_to_overwrite(cli, workdir) -> None:
    made = cli("data", "shapes", "ds", "--count", "3", "--seed", "2")
    assert made.code == 0, made.err
    rows = [
        json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3 and all((workdir / "ds" / r["file"]).exists() for r in rows)
    again = cli("data", "shapes", "ds", "--count", "3")
    assert again.code == 1 and len(again.err.strip().splitlines()) == 1


def test_train_the_baby_config_then_generate_with_it(cli, workdir, promptreel_home) -> None:
    shutil.copytree(ROOT / "configs", workdir / "configs")
    trained = cli("train", "configs/baby.toml")
    assert trained.code == 0, trained.err
    model = Path(trained.out.strip())
    assert (model / "model_index.json").exists()
    # The run's state went to the user data folder, not the folder the command ran in.
    assert model == promptreel_home / "runs" / "baby" / "model"
    assert (promptreel_home / "runs" / "baby" / "checkpoint.pt").exists()
    assert (promptreel_home / "runs" / "baby-data" / "metadata.jsonl").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["configs"]
    made = cli(
        "generate",
        "a red circle moving right",
        "--model",
        str(model),
        "--seed",
        "1",
        "--num-inference-steps",
        "2",
        "-o",
        "clip.mp4",
        "--json",
    )
    assert made.code == 0, made.err
    record = json.loads(made.out)
    assert record["parameters"]["num_frames"] == 16
    assert (record["parameters"]["height"], record["parameters"]["width"]) == (64, 64)
