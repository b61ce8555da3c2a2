"""The messages exchanged over the WebSocket, as the frontend and the browser extension see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PluginCommand(BaseModel):
    """An HTTP call the browser extension performs on Vinted with the user's session."""

    model_config = ConfigDict(frozen=True)

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    payload: dict[str, Any] | None = None


MAX_REQUEST_ID_LENGTH = 100
MAX_IMAGE_URL_LENGTH = 2000
# A failed result's `error_kind` when the extension could not download the command's photo: Vinted was
# never called. Without it (or with a kind this backend does not know) a failure is Vinted's.
IMAGE_ERROR_KIND = "image"


class PhotoDownloadFailure(BaseModel):
    """The browser extension could not download the photo a command uploads (nothing was sent to Vinted)."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(min_length=1, max_length=MAX_IMAGE_URL_LENGTH)
    status: int | None = Field(default=None, ge=100, le=599)  # the image host's HTTP status, if it answered
    # Why, when the status does not say: unknown_host, timeout, connection_failed, not_an_image, too_large,
    # unsupported_url (docs/websocket-protocol.md).
    error: str | None = Field(default=None, max_length=40)


class PluginResultMessage(BaseModel):
    """{"action": "plugin_result", "request_id": ..., "success": true, "result": {...}} (or "error")."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["plugin_result"]
    request_id: str = Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH)
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=2000)
    # What Vinted answered, when it answered: its HTTP status and Retry-After (seconds).
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: float | None = Field(default=None, ge=0, le=86_400)
    # What failed when it was not Vinted: "image" (the photo could not be downloaded), with the photo's URL,
    # the image host's HTTP status if it answered, and why if that does not say.
    error_kind: str | None = Field(default=None, max_length=40)
    image_url: str | None = Field(default=None, min_length=1, max_length=MAX_IMAGE_URL_LENGTH)
    image_status: int | None = Field(default=None, ge=100, le=599)
    image_error: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _error_explains_failure(self) -> PluginResultMessage:
        if not self.success and not self.error:
            raise ValueError("a failed result must say why in 'error'")
        if self.error_kind == IMAGE_ERROR_KIND and (self.success or self.image_url is None):
            raise ValueError("an 'image' failure is a failed result naming the photo in 'image_url'")
        return self

    @property
    def photo_failure(self) -> PhotoDownloadFailure | None:
        """The photo the extension could not download, when that is why the command failed."""
        if self.error_kind != IMAGE_ERROR_KIND or self.image_url is None:
            return None
        return PhotoDownloadFailure(url=self.image_url, status=self.image_status, error=self.image_error)


class PluginStatusMessage(BaseModel):
    """{"action": "plugin_status", "ready": true, "extension_version": "1.4.2"}: whether this tab's browser
    extension can execute commands. Sent after connecting and whenever it changes."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["plugin_status"]
    ready: bool
    extension_version: str | None = Field(default=None, min_length=1, max_length=50)
    # Commands would only fail while the user is logged out of Vinted or Vinted shows a bot challenge.
    vinted_logged_in: bool = True
    challenge: bool = False
    # The Vinted account the extension is logged in as (wardrobe reads need it).
    vinted_user_id: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")

    @property
    def takes_commands(self) -> bool:
        return self.ready and self.vinted_logged_in and not self.challenge


def command_message(
    request_id: str,
    job_id: str,
    step: str,
    command: PluginCommand,
    timeout_ms: int,
    *,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A command for the tab's extension. `progress`: the job's job.progress message of the same moment,
    which this tab is then not sent on its own (one message instead of two)."""
    message = {
        "type": "plugin.command",
        "request_id": request_id,
        "job_id": job_id,
        "step": step,
        "method": command.method,
        "path": command.path,
        "payload": command.payload,
        "timeout_ms": timeout_ms,
    }
    if progress is not None:
        message["progress"] = progress
    return message


def error_message(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "request_id": request_id}


def progress_message(
    job_id: str, step: str, current_step: int, total_steps: int, description: str, *, batch_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "job.progress",
        "job_id": job_id,
        "batch_id": batch_id,
        "step": step,
        "current_step": current_step,
        "total_steps": total_steps,
        "message": description,
    }


def batch_progress_message(batch_id: str, counts: dict[str, int]) -> dict[str, Any]:
    return {"type": "batch.progress", "batch_id": batch_id, "counts": counts}


def completed_message(job_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "job.completed", "job_id": job_id, "result": result}


def failed_message(job_id: str, error: dict[str, str], retryable: bool = False) -> dict[str, Any]:
    """The job ended in failure: final (a coming retry is `job.retrying`)."""
    return {"type": "job.failed", "job_id": job_id, "error": error}


def retrying_message(job_id: str, attempt: int, next_attempt_at: datetime, error: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "job.retrying",
        "job_id": job_id,
        "attempt": attempt,
        "next_attempt_at": next_attempt_at.isoformat(),
        "error": error,
    }


def waiting_message(job_id: str, reason: str, until: datetime | None) -> dict[str, Any]:
    """reason: pacing, backoff, no_plugin, plugin_not_ready, plugin_logged_out, challenge, rate_limited or
    reauth_required (the eBay or Etsy account must be connected again)."""
    return {"type": "job.waiting", "job_id": job_id, "reason": reason, "until": until.isoformat() if until else None}


def reauth_required_message(marketplace: str) -> dict[str, Any]:
    """The user must connect this marketplace account again (its refresh token was refused); their jobs
    there wait for it."""
    return {"type": "marketplace.reauth_required", "marketplace": marketplace}


def cancelled_message(job_id: str) -> dict[str, Any]:
    return {"type": "job.cancelled", "job_id": job_id}


def plugin_status_message(status: PluginStatusMessage) -> dict[str, Any]:
    """The backend recorded the tab's plugin_status: from now on it does (or does not) receive commands."""
    return {
        "type": "plugin.status",
        "ready": status.ready,
        "extension_version": status.extension_version,
        "vinted_logged_in": status.vinted_logged_in,
        "challenge": status.challenge,
        "takes_commands": status.takes_commands,
    }


def listing_sold_message(
    marketplace: str,
    product_id: str,
    *,
    external_id: str | None,
    order_id: str,
    price: str,
    currency: str,
) -> dict[str, Any]:
    """An orders import found a new sale of a listed product: what auto-delisting elsewhere starts from."""
    return {
        "type": "listing.sold",
        "marketplace": marketplace,
        "product_id": product_id,
        "external_id": external_id,
        "order_id": order_id,
        "price": price,
        "currency": currency,
    }


def active_jobs_message(jobs: list[dict[str, Any]], *, truncated: bool) -> dict[str, Any]:
    """The user's active jobs, for a tab that just connected or asked with {"action": "resume"}."""
    return {"type": "jobs.active", "jobs": jobs, "truncated": truncated}


class ResumeMessage(BaseModel):
    """{"action": "resume"}: send this tab its user's active jobs (`jobs.active`)."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["resume"]


class PingMessage(BaseModel):
    """{"action": "ping"}: traffic on a quiet connection, which API Gateway would close after 10 idle minutes.
    Answered `pong` (to this connection only); counted against the message budgets like any message."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["ping"]


def pong_message() -> dict[str, Any]:
    """The answer to a connection's `ping`."""
    return {"type": "pong"}
