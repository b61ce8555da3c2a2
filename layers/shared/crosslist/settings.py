"""Configuration, validated once per Lambda instance from the environment.

A plain pydantic model that reads the environment itself, as pydantic-settings' BaseSettings would
for these fields (each from the variable named like the field, or like its alias, in any case;
arguments win): importing pydantic-settings costs some 20 ms of every function's cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# Settings given as "low-high" (seconds, or a number of calls).
_RANGES = (
    "pacing_read_seconds",
    "pacing_write_seconds",
    "pacing_delete_seconds",
    "pacing_pause_every",
    "pacing_pause_seconds",
)


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # PostgreSQL: a URL in development and tests, a Secrets Manager secret in AWS.
    database_url: SecretStr | None = None
    database_secret_arn: str | None = None
    # TLS to PostgreSQL is always on and verified (crosslist.db.tls): against the system's CAs, or against the PEM
    # bundle in this Secrets Manager secret (a private CA: RDS's, Supabase's). Clear text only for development, by
    # CROSSLIST_DATABASE_SSLMODE=disable: the deployed template never sets it.
    database_ca_secret_arn: str | None = None
    database_sslmode: Literal["verify-full", "disable"] = Field(
        "verify-full", validation_alias=AliasChoices("CROSSLIST_DATABASE_SSLMODE")
    )

    connections_table: str = "Connections"
    pending_commands_table: str = "PendingCommands"
    # When the periodic functions may leave PostgreSQL alone (crosslist.due_times). Unset: they look every time.
    due_times_table: str | None = None
    # How long a transaction that announced a change may take to commit (crosslist.due_times.SETTLE_SECONDS): over
    # every function's timeout. Shorter only where transactions are known to be short (the devstack's tests).
    due_times_settle_seconds: float = Field(120, ge=0, validation_alias=AliasChoices("CROSSLIST_DUE_TIMES_SETTLE"))
    jobs_queue_url: str | None = None
    # API Gateway management endpoint of the WebSocket API (https://{api}.execute-api.{region}.amazonaws.com/{stage}).
    websocket_endpoint: str | None = None

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_secret_arn: str | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # eBay and Etsy endpoints: production by default; point them at a sandbox or a fake for development.
    ebay_api_base: str = Field("https://api.ebay.com", validation_alias=AliasChoices("CROSSLIST_EBAY_API_BASE"))
    ebay_oauth_token_url: str = Field(
        "https://api.ebay.com/identity/v1/oauth2/token", validation_alias=AliasChoices("CROSSLIST_EBAY_OAUTH_TOKEN_URL")
    )
    etsy_api_base: str = Field("https://openapi.etsy.com/v3", validation_alias=AliasChoices("CROSSLIST_ETSY_API_BASE"))
    etsy_oauth_token_url: str = Field(
        "https://api.etsy.com/v3/public/oauth/token", validation_alias=AliasChoices("CROSSLIST_ETSY_OAUTH_TOKEN_URL")
    )
    ebay_authorize_url: str = Field(
        "https://auth.ebay.com/oauth2/authorize", validation_alias=AliasChoices("CROSSLIST_EBAY_AUTHORIZE_URL")
    )
    etsy_authorize_url: str = Field(
        "https://www.etsy.com/oauth/connect", validation_alias=AliasChoices("CROSSLIST_ETSY_AUTHORIZE_URL")
    )

    # The KMS key whose data keys seal the OAuth tokens (crosslist.auth.vault), and the Secrets Manager
    # secrets holding each marketplace app's {"client_id", "client_secret"}: unset, that marketplace's
    # tokens are not refreshed here.
    credentials_key_id: str | None = None
    ebay_oauth_secret_arn: str | None = None
    etsy_oauth_secret_arn: str | None = None

    # Push notifications (crosslist.notifications). eBay: the public URL of POST/GET /notifications/ebay exactly as
    # registered in eBay's developer portal (the challenge hashes it) and the verification token (32-80 characters)
    # registered with it: in a Secrets Manager secret in AWS, given directly in development. Unset: eBay's
    # notifications are refused (404) and no account is subscribed to its orders (polling goes on alone).
    ebay_notification_endpoint: str | None = None
    ebay_verification_token: SecretStr | None = None
    ebay_verification_token_secret_arn: str | None = None
    # The Commerce Identity API (who a connected eBay account is) lives on its own host.
    ebay_identity_api_base: str = Field(
        "https://apiz.ebay.com", validation_alias=AliasChoices("CROSSLIST_EBAY_IDENTITY_API_BASE")
    )
    # Etsy: webhooks are for apps with commercial access only. On: POST /notifications/etsy takes order.paid
    # signed with the app's signing secret (whsec_…; a Secrets Manager secret in AWS). Off: 404, polling alone.
    etsy_webhooks: bool = False
    etsy_webhook_secret: SecretStr | None = None
    etsy_webhook_secret_arn: str | None = None

    # Timers (pacing delays, command deadlines, backoff, pauses, held replies): a standard SQS queue, since
    # a FIFO queue cannot delay one message. process_job consumes it too.
    timers_queue_url: str | None = None
    # Outbound webhooks (crosslist.webhooks): one message per delivery; deliver_webhooks consumes it. Unset: no
    # event is turned into a webhook delivery here.
    webhook_delivery_queue_url: str | None = None
    # The waits between a webhook's attempts, in seconds (crosslist.webhooks.delivery.RETRY_SECONDS when unset;
    # exactly as many: the queue's maxReceiveCount counts the attempts). Shorter only in tests and development.
    webhook_retry_seconds: tuple[float, ...] | None = Field(
        None, validation_alias=AliasChoices("CROSSLIST_WEBHOOK_RETRIES")
    )

    # Vinted pacing (see MARKETPLACES.md): a random gap before each call by kind, a long pause every
    # so many calls, and an hourly budget of writes. Ranges are "low-high" in seconds.
    pacing: bool = Field(True, validation_alias=AliasChoices("CROSSLIST_PACING"))
    pacing_read_seconds: tuple[float, float] = Field((3, 8), validation_alias=AliasChoices("CROSSLIST_PACING_READ"))
    pacing_write_seconds: tuple[float, float] = Field((5, 12), validation_alias=AliasChoices("CROSSLIST_PACING_WRITE"))
    pacing_delete_seconds: tuple[float, float] = Field(
        (6, 15), validation_alias=AliasChoices("CROSSLIST_PACING_DELETE")
    )
    pacing_min_gap_seconds: float = Field(3, ge=0, validation_alias=AliasChoices("CROSSLIST_PACING_MIN_GAP"))
    pacing_pause_every: tuple[float, float] = Field(
        (10, 15), validation_alias=AliasChoices("CROSSLIST_PACING_PAUSE_EVERY")
    )
    pacing_pause_seconds: tuple[float, float] = Field((15, 30), validation_alias=AliasChoices("CROSSLIST_PACING_PAUSE"))
    pacing_writes_per_hour: int = Field(30, ge=1, validation_alias=AliasChoices("CROSSLIST_PACING_WRITES_PER_HOUR"))

    # A batch's eBay jobs share bulk calls (up to 25 products a call: crosslist.jobs.bulk); off: a call per job.
    bulk_calls: bool = Field(True, validation_alias=AliasChoices("CROSSLIST_BULK_CALLS"))
    # Imports compare the first photos of listings (crosslist.imports.photos); off: titles and prices only.
    photo_matching: bool = Field(True, validation_alias=AliasChoices("CROSSLIST_PHOTO_MATCHING"))

    # Failures: waits before attempt 2, 3, … (jittered ±20 %), and lane pauses when throttled.
    backoff_seconds: tuple[float, ...] = Field((30, 120, 480), validation_alias=AliasChoices("CROSSLIST_BACKOFF"))
    throttle_pause_seconds: float = Field(900, ge=0, validation_alias=AliasChoices("CROSSLIST_THROTTLE_PAUSE"))
    challenge_pause_seconds: float = Field(1800, ge=0, validation_alias=AliasChoices("CROSSLIST_CHALLENGE_PAUSE"))
    max_pause_seconds: float = Field(6 * 3600, ge=0, validation_alias=AliasChoices("CROSSLIST_MAX_PAUSE"))
    # A wake-up that failed on an error (PostgreSQL, DynamoDB, a bug) comes back this soon, not after the
    # queue's visibility timeout.
    retry_after_error_seconds: int = Field(
        10, ge=0, le=60, validation_alias=AliasChoices("CROSSLIST_RETRY_AFTER_ERROR")
    )
    # How long a job waits for the user's browser extension before failing (plugin_never_connected).
    plugin_wait_seconds: float = Field(24 * 3600, ge=0, validation_alias=AliasChoices("CROSSLIST_PLUGIN_WAIT"))

    # The web app's origins (scheme://host[:port], comma-separated): connecting an eBay or Etsy account ends
    # on a page of one of them (the first by default), which completes it with the user's token.
    web_app_origins: tuple[str, ...] = ()

    # Development only, never set in AWS: origins (scheme://host:port, comma-separated) whose image URLs
    # are stored and fetched although they are not public https, e.g. the devstack's image server.
    dev_image_origins: tuple[str, ...] = Field((), validation_alias=AliasChoices("CROSSLIST_DEV_IMAGE_ORIGINS"))
    # Development only, never set in AWS: origins webhooks may be sent to although they are not public https
    # (e.g. http://127.0.0.1:3000, the developer's own backend).
    dev_webhook_origins: tuple[str, ...] = Field((), validation_alias=AliasChoices("CROSSLIST_DEV_WEBHOOK_ORIGINS"))

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environment = {name.lower(): value for name, value in os.environ.items()}
        found = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            keys = [str(key) for key in alias.choices] if isinstance(alias, AliasChoices) else [str(alias or name)]
            for key in keys:
                if key.lower() in environment:
                    found[key] = environment[key.lower()]
                    break
        return {**found, **data}

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # CloudFormation passes optional parameters as empty strings.
        return None if value == "" else value

    @field_validator(*_RANGES, mode="before")
    @classmethod
    def _range(cls, value: object) -> object:
        if isinstance(value, str):
            low, separator, high = value.partition("-")
            return (low.strip(), (high if separator else low).strip())
        return value

    @field_validator(*_RANGES)
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] < 0 or value[1] < value[0]:
            raise ValueError(f"a range must be 'low-high' with 0 <= low <= high, got {value[0]}-{value[1]}")
        return value

    @field_validator("backoff_seconds", "webhook_retry_seconds", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("pacing", "etsy_webhooks", "bulk_calls", "photo_matching", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("on", "off"):
            return value.strip().lower() == "on"
        return value

    @field_validator("dev_image_origins", "dev_webhook_origins", "web_app_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value


# The settings the modules below the composition root read (a pydantic validator cannot be handed them): the
# composition root (crosslist.runtime) provides its own at import, so what it caches or a test replaces there
# is what they see; without it, the environment's, read once.
_provider: list[Callable[[], Settings]] = []


def provide(settings: Callable[[], Settings]) -> None:
    """Have `current()` call `settings` from now on."""
    _provider[:] = [settings]


def current() -> Settings:
    if not _provider:
        from functools import cache

        _provider.append(cache(Settings))
    return _provider[0]()
