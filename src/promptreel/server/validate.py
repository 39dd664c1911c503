"""A job body checked exactly as the CLI checks a generation, before it is queued."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from ..errors import InputError, PromptreelError
from ..generation import check
from ..request import DEFAULT_MODEL, make_request
from ..video import GIF_MAX_FPS
from .errors import ApiError


def check_job(body: Any, inputs: dict[str, Path]) -> dict[str, Any]:
    """The GenerationRequest (as JSON) of a job body and its uploads, or ApiError 422.

    The seed is drawn here when not given, so that a job run again after a crash (or rerun
    from the page) makes the same video.
    """
    fields = body.model_dump(exclude={"format"}, exclude_none=True)
    fields.setdefault("model", DEFAULT_MODEL)
    fields.setdefault("seed", secrets.randbelow(2**32))
    try:
        request = make_request(**fields, **inputs)
        settings = check(request, folders=False)
        if body.format == "gif" and settings.fps > GIF_MAX_FPS:
            raise ApiError(
                422,
                f"a GIF cannot play {settings.fps:g} fps (browsers slow anything above "
                f"{GIF_MAX_FPS} down); ask for mp4 or webm, or a lower fps",
            )
    except InputError as exc:
        # "--video '/server/path': reason": the client knows its upload as `video`
        where, _, reason = str(exc).partition(": ")
        name = where.split()[0].lstrip("-") if where.startswith("--") else "input"
        raise ApiError(422, f"`{name}` upload: {' '.join(reason.split())}") from None
    except PromptreelError as exc:
        raise ApiError(422, " ".join(str(exc).split())) from None
    return request.model_dump(mode="json")
