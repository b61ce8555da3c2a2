"""What every HTTP handler shares: the resolver, the caller's identity, errors mapped in one place."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime, untrusted_json
from crosslist.auth.tokens import bearer_token
from crosslist.errors import CrosslistError

logger = Logger(child=True)

# Far above the largest product we accept, far below API Gateway's 10 MB and Lambda's 6 MB.
MAX_BODY_BYTES = 256 * 1024


class CrosslistResolver(APIGatewayHttpResolver):
    """Refuses what cannot be read before routing: bodies that are not UTF-8 or too large, NUL in the URL.

    JSON bodies are parsed by `untrusted_json.parse`, so unstorable text, non-finite numbers and deep
    nesting are refused as 422s by the validation the routes already have.
    """

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        refusal = _unreadable(event)
        if refusal is not None:
            status, code, message = refusal
            return {
                "statusCode": status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps({"statusCode": status, "code": code, "message": message}),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def _unreadable(event: Mapping[str, Any]) -> tuple[int, str, str] | None:
    body = event.get("body")
    if body:
        if event.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(str(body), validate=True)
            except binascii.Error:
                return 400, "invalid_body", "the body is marked base64 but is not"
        else:
            raw = str(body).encode("utf-8", "surrogatepass")
        if len(raw) > MAX_BODY_BYTES:
            return 413, "body_too_large", f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return 400, "invalid_body", "the body is not valid UTF-8"
    parameters = [*(event.get("queryStringParameters") or {}).items(), *(event.get("pathParameters") or {}).items()]
    if any(untrusted_json.has_unstorable_text(f"{name}{value}") for name, value in parameters):
        return 400, "invalid_request", "the URL must not contain NUL characters (%00)"
    return None


def make_resolver() -> APIGatewayHttpResolver:
    app = CrosslistResolver(enable_validation=True, json_body_deserializer=untrusted_json.parse)

    # Powertools leaves exception_handler untyped.
    @app.exception_handler(CrosslistError)  # type: ignore[untyped-decorator]
    def _domain_error(error: CrosslistError) -> Response[dict[str, object]]:
        if error.http_status >= 500:
            logger.exception("request failed")
        return _json_error(error.http_status, error.to_dict())

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(error: RequestValidationError) -> Response[dict[str, object]]:
        details = [_detail(e) for e in error.errors()]
        summary = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details)
        return _json_error(422, {"code": "invalid_request", "message": summary, "detail": details})

    return app


def current_user(app: APIGatewayHttpResolver) -> str:
    """The user the request's bearer token names; raises Unauthorized."""
    token = bearer_token(app.current_event.headers.get("authorization"))
    return runtime.token_verifier().user_id(token)


def _json_error(status: int, body: dict[str, object]) -> Response[dict[str, object]]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body={"statusCode": status, **body}
    )


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    if error.get("type") == "json_invalid":
        # A body that is not JSON, or JSON we refuse: the parser's reason, not "JSON decode error" at char 0.
        context = error.get("ctx") or {}
        return {"loc": ["body"], "msg": str(context.get("error") or error.get("msg", "")), "type": "json_invalid"}
    return {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": error.get("type", "")}
