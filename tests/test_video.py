"""What a user of promptreel.video would notice: the files play, at the size, length and speed
asked for, carry their record, and appear whole or not at all; bad inputs and outputs are refused
with one clear line."""

from __future__ import annotations

import errno
import json
import os
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from promptreel.errors import InputError, OutputError
from promptreel.video import (
    SUFFIXES,
    Video,
    check_output_path,
    make_filename,
    read_image,
    read_record,
    read_video,
)
from promptreel.video import write as video_module

RECORD = {
    "promptreel_record": 1,
    "prompt": "a red ball, café ☕",
    "seed": 42,
    "num_frames": 10,
    "guidance_scale": 7.5,
}


def record(seed: int) -> dict:
    return {"promptreel_record": 1, "seed": seed}


def gradient(num_frames: int = 10, height: int = 17, width: int = 33) -> np.ndarray:
    """Red grows along x, green along y, blue along time: a swap of colours, axes or frame
    order changes almost every pixel by tens of levels."""
    t, y, x = np.mgrid[0:num_frames, 0:height, 0:width]
    rgb = [40 + x * 150 // width, 40 + y * 150 // height, 40 + t * 150 // num_frames]
    return np.stack(rgb, axis=-1).astype(np.uint8)


def decode(path: Path) -> tuple[np.ndarray, av.video.stream.VideoStream, dict[str, str]]:
    """Independent of read_video: plain PyAV, every frame, plus the stream and container tags."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return np.stack(frames), stream, dict(container.metadata)


def top_level_atoms(path: Path) -> list[str]:
    data, offset, names = path.read_bytes(), 0, []
    while offset < len(data):
        size, name = struct.unpack(">I4s", data[offset : offset + 8])
        names.append(name.decode("latin-1"))
        offset += size
    return names


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, hidden ones included, with its content."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


# ---------------------------------------------------------------------------------------------
# Each format decodes back to what was asked


@pytest.mark.parametrize("fps", [8, 7.5, Fraction(30000, 1001), np.float32(12.5)])
@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_video_decodes_to_frame_count_even_padded_size_and_fps(tmp_path, suffix, fps):
    frames = gradient(10, 17, 33)
    path = Video(frames, fps, RECORD).save(tmp_path / f"clip{suffix}")

    decoded, stream, _ = decode(path)
    assert path == tmp_path / f"clip{suffix}"
    assert decoded.shape == (10, 18, 34, 3)  # padded up to even, never cropped down
    assert stream.average_rate == Fraction(float(fps)).limit_denominator(1001)
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert stream.codec_context.name == {".mp4": "h264", ".webm": "vp9"}[suffix]
    # read_video agrees with plain PyAV
    frames_read, fps_read = read_video(path)
    assert frames_read.shape == decoded.shape
    assert fps_read == pytest.approx(float(fps))


def test_mp4_is_faststart_and_tagged_bt709(tmp_path):
    path = Video(gradient(), 7.5, RECORD).save(tmp_path / "clip.mp4")

    atoms = top_level_atoms(path)
    assert atoms.index("moov") < atoms.index("mdat"), atoms  # browsers play while downloading
    _, stream, _ = decode(path)
    assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (1, 1)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", "/"])
def test_pixels_survive_the_round_trip(tmp_path, suffix):
    frames = gradient(8, 48, 80)
    path = Video(frames, 8, RECORD).save(str(tmp_path / "clip") + suffix)

    if suffix == "/":
        decoded = np.stack([np.asarray(Image.open(p)) for p in sorted(path.glob("*.png"))])
        np.testing.assert_array_equal(decoded, frames)  # PNG is lossless
        return
    decoded = read_video(path)[0].astype(int)
    assert decoded.shape == frames.shape  # even already: no padding
    assert np.abs(decoded - frames).mean() < 3
    # The same check fails for the mistakes it is meant to catch.
    assert np.abs(decoded - frames[..., ::-1]).mean() > 20  # BGR
    assert np.abs(decoded - frames[::-1]).mean() > 20  # frames reversed


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_padding_keeps_the_last_row_and_column(tmp_path, suffix):
    frames = np.full((4, 17, 33, 3), 128, np.uint8)
    frames[:, :, -1] = (220, 30, 30)  # last column red
    frames[:, -1, :-1] = (30, 30, 220)  # last row blue
    decoded = read_video(Video(frames, 8).save(tmp_path / f"c{suffix}"))[0].astype(int)

    assert np.abs(decoded[:, :16, 32] - (220, 30, 30)).mean() < 12
    assert np.abs(decoded[:, 16, :32] - (30, 30, 220)).mean() < 12
    assert np.abs(decoded[:, :16, :32] - 128).mean() < 4  # the rest did not move


def test_gif_loops_forever_with_every_frame_and_right_timing(tmp_path):
    frames = gradient(10, 17, 33)
    frames[5] = frames[4]  # Pillow's own GIF writer would merge these two into one frame
    path = Video(frames, 7.5, RECORD).save(tmp_path / "clip.gif")

    decoded, _, _ = decode(path)
    assert decoded.shape == (10, 17, 33, 3)  # GIF needs no even size
    assert np.abs(decoded.astype(int) - frames).mean() < 4
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0  # 0 = forever
        assert gif.n_frames == 10
        delays = []
        for index in range(gif.n_frames):
            gif.seek(index)
            delays.append(gif.info["duration"])
    # 1/7.5 s is 13.33 cs: delays alternate 13/14 cs so that the total stays right.
    assert set(delays) <= {130, 140}
    assert abs(sum(delays) - 10 / 7.5 * 1000) <= 10


def test_gif_faster_than_browsers_play_is_refused(tmp_path):
    with pytest.raises(OutputError, match=r"GIF cannot play 60 fps.*\.mp4"):
        Video(gradient(4), Fraction(60)).save(tmp_path / "fast.gif")
    assert listing(tmp_path) == {}


@pytest.mark.parametrize("given", ["existing", "trailing-slash"])
def test_png_folder(tmp_path, given):
    frames = gradient(3, 9, 7)
    if given == "existing":
        (tmp_path / "frames").mkdir()
        out = tmp_path / "frames"
    else:
        out = str(tmp_path / "frames") + os.sep
    path = Video(frames, 8, RECORD).save(out)

    assert path == tmp_path / "frames"
    names = sorted(os.listdir(path))
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png", "record.json"]
    assert json.loads((path / "record.json").read_text(encoding="utf-8")) == RECORD
    assert read_record(path) == RECORD
    assert read_record(path / "frame_00002.png") == RECORD  # each frame carries it too
    assert sorted(os.listdir(tmp_path)) == ["frames"]


# ---------------------------------------------------------------------------------------------
# The record


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_record_is_embedded_in_the_container(tmp_path, suffix):
    path = Video(gradient(3), 8, RECORD).save(tmp_path / f"clip{suffix}")
    _, _, tags = decode(path)
    comment = {key.lower(): value for key, value in tags.items()}["comment"]
    assert json.loads(comment) == RECORD

    (tmp_path / f"clip{suffix}.json").unlink()  # only the embedded copy is left
    assert read_record(path) == RECORD


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif"])
def test_record_is_written_beside_the_output(tmp_path, suffix):
    path = Video(gradient(3), 8, RECORD).save(tmp_path / f"clip{suffix}")
    assert sorted(os.listdir(tmp_path)) == sorted([f"clip{suffix}", f"clip{suffix}.json"])
    assert json.loads((tmp_path / f"clip{suffix}.json").read_text(encoding="utf-8")) == RECORD
    assert read_record(path) == RECORD


def test_outputs_differing_only_in_suffix_keep_their_own_records(tmp_path):
    mp4 = Video(gradient(3), 8, record(1)).save(tmp_path / "clip.mp4")
    gif = Video(gradient(3), 8, record(2)).save(tmp_path / "clip.gif")  # not refused

    assert sorted(os.listdir(tmp_path)) == [
        "clip.gif",
        "clip.gif.json",
        "clip.mp4",
        "clip.mp4.json",
    ]
    assert read_record(gif) == record(2)
    (tmp_path / "clip.mp4.json").unlink()
    assert read_record(mp4) == record(1)  # embedded; the GIF's record was never its own

    # A sidecar named the old way (stem + .json) belongs to no one output: not read.
    (tmp_path / "clip.gif.json").rename(tmp_path / "clip.json")
    with pytest.raises(InputError, match=r"no generation record.*clip\.gif\.json"):
        read_record(gif)


def write_foreign_mp4(path: Path, comment: str) -> None:
    with av.open(str(path), "w") as container:
        container.metadata["comment"] = comment
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("comment", ["made with something else", '{"seed": 1, "tool": "x"}'])
def test_record_missing_or_foreign_is_a_clear_error(tmp_path, comment):
    foreign = tmp_path / "foreign.mp4"
    write_foreign_mp4(foreign, comment)  # plain text, or JSON that is not a record of ours

    with pytest.raises(InputError, match=r"no generation record.*foreign\.mp4\.json"):
        read_record(foreign)
    sidecar = tmp_path / "foreign.mp4.json"
    sidecar.write_text(json.dumps(record(1)), encoding="utf-8")
    assert read_record(foreign) == record(1)  # the foreign comment is skipped, not parsed
    with pytest.raises(InputError, match="no such file"):
        read_record(tmp_path / "missing.mp4")


@pytest.mark.parametrize("text", ['{"seed": 1}', "[1, 2]", '"text"', "null"])
def test_json_that_is_not_a_record_is_refused(tmp_path, text):
    foreign = tmp_path / "foreign.mp4"
    write_foreign_mp4(foreign, "made with something else")
    (tmp_path / "foreign.mp4.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=r"has no generation record.*was it made by promptreel"):
        read_record(foreign)

    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "record.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="has no generation record"):
        read_record(folder)


def test_record_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        Video(gradient(2), 8, {"bad": object()}).save(tmp_path / "clip.mp4")
    assert listing(tmp_path) == {}


# ---------------------------------------------------------------------------------------------
# Atomic writing


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", "/"])
def test_failure_midway_leaves_nothing(tmp_path, monkeypatch, suffix, error):
    seen_while_encoding: list[str] = []
    calls: list[int] = []
    hook = "_write_png" if suffix == "/" else "_to_av_frame"
    real = getattr(video_module, hook)

    def fail_at_fifth_frame(*args, **kwargs):
        seen_while_encoding.extend(os.listdir(tmp_path))
        calls.append(1)
        if len(calls) == 5:
            raise error("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(video_module, hook, fail_at_fifth_frame)
    with pytest.raises(error, match="injected"):
        Video(gradient(6), 8, RECORD).save(str(tmp_path / "clip") + suffix)

    assert listing(tmp_path) == {}
    # While it ran, only a hidden temporary name existed, never the final one.
    assert all(name.startswith(".clip") and ".partial-" in name for name in seen_while_encoding)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", "/"])
def test_failure_after_encoding_removes_the_complete_temporary(
    tmp_path, monkeypatch, suffix, error
):
    hook = "_publish_folder" if suffix == "/" else "_publish"
    seen_before_publish: list[str] = []

    def fail(*args, **kwargs):
        seen_before_publish.extend(os.listdir(tmp_path))
        raise error("injected")

    monkeypatch.setattr(video_module, hook, fail)
    with pytest.raises(error, match="injected"):
        Video(gradient(6), 8, RECORD).save(str(tmp_path / "clip") + suffix)

    assert seen_before_publish  # the whole video was there, under a hidden name...
    assert all(name.startswith(".clip") for name in seen_before_publish)
    assert listing(tmp_path) == {}  # ...and is gone


@pytest.mark.parametrize("raised", ["oserror", "ffmpeg"])
@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif"])
def test_disk_full_while_encoding_is_one_line_and_leaves_nothing(
    tmp_path, monkeypatch, suffix, raised
):
    def encode_until_full(frames, fps, temp, kind, *, comment):
        temp.write_bytes(b"half a video")
        if raised == "oserror":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise av.error.FFmpegError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(video_module, "_encode", encode_until_full)
    out = tmp_path / f"clip{suffix}"
    with pytest.raises(OutputError) as info:
        Video(gradient(3), 8, RECORD).save(out)

    assert str(info.value) == (
        f"--output {str(out)!r}: could not write it (No space left on device); "
        "free some space or choose another --output"
    )
    assert listing(tmp_path) == {}


@pytest.mark.parametrize(
    ("error", "reason", "hint"),
    [
        # Pillow's encoder errors carry no errno and no strerror: the text is the reason.
        (OSError("encoder error -2 when writing image file"), "encoder error -2", "choose"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left", "free some space"),
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied", "choose"),
    ],
)
def test_png_write_error_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, error, reason, hint):
    calls: list[int] = []
    real = video_module._write_png

    def fail_at_second_frame(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(video_module, "_write_png", fail_at_second_frame)
    with pytest.raises(OutputError, match=rf"could not write it \({reason}.*\); {hint}") as info:
        Video(gradient(3), 8, RECORD).save(f"{tmp_path}/frames/")

    message = str(info.value)
    assert message.startswith(f"--output '{tmp_path}/frames/': ")
    assert "\n" not in message and "None" not in message
    assert listing(tmp_path) == {}


def test_sidecar_write_error_removes_the_video_too(tmp_path, monkeypatch):
    real_write_text = Path.write_text

    def no_space(self, *args, **kwargs):
        if self.name.startswith(".clip.mp4.json.partial-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", no_space)
    with pytest.raises(OutputError, match=r"No space left on device\); free some space"):
        Video(gradient(3), 8, RECORD).save(tmp_path / "clip.mp4")
    assert listing(tmp_path) == {}


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif", "frames/"])
def test_unwritable_place_is_one_line(name):
    out = f"/proc/{name}"
    try:
        check_output_path(out)
    except OutputError:
        pytest.skip("refused up front here, which is also fine")
    with pytest.raises(OutputError, match=r"^--output '/proc/.*': could not write it \(.+\); "):
        Video(gradient(2), 8).save(out)


def test_overwrite_replaces_only_when_asked(tmp_path):
    first = Video(gradient(4), 8, record(1)).save(tmp_path / "clip.mp4")
    before = listing(tmp_path)

    with pytest.raises(OutputError, match=r"exists; choose another --output or pass --overwrite"):
        Video(gradient(6), 8, record(2)).save(tmp_path / "clip.mp4")
    assert listing(tmp_path) == before

    Video(gradient(6), 8, record(2)).save(first, overwrite=True)
    assert read_video(first)[0].shape[0] == 6
    assert read_record(first) == record(2)
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "clip.mp4.json"]


def test_existing_sidecar_is_not_overwritten(tmp_path):
    (tmp_path / "clip.gif.json").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match=r"clip\.gif\.json.*exists"):
        check_output_path(tmp_path / "clip.gif")
    with pytest.raises(OutputError, match=r"clip\.gif\.json.*exists"):
        Video(gradient(2), 8).save(tmp_path / "clip.gif")
    assert listing(tmp_path) == {"clip.gif.json": b"mine"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("clip.avi", r"unsupported format \('\.avi'\); use \.mp4, \.webm, \.gif"),
        ("clip", r"unsupported format \(no suffix\).*folder path ending in '/'"),
        ("missing/clip.mp4", r"folder .*missing' does not exist; create it first"),
    ],
)
def test_bad_output_paths_are_refused_before_writing(tmp_path, name, message):
    with pytest.raises(OutputError, match=message):
        check_output_path(tmp_path / name)
    with pytest.raises(OutputError, match=message):
        Video(gradient(2), 8).save(tmp_path / name)
    assert listing(tmp_path) == {}


def test_check_output_path_writes_nothing(tmp_path):
    for name in ["clip.mp4", "clip.webm", "clip.gif", "frames/"]:
        check_output_path(f"{tmp_path}/{name}")
    assert listing(tmp_path) == {}
    assert set(SUFFIXES) == {".mp4", ".webm", ".gif"}


def test_check_output_path_refuses_a_gif_too_fast_up_front(tmp_path):
    with pytest.raises(OutputError, match=r"GIF cannot play 60 fps.*\.mp4"):
        check_output_path(tmp_path / "fast.gif", fps=60)
    with pytest.raises(OutputError, match=r"GIF cannot play 50\.5 fps"):
        check_output_path(f"{tmp_path}/fast.GIF", fps=50.5)
    check_output_path(tmp_path / "ok.gif", fps=50)  # the limit itself plays right
    check_output_path(tmp_path / "ok.gif")  # fps not known yet: not checked
    check_output_path(tmp_path / "fast.mp4", fps=60)
    check_output_path(f"{tmp_path}/frames/", fps=60)
    assert listing(tmp_path) == {}


def test_empty_output_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" would otherwise mean the current folder
    for call in (lambda: check_output_path(""), lambda: Video(gradient(2), 8).save("")):
        with pytest.raises(OutputError, match=r"^--output is empty; give a file name"):
            call()
    assert listing(tmp_path) == {}


def test_name_too_long_for_the_sidecar_is_refused_up_front(tmp_path):
    name = "x" * 240 + ".mp4"  # fits alone; not with ".json" and a temporary name added
    with pytest.raises(OutputError, match=r"too long.*choose a shorter --output"):
        check_output_path(tmp_path / name)
    with pytest.raises(OutputError, match="too long"):
        Video(gradient(2), 8).save(tmp_path / name)
    assert listing(tmp_path) == {}
    Video(gradient(2), 8, RECORD).save(tmp_path / ("x" * 200 + ".mp4"))


def test_non_empty_folder_is_refused_and_own_frames_replaced_only_with_overwrite(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="not empty"):
            Video(gradient(2), 8).save(foreign, overwrite=overwrite)
    assert listing(foreign) == {"notes.txt": b"keep me"}

    ours = Video(gradient(5), 8).save(f"{tmp_path}/ours/")
    with pytest.raises(OutputError, match="--overwrite"):
        Video(gradient(2), 8).save(ours)
    Video(gradient(2), 8, record(2)).save(ours, overwrite=True)
    assert sorted(os.listdir(ours)) == ["frame_00000.png", "frame_00001.png", "record.json"]
    assert read_record(ours) == record(2)
    assert sorted(os.listdir(tmp_path)) == ["foreign", "ours"]


# ---------------------------------------------------------------------------------------------
# Reading inputs


@pytest.fixture
def clip(tmp_path) -> Path:
    return Video(gradient(10, 16, 24), 7.5, RECORD).save(tmp_path / "clip.mp4")


def test_read_video_bad_inputs_are_one_clear_line(tmp_path, clip):
    (tmp_path / "notes.txt").write_text("hello, not a video\n", encoding="utf-8")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    data = clip.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    # A playlist would make FFmpeg read other files (or URLs) named inside an uploaded "video".
    (tmp_path / "list.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{clip}\n#EXT-X-ENDLIST\n",
        encoding="utf-8",
    )
    cases = {
        "missing.mp4": "no such file",
        "notes.txt": "is not a video",
        "noise.mp4": "is not a video",
        "truncated.mp4": "no frames that decode",
        "still.png": "is not a video",
        "list.m3u8": "is not a video",
    }
    for name, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            read_video(tmp_path / name)
        assert "\n" not in str(info.value)
        assert name in str(info.value)


def test_read_video_limits_refuse_instead_of_truncating(clip):
    assert read_video(clip, max_frames=10)[0].shape == (10, 16, 24, 3)
    with pytest.raises(InputError, match="more than 9 frames"):
        read_video(clip, max_frames=9)
    with pytest.raises(InputError, match=r"24x16 is larger than the limit of 100 pixels"):
        read_video(clip, max_pixels=100)


def test_read_image(tmp_path):
    Image.new("RGBA", (20, 16), (255, 0, 0, 128)).save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    assert (image.mode, image.size, image.getpixel((0, 0))) == ("RGB", (20, 16), (255, 0, 0))

    # A phone photo taken sideways: EXIF says rotate, so the user sees it upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (32, 16)).save(tmp_path / "sideways.jpg", exif=exif)
    assert read_image(tmp_path / "sideways.jpg").size == (16, 32)


@pytest.mark.parametrize("size", [(1, 1), (15, 40), (40, 15)])
def test_read_image_refuses_tiny_images(tmp_path, size):
    Image.new("RGB", size, "red").save(tmp_path / "tiny.png")
    width, height = size
    with pytest.raises(InputError) as info:
        read_image(tmp_path / "tiny.png")
    assert str(info.value) == (
        f"--image {str(tmp_path / 'tiny.png')!r}: is {width}x{height}; give an image at least 16x16"
    )
    Image.new("RGB", (16, 16), "red").save(tmp_path / "least.png")
    assert read_image(tmp_path / "least.png").size == (16, 16)


def horizontal_ramp(top: float, dtype: type, width: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, top, width), (24, 1)).astype(dtype)


@pytest.mark.parametrize(
    ("mode", "values", "suffix", "expected"),
    [
        # 16 bits: a ramp 0..65535 must come out as a ramp 0..255, not clipped to white.
        ("I;16", horizontal_ramp(65535, np.uint16), ".png", horizontal_ramp(255, float)),
        ("I;16B", horizontal_ramp(65535, np.uint16), ".tif", horizontal_ramp(255, float)),
        # 32-bit integers and floats: 0 up to the image's own maximum.
        ("I", horizontal_ramp(1_000_000, np.int32), ".tif", horizontal_ramp(255, float)),
        ("F", horizontal_ramp(1.0, np.float32), ".tif", horizontal_ramp(255, float)),
        ("F", horizontal_ramp(4000.0, np.float32) - 1000, ".tif", None),
    ],
)
def test_read_image_scales_deep_images_to_8_bits(tmp_path, mode, values, suffix, expected):
    image = Image.fromarray(values)
    if mode == "I;16B":
        image = image.convert("I").convert("I;16B")
    assert image.mode == mode
    image.save(tmp_path / f"deep{suffix}")
    with Image.open(tmp_path / f"deep{suffix}") as reopened:
        assert reopened.mode in (mode, "I;16")  # some writers store I;16B little-endian

    rgb = np.asarray(read_image(tmp_path / f"deep{suffix}")).astype(float)
    assert rgb.shape == (*values.shape, 3)
    if expected is None:  # -1000..3000: negatives clip to 0, 3000 is white
        expected = np.clip(values.astype(float), 0, None) * 255 / values.max()
    assert abs(rgb.mean() - expected.mean()) < 1  # Pillow's clipping convert: about 250
    assert np.abs(rgb[..., 0] - expected).max() <= 1  # a ramp, pixel for pixel
    assert (rgb[..., 0] == rgb[..., 2]).all()  # grey


def test_read_image_corrupt_message_has_a_reason(tmp_path):
    Image.new("RGB", (64, 64), "red").save(tmp_path / "big.png")
    data = (tmp_path / "big.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"corrupt and does not decode \((.+)\)$") as info:
        read_image(tmp_path / "truncated.png")
    assert "None" not in str(info.value)


def test_read_image_bad_inputs_are_one_clear_line(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not an image", encoding="utf-8")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "big.png")
    data = (tmp_path / "big.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    cases = {
        "missing.png": "no such file",
        "notes.png": "is not an image",
        "truncated.png": "corrupt",
    }
    for name, message in cases.items():
        with pytest.raises(InputError, match=message):
            read_image(tmp_path / name)

    with pytest.raises(InputError, match="64x64 is larger than the limit of 100 pixels"):
        read_image(tmp_path / "big.png", max_pixels=100)
    # Pillow's own bomb guard: a warning above MAX_IMAGE_PIXELS, an error above twice that.
    for limit in (3000, 1000):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(InputError, match="too large to decode safely"):
            read_image(tmp_path / "big.png")


# ---------------------------------------------------------------------------------------------
# File names and the Video itself


def test_make_filename_example():
    assert make_filename("A red ball, bouncing!", 42, "1a2b3c", ".mp4") == (
        "a-red-ball-bouncing-s42-1a2b3c.mp4"
    )
    assert make_filename("", 7, "ff", "gif") == "video-s7-ff.gif"
    assert make_filename("Crème brûlée", 0, "ab", "") == "creme-brulee-s0-ab"


@pytest.mark.parametrize(
    "prompt",
    [
        "../../etc/passwd",
        "/absolute/path",
        "C:\\Windows\\system32",
        "..",
        ".hidden",
        "nul\x00byte",
        "line\nbreak\ttab",
        "日本語のプロンプト",
        "🎉🎉🎉",
        "   ",
        "-leading-dash-",
        "clip.mp4/../../x",
        "a" * 500,
        "word " * 100,
    ],
)
def test_make_filename_hostile_prompts(prompt):
    name = make_filename(prompt, -3, "../Ab/9", ".webm")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*-sm3-ab9\.webm", name), name
    assert ".." not in name and "/" not in name and "\\" not in name and "\x00" not in name
    assert Path(name).name == name
    assert len(name) <= 48 + len("-sm3-ab9.webm")


def test_make_filename_refuses_unknown_suffix():
    with pytest.raises(ValueError, match="suffix"):
        make_filename("x", 1, "a", ".exe")


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [
        (np.zeros((2, 4, 4, 3), np.float32), 8, "uint8"),
        (np.zeros((4, 4, 3), np.uint8), 8, "shape"),
        (np.zeros((2, 4, 4, 4), np.uint8), 8, "shape"),
        (np.zeros((0, 4, 4, 3), np.uint8), 8, "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), 0, "fps"),
        (np.zeros((2, 4, 4, 3), np.uint8), float("nan"), "fps"),
    ],
)
def test_video_refuses_malformed_frames(frames, fps, message):
    with pytest.raises(ValueError, match=message):
        Video(frames, fps)


def test_read_video_first_decodes_only_the_start(tmp_path: Path) -> None:
    frames = np.stack([np.full((16, 16, 3), 10 * i, np.uint8) for i in range(12)])
    path = Video(frames, fps=8.0, record={}).save(tmp_path / "long.mp4")
    start, _ = read_video(path, first=4, max_frames=5)  # longer than max_frames, yet fine
    assert start.shape == (4, 16, 16, 3)
    assert abs(float(start[3].mean()) - 30) < 4


def test_the_same_frames_always_make_the_same_mp4(tmp_path) -> None:
    """Two causes of different files from the same frames, both seen in the full test suite:
    x264's threads on a busy CPU, and its macroblock tree, whose output at some frame sizes
    depends on what the process's heap held before. Frames like a model's (a shape over dark
    noise) and a heap refilled with other bytes between saves bring out the second."""
    import hashlib

    from promptreel.train.shapes import render, sample_clip

    rng = np.random.default_rng(0)
    clip = render(sample_clip(np.random.default_rng(3)))
    frames = np.clip(clip + rng.integers(0, 8, clip.shape), 0, 255).astype(np.uint8)
    video = video_module.Video(frames, fps=8.0, record={})
    digests = set()
    for _ in range(8):
        junk = [os.urandom(int(n)) for n in rng.integers(16, 4000, 3000)]
        del junk
        path = video.save(tmp_path / "same.mp4", overwrite=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
