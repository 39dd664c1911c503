"""JSON that promptreel did not write itself: a sidecar, an embedded record, a model folder's
configs. Malformed text and text nested too deeply to parse (which `json` reports as a
RecursionError, not as bad JSON) are both a `ValueError` here, so one `except` handles both."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`, with nesting too deep to parse raised as `ValueError` too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to read") from None
