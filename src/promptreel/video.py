"""The `Video` a generation returns, and every way it reaches or leaves the disk.

Writing (`Video.save`):

    .mp4      H.264 (libx264), yuv420p, BT.709, +faststart    plays in every browser
    .webm     VP9 (libvpx-vp9), yuv420p, BT.709, constant quality
    .gif      loops forever, one adaptive palette per frame, delays in centiseconds
    folder/   frame_00000.png, frame_00001.png, ... and record.json

The generation record (JSON) goes into the container's `comment` tag (MP4, WebM) and into the
`Comment` text chunk of every PNG, and is always written beside the output file under its full
name plus `.json` (`clip.mp4.json`, so `clip.mp4` and `clip.gif` never share one record), or into
a folder of PNG frames as `record.json`. A record is a JSON object with a `promptreel_record` key;
any other JSON found in a tag or beside a file is someone else's and is not taken for one.
Every file is encoded under a hidden temporary name in the target folder and renamed into place
when complete, so a reader (the web page, the job history) never sees half a video, and an error or
Ctrl-C leaves nothing behind. `check_output_path` runs the same refusals without writing anything,
so the CLI can refuse a bad `--output` before it spends minutes loading a model.

Reading (`read_video`, `read_image`, `read_record`) turns every way an input can be wrong into one
`InputError` line, and refuses inputs too large to decode (decompression bombs) before decoding.
Writing turns a failing disk (full, read-only, permission) into one `OutputError` line.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import re
import secrets
import shutil
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from promptreel import jsontext
from promptreel.errors import InputError, OutputError

__all__ = [
    "MAX_FRAMES",
    "MAX_PIXELS",
    "SUFFIXES",
    "Video",
    "check_output_path",
    "make_filename",
    "read_image",
    "read_record",
    "read_video",
]

SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".gif")
"""File suffixes `Video.save` writes; a folder (existing, or a path ending in '/') gets PNGs."""

MAX_PIXELS = 4096 * 4096  # per frame; larger inputs are refused before any frame is decoded
MAX_FRAMES = 1024  # default limit of read_video; callers pass the model card's own limit
MIN_IMAGE_SIDE = 16  # read_image refuses smaller images: nothing a model can condition on

# Browsers play GIF delays of 0 or 1 centisecond as 10 (a relic of 1990s banner ads), so above
# 50 fps a GIF would silently play several times slower than asked.
GIF_MAX_FPS = 50

_PNG_FOLDER = "folder"
_FRAME_NAME = re.compile(r"frame_\d{5,}\.png")
_RECORD_NAME = "record.json"
_SIDECAR_SUFFIX = ".json"  # appended to the full output name: clip.mp4 -> clip.mp4.json
_RECORD_MARKER = "promptreel_record"  # the key that makes a JSON object one of our records
_RECORD_KEY = "comment"  # MP4 stores it as the standard ©cmt atom, Matroska as a COMMENT tag
_PARTIAL_NAME = re.compile(r"\..+\.partial-([0-9]+)-[0-9a-f]{8}", re.ASCII | re.DOTALL)
_PNG_RECORD_KEY = "Comment"  # the PNG spec's predefined keyword

# Demuxers read_video accepts. Without a list FFmpeg would also open playlists (HLS, concat) that
# make it read other files, or URLs, named inside an uploaded "video".
_DEMUXERS = "mov,matroska,avi,gif,apng,flv,mpegts,mpeg,ogg,asf,ivf"
_READ_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}
_READABLE = "MP4, MOV, WebM, MKV, AVI, GIF, FLV, MPEG-TS or OGG"
_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

# mbtree=0: x264's macroblock tree made different videos from the same frames, depending on
# what the process's heap held before (seen at 64, 80, 160 and 320 px wide). Without it files
# are 1.2-1.8x larger at the same crf, and the same seed always gives the same video.
_MP4_OPTIONS = {"crf": "18", "preset": "medium", "x264-params": "mbtree=0"}
# Without crf and b=0 libvpx-vp9 targets 256 kbit/s whatever the size: blocky at 720p.
_WEBM_OPTIONS = {"crf": "30", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709 in FFmpeg's enums
_TV_RANGE = 1  # AVCOL_RANGE_MPEG: 16-235, what players assume for H.264 and VP9


@dataclass
class Video:
    """Frames and how to play them, plus the record of how they were made."""

    frames: np.ndarray  # uint8, (num_frames, height, width, 3), RGB
    fps: float  # may be fractional (7.5, 23.976); kept exact as a Fraction when encoding
    record: dict[str, Any] = field(default_factory=dict)  # the generation record, JSON-able
    # called with each path written by `save` (the history notes where its videos went)
    on_save: Callable[[Path], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        frames = self.frames
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            kind = getattr(frames, "dtype", type(frames).__name__)
            raise ValueError(f"`frames` must be a uint8 numpy array, not {kind}")
        if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
            raise ValueError(
                f"`frames` must have shape (frames, height, width, 3), not {frames.shape}"
            )
        if (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, numbers.Real)
            or not (0 < self.fps < math.inf)
        ):
            raise ValueError(f"`fps` must be a positive number, not {self.fps!r}")
        if not isinstance(self.record, dict):
            raise ValueError(f"`record` must be a dict, not {type(self.record).__name__}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the video (format from the suffix) and its record; return the path written.

        Nothing appears under `path` until it is complete. Refuses, with `OutputError`, what
        `check_output_path` refuses, and a GIF faster than 50 fps.
        """
        # 1. Check everything before writing a byte.
        target, kind = _check_output(path, overwrite=overwrite, fps=self.fps)
        remove_stale_partials(target.parent)
        try:
            record_text = json.dumps(self.record, ensure_ascii=False, indent=2, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"`record` is not JSON-serialisable: {e}") from e
        fps = _exact_fps(self.fps)

        # 2. Write. A failing disk becomes one line; `_staged` has removed the temporaries.
        try:
            if kind == _PNG_FOLDER:
                _save_png_folder(self.frames, record_text, target, overwrite=overwrite)
            else:
                self._save_file(target, kind, fps, record_text, overwrite=overwrite)
        except (OSError, av.FFmpegError) as e:
            raise OutputError(_write_failed(os.fspath(path), e)) from e
        _fsync_dir(target.parent)
        if self.on_save is not None:
            self.on_save(target)
        return target

    def _save_file(
        self, target: Path, kind: str, fps: Fraction, record_text: str, *, overwrite: bool
    ) -> None:
        """One video file plus its JSON sidecar, each encoded aside and renamed into place."""
        with _staged(target) as temp:
            _encode(self.frames, fps, temp, kind, comment=json.dumps(self.record))
            with _staged(_sidecar(target)) as sidecar_temp:
                sidecar_temp.write_text(record_text + "\n", encoding="utf-8")
                _fsync(sidecar_temp)
                _publish(temp, target, overwrite=overwrite)
                try:
                    _publish(sidecar_temp, _sidecar(target), overwrite=overwrite)
                except BaseException:
                    # All or nothing: a video whose record went missing is not what was asked.
                    if not overwrite:
                        target.unlink(missing_ok=True)
                    raise


# ---------------------------------------------------------------------------------------------
# Output paths


def check_output_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, fps: float | None = None
) -> None:
    """Raise `OutputError` if `Video.save(path, overwrite=...)` would refuse; write nothing.

    Refused: an empty path, a suffix other than `SUFFIXES` (a path ending in '/' means a folder
    of PNGs), a parent folder that does not exist or is not writable, a name too long for the
    folder's file system, an existing file or sidecar JSON (`NAME.json`, e.g. `clip.mp4.json`)
    unless `overwrite`, something that is not a regular file, a non-empty folder (with
    `overwrite`, a folder holding only frames and a record written by us is replaced), and,
    when `fps` is given, a GIF faster than browsers play (above `GIF_MAX_FPS`).
    """
    _check_output(path, overwrite=overwrite, fps=fps)


def _check_output(
    path: str | os.PathLike[str], *, overwrite: bool, fps: float | None = None
) -> tuple[Path, str]:
    raw = os.fspath(path)
    if not raw:
        raise OutputError(
            f"--output is empty; give a file name ending in {', '.join(SUFFIXES)}, "
            "or a folder path ending in '/' for PNG frames"
        )
    # a name is printed when written: a line break or an escape code in it would reach the
    # terminal, and bytes that are not UTF-8 cannot be shown at all
    odd = next((c for c in raw if unicodedata.category(c) in ("Cc", "Cs")), None)
    if odd is not None:
        raise OutputError(
            f"--output {raw!r}: holds U+{ord(odd):04X}, a control character or a byte that is "
            "not UTF-8; choose a plain name"
        )
    try:
        return _checked_target(raw, overwrite=overwrite, fps=fps)
    except OSError as e:  # a name too long for the file system, a folder gone mid-check ...
        raise OutputError(f"--output {raw!r}: {_reason(e)}; choose another --output") from None


def _checked_target(raw: str, *, overwrite: bool, fps: float | None) -> tuple[Path, str]:
    # Path() drops a trailing separator, and with it the only sign that a folder is meant.
    wants_folder = raw.endswith(("/", os.sep)) or bool(os.altsep and raw.endswith(os.altsep))
    # abspath (not resolve): a symlink named as the output is replaced, never written through.
    target = Path(os.path.abspath(raw))
    where = f"--output {raw!r}"

    if wants_folder or target.is_dir():
        kind = _PNG_FOLDER
    else:
        kind = target.suffix.lower()
        if kind not in SUFFIXES:
            given = f"'{target.suffix}'" if target.suffix else "no suffix"
            raise OutputError(
                f"{where}: unsupported format ({given}); use {', '.join(SUFFIXES)}, "
                "or a folder path ending in '/' for PNG frames"
            )
    if kind == ".gif" and fps is not None and float(fps) > GIF_MAX_FPS:
        raise OutputError(
            f"{where}: a GIF cannot play {float(fps):g} fps "
            f"(browsers slow anything above {GIF_MAX_FPS} fps down); use .mp4 or .webm, "
            "or a lower --fps"
        )

    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: folder {str(parent)!r} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: folder {str(parent)!r} is not writable; choose another")
    _check_name_length(target, kind, where)

    if kind == _PNG_FOLDER:
        if target.exists() and not target.is_dir():
            raise OutputError(f"{where}: exists and is not a folder; choose another --output")
        if target.is_dir():
            names = os.listdir(target)
            ours = all(_FRAME_NAME.fullmatch(n) or n == _RECORD_NAME for n in names)
            if names and not (overwrite and ours):
                hint = "" if ours else " (it holds files promptreel did not write)"
                raise OutputError(
                    f"{where}: folder is not empty{hint}; choose an empty or new folder"
                    + (" or pass --overwrite" if ours else "")
                )
        return target, kind

    for existing in (target, _sidecar(target)):
        if os.path.lexists(existing):
            if not overwrite:
                raise OutputError(
                    f"{where}: {str(existing)!r} exists; choose another --output "
                    "or pass --overwrite to replace it"
                )
            if not existing.is_symlink() and not existing.is_file():
                raise OutputError(
                    f"{where}: {str(existing)!r} is not a regular file; choose another --output"
                )
    return target, kind


def _sidecar(target: Path) -> Path:
    """The record beside an output file: its full name plus `.json` (clip.mp4 -> clip.mp4.json)."""
    return target.with_name(target.name + _SIDECAR_SUFFIX)


def _temp_name(final: Path, tag: str) -> Path:
    # the writer's pid in the name: a later writer removes what a killed one left behind
    return final.with_name(f".{final.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the hidden temporaries (`.NAME.partial-PID-XXXXXXXX`) that writers killed
    mid-write (kill -9, a power cut) left in `folder`: those whose process is gone, or whose
    pid now belongs to a process started after the file was last written. Every save does
    this first; a live writer's temporaries, and anything else, stay."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL_NAME.fullmatch(entry.name)
        try:
            if match is None or _writer_alive(int(match[1]), entry.stat(follow_symlinks=False)):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:  # gone already, or not ours to remove: leave it
            continue
        removed.append(Path(entry.path))
    return removed


def _writer_alive(pid: int, written: os.stat_result) -> bool:
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:  # zombies included
        return False
    except psutil.Error:  # another user's process, say: it may well be writing
        return True
    return started <= written.st_mtime + 1  # a second of slack for coarse clocks


def _check_name_length(target: Path, kind: str, where: str) -> None:
    # The longest name written is the sidecar's temporary (or the folder's, moved aside): refuse
    # now rather than fail after the generation.
    longest = _temp_name(target if kind == _PNG_FOLDER else _sidecar(target), "partial").name
    try:
        limit = os.pathconf(target.parent, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows has no pathconf
        limit = 255
    excess = len(os.fsencode(longest)) - limit
    if limit > 0 and excess > 0:
        raise OutputError(
            f"{where}: the name is {excess} bytes too long for this folder (promptreel adds "
            "temporary and .json names beside it); choose a shorter --output"
        )


def make_filename(prompt: str, seed: int, short_id: str, suffix: str) -> str:
    """A safe file name such as `a-red-ball-bouncing-s42-1a2b3c.mp4`, whatever the prompt holds.

    Only lowercase ASCII letters, digits and hyphens come from the prompt (accents are folded,
    everything else is a separator), so no name can hold a path separator, `..`, a NUL or start
    with a dot. `suffix` is one of `SUFFIXES` or "" (a folder of PNG frames).
    """
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    if suffix.lower() not in (*SUFFIXES, ""):
        raise ValueError(f"`suffix` must be one of {', '.join(SUFFIXES)} or '', not {suffix!r}")
    slug = _slug(prompt, limit=48) or "video"
    seed_part = f"s{int(seed)}".replace("-", "m")  # a negative seed would look like a separator
    id_part = _slug(short_id, limit=16).replace("-", "")
    parts = [slug, seed_part] + ([id_part] if id_part else [])
    return "-".join(parts) + suffix.lower()


def _slug(text: str, *, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        # Cut at a word boundary when one is near, so names do not end in half a word.
        cut = slug[: limit + 1].rfind("-")
        slug = slug[: cut if cut >= limit // 2 else limit]
    return slug.strip("-")


# ---------------------------------------------------------------------------------------------
# Atomic writing


@contextmanager
def _staged(final: Path, *, folder: bool = False) -> Iterator[Path]:
    """A hidden temporary path beside `final`, removed on the way out whatever happens.

    Same folder, so the rename into place is atomic (never a copy across file systems).
    """
    temp = _temp_name(final, "partial")
    try:
        yield temp
    finally:
        if folder:
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)


def _publish(temp: Path, final: Path, *, overwrite: bool) -> None:
    _fsync(temp)
    if overwrite:
        os.replace(temp, final)
        return
    # A hard link fails if the name exists, so another job that took the name since the check
    # is refused rather than silently replaced. The temp name is removed by `_staged`.
    try:
        os.link(temp, final)
    except FileExistsError:
        raise OutputError(
            f"--output {str(final)!r} exists; choose another --output or pass --overwrite"
        ) from None
    except OSError:
        # No hard links here (FAT, some network mounts): check, then rename.
        if os.path.lexists(final):
            raise OutputError(
                f"--output {str(final)!r} exists; choose another --output or pass --overwrite"
            ) from None
        os.replace(temp, final)


def _write_failed(raw: str, error: BaseException) -> str:
    """One line for an OSError / FFmpeg / Pillow error raised while writing `raw`."""
    if getattr(error, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        hint = "free some space or choose another --output"
    else:
        hint = "choose another --output"
    return f"--output {raw!r}: could not write it ({_reason(error)}); {hint}"


def _reason(error: BaseException) -> str:
    """The reason an error gives, on one line: `strerror` when it has one, else its text."""
    reason = getattr(error, "strerror", None)
    if not isinstance(reason, str) or not reason.strip():
        reason = str(error) or type(error).__name__  # Pillow and PyAV often leave strerror None
    return " ".join(reason.split())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; Windows cannot open a folder, and does not need to.
    with suppress(OSError):
        _fsync(path)


# ---------------------------------------------------------------------------------------------
# Encoding


def _exact_fps(fps: float) -> Fraction:
    # 7.5 -> 15/2 and 29.97 -> 2997/100 exactly: a float time base would drift, and a rounded
    # integer rate would change the clip's length.
    exact = fps if isinstance(fps, Fraction) else Fraction(float(fps))
    return exact.limit_denominator(1001)


def _to_av_frame(rgb: np.ndarray, kind: str) -> av.VideoFrame:
    """One RGB frame as the frame the encoder of `kind` takes."""
    if kind == ".gif":
        # FFmpeg's scaler cannot make a palette (rgb24 -> pal8 fails), and its fixed rgb8
        # palette bands gradients; Pillow picks 256 colours for each frame.
        image = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT)
        colours = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
        palette = np.zeros((256, 4), np.uint8)
        palette[:, 0] = 255  # ARGB, opaque
        palette[: len(colours), 1:] = colours
        return av.VideoFrame.from_ndarray((np.asarray(image), palette), format="pal8")

    # yuv420p stores one colour sample per 2x2 block: the size must be even. Pad right/bottom
    # by repeating the edge (black would bleed into the last row's colour); never crop.
    height, width = rgb.shape[:2]
    rgb = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    # Convert with the matrix we tag (BT.709) rather than the scaler's BT.601 default with no
    # tag, which browsers would decode with whichever matrix they guess.
    frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    frame.colorspace = _BT709
    frame.color_range = _TV_RANGE
    return frame


def _encode(frames: np.ndarray, fps: Fraction, temp: Path, kind: str, *, comment: str) -> None:
    height, width = frames.shape[1:3]
    if kind == ".gif":
        container_format, codec, pix_fmt = "gif", "gif", "pal8"
        container_options, codec_options = {"loop": "0"}, {}  # loop=0: forever
    elif kind == ".webm":
        container_format, codec, pix_fmt = "webm", "libvpx-vp9", "yuv420p"
        container_options, codec_options = {}, _WEBM_OPTIONS
        height, width = height + height % 2, width + width % 2
    else:
        container_format, codec, pix_fmt = "mp4", "libx264", "yuv420p"
        # moov before mdat: a browser can start playing before the download ends.
        container_options, codec_options = {"movflags": "+faststart"}, _MP4_OPTIONS
        height, width = height + height % 2, width + width % 2

    # The temporary name has no video suffix, hence the explicit format; faststart reopens the
    # file by name to move the moov atom, hence a real path rather than a file object.
    with av.open(
        str(temp), "w", format=container_format, container_options=container_options
    ) as container:
        if kind != ".gif":  # the GIF muxer has nowhere to put it; the sidecar has it
            # The MP4 muxer writes `comment` as the standard ©cmt atom (no use_metadata_tags
            # needed); Matroska writes a COMMENT tag, which PyAV reads back upper-case.
            container.metadata[_RECORD_KEY] = comment
        stream = container.add_stream(codec, rate=fps, options=codec_options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = 1 / fps  # frame i at pts i: exact for any rational fps
        if kind == ".mp4":
            # One x264 thread: with several, the same frames made different videos on a busy
            # CPU, and the same seed must give the same video. (A `threads` codec option is
            # overridden by PyAV's own thread_count.)
            stream.codec_context.thread_count = 1
        if kind != ".gif":
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = _BT709
            context.color_range = _TV_RANGE
        for index, rgb in enumerate(frames):
            frame = _to_av_frame(rgb, kind)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _save_png_folder(
    frames: np.ndarray, record_text: str, target: Path, *, overwrite: bool
) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text(_PNG_RECORD_KEY, json.dumps(json.loads(record_text)))  # compact, ASCII
    with _staged(target, folder=True) as temp:
        temp.mkdir()
        for index, rgb in enumerate(frames):
            path = temp / f"frame_{index:05d}.png"
            _write_png(rgb, path, info)
            _fsync(path)
        (temp / _RECORD_NAME).write_text(record_text + "\n", encoding="utf-8")
        _fsync(temp / _RECORD_NAME)
        _fsync_dir(temp)
        _publish_folder(temp, target, overwrite=overwrite)
    _fsync_dir(target.parent)


def _write_png(rgb: np.ndarray, path: Path, info: PngImagePlugin.PngInfo) -> None:
    Image.fromarray(rgb).save(path, format="PNG", pnginfo=info)


def _publish_folder(temp: Path, target: Path, *, overwrite: bool) -> None:
    old = None
    if target.is_dir():
        if any(target.iterdir()):
            if not overwrite:  # filled since the check
                raise OutputError(f"--output {str(target)!r}: folder is not empty")
            # Move the old frames aside rather than delete them first, so a failed rename
            # below can put them back.
            old = _temp_name(target, "old")
            os.rename(target, old)
        else:
            target.rmdir()  # Windows cannot rename onto an empty folder
    try:
        os.rename(temp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Reading


def _refusal(argument: str | None, path: str | os.PathLike[str]) -> Callable[[str], InputError]:
    """The errors of one input file: `--video 'clip.mp4': REASON`, carrying the field and path."""
    shown = repr(os.fspath(path))
    where = f"--{argument} {shown}" if argument else shown

    def refuse(reason: str) -> InputError:
        return InputError(
            f"{where}: {reason}", argument=argument, value=os.fspath(path), reason=reason
        )

    return refuse


def _input_file(path: str | os.PathLike[str], refuse: Callable[[str], InputError]) -> Path:
    file = Path(os.path.abspath(os.fspath(path)))
    try:
        if not file.exists():
            raise refuse("no such file; check the path")
        if not file.is_file():
            raise refuse("is not a file")
    except OSError as e:  # a name longer than the file system allows, say
        raise refuse(f"cannot be opened ({_reason(e)}); check the path") from None
    if not os.access(file, os.R_OK):
        raise refuse("is not readable (permission denied)")
    return file


def _open_input(file: Path) -> av.container.InputContainer:
    # An absolute path: FFmpeg would read "concat:a|b" or "http:x" as a protocol, not a file.
    return av.open(str(file), "r", container_options=_READ_OPTIONS, metadata_errors="replace")


def read_video(
    path: str | os.PathLike[str],
    *,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    first: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decode the first video stream of `path`: (frames uint8 (T, H, W, 3) RGB, fps).

    Refuses (`InputError`) rather than truncates a video longer than `max_frames`, and refuses
    frames larger than `max_pixels` before decoding them. With `first`, decodes only the first
    `first` frames: a model that uses 24 frames of a long clip need not hold all of it in memory.
    """
    refuse = _refusal("video", path)
    file = _input_file(path, refuse)
    try:
        container = _open_input(file)
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
        raise refuse(f"is corrupt and does not decode ({_reason(e)})") from None
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


def read_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image as RGB, upright (EXIF orientation applied), or raise `InputError`."""
    refuse = _refusal("image", path)
    file = _input_file(path, refuse)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # the common formats only: exotic decoders (DDS, ...) fail in exotic ways
            with Image.open(file, formats=_IMAGE_FORMATS) as image:
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
        raise refuse(f"is corrupt and does not decode ({_reason(e)})") from None


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


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The generation record of an output of ours: embedded in the file, else the JSON beside it.

    Works for .mp4 and .webm (container `comment` tag), a PNG frame (its `Comment` chunk), a
    folder of PNG frames (`record.json`) and any output with `NAME.json` beside it (its full
    name plus `.json`: `clip.gif.json`). JSON without a `promptreel_record` key is not a record.
    """
    raw = os.fspath(path)
    target = Path(os.path.abspath(raw))
    refuse = _refusal(None, raw)
    try:
        folder = target.is_dir()
    except OSError as e:  # a name longer than the file system allows, say
        raise refuse(f"cannot be opened ({_reason(e)}); check the path") from None
    if folder:
        sidecar = target / _RECORD_NAME
    else:
        _input_file(raw, refuse)
        sidecar = _sidecar(target)
        embedded = _embedded_record(target)
        if embedded is not None:
            return embedded
    if sidecar.is_file():
        try:
            record = jsontext.loads(sidecar.read_text(encoding="utf-8"))
        except OSError as e:
            raise refuse(f"its record {sidecar.name} is unreadable ({_reason(e)})") from None
        except ValueError as e:  # not UTF-8, not JSON, or nested too deeply
            raise refuse(f"its record {sidecar.name} is not valid JSON: {e}") from None
        if _is_record(record):
            return record
        raise refuse(
            f"has no generation record ({sidecar.name} is JSON but not a promptreel "
            "record); was it made by promptreel?"
        )
    raise refuse(
        f"has no generation record (no comment tag and no {sidecar.name} beside it); "
        "was it made by promptreel?"
    )


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and _RECORD_MARKER in value


def _embedded_record(file: Path) -> dict[str, Any] | None:
    text: str | None = None
    if file.suffix.lower() == ".png":
        try:
            # the common formats only: exotic decoders (DDS, ...) fail in exotic ways
            with Image.open(file, formats=_IMAGE_FORMATS) as image:
                text = getattr(image, "text", {}).get(_PNG_RECORD_KEY)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return None
    else:
        try:
            with _open_input(file) as container:
                # Matroska keys come back upper-case (COMMENT), MP4 keys lower-case.
                tags = {key.lower(): value for key, value in container.metadata.items()}
        except (av.FFmpegError, UnicodeDecodeError):
            return None
        text = tags.get(_RECORD_KEY)
    if not text:
        return None
    try:
        record = jsontext.loads(text)
    except ValueError:
        return None  # a comment someone else wrote; try the sidecar
    return record if _is_record(record) else None  # JSON of someone else's: likewise
