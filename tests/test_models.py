"""Section 2: the registry, and `--model` as an alias, a hub repo id or a local folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HUB_CACHE
from hfcache import place
from tiny import BUILDERS

from promptreel.models.cards import CARDS

MODELSCOPE = "damo-vilab/text-to-video-ms-1.7b"
SMALL = ["--height", "32", "--width", "32", "--num-frames", "3", "--num-inference-steps", "2"]


def test_models_lists_every_card_and_what_is_downloaded(cli, hub, tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    before = {m["name"]: m for m in json.loads(cli("models", "--json").out)}
    assert set(before) == {card.name for card in CARDS}
    # only the model that ships inside the package is there without a download
    assert [name for name, m in before.items() if m["downloaded"]] == ["shapes"]

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(HUB_CACHE))
    hub("modelscope")
    after = {m["name"]: m for m in json.loads(cli("models", "--json").out)}
    assert after["modelscope"]["downloaded"] is True
    assert Path(after["modelscope"]["path"], "model_index.json").exists()

    table = cli("models")
    assert table.code == 0 and "modelscope" in table.out and "wan2.1-t2v-1.3b" in table.out


def test_models_show_prints_one_card(cli) -> None:
    info = json.loads(cli("models", "show", "cogvideox-2b", "--json").out)
    assert info["repo_id"] == "THUDM/CogVideoX-2b"
    assert info["pipeline_class"] == "CogVideoXPipeline"
    assert info["limits"]["frames"] == "8k+1" and info["limits"]["size_multiple"] == 16
    assert info["components"]["transformer"] > 1_000_000_000
    assert info["dtype"] == {"cpu": "float32", "gpu": "float16"}
    assert "use_dynamic_cfg" in info["params"]
    text = cli("models", "show", "svd")
    assert "motion_bucket_id" in text.out and "image-to-video" in text.out


def test_models_show_unknown_suggests_close_names(cli) -> None:
    result = cli("models", "show", "zeroscop")
    assert result.code == 1
    assert "zeroscope" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_repo_id_resolves_to_its_card(hub, cli, workdir) -> None:
    hub("modelscope")
    result = cli(
        "generate",
        "a kite",
        "--model",
        MODELSCOPE,
        "--seed",
        "1",
        "--json",
        "-o",
        "a.mp4",
        "--quiet",
        *SMALL,
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"]["name"] == "modelscope"


def test_an_uncarded_repo_in_the_cache_runs_from_its_own_configs(cli, workdir) -> None:
    place(HUB_CACHE, "someone/my-t2v", BUILDERS[MODELSCOPE])
    shown = json.loads(cli("models", "show", "someone/my-t2v", "--json").out)
    assert shown["pipeline_class"] == "TextToVideoSDPipeline"
    assert shown["variant"] is None  # the folder has full-precision weights beside the fp16 ones
    result = cli(
        "generate",
        "a kite",
        "--model",
        "someone/my-t2v",
        "--seed",
        "1",
        "--json",
        "-o",
        "a.mp4",
        "--quiet",
        *SMALL,
    )
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["model"]["repo_id"] == "someone/my-t2v"
    assert len(record["model"]["revision"]) == 40


def test_a_local_folder_runs(hub, cli, workdir) -> None:
    shutil.copytree(hub("animatediff"), workdir / "my model")
    result = cli(
        "generate",
        "a kite",
        "--model",
        str(workdir / "my model"),
        "--seed",
        "1",
        "--json",
        "-o",
        "a.mp4",
        "--quiet",
        *SMALL,
    )
    # a Stable Diffusion folder is an image model: refused, saying how it can run (as a base)
    assert result.code == 1 and "Stable Diffusion image model" in result.err
    assert f"--base {workdir / 'my model'}" in result.err

    shutil.copytree(hub("cogvideox-2b"), workdir / "cog")
    result = cli(
        "generate",
        "a kite",
        "--model",
        "cog",
        "--seed",
        "1",
        "--json",
        "-o",
        "b.mp4",
        "--quiet",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "9",
        "--num-inference-steps",
        "2",
    )
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["model"]["pipeline_class"] == "CogVideoXPipeline"
    assert record["model"]["revision"] == "local"


@pytest.mark.parametrize(
    ("library", "expected"),
    [("my_module", "run code"), ("diffusers", None), ("stable_diffusion", None)],
)
def test_a_model_index_pointing_at_outside_code_is_refused(
    hub, cli, workdir, library, expected
) -> None:
    folder = workdir / "model"
    shutil.copytree(hub("modelscope"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = [library, "UNet3DConditionModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    result = cli("generate", "a kite", "--model", "model", "-o", "a.mp4", "--quiet", *SMALL)
    if expected is None:
        assert "run code" not in result.err
    else:
        assert result.code == 1 and expected in result.err
        assert not (workdir / "a.mp4").exists()


def test_pickle_weights_are_never_loaded(hub, cli, workdir) -> None:
    folder = workdir / "model"
    shutil.copytree(hub("modelscope"), folder)
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    result = cli("generate", "a kite", "--model", "model", "-o", "a.mp4", "--quiet", *SMALL)
    assert result.code == 1
    assert "safetensors" in result.err and len(result.err.strip().splitlines()) == 1


def test_pickle_weights_are_refused_in_one_line_by_the_real_command(hub, workdir) -> None:
    """As a user runs it (a new process, libraries' own logging included): one line, no more."""
    folder = workdir / "model"
    shutil.copytree(hub("modelscope"), folder)
    for weights in folder.glob("*/*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    env = {**os.environ, "HF_HUB_CACHE": str(HUB_CACHE), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "promptreel", "generate", "a kite", "--model", "model"]
    result = subprocess.run(command + SMALL, capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "safetensors" in result.stderr


@pytest.mark.parametrize(
    "index", ["[1, 2]", '{"_class_name": ["evil_lib", "X"]}', "not json", "[" * 100_000]
)
def test_a_malformed_model_index_is_refused_in_one_line(cli, workdir, index) -> None:
    (workdir / "broken").mkdir()
    (workdir / "broken" / "model_index.json").write_text(index)
    for args in (["models", "show", "broken"], ["generate", "a kite", "--model", "broken"]):
        result = cli(*args)
        assert result.code == 1
        assert "model_index.json" in result.err and len(result.err.strip().splitlines()) == 1


def test_models_shows_each_size_in_its_unit(cli) -> None:
    """The 2.7 M parameters of the shipped model are not `0.0B`; a 1.7 B model stays in B."""
    rows = {line.split()[0]: line for line in cli("models").out.splitlines()[1:]}
    assert re.search(r"\s2\.\dM\s", rows["shapes"]), rows["shapes"]
    assert re.search(r"\s1\.\dB\s", rows["modelscope"]), rows["modelscope"]
