"""Does a video show what its prompt asks for? A classical detector for the "shapes" world and
the evaluation of a model with it (`promptreel eval fidelity`).

The detector has no learned weights, so a score measures the model and never a second network's
blind spots. It reads one clip in five steps:

    1. background   the per-channel median of each frame's border ring (2 px on a 64 px frame);
                    the shape never covers more than a small part of the ring, so the median
                    ignores it, and a generated background that is not quite black still works
    2. mask         the RGB distance of every pixel from the background, averaged over 3x3
                    (a third of the pixel noise); the mask is every pixel at least half the
                    shape's peak distance (the 25th-largest in the frame) and above the frame's
                    noise (median + 6 robust sigmas). Half the peak is where a blurred edge
                    crosses the sharp edge it came from, so the mask keeps its size under blur.
                    Only the largest 8-connected component is kept; frames with no clear shape
                    (peak below 40, or a component under a quarter of the clip's median area)
                    are ignored
    3. colour       the median RGB of the brighter half of the mask over all frames, matched to
                    the palette colour (the shipped world's seven and pink) whose segment from
                    the background (a shape mixed with it, from half to 1.2 times its palette
                    brightness) passes nearest in RGB:
                    blur and a dim generator darken a colour along that segment, and plain RGB
                    distance would then call a dim yellow orange (CIELAB is no better: blue and
                    purple are 29 apart there)
    4. direction    a Theil-Sen slope (median of pairwise slopes) of the mask's centroid along x
                    and y; the larger axis and its sign give the direction. A shape moving less
                    than a quarter pixel a frame (on a 64 px frame) has no direction
    5. shape        the median, over frames, of three measures of the opened mask in its
                    bounding box: the fill ratio (circle pi/4, square 1, triangle 1/2, cross
                    5/9), the share of its area in the top half of the box (1/2 for a circle,
                    square or cross, 1/4 for a triangle pointing up) and the corner fill, how
                    full the fullest of the box's four corner ninths is (a cross's are empty; a
                    circle's are 0.5-0.7 full, a triangle's bottom two and a square's all
                    full): a fill ratio and corner fill adding up to less than 1.18 is a cross
                    (5/9 + 0 drawn sharp; a circle's add up to 1.2-1.6), else a top share
                    under 0.45 a triangle, else a fill of 0.87 or more a square, else a circle

An attribute it cannot measure (no shape found; no motion) is None, which never matches a prompt.
Lengths are stated for the 64 px frames of the shapes world and scale with the frame; below
about 48 px the 3x3 steps are coarse for a 14 px shape and shape accuracy drops (91 % at 32 px;
there a cross's arms are 2-4 px thick, and the opening erases them: 46 % of clips with pink or a
cross right, against 98 % at 48 px).

The detector always knows the whole world, the opt-in concepts (`shapes.EXTRAS`: pink, cross)
included, so a model that draws pink for "red" is wrong whichever prompts are measured.

`evaluate` generates a fixed, seeded set of prompts with a model, runs the detector on every
video, and returns per-attribute and joint accuracy; it writes a contact sheet (one row of frames
per video, marked right or wrong per attribute) and the results as JSON. The prompts are the
shipped world's 84 unless asked: `with_=("pink", "cross")` (`eval fidelity --with pink,cross`)
measures instead every prompt that has one of those concepts (44). `evaluate_ground_truth` runs
the same detector on rendered clips, where it must be right at least 99 % of the time.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from promptreel.train import shapes

__all__ = [
    "ATTRIBUTES",
    "Detection",
    "canonical_prompts",
    "degrade",
    "detect",
    "evaluate",
    "evaluate_ground_truth",
    "write_contact_sheet",
]

ATTRIBUTES = ("colour", "shape", "direction")

# Detector thresholds. Distances are Euclidean in RGB (0..441); lengths are for a 64 px frame
# and scale with the frame.
MIN_CONTRAST = 40.0  # a shape's peak distance from the background; the dimmest palette colour
# (red on black) is 227 away, so 40 only rejects frames holding nothing but haze or noise
PEAK_RANK = 25  # the peak is the 25th-largest distance: inside the smallest triangle (~98 px
# at 14 px across) yet immune to a few hot pixels
MASK_LEVEL = 0.5  # of the peak: where a blurred edge crosses the sharp edge it came from
NOISE_MADS = 6.0  # pixels must also clear the frame's median distance + 6 robust sigmas
MIN_AREA_SHARE = 0.25  # of the clip's median mask area; smaller masks are a shape fading out
MIN_MIX, MAX_MIX = 0.5, 1.2  # how much dimmer or brighter than its palette colour a shape may be
MIN_SPEED = 0.25  # px a frame on a 64 px frame; slower is "not moving", so no direction
BORDER = 2  # px of border ring on a 64 px frame

# Shape thresholds, on the opened mask (see `_box_features`). Ideal shapes have fill ratios
# circle pi/4, square 1, triangle 1/2 and top shares 1/2, 1/2, 1/4. Measured on rendered clips
# (sizes 14-22) blurred by sigma 0 to 2.5 px: triangles' top share 0.30-0.44, circles' and
# squares' 0.48-0.52; circles' fill 0.75-0.86, squares' 0.88-0.99 up to sigma 2 (0.83 at 2.5).
# Of these two, the top share is tested first because blur moves it least.
TRIANGLE_TOP_SHARE = 0.45  # below: wider at the bottom, a triangle
SQUARE_FILL = 0.87  # at or above (and not a triangle): fills its box, a square
# A cross is tested first, as its top share (0.46-0.54) comes near a triangle's. Its corner
# ninths are empty, but blur fills in its four inner corners, which touch them: its corner fill
# (see `_box_features`) reaches 0.45 at sigma 2 where a circle's is 0.47-0.76, too close for one
# threshold. The fill ratio rises with it, so their sum tells them apart: on rendered clips with
# noise 10 and blur up to sigma 2, crosses 0.54-1.12, circles 1.23-1.60, triangles 1.49-1.79,
# squares 1.68-2.00 (sigma 2.5 brings crosses to 1.37 and circles to 1.30: they overlap).
CROSS_FILL_SUM = 1.18  # fill ratio + corner fill below this: a box with empty corners, a cross

# Contact sheet layout, in pixels.
TILE = 64  # frames are scaled to this height
GAP = 2  # between tiles
ROW_HEIGHT = 70  # TILE plus padding; four lines of text fit in the margin
MARGIN = 270  # the text column on the left of every row
HEADER_HEIGHT = 26  # one line: the model and its accuracies
MAX_TILES = 8  # every other frame of a 16-frame clip
_SHEET_BACKGROUND = (36, 36, 36)
_TEXT = (235, 235, 235)
_DIM_TEXT = (150, 150, 150)
_RIGHT = (70, 200, 90)
_WRONG = (230, 60, 60)

_COLOURS = {**shapes.COLOURS, **shapes.EXTRA_COLOURS}
_PALETTE_NAMES = tuple(_COLOURS)
_PALETTE = np.array([_COLOURS[name] for name in _PALETTE_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class Detection:
    """What the detector saw in one clip; an attribute is None when nothing could be measured."""

    colour: str | None
    shape: str | None
    direction: str | None
    mean_colour: tuple[float, float, float] | None  # median RGB of the shape's bright core
    colour_distance: float | None  # RGB distance to the nearest palette colour
    fill_ratio: float | None  # mask area / bounding-box area, median over frames
    top_share: float | None  # share of the mask in the top half of its box, median over frames
    corner_fill: float | None  # fill of the fullest corner ninth of its box, median over frames
    displacement: tuple[float, float] | None  # px a frame, (x to the right, y downwards)
    mask_area: tuple[int, ...]  # px per frame; 0 where the frame was ignored
    valid_frames: int  # frames with a clear shape

    def attributes(self) -> dict[str, str | None]:
        return {"colour": self.colour, "shape": self.shape, "direction": self.direction}

    def diagnostics(self) -> dict[str, Any]:
        """The measurements behind the attributes, JSON-able and rounded for reading."""
        data = asdict(self)
        for key in ATTRIBUTES:
            data.pop(key)
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = round(value, 4)
            elif isinstance(value, tuple) and key != "mask_area":
                data[key] = [round(float(v), 4) for v in value]
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data


# ---------------------------------------------------------------------------------------------
# The detector


def detect(frames: np.ndarray) -> Detection:
    """Colour, shape and direction of the one moving shape in `frames` (uint8, (T, H, W, 3))."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"`frames` must have shape (frames, height, width, 3), not {frames.shape}")
    count, height, width = frames.shape[:3]
    scale = min(height, width) / 64  # thresholds in px are stated for a 64 px frame
    rgb = frames.astype(np.float32)

    # 1. Background: the median colour of the border ring, per frame.
    border = max(1, round(BORDER * scale))
    ring = np.concatenate(
        [
            rgb[:, :border].reshape(count, -1, 3),
            rgb[:, -border:].reshape(count, -1, 3),
            rgb[:, border:-border, :border].reshape(count, -1, 3),
            rgb[:, border:-border, -border:].reshape(count, -1, 3),
        ],
        axis=1,
    )
    background = np.median(ring, axis=1)
    distance = np.linalg.norm(rgb - background[:, None, None, :], axis=-1)
    # A 3x3 mean divides pixel noise by 3; the half-peak level keeps edges where they were.
    distance = _box3(distance)

    # 2. Mask: half the peak, above the noise; the largest component of each frame.
    flat = distance.reshape(count, -1)
    rank = min(max(1, round(PEAK_RANK * scale * scale)), flat.shape[1])
    peak = np.partition(flat, flat.shape[1] - rank, axis=1)[:, flat.shape[1] - rank]
    middle = np.median(flat, axis=1)
    spread = 1.4826 * np.median(np.abs(flat - middle[:, None]), axis=1)
    level = np.maximum(MASK_LEVEL * peak, middle + NOISE_MADS * spread)
    masks = np.zeros((count, height, width), dtype=bool)
    for index in range(count):
        if peak[index] >= MIN_CONTRAST:
            masks[index] = _largest_component(distance[index] >= level[index])
    areas = masks.sum(axis=(1, 2))
    if areas.any():
        floor = max(MIN_AREA_SHARE * float(np.median(areas[areas > 0])), 4.0 * scale * scale)
        keep = areas >= floor
    else:
        keep = np.zeros(count, dtype=bool)
    areas = np.where(keep, areas, 0)
    valid = np.flatnonzero(keep)
    mask_area = tuple(int(a) for a in areas)
    if len(valid) == 0:
        return Detection(None, None, None, None, None, None, None, None, None, mask_area, 0)

    # 3. Colour: the bright half of each mask, where blur has not mixed in the background.
    core = []
    for index in valid:
        inside = distance[index][masks[index]]
        bright = masks[index] & (distance[index] >= np.median(inside))
        core.append(rgb[index][bright])
    mean_colour = np.median(np.concatenate(core), axis=0).astype(np.float64)
    gaps = _colour_gaps(mean_colour, background[valid].mean(axis=0).astype(np.float64))
    colour = _PALETTE_NAMES[int(np.argmin(gaps))]

    # 4. Direction: a robust slope of the centroid path.
    displacement = None
    direction = None
    if len(valid) >= 2:
        rows, cols = np.mgrid[0:height, 0:width]
        centre_x = np.array([cols[masks[i]].mean() for i in valid])
        centre_y = np.array([rows[masks[i]].mean() for i in valid])
        velocity_x = _theil_sen(valid, centre_x)
        velocity_y = _theil_sen(valid, centre_y)
        displacement = (velocity_x, velocity_y)
        if max(abs(velocity_x), abs(velocity_y)) >= MIN_SPEED * scale:
            if abs(velocity_x) >= abs(velocity_y):
                direction = "right" if velocity_x > 0 else "left"
            else:
                direction = "down" if velocity_y > 0 else "up"

    # 5. Shape: fill ratio, top-heaviness and corners of the mask in its bounding box.
    fills, tops, corners = zip(*(_box_features(masks[i]) for i in valid), strict=True)
    fill_ratio = float(np.median(fills))
    top_share = float(np.median(tops))
    corner_fill = float(np.median(corners))
    if fill_ratio + corner_fill < CROSS_FILL_SUM:
        shape = "cross"
    elif top_share < TRIANGLE_TOP_SHARE:
        shape = "triangle"
    elif fill_ratio >= SQUARE_FILL:
        shape = "square"
    else:
        shape = "circle"

    return Detection(
        colour=colour,
        shape=shape,
        direction=direction,
        mean_colour=(float(mean_colour[0]), float(mean_colour[1]), float(mean_colour[2])),
        colour_distance=float(gaps.min()),
        fill_ratio=fill_ratio,
        top_share=top_share,
        corner_fill=corner_fill,
        displacement=displacement,
        mask_area=mask_area,
        valid_frames=len(valid),
    )


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a 2-D mask.

    Works on runs of pixels in each row with a union-find over runs: a frame has tens of runs
    where it has thousands of pixels, so this is fast in plain Python without scipy.
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)  # row-major, so starts and ends pair up
    _, run_ends = np.nonzero(edges == -1)  # exclusive
    runs = len(run_rows)
    if runs == 0:
        return np.zeros_like(mask, dtype=bool)
    parent = list(range(runs))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    rows, starts, ends = run_rows.tolist(), run_starts.tolist(), run_ends.tolist()
    previous_first = previous_last = 0  # the runs of the row above: [first, last)
    current_first = 0
    for run in range(runs):
        if run > 0 and rows[run] != rows[run - 1]:
            adjacent = rows[run] == rows[run - 1] + 1
            previous_first, previous_last = (current_first, run) if adjacent else (0, 0)
            current_first = run
        for other in range(previous_first, previous_last):
            # 8-connected: runs touch if they overlap when one is widened by a pixel each side.
            if starts[other] <= ends[run] and starts[run] <= ends[other]:
                a, b = root(run), root(other)
                if a != b:
                    parent[a] = b
    roots = np.array([root(run) for run in range(runs)])
    sizes = np.bincount(roots, weights=run_ends - run_starts, minlength=runs)
    largest = int(np.argmax(sizes))
    component = np.zeros((height, width), dtype=bool)
    for run in np.flatnonzero(roots == largest):
        component[rows[run], starts[run] : ends[run]] = True
    return component


def _colour_gaps(colour: np.ndarray, background: np.ndarray) -> np.ndarray:
    """RGB distance from `colour` to each palette colour mixed with the background.

    A pixel a shape covers in part, or a shape blurred or rendered dim, is `a * palette +
    (1 - a) * background`: it lies on the segment from the background to its palette colour.
    The distance to the nearest point of that segment with `a` in [MIN_MIX, MAX_MIX] is the gap,
    so a dimmed yellow stays yellow where plain RGB distance would call it orange.
    """
    offsets = _PALETTE - background  # (colours, 3)
    seen = colour - background
    lengths = np.maximum((offsets * offsets).sum(axis=1), 1.0)
    mix = np.clip(offsets @ seen / lengths, MIN_MIX, MAX_MIX)
    return np.linalg.norm(seen - mix[:, None] * offsets, axis=1)


def _box3(values: np.ndarray) -> np.ndarray:
    """The mean of each 3x3 neighbourhood over the last two axes (edges repeated)."""
    height, width = values.shape[-2:]
    padded = np.pad(values, [(0, 0)] * (values.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    total = np.zeros_like(values)
    for dy in range(3):
        for dx in range(3):
            total += padded[..., dy : dy + height, dx : dx + width]
    return total / 9


def _theil_sen(times: np.ndarray, values: np.ndarray) -> float:
    """The median of the slopes between every pair of points: one bad frame cannot tip it."""
    first, second = np.triu_indices(len(times), k=1)
    slopes = (values[second] - values[first]) / (times[second] - times[first])
    return float(np.median(slopes))


def _box_features(mask: np.ndarray) -> tuple[float, float, float]:
    """(area / bounding-box area, share of the area in the top half of the box, fill of the
    fullest corner ninth of the box) of a mask.

    The mask is opened (eroded, then dilated, by a 3x3 square) first: a noisy edge grows
    one-pixel spurs that widen the box but hardly add area, and would make a square look round.
    The opening leaves a square as it is; a mask it would erase entirely is measured as it is.
    """
    opened = _open3(mask)
    if opened.any():
        mask = opened
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom = int(rows[0]), int(rows[-1])
    box = (bottom - top + 1) * (int(cols[-1]) - int(cols[0]) + 1)
    per_row = mask[top : bottom + 1].sum(axis=1).astype(np.float64)
    area = per_row.sum()
    # The top half of the box is rows [0, h/2): with an odd height the middle row counts half.
    half = len(per_row) / 2
    whole = int(half)
    upper = per_row[:whole].sum() + (half - whole) * (per_row[whole] if whole < len(per_row) else 0)
    # The box in thirds each way, a pixel in the third its centre falls in: the corner ninths.
    inside = mask[top : bottom + 1, int(cols[0]) : int(cols[-1]) + 1]
    ys = (np.arange(inside.shape[0]) + 0.5) / inside.shape[0]
    xs = (np.arange(inside.shape[1]) + 0.5) / inside.shape[1]
    corner = 1.0  # a box under 3 px either way has no corners to speak of: no cross
    if min(inside.shape) >= 3:
        corner = max(
            float(inside[np.ix_(rows_in, cols_in)].mean())
            for rows_in in (ys < 1 / 3, ys > 2 / 3)
            for cols_in in (xs < 1 / 3, xs > 2 / 3)
        )
    return float(area / box), float(upper / area), corner


def _open3(mask: np.ndarray) -> np.ndarray:
    """Morphological opening by a 3x3 square: the union of every 3x3 square inside the mask."""
    height, width = mask.shape
    padded = np.pad(mask, 1)
    eroded = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            eroded &= padded[dy : dy + height, dx : dx + width]
    padded = np.pad(eroded, 1)
    opened = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            opened |= padded[dy : dy + height, dx : dx + width]
    return opened


# ---------------------------------------------------------------------------------------------
# Ground truth


def evaluate_ground_truth(
    n: int = 500,
    seed: int = 0,
    *,
    noise: float = 0.0,
    blur: float = 0.0,
    with_: str | Iterable[str] = (),
) -> dict[str, Any]:
    """Run the detector on `n` rendered clips (`shapes.sample_clip`, `shapes.render`).

    `noise` adds Gaussian noise of that standard deviation (0..255 scale) and `blur` a Gaussian
    blur of that sigma in pixels, as a stand-in for what a generated video looks like. `with_`
    names opt-in concepts (pink, cross) that the clips may have besides the shipped world's, as
    in `shapes.sample_clip`. Returns accuracy per attribute and joint, and the clips it got
    wrong.
    """
    if n < 1:
        raise ValueError(f"`n` must be at least 1 but is {n}")
    shapes.vocabulary(with_)  # refuses an unknown name before any clip
    rng = np.random.default_rng(seed)
    right = dict.fromkeys((*ATTRIBUTES, "joint"), 0)
    failures = []
    for _ in range(n):
        clip = shapes.sample_clip(rng, with_=with_)
        frames = degrade(shapes.render(clip), rng, noise=noise, blur=blur)
        detection = detect(frames)
        truth = {"colour": clip.colour, "shape": clip.shape, "direction": clip.direction}
        correct = _score(truth, detection)
        for key, value in correct.items():
            right[key] += value
        if not correct["joint"]:
            failures.append(
                {"clip": asdict(clip), "detected": detection.attributes()}
                | {"diagnostics": detection.diagnostics()}
            )
    return {
        "count": n,
        "seed": seed,
        "noise": noise,
        "blur": blur,
        "accuracy": {key: value / n for key, value in right.items()},
        "failures": failures,
    }


def degrade(
    frames: np.ndarray, rng: np.random.Generator, *, noise: float = 0.0, blur: float = 0.0
) -> np.ndarray:
    """`frames` blurred (Gaussian, sigma `blur` px) and then noised (Gaussian, sigma `noise`)."""
    out = frames.astype(np.float32)
    if blur > 0:
        radius = max(1, int(np.ceil(3 * blur)))
        curve = np.exp(-0.5 * (np.arange(-radius, radius + 1) / blur) ** 2)
        taps = (curve / curve.sum()).tolist()  # Python floats keep the sums in float32
        for axis in (1, 2):  # separable: rows, then columns
            moved = np.moveaxis(out, axis, 0)
            padded = np.concatenate([moved[:1]] * radius + [moved] + [moved[-1:]] * radius)
            size = moved.shape[0]
            blurred = sum(tap * padded[k : k + size] for k, tap in enumerate(taps))
            out = np.moveaxis(blurred, 0, axis)
    if noise > 0:
        out = out + np.float32(noise) * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Evaluating a model


def canonical_prompts(with_: str | Iterable[str] = ()) -> list[str]:
    """Every colour x shape x direction of the shipped world (84), as "a {colour} {shape} moving
    {direction}".

    With opt-in concepts named in `with_` ("pink,cross", `shapes.asked_extras`), every
    combination that has one of them instead, in the same order: for pink and cross 44 (12 pink
    circles, squares or triangles, 28 crosses of the other colours, 4 pink crosses), the prompts
    that measure what the shipped model never saw.
    """
    colours, shape_names = shapes.vocabulary(with_)
    extras = set(shapes.asked_extras(with_))
    prompts = []
    for colour in colours:
        for shape in shape_names:
            if extras and not {colour, shape} & extras:
                continue
            for direction in shapes.DIRECTIONS:
                clip = shapes.Clip(
                    colour=colour,
                    shape=shape,
                    direction=direction,
                    size=18,
                    speed=1.5,
                    x=32.0,
                    y=32.0,
                )
                prompts.append(shapes.canonical_caption(clip))
    return prompts


def evaluate(
    model: str,
    *,
    prompts: Sequence[str] | None = None,
    with_: str | Iterable[str] = (),
    seed: int = 0,
    per_combination: int = 1,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    lora: Sequence[str] = (),
    cache: str = "off",
    out_dir: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate every prompt with `model` and score each video with `detect`.

    `prompts` defaults to `canonical_prompts(with_)`: the shipped world's 84, or with opt-in
    concepts named in `with_` ("pink,cross") every prompt that has one of them. Each is generated
    `per_combination` times with its own seed, drawn from `seed`, so the same arguments give the
    same set of videos. Writes
    `contact_sheet.png` and `fidelity.json` into `out_dir` (created if missing) and returns the
    same results: accuracy per attribute and joint, and one row per video (with its denoising
    time); `cache` is generate's `--cache`. `progress`, if given,
    is called with (videos done, videos in all) after each video.
    """
    import promptreel  # the package imports torch and diffusers lazily; only this needs them

    # 1. Check the request before generating anything.
    if per_combination < 1:
        raise ValueError(f"`per_combination` must be at least 1 but is {per_combination}")
    if prompts is not None and shapes.asked_extras(with_):
        raise ValueError("give `prompts` or `with_` (which chooses the prompts), not both")
    prompt_list = canonical_prompts(with_) if prompts is None else list(prompts)
    if not prompt_list:
        raise ValueError("`prompts` is empty; give at least one prompt or None for all 84")
    truths = []
    for prompt in prompt_list:
        parsed = shapes.parse_prompt(prompt)
        if parsed is None:
            raise ValueError(
                f"prompt {prompt!r} names no colour, shape and direction of the shapes world; "
                "the detector cannot score it (e.g. 'a red circle moving right')"
            )
        truths.append(dict(zip(ATTRIBUTES, parsed, strict=True)))
    jobs = [
        (p, t) for p, t in zip(prompt_list, truths, strict=True) for _ in range(per_combination)
    ]
    # One independent stream per video: adding prompts at the end leaves earlier seeds alone.
    seeds = np.random.SeedSequence(seed).generate_state(len(jobs), dtype=np.uint32).tolist()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if num_inference_steps is not None:
        options["num_inference_steps"] = num_inference_steps
    if guidance_scale is not None:
        options["guidance_scale"] = guidance_scale
    if lora:
        options["lora"] = list(lora)  # each "LORA[:SCALE]", as `generate` takes them
    options["cache"] = cache

    # 2. Generate and detect.
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    sheet_frames: list[np.ndarray] = []
    for index, ((prompt, truth), video_seed) in enumerate(zip(jobs, seeds, strict=True)):
        # a measurement, not the user's work: kept out of the history
        video = promptreel.generate(
            prompt, model=model, seed=int(video_seed), history=False, **options
        )
        detection = detect(video.frames)
        rows.append(
            {
                "prompt": prompt,
                "seed": int(video_seed),
                "expected": truth,
                "detected": detection.attributes(),
                "correct": _score(truth, detection),
                "diagnostics": detection.diagnostics(),
                "denoise_seconds": video.record.get("timings", {}).get("denoise"),
            }
        )
        sheet_frames.append(_sheet_tiles(video.frames))
        if progress is not None:
            progress(index + 1, len(jobs))

    # 3. Summarise and write.
    keys = (*ATTRIBUTES, "joint")
    accuracy = {key: sum(row["correct"][key] for row in rows) / len(rows) for key in keys}
    results: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "with": list(shapes.asked_extras(with_)),
        "per_combination": per_combination,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale,
        "lora": list(lora),
        "cache": cache,
        "count": len(rows),
        "accuracy": accuracy,
        "seconds": round(time.perf_counter() - started, 2),
        "contact_sheet": str(out / "contact_sheet.png"),
        "json": str(out / "fidelity.json"),
        "rows": rows,
    }
    write_contact_sheet(rows, sheet_frames, out / "contact_sheet.png", title=_title(results))
    _write_atomic(
        out / "fidelity.json",
        (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    )
    return results


def _score(truth: dict[str, str], detection: Detection) -> dict[str, bool]:
    seen = detection.attributes()
    correct = {key: seen[key] == truth[key] for key in ATTRIBUTES}
    correct["joint"] = all(correct.values())
    return correct


def _title(results: dict[str, Any]) -> str:
    accuracy = results["accuracy"]
    parts = ", ".join(f"{key} {accuracy[key]:.0%}" for key in (*ATTRIBUTES, "joint"))
    return f"{results['model']}: {results['count']} videos, seed {results['seed']}: {parts}"


# ---------------------------------------------------------------------------------------------
# Contact sheet


def _sheet_tiles(frames: np.ndarray) -> np.ndarray:
    """Every other frame (at most MAX_TILES, evenly spread for longer clips), scaled to TILE px
    high now, so that 84 videos of a large model do not all stay in memory at full size."""
    count = len(frames)
    wanted = min(MAX_TILES, (count + 1) // 2)
    if wanted * 2 >= count:
        picks = np.arange(0, count, 2)[:wanted]
    else:
        picks = np.linspace(0, count - 1, wanted).round().astype(int)
    return np.stack([np.asarray(_fit(frame)) for frame in frames[picks]])


def write_contact_sheet(
    rows: Sequence[dict[str, Any]],
    tiles: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """One row per video: the prompt, a mark per attribute and the frames in `tiles[i]`.

    The sheet is MARGIN + tiles wide and HEADER_HEIGHT + ROW_HEIGHT per row high. A green tick
    or a red cross (drawn, since PIL's default font has neither glyph) says whether the detector
    saw the prompt's colour, shape and direction; the word after it is what it saw.
    """
    if len(rows) != len(tiles):
        raise ValueError(f"{len(rows)} rows but {len(tiles)} sets of frames")
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    sized = [[_fit(frame) for frame in frames] for frames in tiles]
    widths = [sum(tile.width + GAP for tile in row) for row in sized]
    sheet = Image.new(
        "RGB",
        (MARGIN + max(widths), HEADER_HEIGHT + ROW_HEIGHT * len(rows)),
        _SHEET_BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    draw.text((6, 7), title, fill=_TEXT, font=font)
    top_pad = (ROW_HEIGHT - TILE) // 2
    for index, (row, images) in enumerate(zip(rows, sized, strict=True)):
        y = HEADER_HEIGHT + index * ROW_HEIGHT
        draw.line([(0, y), (sheet.width, y)], fill=(60, 60, 60))
        draw.text((6, y + 4), _clip_text(draw, row["prompt"], font, MARGIN - 12), _TEXT, font)
        x = 6
        for key in ATTRIBUTES:
            right = row["correct"][key]
            _mark(draw, x, y + 21, right)
            seen = row["detected"][key] or "?"
            draw.text((x + 12, y + 19), seen, fill=_TEXT if right else _WRONG, font=font)
            x += 12 + int(draw.textlength(seen, font=font)) + 14
        draw.text((6, y + 35), f"seed {row['seed']}", fill=_DIM_TEXT, font=font)
        draw.text((6, y + 51), _diagnostic_text(row.get("diagnostics", {})), _DIM_TEXT, font)
        x = MARGIN
        for image in images:
            sheet.paste(image, (x, y + top_pad))
            x += image.width + GAP
    target = Path(path)
    buffer = _png_bytes(sheet)
    _write_atomic(target, buffer)
    return target


def _fit(frame: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    width = max(1, round(image.width * TILE / image.height))
    # Nearest when enlarging keeps a 64 px clip's pixels honest; area averaging when shrinking.
    method = Image.Resampling.NEAREST if image.height <= TILE else Image.Resampling.BOX
    return image.resize((width, TILE), method)


def _mark(draw: ImageDraw.ImageDraw, x: int, y: int, right: bool) -> None:
    if right:
        draw.line([(x, y + 4), (x + 3, y + 7), (x + 9, y)], fill=_RIGHT, width=2)
    else:
        draw.line([(x + 1, y), (x + 8, y + 7)], fill=_WRONG, width=2)
        draw.line([(x + 1, y + 7), (x + 8, y)], fill=_WRONG, width=2)


def _clip_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _diagnostic_text(diagnostics: dict[str, Any]) -> str:
    parts = []
    if diagnostics.get("fill_ratio") is not None:
        parts.append(f"fill {diagnostics['fill_ratio']:.2f}")
    if diagnostics.get("top_share") is not None:
        parts.append(f"top {diagnostics['top_share']:.2f}")
    if diagnostics.get("corner_fill") is not None:
        parts.append(f"corner {diagnostics['corner_fill']:.2f}")
    if diagnostics.get("displacement") is not None:
        dx, dy = (round(value, 1) + 0.0 for value in diagnostics["displacement"])  # no "-0.0"
        parts.append(f"move {dx:+.1f},{dy:+.1f} px/f")
    return "  ".join(parts) if parts else "no shape found"


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_atomic(target: Path, data: bytes) -> None:
    """Write under a hidden name and rename, so a reader never sees half a file."""
    temp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
