"""Reading what a user gives: an input video or image, decoded with limits.

Every way an input can be wrong becomes one `InputError` line naming the option and the file;
inputs too large to decode (decompression bombs) are refused before a pixel is decoded.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

MAX_PIXELS = 4096 * 4096  # per frame; larger inputs are refused before any frame is decoded
MAX_FRAMES = 1024  # default limit of read_video; callers pass the model card's own limit
MIN_IMAGE_SIDE = 16  # read_image refuses smaller images: nothing a model can condition on
# Demuxers read_video accepts. Without a list FFmpeg would also open playlists (HLS, concat) that
# make it read other files, or URLs, named inside an uploaded "video".
_DEMUXERS = "mov,matroska,avi,gif,apng,flv,mpegts,mpeg,ogg,asf,ivf"
_READ_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}
_READABLE = "MP4, MOV, WebM, MKV, AVI, GIF, FLV, MPEG-TS or OGG"
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def refusal(argument: str | None, path: str | os.PathLike[str]) -> Callable[[str], InputError]:
    """The errors of one input file: `--video 'clip.mp4': REASON`, carrying the field and path."""
    shown = repr(os.fspath(path))
    where = f"--{argument.replace('_', '-')} {shown}" if argument else shown

    def refuse(reason: str) -> InputError:
        return InputError(
            f"{where}: {reason}", argument=argument, value=os.fspath(path), reason=reason
        )

    return refuse


def input_file(path: str | os.PathLike[str], refuse: Callable[[str], InputError]) -> Path:
    file = Path(os.path.abspath(os.fspath(path)))
    try:
        if not file.exists():
            raise refuse("no such file; check the path")
        if not file.is_file():
            raise refuse("is not a file")
    except OSError as e:  # a name longer than the file system allows, say
        raise refuse(f"cannot be opened ({reason(e)}); check the path") from None
    if not os.access(file, os.R_OK):
        raise refuse("is not readable (permission denied)")
    return file


def open_input(file: Path) -> av.container.InputContainer:
    # An absolute path: FFmpeg would read "concat:a|b" or "http:x" as a protocol, not a file.
    return av.open(str(file), "r", container_options=_READ_OPTIONS, metadata_errors="replace")


def read_frames(
    path: str | os.PathLike[str], *, argument: str, first: int | None = None
) -> tuple[np.ndarray, float | None]:
    """A video file, or a folder of images as its frames: (frames uint8 (T, H, W, 3), fps).

    A folder's images are taken in natural name order (`frame_2` before `frame_10`), each
    scaled to the first one's size; a folder has no frame rate (None).
    """
    refuse = refusal(argument, path)
    try:
        is_folder = Path(path).is_dir()
    except OSError:
        is_folder = False
    if not is_folder:
        if Path(path).suffix.lower() in _IMAGE_SUFFIXES:
            raise refuse("is one image; give a video, or a folder of images (one a frame)")
        return read_video(path, argument=argument, first=first)
    names = image_files(Path(os.path.abspath(path)))
    if not names:
        raise refuse("is a folder with no images in it (PNG, JPEG, WebP, BMP or TIFF)")
    if len(names) > MAX_FRAMES and first is None:
        raise refuse(f"holds more than {MAX_FRAMES} images, the limit; give fewer")
    frames: list[np.ndarray] = []
    for name in names[:first]:
        image = read_image(name, argument=argument)
        if frames and image.size != (frames[0].shape[1], frames[0].shape[0]):
            image = image.resize((frames[0].shape[1], frames[0].shape[0]), Image.Resampling.LANCZOS)
        frames.append(np.asarray(image))
    return np.stack(frames), None


def image_files(folder: Path) -> list[Path]:
    """The images of a folder of frames, in natural name order (`frame_2` before `frame_10`)."""
    return sorted(
        (
            f
            for f in folder.iterdir()
            if not f.name.startswith(".") and f.suffix.lower() in _IMAGE_SUFFIXES
        ),
        key=lambda f: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", f.name)],
    )


def input_sha256(path: Path) -> str:
    """The hex SHA-256 of an input file, as records note each; of a folder of frames, the hash
    of its images' names and hashes, in the order they are read."""
    if path.is_dir():
        listing = "".join(f"{f.name}\0{_file_sha256(f)}\n" for f in image_files(path))
        return hashlib.sha256(listing.encode("utf-8", "surrogateescape")).hexdigest()
    return _file_sha256(path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_video(
    path: str | os.PathLike[str],
    *,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    first: int | None = None,
    argument: str = "video",
) -> tuple[np.ndarray, float]:
    """Decode the first video stream of `path`: (frames uint8 (T, H, W, 3) RGB, fps).

    Refuses (`InputError`) rather than truncates a video longer than `max_frames`, and refuses
    frames larger than `max_pixels` before decoding them. With `first`, decodes only the first
    `first` frames: a model that uses 24 frames of a long clip need not hold all of it in memory.
    """
    refuse = refusal(argument, path)
    file = input_file(path, refuse)
    try:
        container = open_input(file)
    except av.FFmpegError:
        # FFmpeg's own text here ("Invalid argument" for a refused demuxer) would mislead.
        raise refuse(f"is not a video this can read ({_READABLE})") from None
    try:
        if not container.streams.video:
            raise refuse("has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise refuse(f"its video codec is unknown ({_READABLE})")
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise refuse(_too_large(width, height, max_pixels))

        arrays: list[np.ndarray] = []
        for frame in container.decode(stream):
            if first is not None and len(arrays) == first:
                break
            if not width or not height:  # some containers only say once a frame is decoded
                width, height = frame.width, frame.height
                if width * height > max_pixels:
                    raise refuse(_too_large(width, height, max_pixels))
            if len(arrays) == max_frames:
                raise refuse(
                    f"has more than {max_frames} frames, the limit; "
                    f"trim it first (e.g. ffmpeg -i IN -frames:v {max_frames} OUT)"
                )
            # A stream may change size midway; every frame is scaled to the first one's size.
            arrays.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
        fps = stream.guessed_rate or stream.average_rate
    except av.FFmpegError as e:
        raise refuse(f"is corrupt and does not decode ({reason(e)})") from None
    finally:
        container.close()

    if not arrays:
        raise refuse("has no frames that decode (empty, truncated or corrupt)")
    if not fps or fps <= 0:
        raise refuse("has no frame rate")
    return np.stack(arrays), float(fps)


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"{width}x{height} is larger than the limit of {max_pixels} pixels per frame; "
        "scale it down first"
    )


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS, argument: str = "image"
) -> Image.Image:
    """Open an image as RGB, upright (EXIF orientation applied), or raise `InputError`."""
    refuse = refusal(argument, path)
    file = input_file(path, refuse)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # the common formats only: exotic decoders (DDS, ...) fail in exotic ways
            with Image.open(file, formats=IMAGE_FORMATS) as image:
                # Image.open reads only the header: refuse a bomb before decoding any pixel.
                if image.width * image.height > max_pixels:
                    raise refuse(_too_large(image.width, image.height, max_pixels))
                if min(image.size) < MIN_IMAGE_SIDE:
                    raise refuse(
                        f"is {image.width}x{image.height}; give an image at least "
                        f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}"
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise refuse(f"is too large to decode safely: {e}") from None
    except UnidentifiedImageError:
        raise refuse("is not an image Pillow can read (PNG, JPEG, WebP ...)") from None
    except InputError:
        raise
    except Exception as e:
        # Truncated or corrupt data surfaces as OSError / SyntaxError from the decoders, and
        # a malformed EXIF block as struct.error or others from exif_transpose.
        raise refuse(f"is corrupt and does not decode ({reason(e)})") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, 8 bits a channel. Deep grey modes are scaled to 8 bits: Pillow's own convert clips
    them at 255, which turns a 16-bit image (0..65535) almost entirely white."""
    mode = image.mode
    if mode.startswith("I;16"):  # I;16, I;16B, I;16L, I;16N: 0..65535 -> 0..255
        values = np.asarray(image.convert("I"), np.float32) / 257
    elif mode in ("I", "F"):  # no fixed range: 0 (below is clipped) to the image's own maximum
        values = np.asarray(image, np.float32)
        finite = np.isfinite(values)
        top = float(values[finite].max()) if finite.any() else 0.0
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0).clip(0, None)
        values = values * (255 / top) if top > 0 else np.zeros_like(values)
    else:
        return image.convert("RGB")
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def reason(error: BaseException) -> str:
    """The reason an error gives, on one line: `strerror` when it has one, else its text."""
    reason = getattr(error, "strerror", None)
    if not isinstance(reason, str) or not reason.strip():
        reason = str(error) or type(error).__name__  # Pillow and PyAV often leave strerror None
    return " ".join(reason.split())
