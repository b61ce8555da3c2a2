"""Configuration, validated once per Lambda instance from the environment.

A plain pydantic model that reads the environment itself, as pydantic-settings' BaseSettings would
for these fields (each from the variable named like the field, or like its alias, in any case;
arguments win): importing pydantic-settings costs some 20 ms of every function's cold start.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

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

    # Development only, never set in AWS: origins (scheme://host:port, comma-separated) whose image URLs
    # are stored and fetched although they are not public https, e.g. the devstack's image server.
    dev_image_origins: tuple[str, ...] = Field((), validation_alias=AliasChoices("CROSSLIST_DEV_IMAGE_ORIGINS"))

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

    @field_validator("dev_image_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value
