"""The "shapes" world: procedurally rendered clips that a tiny text-to-video model can learn.

One shape (circle, square, triangle pointing up) of one of seven colours on a black background
moves in a straight line (left, right, up or down) at 1-2 px a frame: 16 frames of 64x64 at 8 fps.
Every clip comes with the attributes that made it (`Clip`), so a caption, a detector and a
trainer can all be checked against the truth.

Two concepts the shipped model never saw are opt-in (`EXTRAS`, issue 18): the colour pink and
the shape cross. `sample_clip` and `write_dataset` draw them only when asked
(`with_="pink,cross"`, `promptreel data shapes --with pink,cross`), so everything made without
asking (the shipped recipe's datasets, rebuilt from their seeds) stays the same, bit for bit;
`render`, `caption` and `parse_prompt` know them always.

    sample_clip(rng)            random attributes, the shape in view (1 px margin) in every frame
    render(clip)                uint8 frames (16, 64, 64, 3), anti-aliased, deterministic
    caption(clip, rng)          one of several templates and synonyms ("a red ball moves to the
                                right"); canonical_caption(clip) is "a red circle moving right"
    parse_prompt(prompt)        ("red", "circle", "right") from any caption or free prompt
    write_dataset(out, ...)     OUT/videos/000000.mp4 ... + OUT/metadata.jsonl, atomically
    read_dataset(folder)        the metadata rows of any such folder

Geometry. Pixel (row i, column j) covers the square [j, j+1) x [i, i+1), so its centre is at
(j + 0.5, i + 0.5); a clip's `x`, `y` are continuous coordinates on that grid. Every shape fills
a `size` x `size` bounding box centred on (x, y): a circle of diameter `size`, a square of side
`size`, and a triangle with its base along the bottom of the box and its apex at the middle of
the top (isosceles, height = width, rather than equilateral, so that "in view" and "size" mean
the same for every shape), and a cross (a plus sign) whose two arms, each a third of `size` thick,
reach the box's four edges. Fill ratios of the box: circle pi/4 = 0.785, square 1, triangle 0.5,
cross 5/9 = 0.556.

Anti-aliasing. Each pixel's value is the colour times the fraction of the pixel the shape covers
(16 x 16 samples a pixel), blended with black in the stored sRGB values rather than in linear
light: the pixels then stay a linear function of coverage, which a classical detector (area,
centroid, fill ratio) can rely on, and a sub-pixel step moves the edge pixels smoothly.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptreel.errors import InputError, InvalidRequest, OutputError
from promptreel.video import Video

__all__ = [
    "CAPTION_TEMPLATES",
    "COLOURS",
    "DIRECTIONS",
    "EXTRAS",
    "EXTRA_COLOURS",
    "EXTRA_SHAPES",
    "FPS",
    "FRAMES",
    "OPPOSITE_DIRECTION",
    "SHAPES",
    "SIDE",
    "Clip",
    "asked_extras",
    "canonical_caption",
    "caption",
    "parse_prompt",
    "read_dataset",
    "render",
    "sample_clip",
    "vocabulary",
    "write_dataset",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "white": (240, 240, 240),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Opt-in concepts (issue 18: what a LoRA teaches the shipped model). COLOURS and SHAPES stay the
# world the shipped model learned: random draws and the dealing of combinations iterate them, so
# adding a name there would change every dataset rebuilt from a seed. Pink stays told apart:
# dimmed to half or brightened by 1.2 (the detector's range), it comes no nearer than 49 RGB
# units to another colour so changed (purple; white 57, red 79), where yellow and orange, the
# closest pair of the shipped world, come within 38.
EXTRA_COLOURS: dict[str, tuple[int, int, int]] = {"pink": (250, 120, 190)}
EXTRA_SHAPES: tuple[str, ...] = ("cross",)
EXTRAS: tuple[str, ...] = (*EXTRA_COLOURS, *EXTRA_SHAPES)  # the names `with_` takes
_RGB = {**COLOURS, **EXTRA_COLOURS}  # every colour a clip may have
_EVERY_SHAPE = (*SHAPES, *EXTRA_SHAPES)
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
OPPOSITE_DIRECTION = {"left": "right", "right": "left", "up": "down", "down": "up"}
FRAMES, SIDE, FPS = 16, 64, 8

MIN_SIZE, MAX_SIZE = 14, 22  # px across (the bounding box's width), both included
MIN_SPEED, MAX_SPEED = 1.0, 2.0  # px a frame
# Kept black all round: the detector takes the background from the border, and no anti-aliased
# edge is ever cut off by the frame.
MARGIN = 1.0
SUPERSAMPLE = 16  # samples a pixel along each axis: coverage in steps of 1/256

# Unit steps in image coordinates (x to the right, y downwards).
_STEP: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}

# ---------------------------------------------------------------------------------------------
# Attributes


@dataclass(frozen=True)
class Clip:
    """The true attributes of one clip."""

    colour: str  # a key of COLOURS or EXTRA_COLOURS
    shape: str  # one of SHAPES or EXTRA_SHAPES
    direction: str  # one of DIRECTIONS
    size: int  # px across: the width (and height) of the shape's bounding box
    speed: float  # px a frame
    x: float  # centre of the bounding box at frame 0, in pixels from the left edge
    y: float  # likewise from the top edge


def asked_extras(with_: str | Iterable[str] = ()) -> tuple[str, ...]:
    """The opt-in concepts named in `with_`, checked, in the order of `EXTRAS`.

    `with_` is names, or text of names separated by commas ("pink,cross", as the command line
    takes it; "cross, pink" and ["pink", "cross"] are the same). An unknown name is refused
    (`InvalidRequest`, argument "with").
    """
    names = [with_] if isinstance(with_, str) else list(with_)
    asked = set()
    for name in names:
        if not isinstance(name, str):
            raise InvalidRequest(
                f"`with` must name concepts as text, not {name!r}", argument="with", value=name
            )
        for part in (part.strip() for part in name.split(",")):
            if part not in (*EXTRAS, ""):
                raise InvalidRequest(
                    f"`with` takes {', '.join(EXTRAS)} (the concepts outside the shipped world),"
                    f" not {part!r}",
                    argument="with",
                    value=part,
                )
            asked.add(part)
    return tuple(name for name in EXTRAS if name in asked)


def vocabulary(with_: str | Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(colours, shapes) of the world with the opt-in concepts named in `with_` (`EXTRAS`).

    The shipped world comes first, in its order, then the extras asked for in the order of
    `EXTRAS`, whatever order they were named in: so `vocabulary()` is (COLOURS, SHAPES) exactly,
    and "cross,pink" deals the same dataset as "pink,cross".
    """
    asked = asked_extras(with_)
    colours = (*COLOURS, *(name for name in EXTRA_COLOURS if name in asked))
    shapes = (*SHAPES, *(name for name in EXTRA_SHAPES if name in asked))
    return colours, shapes


def sample_clip(
    rng: np.random.Generator,
    *,
    colour: str | None = None,
    shape: str | None = None,
    direction: str | None = None,
    spread: float = 1.0,
    with_: str | Iterable[str] = (),
) -> Clip:
    """Random attributes (those given are kept), drawn uniformly; the shape, with a `MARGIN`,
    stays in view for all `FRAMES` frames of a `SIDE` x `SIDE` clip.

    `spread` is the share of that room the start position is drawn from, around its middle:
    1 = anywhere in view, 0 = the path always centred in the frame.

    A random colour and shape come from the shipped world, and from the extras named in `with_`
    (`vocabulary`); a colour or shape given may be any of the world's, extras included.

    Speed and position are rounded to 1/100 px so that metadata reads cleanly; the bounds are
    applied after rounding, so they hold exactly.
    """
    _check_choice("colour", colour, tuple(_RGB))
    _check_choice("shape", shape, _EVERY_SHAPE)
    _check_choice("direction", direction, DIRECTIONS)
    _check_spread(spread)
    colours, shapes = vocabulary(with_)
    # The draws are those of the shipped world when nothing is asked for: the same lists.
    colour = colour or str(rng.choice(list(colours)))
    shape = shape or str(rng.choice(shapes))
    direction = direction or str(rng.choice(DIRECTIONS))
    size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
    speed = round(float(rng.uniform(MIN_SPEED, MAX_SPEED)), 2)

    # The centre may lie anywhere in [low, high] across the motion; along it, the travel over
    # the clip (speed x (FRAMES - 1)) is taken off the far end.
    low, high = MARGIN + size / 2, SIDE - MARGIN - size / 2
    travel = speed * (FRAMES - 1)
    dx, dy = _STEP[direction]
    x = _uniform_in(rng, low + max(-dx, 0) * travel, high - max(dx, 0) * travel, spread)
    y = _uniform_in(rng, low + max(-dy, 0) * travel, high - max(dy, 0) * travel, spread)
    return Clip(colour, shape, direction, size, speed, x, y)


def _uniform_in(rng: np.random.Generator, low: float, high: float, spread: float) -> float:
    assert low <= high, f"no room for the shape: [{low}, {high}]"
    middle, half = (low + high) / 2, (high - low) * spread / 2
    return min(max(round(float(rng.uniform(middle - half, middle + half)), 2), low), high)


def _check_choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(allowed)}, not {value!r}")


def _check_spread(spread: float) -> None:
    if isinstance(spread, bool) or not isinstance(spread, int | float) or not 0 <= spread <= 1:
        raise InvalidRequest(f"`spread` must be a number from 0 to 1, not {spread!r}")


def _check_clip(clip: Clip) -> None:
    _check_choice("colour", clip.colour, tuple(_RGB))
    _check_choice("shape", clip.shape, _EVERY_SHAPE)
    _check_choice("direction", clip.direction, DIRECTIONS)


# ---------------------------------------------------------------------------------------------
# Pixels


def render(clip: Clip, *, frames: int = FRAMES, side: int = SIDE) -> np.ndarray:
    """The clip's frames: uint8 (frames, side, side, 3) RGB, the same bytes on every call.

    Positions, size and speed are on the `SIDE` x `SIDE` grid; another `side` renders the same
    clip scaled (side=32 gives it at half resolution). Frame t has the centre at
    (x, y) + t * speed * the direction's unit step. More than `FRAMES` frames may move the shape
    out of view.
    """
    _check_clip(clip)
    if frames < 1 or side < 1:
        raise ValueError(f"`frames` and `side` must be positive, not {frames} and {side}")
    scale = side / SIDE
    dx, dy = _STEP[clip.direction]
    colour = np.asarray(_RGB[clip.colour], np.float32)
    video = np.zeros((frames, side, side, 3), np.uint8)
    for t in range(frames):
        cx = (clip.x + dx * clip.speed * t) * scale
        cy = (clip.y + dy * clip.speed * t) * scale
        coverage = _coverage(clip.shape, clip.size * scale, cx, cy, side)
        video[t] = np.rint(coverage[..., None] * colour).astype(np.uint8)
    return video


def _coverage(shape: str, size: float, cx: float, cy: float, side: int) -> np.ndarray:
    """The fraction of each pixel inside the shape, float32 (side, side), by supersampling.

    Only the window around the bounding box is sampled (a whole 64x64 frame at 16x16 samples a
    pixel would be a million points a frame; the window is a few hundred thousand at most).
    """
    half = size / 2
    coverage = np.zeros((side, side), np.float32)
    left, right = max(int(np.floor(cx - half)), 0), min(int(np.ceil(cx + half)), side)
    top, bottom = max(int(np.floor(cy - half)), 0), min(int(np.ceil(cy + half)), side)
    if left >= right or top >= bottom:
        return coverage  # entirely out of view

    n = SUPERSAMPLE
    xs = left + (np.arange((right - left) * n, dtype=np.float64) + 0.5) / n - cx
    ys = top + (np.arange((bottom - top) * n, dtype=np.float64) + 0.5) / n - cy
    u, v = xs[None, :], ys[:, None]  # sample offsets from the centre: columns, rows
    if shape == "circle":
        inside = u * u + v * v <= half * half
    elif shape == "square":
        inside = (np.abs(u) <= half) & (np.abs(v) <= half)
    elif shape == "cross":  # two bars across the box, each a third of it thick
        arm = half / 3
        inside = ((np.abs(u) <= arm) & (np.abs(v) <= half)) | (
            (np.abs(v) <= arm) & (np.abs(u) <= half)
        )
    else:  # triangle, apex up at (0, -half), base along v = +half: half-width (v + half) / 2
        inside = (np.abs(u) <= (v + half) / 2) & (v <= half)
    window = inside.reshape(bottom - top, n, right - left, n).mean(axis=(1, 3), dtype=np.float32)
    coverage[top:bottom, left:right] = window
    return coverage


# ---------------------------------------------------------------------------------------------
# Captions
#
# Every word a caption uses for an attribute names that attribute and no other within this world
# (so "ball" is a circle, "box" and "block" are squares; "cube" and "rectangle" are left out as
# they describe other things). `parse_prompt` reads the same vocabulary back.

CANONICAL_TEMPLATE = "a {colour} {shape} moving {direction}"
# Slots: {a} "a"/"an" for the colour that follows; {shape_word} the shape or a synonym;
# {verb_ing}/{verb_s} a motion verb; {direction} the bare word; {towards} a phrase for the
# direction; {from_to} "from left to right" and the like.
CAPTION_TEMPLATES: tuple[str, ...] = (
    CANONICAL_TEMPLATE,  # always one of the forms, literally as specified, even "a orange ..."
    "{a} {colour} {shape_word} {verb_ing} {direction}",
    "{a} {colour} {shape_word} {verb_s} {towards}",
    "{colour} {shape_word} {verb_ing} {direction}",
    "{a} {colour} {shape_word} {verb_ing} {direction} on a black background",
    "{a} {colour} {shape_word} {verb_ing} {from_to}",
    "the {colour} {shape_word} is {verb_ing} {towards}",
    "{colour} {shape_word}, {verb_ing} {towards}, black background",
)

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "disk", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "cross": ("cross",),  # "plus" and "x" would be new words to the shipped tokenizer too
}
VERBS: tuple[tuple[str, str], ...] = (  # (-ing form, third person)
    ("moving", "moves"),
    ("sliding", "slides"),
    ("going", "goes"),
    ("travelling", "travels"),
    ("drifting", "drifts"),
    ("gliding", "glides"),
    ("heading", "heads"),
)
TOWARDS: dict[str, tuple[str, ...]] = {
    "left": ("left", "to the left", "leftwards", "leftward", "towards the left"),
    "right": ("right", "to the right", "rightwards", "rightward", "towards the right"),
    "up": ("up", "upwards", "upward", "to the top", "towards the top"),
    "down": ("down", "downwards", "downward", "to the bottom", "towards the bottom"),
}
FROM_TO: dict[str, tuple[str, ...]] = {
    "left": ("from right to left", "from the right to the left"),
    "right": ("from left to right", "from the left to the right"),
    "up": ("from bottom to top", "from the bottom to the top"),
    "down": ("from top to bottom", "from the top to the bottom"),
}


def canonical_caption(clip: Clip) -> str:
    """ "a {colour} {shape} moving {direction}", e.g. "a red circle moving right"."""
    _check_clip(clip)
    return CANONICAL_TEMPLATE.format(colour=clip.colour, shape=clip.shape, direction=clip.direction)


def caption(clip: Clip, rng: np.random.Generator) -> str:
    """A caption of the clip in a random template (`CAPTION_TEMPLATES`) with random synonyms.

    Templates are equally likely; the shape's own name is used half the time (a synonym
    otherwise), so the plain words the evaluation prompts use stay the most common.
    """
    _check_clip(clip)
    template = CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))]
    synonyms = SHAPE_WORDS[clip.shape][1:]
    use_synonym = bool(synonyms) and rng.random() >= 0.5
    verb_ing, verb_s = VERBS[int(rng.integers(len(VERBS)))]
    towards = TOWARDS[clip.direction]
    from_to = FROM_TO[clip.direction]
    words = {
        "a": "an" if clip.colour[0] in "aeiou" else "a",
        "colour": clip.colour,
        "shape": clip.shape,
        "shape_word": synonyms[int(rng.integers(len(synonyms)))] if use_synonym else clip.shape,
        "verb_ing": verb_ing,
        "verb_s": verb_s,
        "direction": clip.direction,
        "towards": towards[int(rng.integers(len(towards)))],
        "from_to": from_to[int(rng.integers(len(from_to)))],
    }
    return template.format(**words)


def template_slots(template: str) -> set[str]:
    """The slot names a caption template uses (for tests that fill every template every way)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


_WORD_COLOUR = {name: name for name in _RGB}
_WORD_SHAPE = {
    form: shape
    for shape, words in SHAPE_WORDS.items()
    for word in words
    for form in (word, word + ("es" if word.endswith(("s", "x")) else "s"))  # "balls", "boxes"
    if form != "crosses"  # as often the verb ("a red ball crosses the frame") as the shapes
}
_WORD_DIRECTION = {
    **{name: name for name in DIRECTIONS},
    **{f"{name}{suffix}": name for name in DIRECTIONS for suffix in ("ward", "wards")},
}
_SIDE_TO_DIRECTION = {"left": "left", "right": "right", "top": "up", "bottom": "down"}
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
# "(from) left to right" names both sides: the destination is the direction. Read (and removed)
# before single words, as is "to the top" ("top" alone, as in "at the top", is no direction).
_FROM_TO = re.compile(
    r"\b(?:from )?(?:the )?(left|right|top|bottom)(?: (?:side|edge))? "
    r"(?:to|towards|toward) (?:the )?(left|right|top|bottom)\b"
)
_TO_SIDE = re.compile(r"\b(?:to|towards|toward) the (top|bottom)\b")


def parse_prompt(prompt: str) -> tuple[str, str, str] | None:
    """(colour, shape, direction) named by a caption or free prompt, or None.

    Reads the caption vocabulary (colour names, shape names and synonyms with plurals, "left",
    "rightwards", "to the top", "from left to right" ...) case-insensitively, whole words only.
    None when an attribute is missing or ambiguous (two different colours, shapes or
    directions: "a red ball and a blue box"), rather than a guess.
    """
    text = " " + re.sub(r"[^a-z]+", " ", prompt.lower()) + " "
    directions: set[str] = set()

    def from_to(match: re.Match[str]) -> str:
        start, end = match.groups()
        if _OPPOSITE[start] != end:  # "left to top" is no straight line: leave the words
            return match.group(0)
        directions.add(_SIDE_TO_DIRECTION[end])
        return " "

    text = _FROM_TO.sub(from_to, text)
    directions.update(_SIDE_TO_DIRECTION[m.group(1)] for m in _TO_SIDE.finditer(text))
    text = _TO_SIDE.sub(" ", text)
    words = text.split()
    colours = {_WORD_COLOUR[w] for w in words if w in _WORD_COLOUR}
    shapes = {_WORD_SHAPE[w] for w in words if w in _WORD_SHAPE}
    directions.update(_WORD_DIRECTION[w] for w in words if w in _WORD_DIRECTION)
    if len(colours) == len(shapes) == len(directions) == 1:
        return colours.pop(), shapes.pop(), directions.pop()
    return None


# ---------------------------------------------------------------------------------------------
# Datasets: OUT/videos/000000.mp4 ... and OUT/metadata.jsonl, one JSON object a clip

METADATA = "metadata.jsonl"
VIDEOS = "videos"


def write_dataset(
    out: Path,
    *,
    count: int,
    seed: int,
    spread: float = 1.0,
    with_: str | Iterable[str] = (),
) -> None:
    """Render `count` clips with captions into the folder `out`, the same bytes for a seed.

    The colour x shape x direction combinations (84) are dealt in a seeded shuffled order, one
    round after another, so any 84 consecutive clips hold each exactly once; size, speed,
    position (within `spread`, as in `sample_clip`) and caption are random. Each video carries
    its record (prompt = caption, the attributes, seed and index) in its tags and as
    `NAME.mp4.json`.

    `with_` adds opt-in concepts to the world (`vocabulary`): with "pink,cross" the rounds are
    of 8 x 4 x 4 = 128 combinations, 44 of them with pink or a cross and 84 the shipped world's,
    so the new concepts come mixed with the old ones. Without it, every byte is as it was
    before the extras existed.

    Refuses (`OutputError`) an `out` that exists and is not an empty folder, or whose parent
    does not exist. The dataset is built in a hidden folder beside `out` and renamed into place
    when complete, so a reader never sees half a dataset and a failure leaves nothing behind.
    """
    # 1. Check everything before rendering a frame.
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidRequest(f"`count` must be a positive whole number, not {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidRequest(f"`seed` must be a whole number >= 0, not {seed!r}")
    _check_spread(spread)
    extras = asked_extras(with_)
    target = Path(os.path.abspath(os.fspath(out)))
    where = f"dataset folder {os.fspath(out)!r}"
    if os.path.lexists(target) and not (target.is_dir() and not target.is_symlink()):
        raise OutputError(f"{where}: exists and is not a folder; choose a new folder")
    if target.is_dir() and any(target.iterdir()):
        raise OutputError(f"{where}: is not empty; choose a new or empty folder")
    if not target.parent.is_dir():
        raise OutputError(f"{where}: folder {str(target.parent)!r} does not exist; create it first")

    # 2. Build beside it, under a hidden name, so the final rename is atomic.
    temp = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    try:
        (temp / VIDEOS).mkdir(parents=True)
        rows = _write_clips(temp, count=count, seed=seed, spread=spread, extras=extras)
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        with open(temp / METADATA, "w", encoding="utf-8") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())
        # 3. Publish. POSIX renames onto an empty folder atomically (and refuses one filled
        # since the check); Windows cannot, so the empty folder goes first there.
        if os.name == "nt" and target.is_dir():
            target.rmdir()
        os.rename(temp, target)
    except (OSError, OutputError) as e:
        # Video.save has already made its OSError one line about a file inside the temporary
        # folder; the user only knows `out`, so the cause is restated against it.
        cause = e.__cause__ if isinstance(e, OutputError) and e.__cause__ else e
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        reason = " ".join(str(reason).split())
        raise OutputError(f"{where}: could not write it ({reason}); choose another") from e
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _write_clips(
    folder: Path,
    *,
    count: int,
    seed: int,
    spread: float,
    extras: tuple[str, ...],
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    colours, shapes = vocabulary(extras)
    combinations = list(itertools.product(colours, shapes, DIRECTIONS))
    # The record names the extras only when there are some: the shipped world's records stay
    # byte for byte as they were.
    dataset = {"with": list(extras)} if extras else {}
    rows: list[dict[str, Any]] = []
    order: list[int] = []
    for index in range(count):
        if not order:  # a new round: every combination once, in a fresh order
            order = [int(i) for i in rng.permutation(len(combinations))]
        colour, shape, direction = combinations[order.pop()]
        clip = sample_clip(rng, colour=colour, shape=shape, direction=direction, spread=spread)
        text = caption(clip, rng)
        file = f"{VIDEOS}/{index:06d}.mp4"
        attributes = asdict(clip)
        record = {
            "promptreel_record": 1,
            "prompt": text,
            "source": "promptreel.train.shapes",
            "dataset": {"seed": seed, "index": index, **dataset},
            "clip": attributes,
            "parameters": {"num_frames": FRAMES, "height": SIDE, "width": SIDE, "fps": FPS},
        }
        Video(render(clip), FPS, record).save(folder / file)
        rows.append({"file": file, "caption": text, **attributes})
    return rows


def read_dataset(folder: Path) -> list[dict[str, Any]]:
    """The rows of `folder/metadata.jsonl`, in order: each a dict with at least "file" (a path
    relative to `folder`) and "caption"; shapes datasets add the true attributes.

    Works for any dataset of videos with captions in this layout. Refuses (`InputError`, naming
    the line) a missing metadata file, a row that is not an object with string "file" and
    "caption", and a "file" that leaves the folder or does not exist.
    """
    root = Path(os.path.abspath(os.fspath(folder)))
    metadata = root / METADATA
    where = f"dataset {os.fspath(folder)!r}"
    if not root.is_dir():
        raise InputError(f"{where}: no such folder")
    if not metadata.is_file():
        raise InputError(f"{where}: has no {METADATA}; is it a dataset folder?")
    rows: list[dict[str, Any]] = []
    with open(metadata, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            at = f"{where}: {METADATA} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{at}: is not valid JSON ({e})") from None
            if not isinstance(row, dict) or not all(
                isinstance(row.get(key), str) for key in ("file", "caption")
            ):
                raise InputError(f'{at}: needs an object with string "file" and "caption"')
            # A dataset may come from elsewhere: its rows must not point outside it.
            relative = Path(row["file"])
            path = Path(os.path.abspath(root / relative))
            if relative.is_absolute() or not path.is_relative_to(root):
                raise InputError(f"{at}: file {row['file']!r} is outside the dataset folder")
            if not path.is_file():
                raise InputError(f"{at}: file {row['file']!r} does not exist")
            rows.append(row)
    return rows
