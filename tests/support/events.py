"""AWS event shapes the handlers receive: API Gateway HTTP API (v2) and WebSocket (SQS: devstack.sqs_trigger)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bytes | None = None,
) -> dict[str, Any]:
    """base64_body: raw bytes, sent base64-encoded as API Gateway does for bodies it cannot pass as text."""
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    if base64_body is not None:
        raw_body = base64.b64encode(base64_body).decode()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "queryStringParameters": query,
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "httpapi",
            "domainName": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "test",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": raw_body,
        "isBase64Encoded": base64_body is not None,
    }


def websocket_event(
    route_key: str, connection_id: str, *, body: str | None = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    return {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection_id,
            "messageId": str(uuid.uuid4()) if event_type == "MESSAGE" else None,
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": "23/Nov/2026:12:00:00 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": int(time.time() * 1000),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "domainName": "websocket.invalid",
            "apiId": "wsapi",
        },
        "queryStringParameters": query,
        "headers": {"Host": "websocket.invalid"} if event_type == "CONNECT" else None,
        "isBase64Encoded": False,
        "body": body,
    }
