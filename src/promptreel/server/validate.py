"""A job body checked exactly as the CLI checks a generation, before it is queued."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from ..errors import PromptreelError
from ..generation import check
from ..request import DEFAULT_MODEL, make_request
from .errors import ApiError


def check_job(body: Any, inputs: dict[str, Path]) -> dict[str, Any]:
    """The GenerationRequest (as JSON) of a job body and its uploads, or ApiError 422.

    The seed is drawn here when not given, so that a job run again after a crash (or rerun
    from the page) makes the same video.
    """
    fields = body.model_dump(exclude={"format"}, exclude_none=True)
    fields["model"] = fields.get("model") or DEFAULT_MODEL
    fields.setdefault("seed", secrets.randbelow(2**32))
    try:
        request = make_request(**fields, **inputs)
        check(request, folders=False)
    except PromptreelError as exc:
        raise ApiError(422, " ".join(str(exc).split())) from None
    return request.model_dump(mode="json")
