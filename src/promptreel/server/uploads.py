"""Uploaded images and videos: size-limited, decoded once to prove what they are, and stored
under a name the server makes (`HOME/uploads/{random}.{field}`), never the client's.

Each field of `request.INPUT_FILES` is one upload: `image` an image, `video` and
`control_video` a video (a folder of control images, which the CLI takes, is no upload)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..jobs.files import new_upload_path, uploads_dir
from ..video import read_image, read_video
from .errors import ApiError

MAX_UPLOAD_BYTES = 50 * 2**20
MAX_UPLOAD_PIXELS = 4096 * 4096  # per image, checked from the header before decoding
# per video frame: the model reads up to its frame limit of them while checking the job
MAX_UPLOAD_VIDEO_PIXELS = 1920 * 1080
_CHUNK = 2**20


async def save_upload(upload: Any, kind: str) -> Path:
    """Copy an upload to the uploads folder and check it decodes as `kind`: the input-file
    field it came as (`image`, or a video: `video`, `control_video`). Raises the service's
    ApiError (413, 422); leaves no file behind when it does."""
    uploads_dir().mkdir(parents=True, exist_ok=True)
    temp = new_upload_path(".part")
    temp = temp.with_name("." + temp.name)
    try:
        size = 0
        with open(temp, "wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise ApiError(
                        413,
                        f"`{kind}` is larger than {MAX_UPLOAD_BYTES // 2**20} MiB",
                        argument=kind,
                    )
                out.write(chunk)
        if size == 0:
            raise ApiError(422, f"`{kind}` is an empty file", argument=kind)
        try:
            suffix = await asyncio.to_thread(_checked_suffix, temp, kind)
        except InputError as exc:
            raise ApiError(422, f"`{kind}` upload: {exc.reason}", argument=kind) from None
        final = new_upload_path(suffix)
        os.replace(temp, final)
        return final
    finally:
        temp.unlink(missing_ok=True)


def _checked_suffix(path: Path, kind: str) -> str:
    """Decode enough to know the file is a real image or video; the suffix to store it by."""
    if kind == "image":
        read_image(path, max_pixels=MAX_UPLOAD_PIXELS)
    else:
        read_video(path, max_pixels=MAX_UPLOAD_VIDEO_PIXELS, first=1, argument=kind)
    return f".{kind}"
