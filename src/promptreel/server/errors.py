"""The one error the API raises itself: an HTTP status, a one-line message, and the request
field at fault when there is one (the page marks that field)."""

from __future__ import annotations

from ..errors import PromptreelError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
        *,
        argument: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.argument = argument

    @classmethod
    def refusing(cls, error: PromptreelError) -> ApiError:
        """A 422 for a request promptreel refused: its message on one line, its field."""
        return cls(422, " ".join(str(error).split()), argument=error.argument)
