"""The `Video` a generation returns, and every way it reaches or leaves the disk: `write`
(the formats, atomic saves), `read` (input videos and images, with limits) and `record` (the
generation record inside and beside an output)."""

from .read import MAX_FRAMES, MAX_PIXELS, read_frames, read_image, read_video
from .record import read_record
from .write import GIF_MAX_FPS, SUFFIXES, Video, check_output_path, make_filename

__all__ = [
    "GIF_MAX_FPS",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "SUFFIXES",
    "Video",
    "check_output_path",
    "make_filename",
    "read_frames",
    "read_image",
    "read_record",
    "read_video",
]
