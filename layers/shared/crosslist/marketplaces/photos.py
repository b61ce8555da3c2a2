"""A product photo that cannot be downloaded, whoever downloads it (crosslist for eBay and Etsy, the browser
extension for Vinted): the step fails naming the URL, before the marketplace is called. At once when waiting
cannot help (404, 410, an unknown host, not a photo); after the usual backoff when the image host may answer
later (a server error, a timeout). The same codes on every marketplace."""

from __future__ import annotations

from crosslist.realtime.messages import PhotoDownloadFailure
from crosslist.workflows.base import StepFailed

IMAGE_UNAVAILABLE = "image_unavailable"  # final: the user must fix or remove the photo
IMAGE_HOST_UNAVAILABLE = "image_host_unavailable"  # retried: the image host may serve it later
MAX_REASON = 300
# Why an extension could not download a photo (PhotoDownloadFailure.error) when waiting cannot help.
FINAL_DOWNLOAD_ERRORS = frozenset({"unknown_host", "not_an_image", "too_large", "unsupported_url"})


def host_may_recover(status: int) -> bool:
    """Whether an image host that answered `status` may serve the photo later."""
    return status >= 500 or status in (408, 429)


def photo_failed(url: str, reason: str, *, retryable: bool) -> StepFailed:
    """The step's failure for a photo that could not be downloaded: `reason` says why."""
    if retryable:
        return StepFailed(
            IMAGE_HOST_UNAVAILABLE,
            f"the photo {url} could not be downloaded now ({reason[:MAX_REASON]}): crosslist tries again later",
            detail={"url": url},
        )
    return StepFailed(
        IMAGE_UNAVAILABLE,
        f"the photo {url} cannot be used ({reason[:MAX_REASON]}): fix or remove it, then run the job again",
        retryable=False,
        detail={"url": url},
    )


def extension_download_failed(photo: PhotoDownloadFailure, said: str | None) -> StepFailed:
    """The browser extension could not download a photo (`said`: its own words). Final when the image host
    refused it for good (a 4xx: 404, 410…) or the extension says why waiting cannot help; otherwise (a 5xx, a
    timeout, a reason this backend does not know or none) the photo gets the backoff's chances."""
    refused = photo.status is not None and 400 <= photo.status < 500 and not host_may_recover(photo.status)
    retryable = not refused and photo.error not in FINAL_DOWNLOAD_ERRORS
    facts = [f"HTTP {photo.status}" if photo.status is not None else "", (photo.error or "").replace("_", " ")]
    reason = ", ".join(fact for fact in facts if fact) or (said or "no reason given")
    return photo_failed(photo.url, reason, retryable=retryable)
