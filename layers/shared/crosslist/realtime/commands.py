"""The PendingCommands table: one correlation record per plugin command, resolved by its result.

Every state change is a conditional write, so a record is resolved at most once, only by its owner,
and never after it timed out.
"""

from __future__ import annotations

import enum
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from crosslist.realtime.conditional import update_if
from crosslist.realtime.messages import PhotoDownloadFailure

# Correlation records outlive their deadline a little so a late result can still be told "expired".
RECORD_RETENTION_SECONDS = 24 * 60 * 60


class CommandStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CONNECTION_LOST = "connection_lost"  # its tab closed before answering; a late answer still counts


class RejectionCode(enum.StrEnum):
    UNKNOWN_REQUEST = "unknown_request"
    FORBIDDEN = "forbidden"
    ALREADY_RESOLVED = "already_resolved"
    EXPIRED = "expired"


class ResultRejected(Exception):
    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PendingCommand:
    request_id: str
    user_id: str
    job_id: str
    step: str
    status: CommandStatus
    deadline: float  # epoch seconds after which no result is accepted
    marketplace: str = "vinted"  # the lane its result wakes
    result: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None  # the marketplace's HTTP status, as the extension reported it
    retry_after: float | None = None
    lost_at: float | None = None  # when its tab closed without answering
    connection_id: str | None = None  # the tab it was sent to: the only one whose answer counts
    hold_until: float | None = None  # a successful answer may wait until then to continue its job (pacing)
    photo_failure: PhotoDownloadFailure | None = None  # the extension could not download the command's photo


class PendingCommandStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(
        self,
        request_id: str,
        user_id: str,
        job_id: str,
        step: str,
        deadline: float,
        *,
        connection_id: str,
        marketplace: str = "vinted",
        hold_until: float | None = None,
    ) -> None:
        # Rounded up: the held reply must not arrive before the call it waits for may go.
        held = {} if hold_until is None else {"hold_until_ms": math.ceil(hold_until * 1000)}
        self._table.put_item(
            Item=held
            | {
                "request_id": request_id,
                "user_id": user_id,
                "marketplace": marketplace,
                "job_id": job_id,
                "step": step,
                "connection_id": connection_id,
                "status": CommandStatus.PENDING.value,
                "deadline_ms": int(deadline * 1000),
                "expires_at": int(deadline) + RECORD_RETENTION_SECONDS,
            },
            ConditionExpression="attribute_not_exists(request_id)",
        )

    def lose_connection(self, connection_id: str) -> list[PendingCommand]:
        """A tab closed: its commands still awaiting an answer end now rather than at their deadline.
        Returns them (their lanes are to be woken). A result that wins the race is kept (the update is
        conditional)."""
        lost: list[PendingCommand] = []
        query: dict[str, Any] = {
            "IndexName": "by_connection",
            "KeyConditionExpression": Key("connection_id").eq(connection_id),
        }
        while True:
            page = self._table.query(**query)
            for item in page.get("Items", []):
                marked = update_if(
                    self._table,
                    Key={"request_id": item["request_id"]},
                    UpdateExpression="SET #status = :lost, lost_at = :now",
                    ConditionExpression="#status = :pending AND connection_id = :connection",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":lost": CommandStatus.CONNECTION_LOST.value,
                        ":pending": CommandStatus.PENDING.value,
                        ":connection": connection_id,
                        ":now": int(time.time() * 1000),
                    },
                    ReturnValues="ALL_NEW",
                )
                if marked is not None:
                    lost.append(_from_item(marked))
            if "LastEvaluatedKey" not in page:
                return lost
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, request_id: str) -> PendingCommand | None:
        item = self._table.get_item(Key={"request_id": request_id}, ConsistentRead=True).get("Item")
        return None if item is None else _from_item(item)

    def delete(self, request_id: str) -> None:
        self._table.delete_item(Key={"request_id": request_id})

    def resolve(
        self,
        request_id: str,
        connection_id: str,
        *,
        success: bool,
        result: dict[str, Any] | None,
        error: str | None,
        http_status: int | None = None,
        retry_after: float | None = None,
        photo_failure: PhotoDownloadFailure | None = None,
        now: float | None = None,
    ) -> PendingCommand | None:
        """Record a plugin result sent by `connection_id` (returns the command, to wake its lane); None when
        it cannot be accepted (`rejection` says why). Only the tab the command went to can answer it."""
        now = time.time() if now is None else now
        status = CommandStatus.SUCCEEDED if success else CommandStatus.FAILED
        resolved = update_if(
            self._table,
            Key={"request_id": request_id},
            UpdateExpression="SET #status = :status, result_json = :result, #error = :error, resolved_at = :now,"
            " http_status = :http_status, retry_after_ms = :retry_after, photo_failure_json = :photo_failure",
            # A tab that answered and closed at once: its $disconnect may be handled first.
            ConditionExpression=(
                "attribute_exists(request_id) AND #status IN (:pending, :lost) AND connection_id = :connection"
                " AND deadline_ms > :now_ms"
            ),
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues={
                ":status": status.value,
                ":result": json.dumps(result) if result is not None else None,
                ":error": error,
                ":now": int(now),
                ":now_ms": int(now * 1000),
                ":pending": CommandStatus.PENDING.value,
                ":lost": CommandStatus.CONNECTION_LOST.value,
                ":connection": connection_id,
                ":http_status": http_status,
                ":retry_after": None if retry_after is None else int(retry_after * 1000),
                ":photo_failure": None if photo_failure is None else photo_failure.model_dump_json(),
            },
            ReturnValues="ALL_NEW",
        )
        return None if resolved is None else _from_item(resolved)

    def expire(self, request_id: str) -> bool:
        """Mark a command still without a result timed out; False when a result won the race."""
        expired = update_if(
            self._table,
            Key={"request_id": request_id},
            UpdateExpression="SET #status = :timed_out",
            ConditionExpression="#status IN (:pending, :lost)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":timed_out": CommandStatus.TIMED_OUT.value,
                ":pending": CommandStatus.PENDING.value,
                ":lost": CommandStatus.CONNECTION_LOST.value,
            },
        )
        return expired is not None

    def rejection(self, request_id: str, connection_id: str, now: float | None = None) -> ResultRejected:
        """Why a result `resolve` refused cannot be accepted (one read)."""
        now = time.time() if now is None else now
        command = self.get(request_id)
        if command is None:
            return ResultRejected(RejectionCode.UNKNOWN_REQUEST, "no command with this request_id is awaiting a result")
        if command.connection_id != connection_id:
            # Same answer shape as for an unknown request would leak less, but the issue asks for "forbidden".
            return ResultRejected(RejectionCode.FORBIDDEN, "this command was sent to another connection")
        if command.status is CommandStatus.TIMED_OUT or (
            command.status in (CommandStatus.PENDING, CommandStatus.CONNECTION_LOST) and command.deadline <= now
        ):
            return ResultRejected(RejectionCode.EXPIRED, "this command timed out; its result is no longer accepted")
        return ResultRejected(RejectionCode.ALREADY_RESOLVED, "this command already has a result")


def _from_item(item: dict[str, Any]) -> PendingCommand:
    raw_result = item.get("result_json")
    return PendingCommand(
        request_id=str(item["request_id"]),
        user_id=str(item["user_id"]),
        job_id=str(item["job_id"]),
        step=str(item["step"]),
        status=CommandStatus(item["status"]),
        deadline=int(item["deadline_ms"]) / 1000,
        marketplace=str(item.get("marketplace", "vinted")),
        result=json.loads(raw_result) if raw_result else None,
        error=item.get("error"),
        http_status=int(item["http_status"]) if item.get("http_status") is not None else None,
        retry_after=int(item["retry_after_ms"]) / 1000 if item.get("retry_after_ms") is not None else None,
        lost_at=int(item["lost_at"]) / 1000 if "lost_at" in item else None,
        connection_id=item.get("connection_id"),
        hold_until=int(item["hold_until_ms"]) / 1000 if "hold_until_ms" in item else None,
        photo_failure=PhotoDownloadFailure.model_validate_json(item["photo_failure_json"])
        if item.get("photo_failure_json")
        else None,
    )
