"""The shapes world: pixels that match their captions, captions that parse back, and a dataset
folder that round-trips through the disk, the same for a seed."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from promptreel.errors import InputError, InvalidRequest, OutputError
from promptreel.train import shapes
from promptreel.train.shapes import (
    CAPTION_TEMPLATES,
    COLOURS,
    DIRECTIONS,
    EXTRA_COLOURS,
    EXTRA_SHAPES,
    EXTRAS,
    FPS,
    FRAMES,
    SHAPES,
    SIDE,
    Clip,
    canonical_caption,
    caption,
    parse_prompt,
    read_dataset,
    render,
    sample_clip,
    vocabulary,
    write_dataset,
)
from promptreel.video import Video, read_video

STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
FILL = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5, "cross": 5 / 9}
WORLD = vocabulary("pink,cross")  # the shipped world and every opt-in concept
NEW = [  # the combinations with pink or a cross (44)
    combination
    for combination in itertools.product(*WORLD, DIRECTIONS)
    if {"pink", "cross"} & set(combination)
]


def random_clips(count: int, seed: int = 0, with_: str = "") -> list[Clip]:
    rng = np.random.default_rng(seed)
    return [sample_clip(rng, with_=with_) for _ in range(count)]


def test_the_world_is_as_specified() -> None:
    assert list(COLOURS.items()) == [
        ("red", (220, 40, 40)),
        ("green", (40, 200, 60)),
        ("blue", (40, 80, 230)),
        ("yellow", (240, 220, 40)),
        ("white", (240, 240, 240)),
        ("purple", (150, 60, 200)),
        ("orange", (250, 140, 30)),
    ]
    assert SHAPES == ("circle", "square", "triangle")
    assert DIRECTIONS == ("left", "right", "up", "down")
    assert (FRAMES, SIDE, FPS) == (16, 64, 8)
    # Opt-in (issue 18): kept out of COLOURS and SHAPES, which random draws iterate.
    assert EXTRA_COLOURS == {"pink": (250, 120, 190)}
    assert EXTRA_SHAPES == ("cross",)
    assert EXTRAS == ("pink", "cross")
    assert len(NEW) == 44


# ---------------------------------------------------------------------------------------------
# The shipped world, bit for bit: the shipped model's datasets are rebuilt from their seeds


def dataset_digest(folder: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> str:
    """SHA-256 of everything `write_dataset` makes from its arguments: each video's name,
    frames, fps and record, in order, and metadata.jsonl. Encoding is skipped (PyAV's work, the
    same bytes for the same frames) so that the test stays fast."""
    digest = hashlib.sha256()

    def save(video: Video, path: Path, **kwargs: object) -> Path:
        digest.update(Path(path).name.encode())
        digest.update(video.frames.tobytes())
        digest.update(json.dumps([video.fps, video.record], sort_keys=True).encode())
        Path(path).write_bytes(b"")
        return Path(path)

    with monkeypatch.context() as patch:
        patch.setattr(Video, "save", save)
        write_dataset(folder, **options)
    digest.update((folder / "metadata.jsonl").read_bytes())
    return digest.hexdigest()


# Computed with the code before pink and cross existed (commit 5487295). 200 clips cross two
# rounds of 84; the whole shipped datasets (4032 clips, `data_seed = 0`, spread 1 for
# configs/shapes.toml and 0 for configs/shapes-centred.toml) were checked the same way once:
# b2d15f74... and 47bd9fe9..., unchanged.
SHIPPED_WORLD_DIGESTS = {
    1.0: "593d872d6fb86dba0f5d4b8b1ed9b653c4acb9cb03e59225d6c73d54317ce41b",
    0.0: "d395743e541bad2f9867d21886d135c619b7651bb027e87ca0f394adef479e17",
}


@pytest.mark.parametrize("spread", SHIPPED_WORLD_DIGESTS)
def test_the_shipped_recipe_renders_the_same_datasets(
    spread: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = dataset_digest(tmp_path / "a", monkeypatch, count=200, seed=0, spread=spread)
    assert made == SHIPPED_WORLD_DIGESTS[spread]
    # Asking for no extras, in any form, is not asking.
    for nothing in ((), "", [], [""], " , "):
        assert shapes.asked_extras(nothing) == ()
        assert vocabulary(nothing) == (tuple(COLOURS), SHAPES)
    made = dataset_digest(tmp_path / "b", monkeypatch, count=200, seed=0, spread=spread, with_="")
    assert made == SHIPPED_WORLD_DIGESTS[spread]


def test_random_clips_and_captions_are_the_same_as_before() -> None:
    """`sample_clip` and `caption` draw as they did (the detector's ground truth uses them)."""
    digest = hashlib.sha256()
    rng = np.random.default_rng(0)
    for _ in range(500):
        clip = sample_clip(rng)
        digest.update(repr(clip).encode())
        digest.update(caption(clip, rng).encode())
    # Computed with the code before pink and cross existed (commit 5487295).
    assert digest.hexdigest() == "7a2a1f969d696aac88e9b1436d657f25c9d9c9be4ceabd743deaba4a0b9f198c"


# ---------------------------------------------------------------------------------------------
# Pixels


def test_render_is_uint8_frames_and_deterministic() -> None:
    clip = random_clips(1, seed=3)[0]
    frames = render(clip)
    assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIDE, SIDE, 3)
    assert np.array_equal(frames, render(clip))
    assert render(clip, frames=4, side=32).shape == (4, 32, 32, 3)


@pytest.mark.parametrize(("seed", "with_"), [(0, ""), (1, ""), (2, ""), (3, "pink,cross")])
def test_pixels_match_the_attributes(seed: int, with_: str) -> None:
    """Colour, shape, motion and size, measured from the pixels of random clips."""
    clips = random_clips(40, seed, with_)
    if with_:  # every new colour and shape among them
        assert {"pink", "cross"} <= {c.colour for c in clips} | {c.shape for c in clips}
    for clip in clips:
        rgb = np.asarray({**COLOURS, **EXTRA_COLOURS}[clip.colour], float)
        frames = render(clip).astype(float)
        # Anti-aliased against black: each pixel is the colour times the pixel's coverage.
        coverage = frames.sum(-1) / rgb.sum()
        dx, dy = STEP[clip.direction]
        centroids = []
        for t, (frame, cover) in enumerate(zip(frames, coverage, strict=True)):
            where = f"{clip} frame {t}"
            # Colour: the non-black pixels away from the edge (whose 3x3 neighbourhood is all
            # non-black, i.e. not anti-aliased) are exactly the clip's RGB.
            lit = frame.sum(-1) > 0
            inner = lit.copy()
            for oy, ox in itertools.product((-1, 0, 1), repeat=2):
                inner &= np.roll(lit, (oy, ox), axis=(0, 1))
            assert inner.sum() > 20, where
            assert np.abs(frame[inner].mean(0) - rgb).max() <= 1, where
            # In view: a black border all round, and all of the shape's area is in the frame.
            assert not lit[0].any() and not lit[-1].any(), where
            assert not lit[:, 0].any() and not lit[:, -1].any(), where
            area = cover.sum()
            assert area == pytest.approx(FILL[clip.shape] * clip.size**2, rel=0.01), where
            # Size: the lit pixels span the size, give or take one partly covered pixel.
            rows, cols = np.nonzero(lit)
            assert abs(np.ptp(cols) + 1 - clip.size) <= 1, where
            assert abs(np.ptp(rows) + 1 - clip.size) <= 1, where
            # Shape: the fill ratio of the bounding box (width and height as the sums of the
            # column and row maxima, which count partly covered edge pixels fractionally; a
            # triangle's apex row counts for less, hence the tolerance).
            width, height = cover.max(0).sum(), cover.max(1).sum()
            assert area / (width * height) == pytest.approx(FILL[clip.shape], abs=0.1), where
            rows, cols = np.indices(cover.shape) + 0.5  # pixel centres
            centroids.append(((cols * cover).sum() / area, (rows * cover).sum() / area))
        # Motion: the centroid starts where (x, y) says (a triangle's centroid is a third of
        # its height above its base) and moves speed px a frame in the captioned direction.
        path = np.asarray(centroids)
        offset = clip.size / 6 if clip.shape == "triangle" else 0.0
        assert path[0] == pytest.approx((clip.x, clip.y + offset), abs=0.05), clip
        travel = path[-1] - path[0]
        expected = np.asarray((dx, dy)) * clip.speed * (FRAMES - 1)
        assert travel == pytest.approx(expected, abs=0.1), clip
        steps = np.diff(path, axis=0) @ np.asarray((dx, dy), float)
        # Each step to within the renderer's sampling (16 samples a pixel: 1/16 px).
        assert steps == pytest.approx(np.full(FRAMES - 1, clip.speed), abs=0.07), clip


def test_a_cross_is_a_plus_sign_filling_its_box() -> None:
    """Arms a third of the size thick, reaching the box's four edges; on whole pixels here
    (size 18 centred on (32, 32): the box is [23, 41), the arms [29, 35)), so no pixel is mixed."""
    frame = render(Clip("pink", "cross", "right", 18, 1.0, 32.0, 32.0), frames=1)[0]
    arm = np.zeros(SIDE, bool)
    arm[29:35] = True
    box = np.zeros(SIDE, bool)
    box[23:41] = True
    inside = (arm[:, None] & box[None, :]) | (box[:, None] & arm[None, :])
    assert np.array_equal(frame[inside], np.tile((250, 120, 190), (inside.sum(), 1)))
    assert not frame[~inside].any()
    assert inside.sum() == 18 * 18 - 4 * 6 * 6  # 5/9 of the box


def test_sub_pixel_motion_is_smooth() -> None:
    """A quarter-pixel move changes the edge pixels, not nothing and not a whole column."""
    base = Clip("white", "square", "right", 16, 0.25, 20.0, 32.0)
    frames = render(base, frames=5).astype(float)
    columns = frames.sum(axis=(1, 3))  # brightness per column, per frame
    for t in range(1, 5):
        centre = (np.arange(SIDE) + 0.5) @ columns[t] / columns[t].sum()
        assert centre == pytest.approx(20.0 + 0.25 * t, abs=0.02)


def test_sample_clip_draws_the_whole_range_and_keeps_what_is_given() -> None:
    clips = random_clips(2000, seed=11)
    assert {c.size for c in clips} == set(range(14, 23))
    assert {c.colour for c in clips} == set(COLOURS)
    assert {c.shape for c in clips} == set(SHAPES)
    assert {c.direction for c in clips} == set(DIRECTIONS)
    speeds = np.asarray([c.speed for c in clips])
    assert speeds.min() >= 1.0 and speeds.max() <= 2.0 and np.ptp(speeds) > 0.9
    rng = np.random.default_rng(0)
    clip = sample_clip(rng, colour="orange", shape="triangle", direction="up")
    assert (clip.colour, clip.shape, clip.direction) == ("orange", "triangle", "up")
    with pytest.raises(ValueError, match="`colour` must be one of"):
        sample_clip(rng, colour="black")


def test_new_concepts_are_drawn_only_when_asked() -> None:
    # Asked: every colour and shape of the wider world, drawn alike.
    clips = random_clips(2000, seed=11, with_="pink,cross")
    assert {c.colour for c in clips} == {*COLOURS, "pink"}
    assert {c.shape for c in clips} == {*SHAPES, "cross"}
    assert sum(c.colour == "pink" for c in clips) == pytest.approx(2000 / 8, rel=0.25)
    assert {c.shape for c in random_clips(500, seed=1, with_="cross")} == {*SHAPES, "cross"}
    assert {c.colour for c in random_clips(500, seed=1, with_=["cross"])} == set(COLOURS)
    # Named outright, a new concept needs no asking; nor does rendering it.
    rng = np.random.default_rng(0)
    clip = sample_clip(rng, colour="pink", shape="cross", direction="up")
    assert (clip.colour, clip.shape, clip.direction) == ("pink", "cross", "up")
    assert render(clip).any()


def test_vocabulary_takes_names_in_any_form_and_refuses_others() -> None:
    assert vocabulary() == (tuple(COLOURS), SHAPES)
    for same in ("pink,cross", "cross, pink", ["cross", "pink"], ["pink", "cross,pink"]):
        assert vocabulary(same) == ((*COLOURS, "pink"), (*SHAPES, "cross"))
        assert shapes.asked_extras(same) == ("pink", "cross")
    assert vocabulary("pink") == ((*COLOURS, "pink"), SHAPES)
    for bad in ("purple", "pink,crosses", "all", ["pink", 3]):
        with pytest.raises(InvalidRequest, match="`with`") as error:
            vocabulary(bad)
        assert error.value.argument == "with"
    with pytest.raises(InvalidRequest, match=r"takes pink, cross .* not 'purple'"):
        sample_clip(np.random.default_rng(0), with_="purple")


def test_spread_narrows_the_start_around_a_centred_path() -> None:
    everywhere = random_clips(300, seed=5)
    assert random_clips(300, seed=5) == [
        sample_clip(rng, spread=1.0) for rng in [np.random.default_rng(5)] for _ in range(300)
    ]
    rng = np.random.default_rng(5)
    for clip in [sample_clip(rng, spread=0.0) for _ in range(3000)]:
        dx, dy = shapes._STEP[clip.direction]
        travel = clip.speed * (shapes.FRAMES - 1)
        middle = (clip.x + dx * travel / 2, clip.y + dy * travel / 2)  # of the path
        assert middle == pytest.approx((SIDE / 2, SIDE / 2), abs=0.01)
    rng = np.random.default_rng(5)
    half = [sample_clip(rng, spread=0.5) for _ in range(300)]
    for spread, clips in ((1.0, everywhere), (0.5, half)):
        starts = [c.x for c in clips if c.direction in ("up", "down")]
        assert np.ptp(starts) == pytest.approx(spread * (SIDE - 2 - 14), abs=3)
    for bad in (-0.1, 1.5, True, "all"):
        with pytest.raises(InvalidRequest, match="`spread` must be a number from 0 to 1"):
            sample_clip(rng, spread=bad)


# ---------------------------------------------------------------------------------------------
# Captions


def fillings(template: str, colour: str, shape: str, direction: str) -> list[str]:
    """The template filled every way its shape word and direction phrase can be chosen."""
    slots = shapes.template_slots(template)
    options = {
        "a": ["an" if colour == "orange" else "a"],
        "colour": [colour],
        "shape": [shape],
        "shape_word": list(shapes.SHAPE_WORDS[shape]),
        "verb_ing": [ing for ing, _ in shapes.VERBS],
        "verb_s": [s for _, s in shapes.VERBS],
        "direction": [direction],
        "towards": list(shapes.TOWARDS[direction]),
        "from_to": list(shapes.FROM_TO[direction]),
    }
    assert slots <= set(options), slots - set(options)
    names = sorted(slots)
    return [
        template.format(**dict(zip(names, values, strict=True)))
        for values in itertools.product(*(options[name] for name in names))
    ]


def test_caption_words_are_unambiguous() -> None:
    """Each word names one attribute value: a synonym shared by two shapes, or a shape word that
    is also a colour or a direction, would make captions lie to the model."""
    words = [w for synonyms in shapes.SHAPE_WORDS.values() for w in synonyms]
    assert len(words) == len(set(words))
    assert set(words).isdisjoint({*COLOURS, *EXTRA_COLOURS, *DIRECTIONS})
    assert all(synonyms[0] == shape for shape, synonyms in shapes.SHAPE_WORDS.items())
    assert {"ball", "disc", "dot"} <= set(shapes.SHAPE_WORDS["circle"])
    assert {"box", "block"} <= set(shapes.SHAPE_WORDS["square"])
    for word, shape in (("cube", "square"), ("rectangle", "square"), ("ball", "circle")):
        assert parse_prompt(f"a red {word} moving left") == (
            ("red", shape, "left") if word in shapes.SHAPE_WORDS[shape] else None
        )


@pytest.mark.parametrize("template", CAPTION_TEMPLATES)
def test_every_template_with_every_word_parses(template: str) -> None:
    for colour, shape, direction in itertools.product(*WORLD, DIRECTIONS):
        for text in fillings(template, colour, shape, direction):
            assert parse_prompt(text) == (colour, shape, direction), text


def test_random_captions_parse_and_use_every_template() -> None:
    patterns = [
        re.compile(re.sub(r"\\\{\w+\\\}", "(.+)", re.escape(t)) + "$") for t in CAPTION_TEMPLATES
    ]
    used: set[int] = set()
    rng = np.random.default_rng(5)
    for clip in random_clips(3000, seed=5) + random_clips(500, seed=6, with_="pink,cross"):
        text = caption(clip, rng)
        assert parse_prompt(text) == (clip.colour, clip.shape, clip.direction), text
        matches = {i for i, p in enumerate(patterns) if p.match(text)}
        assert matches, text
        used |= matches
    assert used == set(range(len(CAPTION_TEMPLATES)))


def test_canonical_caption_is_one_of_the_forms_and_always_parses() -> None:
    rng = np.random.default_rng(1)
    clip = Clip("red", "circle", "right", 16, 1.5, 20.0, 30.0)
    assert canonical_caption(clip) == "a red circle moving right"
    assert "a red circle moving right" in {caption(clip, rng) for _ in range(500)}
    for colour, shape, direction in itertools.product(*WORLD, DIRECTIONS):
        text = canonical_caption(Clip(colour, shape, direction, 16, 1.5, 32.0, 32.0))
        assert text == f"a {colour} {shape} moving {direction}"
        assert parse_prompt(text) == (colour, shape, direction)
        assert parse_prompt(text.replace("a ", "an ", 1)) == (colour, shape, direction)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red ball moves to the right", ("red", "circle", "right")),
        ("red square sliding left", ("red", "square", "left")),
        ("a yellow triangle going up on a black background", ("yellow", "triangle", "up")),
        ("A PURPLE Disc, drifting Upwards!", ("purple", "circle", "up")),
        ("two blue boxes sliding from right to left", ("blue", "square", "left")),
        ("a green block moving from the left side to the right", ("green", "square", "right")),
        ("a white dot heading towards the bottom of the frame", ("white", "circle", "down")),
        ("an orange triangle moving left-to-right", ("orange", "triangle", "right")),
        ("a pink cross moving up", ("pink", "cross", "up")),
        ("two pink crosses moving up", None),  # "crosses" is read as the verb, not the shape
        ("a red ball crosses the frame from left to right", ("red", "circle", "right")),
        ("a pink and red circle moving left", None),  # two colours
        ("a red cross-shaped box moving down", None),  # two shapes
        ("a red ball", None),  # no direction
        ("a ball moving right", None),  # no colour
        ("a red thing moving right", None),  # no shape
        ("an upright red square", None),  # whole words only: "upright" is no direction
        ("a red ball and a blue box moving left", None),  # two colours, two shapes
        ("a red circle moving up and to the right", None),  # two directions
        ("a red circle moving right on a white background", None),  # two palette colours
    ],
)
def test_parse_free_prompts(prompt: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_prompt(prompt) == expected


# ---------------------------------------------------------------------------------------------
# Datasets


def test_dataset_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    write_dataset(out, count=84, seed=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"]  # no temporary left
    lines = (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    rows = read_dataset(out)
    assert rows == [json.loads(line) for line in lines] and len(rows) == 84
    # Balanced: 84 clips hold every colour x shape x direction once.
    combinations = {(r["colour"], r["shape"], r["direction"]) for r in rows}
    assert combinations == set(itertools.product(COLOURS, SHAPES, DIRECTIONS))
    for index, row in enumerate(rows):
        assert row["file"] == f"videos/{index:06d}.mp4"
        assert list(row) == ["file", "caption", *asdict(random_clips(1)[0])]
        clip = Clip(**{key: row[key] for key in asdict(random_clips(1)[0])})
        assert parse_prompt(row["caption"]) == (clip.colour, clip.shape, clip.direction)
        if index % 7:
            continue  # decoding every seventh video is enough to show the files match the rows
        frames, fps = read_video(out / row["file"])
        assert frames.shape == (FRAMES, SIDE, SIDE, 3) and fps == FPS
        # What was written is the clip the row describes (H.264 blurs only the edges).
        difference = np.abs(frames.astype(int) - render(clip).astype(int))
        assert difference.mean() < 1.5, row


def test_dataset_is_the_same_for_a_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_dataset(tmp_path / name, count=6, seed=seed)
    a, b, c = (read_dataset(tmp_path / name) for name in "abc")
    assert a == b and a != c
    for row in a:
        frames_a, _ = read_video(tmp_path / "a" / row["file"])
        frames_b, _ = read_video(tmp_path / "b" / row["file"])
        assert np.array_equal(frames_a, frames_b)


def test_a_dataset_with_new_concepts_mixes_them_with_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Balanced over the wider world: 128 clips hold every combination once, 44 of them new.
    digest = dataset_digest(tmp_path / "a", monkeypatch, count=128, seed=3, with_="pink,cross")
    rows = read_dataset(tmp_path / "a")
    combinations = [(r["colour"], r["shape"], r["direction"]) for r in rows]
    assert sorted(combinations) == sorted(itertools.product(*WORLD, DIRECTIONS))
    assert sum(c in NEW for c in combinations) == 44
    assert all(parse_prompt(r["caption"]) == c for r, c in zip(rows, combinations, strict=True))
    # The order the concepts are named in is no part of the dataset.
    again = dataset_digest(tmp_path / "b", monkeypatch, count=128, seed=3, with_=["cross", "pink"])
    assert again == digest
    assert dataset_digest(tmp_path / "c", monkeypatch, count=128, seed=3) != digest

    # The files, for real: each video is the clip its row describes, its record names the extras.
    write_dataset(tmp_path / "real", count=6, seed=4, with_="pink,cross")
    for row in read_dataset(tmp_path / "real"):
        clip = Clip(**{key: row[key] for key in asdict(random_clips(1)[0])})
        frames, _ = read_video(tmp_path / "real" / row["file"])
        assert np.abs(frames.astype(int) - render(clip).astype(int)).mean() < 1.5, row
        record = json.loads((tmp_path / "real" / (row["file"] + ".json")).read_text())
        assert record["dataset"]["with"] == ["pink", "cross"]
    with pytest.raises(InvalidRequest, match="`with` takes pink, cross"):
        write_dataset(tmp_path / "refused", count=2, seed=0, with_="magenta")
    assert not (tmp_path / "refused").exists()


def test_data_shapes_command_takes_new_concepts(cli, workdir: Path) -> None:
    made = cli("data", "shapes", "ds", "--count", "12", "--with", "pink,cross", "--spread", "0")
    assert made.code == 0, made.err
    rows = read_dataset(workdir / "ds")
    assert {"pink", "cross"} & {value for r in rows for value in (r["colour"], r["shape"])}
    for row in rows:  # spread 0: every path centred in the frame
        dx, dy = STEP[row["direction"]]
        travel = row["speed"] * (FRAMES - 1)
        centre = (row["x"] + dx * travel / 2, row["y"] + dy * travel / 2)
        assert centre == pytest.approx((SIDE / 2, SIDE / 2), abs=0.01)
    # Repeated, in another order: the same dataset.
    repeated = cli("data", "shapes", "ds2", "--count", "12", "--with", "cross", "--with", "pink")
    assert repeated.code == 0, repeated.err
    assert read_dataset(workdir / "ds2") != rows  # spread 1, the default
    write_dataset(workdir / "ds3", count=12, seed=0, with_="pink,cross")
    assert read_dataset(workdir / "ds2") == read_dataset(workdir / "ds3")
    refused = cli("data", "shapes", "ds4", "--count", "2", "--with", "magenta")
    assert refused.code == 1
    assert refused.err.strip() == (
        "InvalidRequest: `with` takes pink, cross (the concepts outside the shipped world),"
        " not 'magenta'"
    )


def test_dataset_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match="is not empty; choose a new or empty folder") as error:
        write_dataset(out, count=2, seed=0)
    assert "\n" not in str(error.value)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        write_dataset(tmp_path / "file", count=2, seed=0)
    with pytest.raises(OutputError, match="does not exist; create it first"):
        write_dataset(tmp_path / "missing" / "out", count=2, seed=0)
    with pytest.raises(InvalidRequest, match="`count` must be a positive whole number"):
        write_dataset(tmp_path / "new", count=0, seed=0)

    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "empty", count=2, seed=0)  # an empty folder is fine
    assert len(read_dataset(tmp_path / "empty")) == 2


def test_dataset_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_render(clip: Clip) -> np.ndarray:
        calls.append(clip)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return render(clip)

    monkeypatch.setattr(shapes, "render", failing_render)
    with pytest.raises(OutputError, match="could not write it \\(No space left on device\\)"):
        write_dataset(tmp_path / "out", count=5, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_read_dataset_takes_any_captioned_videos_and_refuses_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "cat.mp4").write_bytes(b"")
    rows = [{"file": "videos/cat.mp4", "caption": "a cat"}]
    (tmp_path / "metadata.jsonl").write_text(json.dumps(rows[0]) + "\n\n", encoding="utf-8")
    assert read_dataset(tmp_path) == rows

    for bad, message in (
        ({"file": "../outside.mp4", "caption": "x"}, "is outside the dataset folder"),
        ({"file": "/etc/passwd", "caption": "x"}, "is outside the dataset folder"),
        ({"file": "videos/gone.mp4", "caption": "x"}, "does not exist"),
        ({"file": "videos/cat.mp4"}, 'needs an object with string "file" and "caption"'),
    ):
        text = json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n"
        (tmp_path / "metadata.jsonl").write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=f"metadata.jsonl line 2: .*{re.escape(message)}"):
            read_dataset(tmp_path)
    with pytest.raises(InputError, match=r"has no metadata\.jsonl"):
        read_dataset(tmp_path / "videos")
