"""`promptreel download`: exactly the files a pipeline loads, safetensors only, shown up front.

The hub is replaced by a fake serving a tiny build (this machine has no network); the cache it
fills is then used by `generate`, offline, as a real download would be.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny import BUILDERS

import promptreel.models.download as download
from promptreel.errors import ModelNotFound

SMALL = ["--height", "32", "--width", "32", "--num-frames", "3", "--num-inference-steps", "2"]


class FakeHub:
    """model_info and hf_hub_download over local folders, writing the hub's cache layout."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.repos: dict[str, Path] = {}
        self.fetched: list[tuple[str, str]] = []

    def model_info(self, repo: str, revision: str, files_metadata: bool) -> SimpleNamespace:
        root = self.repos[repo]
        files = [p for p in root.rglob("*") if p.is_file()]
        siblings = [
            SimpleNamespace(rfilename=str(p.relative_to(root)), size=p.stat().st_size)
            for p in files
        ]
        return SimpleNamespace(siblings=siblings)

    def hf_hub_download(self, repo: str, name: str, revision: str) -> str:
        self.fetched.append((repo, name))
        commit = hashlib.sha1(repo.encode()).hexdigest()
        root = self.cache / f"models--{repo.replace('/', '--')}"
        target = root / "snapshots" / commit / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.repos[repo] / name, target)
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text(commit)
        return str(target)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    hub = FakeHub(cache)
    monkeypatch.setattr(download, "HfApi", lambda: hub)
    monkeypatch.setattr(download, "hf_hub_download", hub.hf_hub_download)
    return hub


def _repo(tmp_path: Path, repo_id: str) -> Path:
    folder = tmp_path / "remote" / repo_id
    BUILDERS[repo_id](folder)
    return folder


def test_fetches_only_what_the_pipeline_loads_then_generates_offline(
    fake_hub, tmp_path, cli, workdir
) -> None:
    repo = _repo(tmp_path, "damo-vilab/text-to-video-ms-1.7b")
    # what real repos carry beside the diffusers folders, none of it needed
    (repo / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    (repo / "text_encoder" / "pytorch_model.fp16.bin").write_bytes(b"pickle")
    (repo / "VQGAN_autoencoder.pth").write_bytes(b"pickle")
    (repo / "README.md").write_text("card")
    fake_hub.repos["damo-vilab/text-to-video-ms-1.7b"] = repo

    result = cli("download", "modelscope", "--yes")

    assert result.code == 0, result.err
    assert "GB into" in result.err.splitlines()[0]  # the size, before anything else
    names = {name for _, name in fake_hub.fetched}
    assert not any(n.endswith((".bin", ".pth", ".md")) for n in names)
    weights = {n for n in names if n.endswith(".safetensors")}
    assert weights and all(".fp16." in n for n in weights)  # the card's variant only
    assert {"model_index.json", "scheduler/scheduler_config.json"} <= names
    assert any(n.startswith("tokenizer/") for n in names)

    shown = json.loads(cli("models", "show", "modelscope", "--json").out)
    assert shown["downloaded"] is True
    made = cli(
        "generate",
        "a kite",
        "--model",
        "modelscope",
        "--seed",
        "1",
        "-o",
        "a.mp4",
        "--quiet",
        *SMALL,
    )
    assert made.code == 0, made.err


def test_animatediff_skips_what_its_pipeline_does_not_take(fake_hub, tmp_path, cli) -> None:
    for repo in ("emilianJR/epiCRealism", "guoyww/animatediff-motion-adapter-v1-5-2"):
        fake_hub.repos[repo] = _repo(tmp_path, repo)
    assert cli("download", "animatediff", "--yes").code == 0
    names = {(repo.split("/")[0], name.split("/")[0]) for repo, name in fake_hub.fetched}
    assert ("emilianJR", "unet") in names
    assert ("emilianJR", "safety_checker") not in names  # 1.2 GB it never uses
    assert any(repo.startswith("guoyww") for repo, _ in fake_hub.fetched)
    made = cli(
        "generate",
        "a kite",
        "--model",
        "animatediff",
        "-o",
        str(tmp_path / "a.mp4"),
        "--quiet",
        *SMALL,
    )
    assert made.code == 0, made.err


def _pickle_only(folder: Path) -> Path:
    """Turn every safetensors file into the .bin the real Zeroscope repos publish."""
    for weights in list(folder.rglob("*.safetensors")):
        name = weights.name.replace("model.safetensors", "pytorch_model.bin")
        name = name.replace("diffusion_pytorch_pytorch_model", "diffusion_pytorch_model")
        torch.save(load_file(weights), weights.with_name(name))
        weights.unlink()
    return folder


def test_a_pickle_only_cache_is_converted_offline(fake_hub, tmp_path, cli, workdir) -> None:
    from hfcache import place

    place(
        fake_hub.cache,
        "cerspense/zeroscope_v2_576w",
        lambda out: _pickle_only(_build(out, "cerspense/zeroscope_v2_576w")),
    )
    made = cli("generate", "a kite", "--model", "zeroscope", "-o", "a.mp4", "--quiet", *SMALL)
    assert made.code == 1 and "promptreel download zeroscope" in made.err
    assert cli("download", "zeroscope", "--yes").code == 0  # offline: converts in place
    assert fake_hub.fetched == []
    made = cli("generate", "a kite", "--model", "zeroscope", "-o", "a.mp4", "--quiet", *SMALL)
    assert made.code == 0, made.err


def _build(out: Path, repo_id: str) -> Path:
    BUILDERS[repo_id](out)
    return out


def test_a_pickle_only_repo_is_converted_to_safetensors(fake_hub, tmp_path, cli, workdir) -> None:
    repo = _pickle_only(_repo(tmp_path, "cerspense/zeroscope_v2_576w"))
    fake_hub.repos["cerspense/zeroscope_v2_576w"] = repo

    assert cli("download", "zeroscope", "--yes").code == 0
    snapshot = next((fake_hub.cache / "models--cerspense--zeroscope_v2_576w").glob("snapshots/*"))
    assert (snapshot / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (snapshot / "text_encoder" / "model.safetensors").exists()
    made = cli("generate", "a kite", "--model", "zeroscope", "-o", "a.mp4", "--quiet", *SMALL)
    assert made.code == 0, made.err


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/promptreel-test-pickle-ran")


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path) -> None:
    MARKER.unlink(missing_ok=True)
    (tmp_path / "unet").mkdir()
    with open(tmp_path / "unet" / "diffusion_pytorch_model.bin", "wb") as f:
        pickle.dump({"weight": _Exploit()}, f)
    with pytest.raises(ModelNotFound, match="more than tensors"):
        download.convert_pickles(tmp_path)
    assert not MARKER.exists()
    assert not (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_offline_download_says_how_to_fix_it(cli, tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    # an empty cache: other tests may have placed modelscope's tiny copy in the shared one
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    result = cli("download", "modelscope", "--yes")
    assert result.code == 1
    assert "HF_HUB_OFFLINE" in result.err and len(result.err.strip().splitlines()) == 1


def test_unknown_model_is_refused_before_any_request(cli) -> None:
    result = cli("download", "modelscop")
    assert result.code == 1 and "modelscope" in result.err


def test_control_brings_its_controlnet_and_estimators(fake_hub, tmp_path, cli, workdir) -> None:
    """`download MODEL --control KIND` fetches what drawing and using those images needs, and
    then the whole control request runs offline."""
    repos = (
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "lllyasviel/control_v11f1p_sd15_depth",
        "depth-anything/Depth-Anything-V2-Small-hf",
    )
    for repo in repos:
        fake_hub.repos[repo] = _repo(tmp_path, repo)
    assert cli("download", "text2video-zero", "--control", "depth", "--yes").code == 0
    fetched = {repo for repo, _ in fake_hub.fetched}
    assert fetched == set(repos)
    controlnet = [n for r, n in fake_hub.fetched if r == repos[1] and "safetensors" in n]
    assert controlnet == ["diffusion_pytorch_model.safetensors"]  # not the fp16 twin too
    import promptreel

    promptreel.Video(np.full((3, 64, 64, 3), 90, np.uint8), fps=8.0).save(workdir / "in.mp4")
    made = cli(
        "generate", "a kite", "--model", "text2video-zero", "--control", "depth", "--video",
        "in.mp4", "-o", "a.mp4", "--quiet", "--height", "64", "--width", "64",
        "--num-inference-steps", "2",
    )  # fmt: skip
    assert made.code == 0, made.err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["modelscope", "--control", "canny"], "takes no control"),
        (["text2video-zero", "--control", "edges"], "unknown --control 'edges'"),
    ],
)
def test_control_download_refusals(cli, args, words) -> None:
    result = cli("download", *args, "--yes")
    assert result.code == 1 and words in result.err


def test_a_stable_diffusion_base_downloads_even_when_part_of_it_is_cached(
    fake_hub, tmp_path, cli
) -> None:
    """A community SD 1.5 checkpoint is no video model, but it is a --base: `download` fetches
    it (again, after a cut-short download), and `models show` says how to use it."""
    repo = "someone/sd15-finetune"
    fake_hub.repos[repo] = tmp_path / "remote" / repo
    BUILDERS["emilianJR/epiCRealism"](fake_hub.repos[repo])
    assert cli("download", repo, "--yes").code == 0
    assert cli("download", repo, "--yes").code == 0  # cached now: still fine
    shown = cli("models", "show", repo)
    assert shown.code == 1 and f"--base {repo}" in shown.err
