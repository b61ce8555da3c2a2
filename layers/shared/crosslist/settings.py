"""Configuration, validated once per Lambda instance from the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # PostgreSQL: a URL in development and tests, a Secrets Manager secret in AWS.
    database_url: SecretStr | None = None
    database_secret_arn: str | None = None

    connections_table: str = "Connections"
    pending_commands_table: str = "PendingCommands"
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

    # How the job runner waits on a plugin result: first and largest pause between consistent reads.
    plugin_poll_initial_seconds: float = 0.05
    plugin_poll_max_seconds: float = 0.1

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # CloudFormation passes optional parameters as empty strings.
        return None if value == "" else value
