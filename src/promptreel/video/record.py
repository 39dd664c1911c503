"""The generation record: where it goes beside and inside an output, and reading it back.

A record is a JSON object with a `promptreel_record` key; any other JSON found in a tag or beside
a file is someone else's and is not taken for one. It goes into the container's `comment` tag
(MP4, WebM) and the `Comment` text chunk of every PNG, and always beside the output file under
its full name plus `.json` (`clip.mp4.json`), or into a folder of PNG frames as `record.json`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
from PIL import Image

from .. import jsontext
from .read import IMAGE_FORMATS, input_file, open_input, reason, refusal

RECORD_NAME = "record.json"
SIDECAR_SUFFIX = ".json"  # appended to the full output name: clip.mp4 -> clip.mp4.json
RECORD_MARKER = "promptreel_record"  # the key that makes a JSON object one of our records
RECORD_KEY = "comment"  # MP4 stores it as the standard ©cmt atom, Matroska as a COMMENT tag
PNG_RECORD_KEY = "Comment"  # the PNG spec's predefined keyword


def sidecar(target: Path) -> Path:
    """The record beside an output file: its full name plus `.json` (clip.mp4 -> clip.mp4.json)."""
    return target.with_name(target.name + SIDECAR_SUFFIX)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The generation record of an output of ours: embedded in the file, else the JSON beside it.

    Works for .mp4 and .webm (container `comment` tag), a PNG frame (its `Comment` chunk), a
    folder of PNG frames (`record.json`) and any output with `NAME.json` beside it (its full
    name plus `.json`: `clip.gif.json`). JSON without a `promptreel_record` key is not a record.
    """
    raw = os.fspath(path)
    target = Path(os.path.abspath(raw))
    refuse = refusal(None, raw)
    try:
        folder = target.is_dir()
    except OSError as e:  # a name longer than the file system allows, say
        raise refuse(f"cannot be opened ({reason(e)}); check the path") from None
    if folder:
        beside = target / RECORD_NAME
    else:
        input_file(raw, refuse)
        beside = sidecar(target)
        embedded = _embedded_record(target)
        if embedded is not None:
            return embedded
    if beside.is_file():
        try:
            record = jsontext.loads(beside.read_text(encoding="utf-8"))
        except OSError as e:
            raise refuse(f"its record {beside.name} is unreadable ({reason(e)})") from None
        except ValueError as e:  # not UTF-8, not JSON, or nested too deeply
            raise refuse(f"its record {beside.name} is not valid JSON: {e}") from None
        if is_record(record):
            return record
        raise refuse(
            f"has no generation record ({beside.name} is JSON but not a promptreel "
            "record); was it made by promptreel?"
        )
    raise refuse(
        f"has no generation record (no comment tag and no {beside.name} beside it); "
        "was it made by promptreel?"
    )


def is_record(value: object) -> bool:
    return isinstance(value, dict) and RECORD_MARKER in value


def _embedded_record(file: Path) -> dict[str, Any] | None:
    text: str | None = None
    if file.suffix.lower() == ".png":
        try:
            # the common formats only: exotic decoders (DDS, ...) fail in exotic ways
            with Image.open(file, formats=IMAGE_FORMATS) as image:
                text = getattr(image, "text", {}).get(PNG_RECORD_KEY)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return None
    else:
        try:
            with open_input(file) as container:
                # Matroska keys come back upper-case (COMMENT), MP4 keys lower-case.
                tags = {key.lower(): value for key, value in container.metadata.items()}
        except (av.FFmpegError, UnicodeDecodeError):
            return None
        text = tags.get(RECORD_KEY)
    if not text:
        return None
    try:
        record = jsontext.loads(text)
    except ValueError:
        return None  # a comment someone else wrote; try the sidecar
    return record if is_record(record) else None  # JSON of someone else's: likewise
