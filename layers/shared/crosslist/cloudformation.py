"""CloudFormation custom resources: the request CloudFormation sends a function, and the one answer it waits for.

CloudFormation hears back only through a PUT of the answer to the request's pre-signed ResponseURL (an S3
URL): a function that raises, times out or forgets to answer leaves the stack waiting (up to the resource's
ServiceTimeout, else an hour) instead of rolling back. So `answer_custom_resource` always answers: SUCCESS
with the work's Data, or FAILED with the reason, which the stack's events show. One PUT needs no HTTP
library: urllib from the standard library.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

logger = Logger(child=True)

RequestType = Literal["Create", "Update", "Delete"]
Status = Literal["SUCCESS", "FAILED"]

# CloudFormation refuses an answer over 4096 bytes (and the stack would then wait): the reason is cut to fit.
MAX_ANSWER_BYTES = 4096
# What a function keeps of its time to answer: the work must end this long before the function's timeout.
ANSWER_RESERVE_SECONDS = 15.0
ANSWER_TIMEOUT_SECONDS = 3.0
ANSWER_ATTEMPTS = 3  # S3 may fail a PUT now and then: 3 x 3 s plus the pauses (1 s, 2 s) stays within the reserve


class ExplainedFailure(Exception):
    """A failure whose message is written for whoever deploys: the stack's events show it as it is."""


@dataclass(frozen=True)
class CustomResourceRequest:
    """What CloudFormation asks of a custom resource (the fields the answer must echo)."""

    request_type: RequestType
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    physical_resource_id: str | None = None
    resource_properties: Mapping[str, Any] = field(default_factory=dict)
    old_resource_properties: Mapping[str, Any] = field(default_factory=dict)  # an Update's previous ones

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CustomResourceRequest | None:
        """The request, or None when the event is not one from CloudFormation (e.g. an invocation by hand)."""
        request_type = event.get("RequestType")
        if request_type not in ("Create", "Update", "Delete") or "ResponseURL" not in event:
            return None
        return cls(
            request_type=request_type,
            response_url=str(event["ResponseURL"]),
            stack_id=str(event["StackId"]),
            request_id=str(event["RequestId"]),
            logical_resource_id=str(event["LogicalResourceId"]),
            physical_resource_id=event.get("PhysicalResourceId"),
            resource_properties=dict(event.get("ResourceProperties") or {}),
            old_resource_properties=dict(event.get("OldResourceProperties") or {}),
        )

    def goes_back_to_an_older_version(self, version_property: str) -> bool:
        """An Update whose `version_property` (a Lambda version's ARN) names an older version of the same function
        than before: CloudFormation putting the previous deploy back (a rollback), not a deploy."""
        if self.request_type != "Update":
            return False
        new = str(self.resource_properties.get(version_property, "")).rpartition(":")
        old = str(self.old_resource_properties.get(version_property, "")).rpartition(":")
        if new[0] != old[0] or not (new[2].isdigit() and old[2].isdigit()):
            return False  # another function (it was replaced), or not version ARNs: not comparable
        return int(new[2]) < int(old[2])


@dataclass(frozen=True)
class CustomResourceAnswer:
    status: Status
    physical_resource_id: str
    reason: str = ""
    data: Mapping[str, str] = field(default_factory=dict)

    def body(self, request: CustomResourceRequest) -> bytes:
        """The JSON CloudFormation reads, the reason cut so that the whole stays under its size limit."""
        answer = {
            "Status": self.status,
            "Reason": self.reason,
            "PhysicalResourceId": self.physical_resource_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
            "Data": dict(self.data),
        }
        encoded = json.dumps(answer).encode()
        excess = len(encoded) - MAX_ANSWER_BYTES
        if excess > 0:
            # JSON escapes can make a character take up to 12 bytes: cut generously, then mark the cut.
            answer["Reason"] = self.reason[: max(0, len(self.reason) - excess - 16)] + " [...]"
            encoded = json.dumps(answer).encode()
        return encoded


def answer_custom_resource(
    request: CustomResourceRequest,
    create_or_update: Callable[[], Mapping[str, str]],
    *,
    physical_resource_id: str,
    version_property: str | None = None,
    log_stream: str = "",
) -> CustomResourceAnswer:
    """Do the work of a Create or Update and answer CloudFormation; a Delete is answered SUCCESS at once.

    For resources whose work only ever moves forward and is left in place when the stack lets go of it (a
    database schema: never dropped with a stack, never downgraded): a Delete does no work at all, nor does an
    Update that goes back to an older version of the working function (`version_property`: the property naming
    it), i.e. a rollback, so neither ever fails nor holds up a stack that is being deleted or rolled back. The
    physical resource id stays the one CloudFormation knows (a new one would read as a replacement, and
    CloudFormation would then delete the old one). Any exception becomes a FAILED answer whose reason is the
    exception's message, and the log stream where the rest is.
    """
    physical_id = request.physical_resource_id or physical_resource_id
    if request.request_type == "Delete":
        answer = CustomResourceAnswer("SUCCESS", physical_id, "nothing to undo: deleting this resource changes nothing")
    elif version_property is not None and request.goes_back_to_an_older_version(version_property):
        answer = CustomResourceAnswer("SUCCESS", physical_id, "rolling back: what was done stays, nothing to undo")
    else:
        try:
            answer = CustomResourceAnswer("SUCCESS", physical_id, data=create_or_update())
        except Exception as error:
            logger.exception("the custom resource's work failed", extra={"request_type": request.request_type})
            where = f" (log stream {log_stream})" if log_stream else ""
            answer = CustomResourceAnswer("FAILED", physical_id, reason=f"{failure_reason(error)}{where}")
    send_answer(request, answer)
    return answer


def failure_reason(error: BaseException) -> str:
    """One line: an ExplainedFailure's message, else the error's type and message."""
    message = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return message if isinstance(error, ExplainedFailure) else f"{type(error).__name__}: {message}"


def send_answer(request: CustomResourceRequest, answer: CustomResourceAnswer) -> bool:
    """PUT the answer to the pre-signed URL; False when every attempt failed (logged: the stack then waits for
    the resource's ServiceTimeout)."""
    if urlsplit(request.response_url).scheme not in ("https", "http"):
        logger.error("not answering a ResponseURL that is not http(s)")
        return False
    body = answer.body(request)
    # The URL is signed for a PUT with an empty Content-Type: urllib's default one would not match the signature.
    put = urllib.request.Request(
        request.response_url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    for attempt in range(1, ANSWER_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(put, timeout=ANSWER_TIMEOUT_SECONDS) as response:
                response.read()
            logger.info("answered CloudFormation", extra={"status": answer.status, "reason": answer.reason})
            return True
        except (urllib.error.URLError, OSError) as error:
            logger.warning("answering CloudFormation failed", extra={"attempt": attempt, "error": str(error)})
            if attempt < ANSWER_ATTEMPTS:
                time.sleep(attempt)
    logger.error("CloudFormation was not answered", extra={"status": answer.status, "reason": answer.reason})
    return False
