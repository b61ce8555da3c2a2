"""The messages exchanged over the WebSocket, as the frontend and the browser extension see them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PluginCommand(BaseModel):
    """An HTTP call the browser extension performs on Vinted with the user's session."""

    model_config = ConfigDict(frozen=True)

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    payload: dict[str, Any] | None = None


class PluginResultMessage(BaseModel):
    """{"action": "plugin_result", "request_id": ..., "success": true, "result": {...}} (or "error")."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["plugin_result"]
    request_id: str = Field(min_length=1, max_length=100)
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _error_explains_failure(self) -> PluginResultMessage:
        if not self.success and not self.error:
            raise ValueError("a failed result must say why in 'error'")
        return self


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

    @property
    def takes_commands(self) -> bool:
        return self.ready and self.vinted_logged_in and not self.challenge


def command_message(request_id: str, job_id: str, step: str, command: PluginCommand, timeout_ms: int) -> dict[str, Any]:
    return {
        "type": "plugin.command",
        "request_id": request_id,
        "job_id": job_id,
        "step": step,
        "method": command.method,
        "path": command.path,
        "payload": command.payload,
        "timeout_ms": timeout_ms,
    }


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


def failed_message(job_id: str, error: dict[str, str], retryable: bool) -> dict[str, Any]:
    return {"type": "job.failed", "job_id": job_id, "error": error, "retryable": retryable}


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


def active_jobs_message(jobs: list[dict[str, Any]], *, truncated: bool) -> dict[str, Any]:
    """The user's active jobs, for a tab that just connected or asked with {"action": "resume"}."""
    return {"type": "jobs.active", "jobs": jobs, "truncated": truncated}


class ResumeMessage(BaseModel):
    """{"action": "resume"}: send this tab its user's active jobs (`jobs.active`)."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["resume"]
