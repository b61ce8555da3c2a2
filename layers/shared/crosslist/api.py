"""What every HTTP handler shares: the resolver, the caller's identity, errors mapped in one place."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from crosslist import runtime
from crosslist.auth.tokens import bearer_token
from crosslist.errors import CrosslistError

logger = Logger(child=True)


def make_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    # Powertools leaves exception_handler untyped.
    @app.exception_handler(CrosslistError)  # type: ignore[untyped-decorator]
    def _domain_error(error: CrosslistError) -> Response[dict[str, object]]:
        if error.http_status >= 500:
            logger.exception("request failed")
        return _json_error(error.http_status, error.to_dict())

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(error: RequestValidationError) -> Response[dict[str, object]]:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
        ]
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
