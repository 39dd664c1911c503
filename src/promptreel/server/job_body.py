"""The body of `POST /v1/jobs`, derived from `GenerationRequest`, and its check before queueing.

`JobCreate` has every request field (the same names, types, defaults and descriptions) except
the input files, which come as multipart uploads, plus the file `format`. Unlike the request,
it is strict: `true` or "4" for `num_frames` is a mistake to point out, not to guess at.
"""

from __future__ import annotations

from copy import copy
from typing import Any, Literal

from pydantic import ConfigDict, create_model

from ..errors import InputError, PromptreelError
from ..generation import prepare
from ..request import INPUT_FILES, GenerationRequest, Settings, make_request
from ..video import GIF_MAX_FPS
from .errors import ApiError

Format = Literal["mp4", "webm", "gif"]

JobCreate = create_model(
    "JobCreate",
    __config__=ConfigDict(extra="forbid", strict=True),
    __doc__="A job: the fields of `promptreel generate`, by the same names, and the file "
    "format. Images and videos come as multipart uploads named `image`, `video` and "
    "`control_video`.",
    format=(Format, "mp4"),
    **{
        name: (field.annotation, copy(field))
        for name, field in GenerationRequest.model_fields.items()
        if name not in INPUT_FILES
    },
)


def check_job(fields: dict[str, Any], file_format: str) -> dict[str, Any]:
    """The settled GenerationRequest (as JSON) of a job's fields, its uploads among them, to
    be written as `file_format`; or ApiError 422.

    It is the settled request (every value the model settled on, the seed drawn), so that a
    job run again after a crash makes the same video.
    """

    def check_format(settings: Settings) -> None:
        if file_format == "gif" and settings.fps > GIF_MAX_FPS:
            raise ApiError(
                422,
                f"a GIF cannot play {settings.fps:g} fps (browsers slow anything above "
                f"{GIF_MAX_FPS} down); ask for mp4 or webm, or a lower fps",
                argument="fps",
            )

    try:
        prepared = prepare(make_request(**fields), folders=False, check_settings=check_format)
    except InputError as exc:
        # the client knows its upload as `video`, not by the path the server saved it to
        raise ApiError(
            422, f"`{exc.argument}` upload: {' '.join(exc.reason.split())}", argument=exc.argument
        ) from None
    except PromptreelError as exc:
        raise ApiError.refusing(exc) from None
    # settled: the seed drawn now, so that a job run again after a crash (or rerun) is the same
    return prepared.settled.model_dump(mode="json")
