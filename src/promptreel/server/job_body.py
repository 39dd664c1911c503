"""The body of `POST /v1/jobs`, derived from `GenerationRequest`, and its check before queueing.

`JobCreate` has every request field (the same names, types, defaults and descriptions) except
the input files, which come as multipart uploads, plus the file `format`. Unlike the request,
it is strict: `true` or "4" for `num_frames` is a mistake to point out, not to guess at.
"""

from __future__ import annotations

import secrets
from copy import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, create_model

from ..errors import InputError, PromptreelError
from ..generation import prepare
from ..request import INPUT_FILES, MAX_SEED, GenerationRequest, Settings, make_request
from ..video import GIF_MAX_FPS
from .errors import ApiError

Format = Literal["mp4", "webm", "gif"]

JobCreate = create_model(
    "JobCreate",
    __config__=ConfigDict(extra="forbid", strict=True),
    __doc__="A job: the fields of `promptreel generate`, by the same names, and the file "
    "format. Images and videos come as multipart uploads named `image` and `video`.",
    format=(Format, "mp4"),
    **{
        name: (field.annotation, copy(field))
        for name, field in GenerationRequest.model_fields.items()
        if name not in INPUT_FILES
    },
)


def check_job(body: Any, inputs: dict[str, Path]) -> dict[str, Any]:
    """The GenerationRequest (as JSON) of a job body and its uploads, or ApiError 422.

    The seed is drawn here when not given, so that a job run again after a crash (or rerun
    from the page) makes the same video.
    """
    fields = body.model_dump(exclude={"format"}, exclude_none=True)
    fields.setdefault("seed", secrets.randbelow(min(2**32, MAX_SEED)))

    def check_format(settings: Settings) -> None:
        if body.format == "gif" and settings.fps > GIF_MAX_FPS:
            raise ApiError(
                422,
                f"a GIF cannot play {settings.fps:g} fps (browsers slow anything above "
                f"{GIF_MAX_FPS} down); ask for mp4 or webm, or a lower fps",
                argument="fps",
            )

    try:
        request = make_request(**fields, **inputs)
        prepare(request, folders=False, check_settings=check_format)
    except InputError as exc:
        # the client knows its upload as `video`, not by the path the server saved it to
        raise ApiError(
            422, f"`{exc.argument}` upload: {' '.join(exc.reason.split())}", argument=exc.argument
        ) from None
    except PromptreelError as exc:
        raise ApiError(422, " ".join(str(exc).split()), argument=exc.argument) from None
    return request.model_dump(mode="json")
