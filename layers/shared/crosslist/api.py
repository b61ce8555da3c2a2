"""What every HTTP handler shares: the resolver, the caller's identity, errors mapped in one place."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from crosslist import runtime, untrusted_json
from crosslist.auth.tokens import bearer_token
from crosslist.errors import BadRequest, CrosslistError, PayloadTooLarge, Unauthorized, UnsupportedMediaType

logger = Logger(child=True)

# Far above the largest product we accept, far below API Gateway's 10 MB and Lambda's 6 MB.
MAX_BODY_BYTES = 256 * 1024


class ApiError(BaseModel):
    """Every refusal, whatever its status: the status again, a `code` to act on, a `message` to show. Some
    codes carry more (e.g. `missing`, `listings`, `job_id`), named in their route's description."""

    model_config = ConfigDict(extra="allow")

    statusCode: int  # noqa: N815 - the name clients already read
    code: str = Field(description="Stable, e.g. invalid_request, unauthorized, not_found, job_in_progress")
    message: str = Field(description="Why, in words a user can act on")
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="A validation error's every problem: where (loc), what (msg) and its type"
    )


REFUSALS: dict[int, str] = {
    400: "The URL cannot be used: an unknown query parameter, a NUL character, a cursor this API did not issue",
    401: "No valid bearer token",
    404: "Not found among the caller's own, or no route has this path",
    409: "Refused as things stand: see `code`",
    412: "A notification whose signature does not verify (eBay's documented answer): nothing was done",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    415: "The body is not JSON (Content-Type: application/json)",
    422: "The request is not valid: `message` names every problem (`detail` lists them for a malformed request)",
    503: "A service crosslist depends on did not answer: try again",
}


def documented(
    status: int,
    description: str,
    model: Any = None,
    *,
    refusals: Iterable[int] = (),
    body: bool = False,
    public: bool = False,
) -> dict[int, OpenAPIResponse]:
    """A route's responses for the OpenAPI document: its success, and every refusal it can answer (those of
    every route: 400, 401 unless `public`, 422; with a body: 413 and 415; and `refusals`), each an ApiError."""
    success: OpenAPIResponse = {"description": description}
    if model is not None:
        success["content"] = {"application/json": {"model": model}}
    responses = {status: success}
    # 404 too: a path parameter no route takes (e.g. /marketplaces/shopify/connect) finds no route.
    standard = {400, 404, 422} if public else {400, 401, 404, 422}
    for refusal in sorted({*standard, *((413, 415) if body else ()), *refusals}):
        responses[refusal] = {
            "description": REFUSALS[refusal],
            "content": {"application/json": {"model": ApiError}},
        }
    return responses


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

    def is_public(self, path: str) -> bool:
        """Whether `path` is reached without a crosslist token."""
        return any(public.fullmatch(path) for public in self._public_paths)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        path = str(event.get("rawPath") or "")
        try:
            if not self.is_public(path):
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

    app.use([_refuse_unknown_query_parameters])

    @app.not_found
    def _no_route(_: Exception) -> Response[dict[str, object]]:
        # e.g. a path parameter a route's pattern does not match (a control character): answered as any refusal.
        return _json_error(
            404, {"code": "not_found", "message": f"no route has the path {app.current_event.path!r}"[:300]}
        )

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(error: RequestValidationError) -> Response[dict[str, object]]:
        details = [_detail(e) for e in error.errors()]
        summary = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details)
        return _json_error(422, {"code": "invalid_request", "message": summary, "detail": details})

    return app


def _refuse_unknown_query_parameters(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not take is refused (400 naming it), never silently ignored: a
    misspelt filter would otherwise answer with everything. Not on the routes a marketplace calls, which add
    parameters of their own (eBay's `expires_in`)."""
    route = app.context.get("_route")
    if route is not None and not (isinstance(app, CrosslistResolver) and app.is_public(app.current_event.path)):
        known = {str(parameter.alias) for parameter in route.dependant.query_params}
        unknown = sorted(set(app.current_event.query_string_parameters or {}) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "no query parameters"
            raise BadRequest(
                f"unknown query parameters: {', '.join(unknown)[:200]} (this route takes {takes})",
                code="unknown_parameters",
                unknown=unknown[:20],
            )
    return next_middleware(app)


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
