"""What a failed Vinted call means: every Vinted step classifies the extension's reply here, so that
a rate limit, a bot challenge or an expired session is handled the same way whatever the action."""

from __future__ import annotations

import json

from pydantic import BaseModel, ValidationError

from crosslist.marketplaces.photos import extension_download_failed
from crosslist.workflows.base import FailureKind, Reply, StepFailed

# A 403 mentioning one of these is an anti-bot challenge (DataDome, Cloudflare), not "not your item".
CHALLENGE_MARKERS = ("captcha-delivery", "datadome", "__cf_chl")
MAX_VINTED_TEXT = 500  # how much of Vinted's own error text a job keeps and shows
MAX_EXTENSION_TEXT = 300  # the extension's own description of a network failure


def check(reply: Reply) -> None:
    """Return when the call succeeded; else raise a StepFailed saying what happened and what to do."""
    if reply.success:
        return
    if reply.photo_failure is not None:  # the extension could not download the photo: Vinted was never called
        raise extension_download_failed(reply.photo_failure, reply.error)
    status, text = reply.status, (reply.error or "").strip()
    if status == 429:
        raise StepFailed(
            "rate_limited",
            "Vinted asked to slow down (too many requests from this account): "
            "your Vinted jobs pause and resume on their own.",
            kind="throttled",
            retry_after_seconds=reply.retry_after,
        )
    if status == 403 and any(marker in text.lower() for marker in CHALLENGE_MARKERS):
        raise StepFailed(
            "challenge",
            "Vinted showed a security check (captcha) in your browser: open Vinted in the browser with the "
            "crosslist extension and complete it if one is shown; your Vinted jobs pause and resume on their own.",
            kind="throttled",
            challenge=True,
        )
    if status == 401:
        raise StepFailed(
            "plugin_logged_out",
            "You are logged out of Vinted: log in to Vinted in the browser with the crosslist extension; "
            "your Vinted jobs continue once you are logged in.",
            kind="logged_out",
        )
    if status is None:
        detail = f" ({_truncate(text, MAX_EXTENSION_TEXT)})" if text else ""
        raise StepFailed(
            "plugin_error",
            f"The browser extension could not reach Vinted{detail}: the step will be tried again.",
            kind="retryable",
        )
    if status >= 500:
        raise StepFailed(
            "vinted_unavailable",
            f"Vinted is having trouble right now (HTTP {status}): the step will be tried again.",
            kind="retryable",
        )
    if 400 <= status < 500:
        # Vinted's own words say best what it did not accept (a title, a photo, an item that is gone).
        raise StepFailed(
            "vinted_refused",
            _truncate(text, MAX_VINTED_TEXT) if text else f"Vinted refused the request (HTTP {status}).",
            kind="permanent",
        )
    # A failure with a non-error status: the extension failed after Vinted answered (e.g. an unreadable body).
    detail = f": {_truncate(text, MAX_EXTENSION_TEXT)}" if text else ""
    raise StepFailed(
        "plugin_error",
        f"The browser extension could not use Vinted's answer (HTTP {status}){detail}; the step will be tried again.",
        kind="retryable",
    )


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse[Model: BaseModel](model: type[Model], reply: Reply, path: str, *, kind: FailureKind = "permanent") -> Model:
    """The reply's body in the shape `model` expects, or a loud failure: Vinted changed this payload.
    The job keeps the path and the start of the body, so the new shape can be seen and handled.
    `kind`: "retryable" where a second look may do (a write that landed is then verified, not resent)."""
    try:
        return model.model_validate(reply.result)
    except ValidationError as invalid:
        fields = sorted({".".join(str(p) for p in error["loc"]) or "body" for error in invalid.errors()})[:5]
        endpoint = path.partition("?")[0]
        raise StepFailed(
            "vinted_reply_unrecognised",
            f"Vinted's answer to {endpoint} is not in the shape crosslist knows (at: {', '.join(fields)});"
            " Vinted may have changed it. The job stops here rather than guess."
            if kind == "permanent"
            else " Vinted may have changed it; crosslist will look again.",
            kind=kind,
            detail={"path": path, "body": json.dumps(reply.result)[:MAX_VINTED_TEXT]},
        ) from None
