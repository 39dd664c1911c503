"""The fidelity detector and evaluation (`promptreel eval fidelity`), without any model.

The detector is checked on rendered clips, where the truth is known (the issue asks for 99 %),
also noised and blurred the way a generated video is; on clips made wrong on purpose, so that a
broken detector could not pass by answering the prompt; and `evaluate` runs against a stand-in
for `promptreel.generate` that renders the prompt (or renders it wrong).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import promptreel
from promptreel.errors import InvalidRequest
from promptreel.eval import fidelity
from promptreel.eval.fidelity import detect, evaluate, evaluate_ground_truth
from promptreel.train import shapes
from promptreel.video import Video

WORLD = shapes.vocabulary("pink,cross")  # the shipped world and every opt-in concept
NEW = [  # the combinations with pink or a cross (44)
    combination
    for combination in itertools.product(*WORLD, shapes.DIRECTIONS)
    if {"pink", "cross"} & set(combination)
]


def clip(colour: str, shape: str, direction: str, seed: int = 0) -> shapes.Clip:
    rng = np.random.default_rng(seed)
    return shapes.sample_clip(rng, colour=colour, shape=shape, direction=direction)


def assert_accurate(result: dict, least: float = 0.99) -> None:
    low = {key: value for key, value in result["accuracy"].items() if value < least}
    assert not low, f"accuracy below {least}: {low}; first failures: {result['failures'][:3]}"


def test_detector_is_right_on_ground_truth() -> None:
    result = evaluate_ground_truth(500, seed=0)
    assert result["count"] == 500
    assert set(result["accuracy"]) == {"colour", "shape", "direction", "joint"}
    assert_accurate(result)


def test_detector_is_right_on_noisy_blurred_ground_truth() -> None:
    # Generated videos are soft and grainy: Gaussian noise of 10 (of 255) and a 1 px blur.
    result = evaluate_ground_truth(500, seed=1, noise=10.0, blur=1.0)
    assert_accurate(result)


@pytest.mark.parametrize(("noise", "blur"), [(0.0, 0.0), (10.0, 1.0), (10.0, 2.0)])
def test_detector_sees_every_new_concept_on_ground_truth(noise: float, blur: float) -> None:
    """Pink and the cross, in every combination with the old concepts: all right, clean, and
    noised and blurred as a generated video is (sigma 2: the detector's stated range)."""
    rng = np.random.default_rng(int(blur * 10))
    wrong = []
    for colour, shape, direction in NEW:
        truth = shapes.sample_clip(rng, colour=colour, shape=shape, direction=direction)
        seen = detect(fidelity.degrade(shapes.render(truth), rng, noise=noise, blur=blur))
        if seen.attributes() != {"colour": colour, "shape": shape, "direction": direction}:
            wrong.append((truth, seen))
    assert not wrong, f"{len(wrong)} of {len(NEW)} wrong: {wrong[:2]}"


def test_detector_is_right_on_ground_truth_with_the_new_concepts() -> None:
    # The world with pink and crosses drawn among the old: nothing old is taken for new.
    result = evaluate_ground_truth(300, seed=2, noise=10.0, blur=1.0, with_="pink,cross")
    assert_accurate(result, least=1.0)
    with pytest.raises(InvalidRequest, match="`with` takes pink, cross"):
        evaluate_ground_truth(10, with_="magenta")


@pytest.mark.parametrize("colour", ["pink", "red", "purple", "white", "orange"])
def test_pink_and_its_neighbours_stay_apart_dimmed_or_bright(colour: str) -> None:
    """Pink's nearest colours, as a dim or bright generator draws them (x0.55 to x1.15)."""
    frames = shapes.render(clip(colour, "square", "left", seed=4)).astype(float)
    for gain in (0.55, 0.8, 1.15):
        changed = np.clip(np.rint(frames * gain), 0, 255).astype(np.uint8)
        assert detect(changed).colour == colour, gain


def test_a_cross_with_a_corner_filled_is_no_cross() -> None:
    truth = shapes.Clip("pink", "cross", "right", 18, 1.0, 20.0, 32.0)  # box rows 23-40
    frames = shapes.render(truth)
    assert detect(frames).shape == "cross"
    assert detect(frames.transpose(0, 2, 1, 3)).shape == "cross"  # moving down
    for t, frame in enumerate(frames):  # the top-left ninth of the box, moving with it
        left = round(truth.x - 9 + truth.speed * t)
        frame[23:29, left : left + 6] = shapes.EXTRA_COLOURS["pink"]
    assert detect(frames).shape != "cross"


@pytest.mark.parametrize("direction", shapes.DIRECTIONS)
def test_reversed_frames_move_the_other_way(direction: str) -> None:
    frames = shapes.render(clip("orange", "circle", direction, seed=3))
    assert detect(frames).direction == direction
    assert detect(frames[::-1]).direction == shapes.OPPOSITE_DIRECTION[direction]


def test_swapped_channels_change_the_colour() -> None:
    red = shapes.render(clip("red", "square", "up"))
    assert detect(red).colour == "red"
    assert detect(red[..., ::-1]).colour == "blue"  # (220, 40, 40) -> (40, 40, 220)
    green = shapes.render(clip("green", "circle", "left"))
    assert detect(green).colour == "green"
    assert detect(green[..., [1, 0, 2]]).colour == "red"  # (40, 200, 60) -> (200, 40, 60)


def test_a_triangle_on_its_side_or_upside_down_is_no_triangle() -> None:
    frames = shapes.render(clip("yellow", "triangle", "right", seed=5))
    seen = detect(frames)
    assert (seen.shape, seen.direction) == ("triangle", "right")
    sideways = detect(frames.transpose(0, 2, 1, 3))  # points left, moves down
    assert sideways.direction == "down"
    assert sideways.shape != "triangle"
    assert detect(frames[:, ::-1]).shape != "triangle"  # points down, moves right


def test_every_colour_and_shape_is_told_apart() -> None:
    for colour in WORLD[0]:
        for shape in WORLD[1]:
            seen = detect(shapes.render(clip(colour, shape, "down", seed=11)))
            assert (seen.colour, seen.shape) == (colour, shape)


def test_a_still_shape_has_no_direction() -> None:
    frames = shapes.render(clip("white", "circle", "left"))
    still = np.repeat(frames[:1], len(frames), axis=0)
    seen = detect(still)
    assert seen.direction is None
    assert (seen.colour, seen.shape) == ("white", "circle")


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((16, 64, 64, 3), np.uint8),
        np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8),
        np.full((4, 16, 24, 3), 128, np.uint8),
        np.zeros((1, 1, 1, 3), np.uint8),
    ],
    ids=["black", "noise", "grey", "one-pixel"],
)
def test_no_shape_means_no_attributes(frames: np.ndarray) -> None:
    seen = detect(frames)
    assert seen.attributes() == {"colour": None, "shape": None, "direction": None}
    assert seen.valid_frames == 0
    assert seen.mask_area == (0,) * len(frames)


def test_diagnostics_measure_the_clip() -> None:
    truth = clip("purple", "square", "right", seed=2)
    seen = detect(shapes.render(truth))
    assert seen.valid_frames == shapes.FRAMES
    assert seen.displacement is not None
    assert seen.displacement[0] == pytest.approx(truth.speed, abs=0.05)
    assert seen.displacement[1] == pytest.approx(0.0, abs=0.05)
    assert seen.fill_ratio == pytest.approx(1.0, abs=0.03)
    assert np.median(seen.mask_area) == pytest.approx(truth.size**2, rel=0.1)
    json.dumps(seen.diagnostics())  # JSON-able, for fidelity.json


# ---------------------------------------------------------------------------------------------
# evaluate, with a stand-in for the model


def fake_generate(*, wrong_direction: bool = False, calls: list | None = None):
    """A `promptreel.generate` that renders the prompt's clip from the seed."""

    def generate(prompt: str, *, model: str, seed: int, **options: object) -> Video:
        if calls is not None:
            calls.append({"prompt": prompt, "model": model, "seed": seed, **options})
        colour, shape, direction = shapes.parse_prompt(prompt)
        if wrong_direction:
            direction = shapes.OPPOSITE_DIRECTION[direction]
        rng = np.random.default_rng(seed)
        frames = shapes.render(
            shapes.sample_clip(rng, colour=colour, shape=shape, direction=direction)
        )
        return Video(frames, fps=8.0, record={})

    return generate


def sheet_size(rows: int) -> tuple[int, int]:
    width = fidelity.MARGIN + fidelity.MAX_TILES * (fidelity.TILE + fidelity.GAP)
    return width, fidelity.HEADER_HEIGHT + rows * fidelity.ROW_HEIGHT


def row_margin(sheet: Image.Image, row: int) -> np.ndarray:
    top = fidelity.HEADER_HEIGHT + row * fidelity.ROW_HEIGHT
    return np.asarray(sheet)[top + 1 : top + fidelity.ROW_HEIGHT, : fidelity.MARGIN]


def has_red_cross(margin: np.ndarray) -> bool:
    return bool(np.all(margin == fidelity._WRONG, axis=-1).any())


def test_evaluate_all_84_combinations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    # raising=False: checking the attribute would import torch through the lazy __getattr__.
    monkeypatch.setattr(promptreel, "generate", fake_generate(calls=calls), raising=False)
    result = evaluate("shapes", seed=3, num_inference_steps=7, out_dir=tmp_path / "out")

    assert result["count"] == 84
    assert result["accuracy"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0, "joint": 1.0}
    prompts = [row["prompt"] for row in result["rows"]]
    combinations = {
        (r["expected"]["colour"], r["expected"]["shape"], r["expected"]["direction"])
        for r in result["rows"]
    }
    assert len(set(prompts)) == len(combinations) == 84
    assert "a red circle moving right" in prompts
    assert all(call["model"] == "shapes" and call["num_inference_steps"] == 7 for call in calls)
    assert len({call["seed"] for call in calls}) == 84  # a fresh seed each

    # The files: the same results as JSON, and a sheet with one row per video.
    written = json.loads((tmp_path / "out" / "fidelity.json").read_text())
    assert written == json.loads(json.dumps(result))
    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    assert sheet.format == "PNG"
    assert sheet.size == sheet_size(84)
    assert not any(has_red_cross(row_margin(sheet, row)) for row in range(84))

    # Row 5 shows every other frame of the 6th video, unscaled (64 px tiles).
    frames = fake_generate()(prompts[5], model="shapes", seed=result["rows"][5]["seed"]).frames
    top = fidelity.HEADER_HEIGHT + 5 * fidelity.ROW_HEIGHT + (fidelity.ROW_HEIGHT - 64) // 2
    left = fidelity.MARGIN + 3 * (64 + fidelity.GAP)
    tile = np.asarray(sheet.convert("RGB"))[top : top + 64, left : left + 64]
    assert np.array_equal(tile, frames[6])


def test_evaluate_is_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promptreel, "generate", fake_generate(), raising=False)
    prompts = ["a blue triangle moving up", "the white ball is drifting to the left"]

    def seeds(seed: int, folder: str) -> list[int]:
        result = evaluate(
            "shapes", prompts=prompts, seed=seed, per_combination=3, out_dir=tmp_path / folder
        )
        assert result["count"] == 6
        assert result["accuracy"]["joint"] == 1.0
        return [row["seed"] for row in result["rows"]]

    first = seeds(0, "a")
    assert seeds(0, "b") == first
    assert len(set(first)) == 6
    assert set(seeds(1, "c")).isdisjoint(first)
    assert Image.open(tmp_path / "a" / "contact_sheet.png").size == sheet_size(6)


def test_evaluate_scores_a_wrong_model_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promptreel, "generate", fake_generate(wrong_direction=True), raising=False)
    prompts = ["a red circle moving right", "a green square moving down"]
    result = evaluate("shapes", prompts=prompts, out_dir=tmp_path)
    assert result["accuracy"] == {"colour": 1.0, "shape": 1.0, "direction": 0.0, "joint": 0.0}
    assert [row["detected"]["direction"] for row in result["rows"]] == ["left", "up"]
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert all(has_red_cross(row_margin(sheet, row)) for row in range(2))


def test_evaluate_refuses_a_prompt_it_cannot_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list = []
    monkeypatch.setattr(promptreel, "generate", fake_generate(calls=calls), raising=False)
    with pytest.raises(ValueError, match="'a cat on a sofa'"):
        evaluate("shapes", prompts=["a red circle moving up", "a cat on a sofa"], out_dir=tmp_path)
    assert calls == []  # refused before generating anything
    assert not (tmp_path / "fidelity.json").exists()


def test_prompts_with_new_concepts_are_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fidelity.canonical_prompts()
    assert len(old) == 84 and not any("pink" in p or "cross" in p for p in old)
    new = fidelity.canonical_prompts("pink,cross")
    assert [shapes.parse_prompt(p) for p in new] == NEW  # each once, in the world's order
    assert fidelity.canonical_prompts(["cross", "pink"]) == new
    assert fidelity.canonical_prompts("pink") == [p for p in new if "cross" not in p]

    calls: list = []
    monkeypatch.setattr(promptreel, "generate", fake_generate(calls=calls), raising=False)
    result = evaluate("shapes", with_="pink,cross", seed=3, out_dir=tmp_path / "new")
    assert result["count"] == 44 and result["with"] == ["pink", "cross"]
    assert result["accuracy"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0, "joint": 1.0}
    assert [call["prompt"] for call in calls] == new
    assert json.loads((tmp_path / "new" / "fidelity.json").read_text())["count"] == 44
    # The 84 are what they were, the new prompts on seeds of their own.
    calls.clear()
    assert evaluate("shapes", seed=3, out_dir=tmp_path / "old")["with"] == []
    assert [call["prompt"] for call in calls] == old
    with pytest.raises(ValueError, match="not both"):
        evaluate("shapes", prompts=old[:2], with_="pink", out_dir=tmp_path / "both")


def test_eval_fidelity_command_takes_new_concepts(
    cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model that draws every pink shape red: colour is wrong on the 16 pink prompts.
    def reddening(prompt: str, *, model: str, seed: int, **options: object) -> Video:
        return fake_generate()(prompt.replace("pink", "red"), model=model, seed=seed)

    monkeypatch.setattr(promptreel, "generate", reddening, raising=False)
    made = cli("eval", "fidelity", "--with", "pink,cross", "--out", "fid")
    assert made.code == 0, made.err
    lines = dict(line.split(maxsplit=1) for line in made.out.splitlines()[:4])
    assert lines == {"colour": "63.6%", "shape": "100.0%", "direction": "100.0%", "joint": "63.6%"}
    rows = json.loads((workdir / "fid" / "fidelity.json").read_text())["rows"]
    assert len(rows) == 44
    assert {r["detected"]["colour"] for r in rows if not r["correct"]["colour"]} == {"red"}
    refused = cli("eval", "fidelity", "--with", "magenta", "--out", "fid2")
    assert refused.code == 1 and refused.err.startswith("InvalidRequest: `with` takes pink")
    assert not (workdir / "fid2").exists()


def test_eval_fidelity_generates_with_the_loras_given(
    cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def generate(prompt: str, *, model: str, seed: int, **options: object) -> Video:
        seen.append(options.get("lora"))
        return fake_generate()(prompt, model=model, seed=seed)

    monkeypatch.setattr(promptreel, "generate", generate, raising=False)
    made = cli("eval", "fidelity", "--lora", "style:0.5", "--lora", "other", "--out", "fid")
    assert made.code == 0, made.err
    assert seen == [["style:0.5", "other"]] * 84
    result = json.loads((workdir / "fid" / "fidelity.json").read_text())
    assert result["lora"] == ["style:0.5", "other"]
