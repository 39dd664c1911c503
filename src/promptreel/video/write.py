"""Writing a `Video`: every format, atomically, with its record.

    .mp4      H.264 (libx264), yuv420p, BT.709, +faststart    plays in every browser
    .webm     VP9 (libvpx-vp9), yuv420p, BT.709, constant quality
    .gif      loops forever, one adaptive palette per frame, delays in centiseconds
    folder/   frame_00000.png, frame_00001.png, ... and record.json

Every file is encoded under a hidden temporary name in the target folder and renamed into place
when complete, so a reader (the web page, the job history) never sees half a video, and an error or
Ctrl-C leaves nothing behind; what a killed writer left, the next save removes. `check_output_path`
runs the same refusals without writing anything, so the CLI can refuse a bad `--output` before it
spends minutes loading a model. A failing disk (full, read-only, permission) is one `OutputError`.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from PIL import Image, PngImagePlugin

from ..errors import OutputError
from .read import reason
from .record import PNG_RECORD_KEY, RECORD_KEY, RECORD_NAME, sidecar

SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".gif")
"""File suffixes `Video.save` writes; a folder (existing, or a path ending in '/') gets PNGs."""


# Browsers play GIF delays of 0 or 1 centisecond as 10 (a relic of 1990s banner ads), so above
# 50 fps a GIF would silently play several times slower than asked.
GIF_MAX_FPS = 50

_PNG_FOLDER = "folder"
_FRAME_NAME = re.compile(r"frame_\d{5,}\.png")
_PARTIAL_NAME = re.compile(r"\..+\.partial-([0-9]+)-[0-9a-f]{8}", re.ASCII | re.DOTALL)


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
    # the control images the video was steered by, at its size (`--control`), as a video
    control: Video | None = field(default=None, repr=False, compare=False)

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
            with _staged(sidecar(target)) as sidecar_temp:
                sidecar_temp.write_text(record_text + "\n", encoding="utf-8")
                _fsync(sidecar_temp)
                _publish(temp, target, overwrite=overwrite)
                try:
                    _publish(sidecar_temp, sidecar(target), overwrite=overwrite)
                except BaseException:
                    # All or nothing: a video whose record went missing is not what was asked.
                    if not overwrite:
                        target.unlink(missing_ok=True)
                    raise


def check_output_path(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    fps: float | None = None,
    option: str = "--output",
) -> None:
    """Raise `OutputError` if `Video.save(path, overwrite=...)` would refuse; write nothing.

    Refused: an empty path, a suffix other than `SUFFIXES` (a path ending in '/' means a folder
    of PNGs), a parent folder that does not exist or is not writable, a name too long for the
    folder's file system, an existing file or sidecar JSON (`NAME.json`, e.g. `clip.mp4.json`)
    unless `overwrite`, something that is not a regular file, a non-empty folder (with
    `overwrite`, a folder holding only frames and a record written by us is replaced), and,
    when `fps` is given, a GIF faster than browsers play (above `GIF_MAX_FPS`). `option` is
    how the refusals name the path (`--save-control`).
    """
    _check_output(path, overwrite=overwrite, fps=fps, option=option)


def _check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    fps: float | None = None,
    option: str = "--output",
) -> tuple[Path, str]:
    raw = os.fspath(path)
    if not raw:
        raise OutputError(
            f"{option} is empty; give a file name ending in {', '.join(SUFFIXES)}, "
            "or a folder path ending in '/' for PNG frames"
        )
    # a name is printed when written: a line break or an escape code in it would reach the
    # terminal, and bytes that are not UTF-8 cannot be shown at all
    odd = next((c for c in raw if unicodedata.category(c) in ("Cc", "Cs")), None)
    if odd is not None:
        raise OutputError(
            f"{option} {raw!r}: holds U+{ord(odd):04X}, a control character or a byte that is "
            "not UTF-8; choose a plain name"
        )
    try:
        return _checked_target(raw, overwrite=overwrite, fps=fps, option=option)
    except OSError as e:  # a name too long for the file system, a folder gone mid-check ...
        raise OutputError(f"{option} {raw!r}: {reason(e)}; choose another {option}") from None


def _checked_target(
    raw: str, *, overwrite: bool, fps: float | None, option: str
) -> tuple[Path, str]:
    # Path() drops a trailing separator, and with it the only sign that a folder is meant.
    wants_folder = raw.endswith(("/", os.sep)) or bool(os.altsep and raw.endswith(os.altsep))
    # abspath (not resolve): a symlink named as the output is replaced, never written through.
    target = Path(os.path.abspath(raw))
    where = f"{option} {raw!r}"

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
            raise OutputError(f"{where}: exists and is not a folder; choose another {option}")
        if target.is_dir():
            names = os.listdir(target)
            ours = all(_FRAME_NAME.fullmatch(n) or n == RECORD_NAME for n in names)
            if names and not (overwrite and ours):
                hint = "" if ours else " (it holds files promptreel did not write)"
                raise OutputError(
                    f"{where}: folder is not empty{hint}; choose an empty or new folder"
                    + (" or pass --overwrite" if ours else "")
                )
        return target, kind

    for existing in (target, sidecar(target)):
        if os.path.lexists(existing):
            if not overwrite:
                raise OutputError(
                    f"{where}: {str(existing)!r} exists; choose another {option} "
                    "or pass --overwrite to replace it"
                )
            if not existing.is_symlink() and not existing.is_file():
                raise OutputError(
                    f"{where}: {str(existing)!r} is not a regular file; choose another {option}"
                )
    return target, kind


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
    longest = _temp_name(target if kind == _PNG_FOLDER else sidecar(target), "partial").name
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


def batch_filename(
    row: int,
    prompt: str | None,
    seed: int,
    varied: dict[str, object],
    suffix: str,
    video: int | None = None,
) -> str:
    """A batch video's name, the same whichever backend made it: the row's number, the
    prompt's slug, the seed, the grid's values and, of a request's several videos, which
    (`003-a-red-circle-s1-guidance-scale-7-5-v2.mp4`). Made of the same safe characters as
    `make_filename`'s."""
    parts = [f"{row:03d}", _slug(prompt or "", limit=48) or "video"]
    parts.append(f"s{int(seed)}".replace("-", "m"))
    parts += [
        _slug(f"{name}-{format(value, 'g') if isinstance(value, float) else value}", limit=48)
        for name, value in varied.items()
    ]
    if video is not None:
        parts.append(f"v{video}")
    return "-".join(p for p in parts if p) + suffix.lower()


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
    return f"--output {raw!r}: could not write it ({reason(error)}); {hint}"


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
            container.metadata[RECORD_KEY] = comment
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
    info.add_text(PNG_RECORD_KEY, json.dumps(json.loads(record_text)))  # compact, ASCII
    with _staged(target, folder=True) as temp:
        temp.mkdir()
        for index, rgb in enumerate(frames):
            path = temp / f"frame_{index:05d}.png"
            _write_png(rgb, path, info)
            _fsync(path)
        (temp / RECORD_NAME).write_text(record_text + "\n", encoding="utf-8")
        _fsync(temp / RECORD_NAME)
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
