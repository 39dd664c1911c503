"""Training: the baby recipe learns, resumes exactly, and exports a model plain diffusers runs.

One uninterrupted baby run (about 20 s on one core) is shared by the tests; the resume test
trains the same recipe again, interrupted twice (once per stage), and must log the same losses
and write the same weights, bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from promptreel.errors import InvalidRequest
from promptreel.train import model as M
from promptreel.train.config import TrainConfig, config_from_dict, load_config
from promptreel.train.shapes import write_dataset
from promptreel.train.trainer import export_model, load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
BABY = ROOT / "configs" / "baby.toml"


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

    def stop_at(stop: int):
        def progress(step: int, total: int, loss: float, eta: float) -> None:
            if step == stop:
                raise KeyboardInterrupt

        return progress

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


@pytest.mark.parametrize(
    "name", ["baby.toml", "shapes.toml", "shapes-f4.toml", "shapes-centred.toml"]
)
def test_checked_in_configs_load(name: str) -> None:
    config = load_config(ROOT / "configs" / name)
    assert config.vae_factor in (4, 8)
    assert isinstance(config.vae_channels, tuple)
