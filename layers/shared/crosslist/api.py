"""What every HTTP handler shares: the resolver, the caller's identity, errors mapped in one place."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime, untrusted_json
from crosslist.auth.tokens import bearer_token
from crosslist.errors import BadRequest, CrosslistError, PayloadTooLarge, Unauthorized, UnsupportedMediaType

logger = Logger(child=True)

# Far above the largest product we accept, far below API Gateway's 10 MB and Lambda's 6 MB.
MAX_BODY_BYTES = 256 * 1024


class CrosslistResolver(APIGatewayHttpResolver):
    """Checks, before routing, what every route needs: who is calling (a valid bearer token, except on the
    routes a marketplace calls), then that the body can be read: JSON, UTF-8, not too large, no NUL in
    the URL. A request without a token is a 401 whatever its body.

    JSON bodies are parsed by `untrusted_json.parse`, so unstorable text, non-finite numbers and deep
    nesting are refused as 422s by the validation the routes already have. Any other content type is a
    415: Powertools would otherwise parse form and multipart bodies itself, past that guard.
    """

    def __init__(self, *, public_paths: Collection[str] = (), **options: Any) -> None:
        super().__init__(**options)
        # Routes a marketplace or the user's browser reaches without a crosslist token (the OAuth callback).
        self._public_paths = tuple(re.compile(pattern) for pattern in public_paths)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        path = str(event.get("rawPath") or "")
        try:
            if not any(public.fullmatch(path) for public in self._public_paths):
                self.append_context(user_id=_authenticated(event))  # type: ignore[no-untyped-call]
            event = _readable(event)
        except CrosslistError as refused:
            self.clear_context()  # type: ignore[no-untyped-call]
            return {
                "statusCode": refused.http_status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps({"statusCode": refused.http_status, **refused.to_dict()}),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def _authenticated(event: Mapping[str, Any]) -> str:
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    return runtime.token_verifier().user_id(bearer_token(headers.get("authorization")))


def _readable(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event, its body's media type spelled as Powertools reads it; CrosslistError when the request
    cannot be read: a body that is not JSON (415), not UTF-8, too large, or NUL in the URL."""
    parameters = [*(event.get("queryStringParameters") or {}).items(), *(event.get("pathParameters") or {}).items()]
    if any(untrusted_json.has_unstorable_text(f"{name}{value}") for name, value in parameters):
        raise BadRequest("the URL must not contain NUL characters (%00)", code="invalid_request")
    body = event.get("body")
    if not body:
        return event
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(body), validate=True)
        except binascii.Error:
            raise BadRequest("the body is marked base64 but is not", code="invalid_body") from None
    else:
        raw = str(body).encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in ("", "application/json"):
        raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), not {media_type[:100]}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8", code="invalid_body") from None
    # Media types are case-insensitive; Powertools compares them as written.
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def make_resolver(*, public_paths: Collection[str] = ()) -> APIGatewayHttpResolver:
    """The resolver of an HTTP function; `public_paths` (regular expressions of whole paths) need no token."""
    app = CrosslistResolver(
        public_paths=public_paths, enable_validation=True, json_body_deserializer=untrusted_json.parse
    )

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
    """The user the request's bearer token names (checked before routing); Unauthorized on a public route."""
    user_id = app.context.get("user_id")
    if not isinstance(user_id, str):
        raise Unauthorized("a bearer token is required")
    return user_id


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
