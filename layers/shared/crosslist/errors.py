"""Errors the domain raises; handlers turn them into HTTP or WebSocket replies in one place."""

from __future__ import annotations

from typing import Any


class CrosslistError(Exception):
    """Base of the errors a caller can act on."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class Unauthorized(CrosslistError):
    code = "unauthorized"
    http_status = 401


class NotFound(CrosslistError):
    code = "not_found"
    http_status = 404


class Conflict(CrosslistError):
    code = "conflict"
    http_status = 409


class BadRequest(CrosslistError):
    """The request cannot be used as it is (e.g. an OAuth callback whose state is not ours)."""

    code = "bad_request"
    http_status = 400


class InvalidRequest(CrosslistError):
    code = "invalid_request"
    http_status = 422


class ServiceUnavailable(CrosslistError):
    code = "service_unavailable"
    http_status = 503


class PayloadTooLarge(CrosslistError):
    code = "body_too_large"
    http_status = 413


class UnsupportedMediaType(CrosslistError):
    code = "unsupported_media_type"
    http_status = 415
