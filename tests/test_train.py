"""Training: the baby recipe learns, resumes exactly, and exports a model plain diffusers runs.

One uninterrupted baby run (about 20 s on one core) is shared by the tests; the resume test
trains the same recipe again, interrupted twice (once per stage), and must log the same losses
and write the same weights, bit for bit. The stop tests run a few steps on that run's VAE: a run
stopped by its config must be the run stopped by hand, and go on as if it had never stopped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from promptreel.errors import InvalidRequest
from promptreel.train import model as M
from promptreel.train.config import TrainConfig, config_from_dict, load_config, run_path
from promptreel.train.shapes import write_dataset
from promptreel.train.trainer import export_model, load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
BABY = ROOT / "configs" / "baby.toml"
CONFIGS = ["baby.toml", "shapes.toml", "shapes-f4.toml", "shapes-centred.toml"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "shapes"
    write_dataset(folder, count=32, seed=3)
    return folder


def baby(dataset: Path, out: Path) -> TrainConfig:
    config = load_config(BABY)
    return replace(config, data=str(dataset), data_count=0, out=str(out))


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one uninterrupted baby run."""
    out = tmp_path_factory.mktemp("run")
    config = baby(dataset, out)
    config.sample_every = config.unet_steps  # and one grid of sample videos at the end
    train(config)
    return out


def losses(out: Path, stage: str) -> list[float]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["stage"] == stage]


def test_baby_run_lowers_both_losses(run: Path) -> None:
    config = load_config(BABY)
    for stage, steps in (("vae", config.vae_steps), ("unet", config.unet_steps)):
        values = losses(run, stage)
        assert len(values) == steps
        first, last = sum(values[:10]) / 10, sum(values[-10:]) / 10
        assert last < 0.8 * first, f"{stage} loss went from {first:.3f} to {last:.3f}"
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "samples" / f"step-{config.unet_steps:06d}.mp4").exists()


def test_interrupted_run_resumes_exactly(dataset: Path, run: Path, tmp_path: Path) -> None:
    config = baby(dataset, tmp_path)
    stops = [config.checkpoint_every + 5, config.vae_steps + 2 * config.checkpoint_every + 3]
    seen: list[int] = []

    def interrupt(step: int, total: int, loss: float, eta: float) -> None:
        seen.append(step)
        assert total == config.vae_steps + config.unet_steps and eta >= 0
        if stops and step == stops[0]:
            stops.pop(0)
            raise KeyboardInterrupt

    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train(config, progress=interrupt)
    train(config, progress=interrupt)

    assert not stops and seen[-1] == config.vae_steps + config.unet_steps
    for stage in ("vae", "unet"):
        assert losses(tmp_path, stage) == losses(run, stage)
    for part in ("unet", "vae"):
        file = Path(part) / "diffusion_pytorch_model.safetensors"
        assert (tmp_path / "model" / file).read_bytes() == (run / "model" / file).read_bytes()


def test_resume_refuses_a_changed_recipe(dataset: Path, tmp_path: Path) -> None:
    config = replace(baby(dataset, tmp_path), vae_steps=2, unet_steps=0)
    train(config)
    with pytest.raises(InvalidRequest, match="`unet_lr`"):
        train(replace(config, unet_lr=0.1))


def test_vae_from_reuses_the_latents_of_the_same_data_and_encodes_other_data(
    dataset: Path, run: Path, tmp_path: Path
) -> None:
    same = replace(baby(dataset, tmp_path / "same"), vae_from=str(run), unet_steps=1)
    train(same)
    assert (tmp_path / "same" / "latents.pt").read_bytes() == (run / "latents.pt").read_bytes()

    centred = tmp_path / "centred"
    write_dataset(centred, count=6, seed=4, spread=0.0)
    other = replace(baby(centred, tmp_path / "other"), vae_from=str(run), unet_steps=1)
    train(other)
    latents = torch.load(tmp_path / "other" / "latents.pt")["latents"]
    assert latents.shape[:3] == (6, 4, 16)
    saved = torch.load(tmp_path / "other" / "checkpoint.pt", weights_only=False)
    rows = [json.loads(line) for line in (centred / "metadata.jsonl").read_text().splitlines()]
    assert saved["captions"] == [row["caption"] for row in rows]
    reused = torch.load(run / "checkpoint.pt", weights_only=False)["vae"]
    assert all(torch.equal(saved["vae"][key], value) for key, value in reused.items())


def test_vae_from_takes_the_finished_vae_of_a_run_stopped_before_a_unet_checkpoint(
    dataset: Path, run: Path, tmp_path: Path
) -> None:
    early = baby(dataset, tmp_path / "early")
    later = replace(baby(dataset, tmp_path / "later"), vae_from=early.out, unet_steps=1)
    with pytest.raises(KeyboardInterrupt):
        train(early, progress=stop_at(early.checkpoint_every + 5))
    with pytest.raises(InvalidRequest, match="VAE stage is not finished"):
        train(later)
    with pytest.raises(KeyboardInterrupt):
        train(early, progress=stop_at(early.vae_steps + 1))
    assert load_checkpoint(tmp_path / "early" / "checkpoint.pt")["stage"] == "vae"
    with pytest.raises(InvalidRequest, match="another `vae_channels`"):
        train(replace(later, vae_channels=(16, 32, 32)))

    train(later)
    saved = torch.load(tmp_path / "later" / "checkpoint.pt", weights_only=False)["vae"]
    finished = torch.load(run / "checkpoint.pt", weights_only=False)["vae"]
    assert saved.keys() == finished.keys()
    assert all(torch.equal(saved[key], value) for key, value in finished.items())


def test_high_noise_phase_trains_the_first_frames_at_high_noise_only(
    dataset: Path, run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptreel.train import trainer

    seen: list[list[torch.Tensor]] = []  # [x0, t] of every UNet step
    real_loss, real_unet = trainer.diffusion_loss, M.build_unet

    def build_unet(*args, **kwargs):
        unet = real_unet(*args, **kwargs)
        unet.register_forward_pre_hook(lambda _, inputs: seen[-1].append(inputs[1]))
        return unet

    def diffusion_loss(unet, text_encoder, x0, *args, **kwargs):
        seen.append([x0])
        return real_loss(unet, text_encoder, x0, *args, **kwargs)

    monkeypatch.setattr(M, "build_unet", build_unet)
    monkeypatch.setattr(trainer, "diffusion_loss", diffusion_loss)
    config = replace(baby(dataset, tmp_path), vae_from=str(run), unet_steps=6)
    config = replace(config, high_noise_steps=3, high_noise_tmin=900, high_noise_frames=4)
    train(config)

    latents = torch.load(tmp_path / "latents.pt")["latents"]
    high, rest = seen[:3], seen[3:]
    assert len(rest) == 3
    for x0, t in high:
        assert x0.shape[2] == 4 and int(t.min()) >= 900
        assert any(torch.equal(x0[0], clip[:, :4]) for clip in latents)  # from the first frame
    assert all(x0.shape[2] == config.num_frames for x0, _ in rest)
    assert int(torch.cat([t for _, t in rest]).min()) < 900


def test_export_runs_in_plain_diffusers_offline(run: Path) -> None:
    from diffusers import DiffusionPipeline, TextToVideoSDPipeline

    folder = run / "model"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "TextToVideoSDPipeline"
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {"tokenizer/vocab.json", "tokenizer/merges.txt"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".ckpt", ".pkl"))]
    assert M.folder_size(folder) <= 25 * 2**20

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert isinstance(pipe, TextToVideoSDPipeline)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        "a red circle moving right",
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames
    assert frames.shape == (1, 16, 64, 64, 3)
    assert frames.min() >= 0 and frames.max() <= 1


def test_export_model_rewrites_the_same_folder_from_the_checkpoint(
    run: Path, tmp_path: Path
) -> None:
    folder = export_model(run, tmp_path / "again")
    for file in (run / "model").rglob("*"):
        if file.is_file():
            assert (folder / file.relative_to(run / "model")).read_bytes() == file.read_bytes()


def test_export_model_writes_the_raw_weights_on_request(run: Path, tmp_path: Path) -> None:
    from diffusers import UNet3DConditionModel

    raw = load_checkpoint(run / "checkpoint.pt")["unet"]
    folder = export_model(run, tmp_path, ema=False)
    exported = UNet3DConditionModel.from_pretrained(folder / "unet").state_dict()
    averaged = UNet3DConditionModel.from_pretrained(run / "model" / "unet").state_dict()
    assert all(torch.equal(exported[k], v) for k, v in raw.items())
    assert not all(torch.equal(averaged[k], v) for k, v in raw.items())


def test_tokenizer_gives_caption_words_one_token_and_takes_any_text(tmp_path: Path) -> None:
    captions = ["a red circle moving right", "A yellow triangle, going up on a black background"]
    tokenizer = M.write_tokenizer(tmp_path, M.caption_words(captions), max_length=16)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("a yellow triangle going up").input_ids)
    assert tokens == [M.BOS, "a</w>", "yellow</w>", "triangle</w>", "going</w>", "up</w>", M.EOS]
    ids = M.tokenize(tokenizer, ["Ünïcode 日本 prompt!! 123 " * 5, ""])
    assert ids.shape == (2, 16)
    assert tokenizer.unk_token_id not in ids[0, 1:-1].tolist()  # bytes, never unknown


def test_config_refuses_an_unknown_key_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('out = "x"\nvae_stpes = 3\n')
    with pytest.raises(InvalidRequest) as error:
        load_config(path)
    assert (
        str(error.value)
        == f"config {str(path)!r}: unknown key `vae_stpes`; did you mean `vae_steps`?"
    )
    with pytest.raises(InvalidRequest, match="`unet_lr` must be float, not 'fast'"):
        config_from_dict({"unet_lr": "fast"})
    with pytest.raises(InvalidRequest, match="`prediction_type` must be epsilon or v_prediction"):
        config_from_dict({"prediction_type": "x0"})
    with pytest.raises(InvalidRequest, match="`high_noise_tmin` must be between 0 and 999"):
        config_from_dict({"high_noise_tmin": 1000})


@pytest.mark.parametrize("name", CONFIGS)
def test_checked_in_configs_load_and_keep_their_runs_out_of_the_repository(
    name: str, promptreel_home: Path
) -> None:
    config = load_config(ROOT / "configs" / name)
    assert config.vae_factor in (4, 8)
    assert isinstance(config.vae_channels, tuple)
    for key in ("out", "data", "vae_from"):
        if getattr(config, key):
            assert run_path(getattr(config, key)).parent == promptreel_home / "runs"


def test_the_checked_in_recipe_stops_where_the_shipped_run_stopped() -> None:
    """The shipped weights: the VAE of shapes.toml after its 2500 steps, before any UNet step;
    then shapes-centred.toml on that VAE, at UNet step 3500 of its 6000-step schedule."""
    first = load_config(ROOT / "configs" / "shapes.toml")
    centred = load_config(ROOT / "configs" / "shapes-centred.toml")
    assert (first.vae_steps, first.unet_stop, first.seed) == (2500, 0, 1337)
    assert centred.vae_from == first.out
    assert (centred.unet_steps, centred.unet_stop, centred.seed) == (6000, 3500, 1337)
    assert centred.unet_stop % centred.checkpoint_every == 0  # as the run stopped: at a checkpoint


def test_run_names_live_in_the_user_data_folder_and_relative_paths_are_refused(
    tmp_path: Path, promptreel_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_path("shapes") == promptreel_home / "runs" / "shapes"
    assert run_path(str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.setenv("PROMPTREEL_RUNS", str(tmp_path / "scratch"))
    assert run_path("shapes") == tmp_path / "scratch" / "shapes"
    for key, value in (("out", "runs/shapes"), ("data", "./data"), ("vae_from", "../shapes")):
        with pytest.raises(InvalidRequest, match=f"`{key}` must be a run name .* not '"):
            config_from_dict({key: value})
    with pytest.raises(InvalidRequest, match="`stop_after_unet_step` must be -1"):
        config_from_dict({"unet_steps": 10, "stop_after_unet_step": 11})


def same(a: Any, b: Any) -> bool:
    """Equal, tensors bit for bit, through dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def same_state(a: Path, b: Path) -> bool:
    """Two checkpoints hold the same run: everything but the config (out, stop) and seconds."""
    first, second = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert first.keys() == second.keys()
    return all(same(first[k], second[k]) for k in first if k not in ("config", "seconds"))


def weights(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*.safetensors")}


def stop_at(stop: int):
    """A progress callback that stops the run by hand (Ctrl-C) at global step `stop`."""

    def progress(step: int, total: int, loss: float, eta: float) -> None:
        if step == stop:
            raise KeyboardInterrupt

    return progress


def test_a_run_stopped_by_its_config_is_the_run_stopped_by_hand_and_goes_on_unchanged(
    dataset: Path, run: Path, tmp_path: Path
) -> None:
    base = replace(baby(dataset, tmp_path / "whole"), vae_from=str(run), unet_steps=12)
    base = replace(base, checkpoint_every=4)
    whole = train(base)  # never stopped: the reference

    # By hand, as the shipped run was: Ctrl-C just after the checkpoint of UNet step 8.
    hand = replace(base, out=str(tmp_path / "hand"))
    with pytest.raises(KeyboardInterrupt):
        train(hand, progress=stop_at(base.vae_steps + 9))

    # By the config: first at step 6 (between two checkpoints), then at step 8.
    stopped = replace(base, out=str(tmp_path / "config"), stop_after_unet_step=6)
    assert train(stopped) == tmp_path / "config" / "model"
    assert len(losses(tmp_path / "config", "unet")) == 6
    folder = train(replace(stopped, stop_after_unet_step=8))
    assert same_state(tmp_path / "config", tmp_path / "hand")
    assert losses(tmp_path / "config", "unet") == losses(tmp_path / "hand", "unet")[:8]
    # What it hands on is the EMA export of that checkpoint, and running it again changes nothing.
    assert weights(folder) == weights(export_model(tmp_path / "hand", tmp_path / "by-hand"))
    log = (tmp_path / "config" / "log.jsonl").read_bytes()
    assert train(replace(stopped, stop_after_unet_step=8)) == folder
    assert (tmp_path / "config" / "log.jsonl").read_bytes() == log
    with pytest.raises(InvalidRequest, match="past `stop_after_unet_step` = 4"):
        train(replace(stopped, stop_after_unet_step=4))

    # Without the stop it goes on exactly as the run that never stopped.
    train(replace(stopped, stop_after_unet_step=-1))
    assert losses(tmp_path / "config", "unet") == losses(tmp_path / "whole", "unet")
    assert weights(tmp_path / "config" / "model") == weights(whole)
    assert load_checkpoint(tmp_path / "config" / "checkpoint.pt")["stage"] == "done"


def test_a_run_stopped_after_its_vae_hands_on_the_vae_and_the_next_stage_starts_from_it(
    tmp_path: Path,
) -> None:
    write_dataset(tmp_path / "data", count=8, seed=5)
    base = replace(baby(tmp_path / "data", tmp_path / "vae"), vae_steps=6, unet_steps=3)
    base = replace(base, checkpoint_every=4)
    stopped = replace(base, stop_after_unet_step=0)
    handed_on = train(stopped)
    assert handed_on == tmp_path / "vae" / "vae"
    assert not (tmp_path / "vae" / "latents.pt").exists()
    assert not (tmp_path / "vae" / "model").exists()
    hand = replace(base, out=str(tmp_path / "hand"))
    with pytest.raises(KeyboardInterrupt):
        train(hand, progress=stop_at(base.vae_steps + 1))  # Ctrl-C at UNet step 1
    assert same_state(tmp_path / "vae", tmp_path / "hand")
    assert weights(handed_on) == weights(tmp_path / "hand" / "vae")

    # A fresh machine gets only vae/ (float32, no checkpoint): the next stage is the same, bit
    # for bit, as the one that starts from the run's checkpoint.
    shutil.copytree(handed_on, tmp_path / "moved" / "vae")
    assert not (tmp_path / "moved" / "checkpoint.pt").exists()
    after = replace(base, vae_from=str(tmp_path / "moved"))
    from_folder = train(replace(after, out=str(tmp_path / "from-folder")))
    from_run = train(replace(after, out=str(tmp_path / "from-run"), vae_from=stopped.out))
    assert weights(from_folder) == weights(from_run)
    assert losses(tmp_path / "from-folder", "unet") == losses(tmp_path / "from-run", "unet")

    # A float16 export hands on half the bytes; the VAE it gives is rounded, not the same.
    half = export_model(tmp_path / "from-run", tmp_path / "half", half=True)
    vae16 = load_file(half / "vae" / M.WEIGHTS)
    assert all(value.dtype == torch.float16 for value in vae16.values())
    assert M.folder_size(half / "unet") < 0.6 * M.folder_size(from_run / "unet")
    from_half = replace(after, out=str(tmp_path / "from-half"), vae_from=str(half), unet_steps=0)
    taken = load_file(train(from_half) / M.WEIGHTS)  # no UNet steps: it hands on the VAE it took
    exact = load_checkpoint(tmp_path / "from-run" / "checkpoint.pt")["vae"]
    assert all(torch.equal(taken[k], vae16[k].float()) for k in exact)
    assert not all(torch.equal(taken[k], exact[k]) for k in exact)
    with pytest.raises(InvalidRequest, match="another `vae_channels`"):
        train(replace(after, out=str(tmp_path / "other"), vae_channels=(16, 32, 32)))


def test_no_training_state_can_enter_git() -> None:
    """runs/ and *.pt are ignored, and nothing tracked is over 1 MB but the shipped weights."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)

    for path in ("runs/shapes/checkpoint.pt", "runs/shapes/log.jsonl", "configs/state.pt"):
        assert git("check-ignore", "-q", "--no-index", path).returncode == 0, path
    tracked = git("ls-files", "-z").stdout.split("\0")
    large = [
        name
        for name in tracked
        if name
        and (ROOT / name).is_file()
        and (ROOT / name).stat().st_size > 1_000_000
        and not name.startswith("src/promptreel/weights/shapes/")
    ]
    assert not large, f"over 1 MB in git: {large}"
    assert not [name for name in tracked if name.startswith("runs/")]
