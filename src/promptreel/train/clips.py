"""A folder of your own clips and captions, read for fine-tuning (`promptreel finetune`).

    find_clips(folder)          the (video, caption) pairs of a folder, in one of the layouts
                                users already have (below), in a stable order
    read_clip(clip, shape)      its frames at the model's training shape: uint8 (F, H, W, 3)
    data_sha256(clips)          one hash of every video's bytes and caption, in order

The layouts, tried in this order; a folder holding two of them is refused rather than guessed:

    metadata.jsonl              one JSON object a line
    metadata.csv                a header line, then one row a clip
        with a file column (`file_name` as Hugging Face's videofolder names it, `file` or
        `video`) and a caption column (`caption`, `text` or `prompt`); files relative to the
        folder
    prompts.txt + videos.txt    diffusers' training examples: line N of one is the caption of
                                line N of the other
    a.mp4 + a.txt               every video under the folder (any depth, hidden ones skipped)
                                with its caption in a text file of the same name beside it

Every refusal is one `InputError` with `argument="data"` naming the file (and line) at fault.

How a clip becomes the model's training shape (num_frames x height x width at fps): the frames
are taken at the model's fps from the clip's start, each the source frame nearest to its time
(a 24 fps clip gives every third frame for 8 fps; a clip slower than the model repeats frames),
so motion keeps its real speed. Each frame is scaled, keeping its aspect, until it covers the
model's frame (for a square model: its shorter side to the model's side), with Pillow's
antialiased bicubic filter, then cropped to the centre. A clip shorter than the window
(num_frames / fps seconds) is refused: stretched or padded, it would teach other motion.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .. import jsontext
from ..errors import InputError
from ..video.read import MAX_PIXELS, input_sha256, open_input, reason

# Video files the a.mp4 + a.txt layout picks up (what promptreel's reader decodes).
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
FILE_COLUMNS = ("file_name", "file", "video")
CAPTION_COLUMNS = ("caption", "text", "prompt")
LAYOUTS = (
    "a.mp4 + a.txt pairs, metadata.jsonl or metadata.csv (file, caption), or prompts.txt +"
    " videos.txt"
)


@dataclass(frozen=True)
class Clip:
    """One training example: a video file and its caption, and where the pair was listed."""

    file: Path
    caption: str
    where: str  # `metadata.jsonl line 3`, `a.txt`: for messages


@dataclass(frozen=True)
class Shape:
    """What every clip is made into: the model's training frames, size and rate."""

    num_frames: int
    height: int
    width: int
    fps: int


def _refuse(folder: Path, what: str) -> InputError:
    return InputError(f"data folder {str(folder)!r}: {what}", argument="data", value=str(folder))


def find_clips(folder: Path) -> list[Clip]:
    """Every clip and its caption in `folder`, in the order its layout lists them."""
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise _refuse(folder, "no such folder")
    layouts = {
        "metadata.jsonl": (folder / "metadata.jsonl").is_file(),
        "metadata.csv": (folder / "metadata.csv").is_file(),
        "prompts.txt + videos.txt": (folder / "prompts.txt").is_file()
        or (folder / "videos.txt").is_file(),
    }
    found = [name for name, present in layouts.items() if present]
    if len(found) > 1:
        raise _refuse(folder, f"holds both {found[0]} and {found[1]}; keep one")
    if found == ["metadata.jsonl"]:
        clips = _from_metadata(folder, "metadata.jsonl", _jsonl_rows(folder / "metadata.jsonl"))
    elif found == ["metadata.csv"]:
        clips = _from_metadata(folder, "metadata.csv", _csv_rows(folder / "metadata.csv"))
    elif found:
        clips = _from_prompts_and_videos(folder)
    else:
        clips = _from_pairs(folder)
    if not clips:
        raise _refuse(folder, f"holds no clips; give {LAYOUTS}")
    return clips


def _text(path: Path, folder: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(folder, f"{path.relative_to(folder)} is not UTF-8 text") from None
    except OSError as e:
        raise _refuse(folder, f"{path.relative_to(folder)} cannot be read ({reason(e)})") from None


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for number, line in enumerate(_text(path, path.parent).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = jsontext.loads(line)
        except ValueError as e:
            raise _refuse(path.parent, f"metadata.jsonl line {number} is not JSON ({e})") from None
        if not isinstance(row, dict):
            raise _refuse(path.parent, f"metadata.jsonl line {number} is not a JSON object")
        rows.append((number, row))
    return rows


def _csv_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(_text(path, path.parent), newline=""))
    try:
        # line 1 is the header
        return [(number, dict(row)) for number, row in enumerate(reader, start=2)]
    except csv.Error as e:
        raise _refuse(path.parent, f"metadata.csv is not valid CSV ({e})") from None


def _from_metadata(
    folder: Path, name: str, rows: list[tuple[int, dict[str, object]]]
) -> list[Clip]:
    clips = []
    for number, row in rows:
        at = f"{name} line {number}"
        file = next((row[c] for c in FILE_COLUMNS if isinstance(row.get(c), str) and row[c]), None)
        if file is None:
            raise _refuse(folder, f"{at} names no video (a {'/'.join(FILE_COLUMNS)} column)")
        caption = next((row[c] for c in CAPTION_COLUMNS if isinstance(row.get(c), str)), "")
        clips.append(_clip(folder, str(file), str(caption), at))
    return clips


def _from_prompts_and_videos(folder: Path) -> list[Clip]:
    for name in ("prompts.txt", "videos.txt"):
        if not (folder / name).is_file():
            raise _refuse(folder, f"has no {name} to go with the other; give both")
    # line N of one goes with line N of the other: only trailing blank lines are dropped
    prompts = _text(folder / "prompts.txt", folder).rstrip("\n\r\t ").splitlines()
    videos = _text(folder / "videos.txt", folder).rstrip("\n\r\t ").splitlines()
    if len(videos) != len(prompts):
        raise _refuse(
            folder,
            f"prompts.txt has {len(prompts)} lines and videos.txt {len(videos)}; give one "
            "caption a video",
        )
    clips = []
    for number, (video, prompt) in enumerate(zip(videos, prompts, strict=True), start=1):
        if not video.strip():
            raise _refuse(folder, f"videos.txt line {number} is empty")
        clips.append(_clip(folder, video.strip(), prompt, f"prompts.txt line {number}"))
    return clips


def _from_pairs(folder: Path) -> list[Clip]:
    videos = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    clips = []
    for video in videos:
        text = video.with_suffix(".txt")
        relative = text.relative_to(folder)
        if not text.is_file():
            raise _refuse(
                folder,
                f"{video.relative_to(folder)} has no caption; write it in {relative}",
            )
        clips.append(_clip(folder, str(video.relative_to(folder)), _text(text, folder), relative))
    return clips


def _clip(folder: Path, file: str, caption: str, at: object) -> Clip:
    """One listed pair, checked: a caption with words, a file inside the folder that exists."""
    caption = " ".join(caption.split())
    if not caption:
        raise _refuse(folder, f"{at}: the caption of {file!r} is missing (empty)")
    relative = Path(file)
    path = Path(os.path.abspath(folder / relative))
    if relative.is_absolute() or not path.is_relative_to(folder):
        raise _refuse(folder, f"{at}: {file!r} is outside the data folder")
    if not path.is_file():
        raise _refuse(folder, f"{at}: {file!r} does not exist")
    return Clip(path, caption, str(at))


def data_sha256(clips: list[Clip]) -> str:
    """The SHA-256 of the data as trained on: one line a clip, `<SHA-256 of the video's bytes>
    <caption>`, in order (names and places do not count; contents and order do)."""
    lines = "".join(f"{input_sha256(clip.file)} {clip.caption}\n" for clip in clips)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def read_clip(clip: Clip, shape: Shape, *, folder: Path) -> np.ndarray:
    """The clip's first `shape.num_frames / shape.fps` seconds at the training shape: uint8
    (num_frames, height, width, 3). Decodes only as far as it needs."""

    def refuse(why: str) -> InputError:
        shown = clip.file.relative_to(folder) if clip.file.is_relative_to(folder) else clip.file
        return InputError(
            f"data folder {str(folder)!r}: clip {str(shown)!r} {why}",
            argument="data",
            value=str(clip.file),
            reason=why,
        )

    try:
        container = open_input(clip.file)
    except av.FFmpegError:
        raise refuse("is not a video this can read (MP4, MOV, WebM, MKV, AVI or GIF)") from None
    frames: list[np.ndarray] = []
    decoded = 0
    try:
        if not container.streams.video:
            raise refuse("has no video stream")
        stream = container.streams.video[0]
        rate = stream.guessed_rate or stream.average_rate
        if not rate or rate <= 0:
            raise refuse("has no frame rate")
        # source frame of each training frame: the one nearest to its time k / fps
        wanted = [int(k * float(rate) / shape.fps + 0.5) for k in range(shape.num_frames)]
        for frame in container.decode(stream):
            if frame.width * frame.height > MAX_PIXELS:
                raise refuse(f"is {frame.width}x{frame.height}, larger than {MAX_PIXELS} pixels")
            while len(frames) < len(wanted) and wanted[len(frames)] == decoded:
                frames.append(_fit(frame.to_image(), shape))
            decoded += 1
            if len(frames) == len(wanted):
                break
    except av.FFmpegError as e:
        raise refuse(f"is corrupt and does not decode ({reason(e)})") from None
    finally:
        container.close()
    if decoded == 0:
        raise refuse("has no frames that decode (empty, truncated or corrupt)")
    if len(frames) < shape.num_frames:
        raise refuse(
            f"is {decoded / float(rate):.2f} s long ({decoded} frames at {float(rate):g} fps); "
            f"training takes {shape.num_frames} frames at {shape.fps} fps "
            f"({shape.num_frames / shape.fps:.2f} s): give a longer clip, or lower num_frames"
        )
    return np.stack(frames)


def _fit(image: Image.Image, shape: Shape) -> np.ndarray:
    """Scaled (aspect kept) to cover height x width, then the centre cut out."""
    image = image.convert("RGB")
    scale = max(shape.width / image.width, shape.height / image.height)
    size = (
        max(shape.width, round(image.width * scale)),
        max(shape.height, round(image.height * scale)),
    )
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - shape.width) // 2, (size[1] - shape.height) // 2
    return np.asarray(image.crop((left, top, left + shape.width, top + shape.height)))
