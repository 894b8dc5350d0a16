"""The one typed settings object, read from app settings (environment) and, locally, local.settings.json.

Every name here is listed in local.settings.sample.json and explained in the README's settings table.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", case_sensitive=False)

    tenant_id: str = Field("", alias="TENANT_ID", description="Entra tenant id (GUID) the app serves")
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="GRAPH_BASE_URL")
    graph_scope: str = Field(
        "https://graph.microsoft.com/.default", alias="GRAPH_SCOPE", description="token scope for Graph"
    )
    authority_host: str = Field("https://login.microsoftonline.com", alias="AUTHORITY_HOST")
    managed_identity_client_id: str | None = Field(
        None, alias="MANAGED_IDENTITY_CLIENT_ID", description="client id of the user-assigned identity; none = system"
    )

    # Storage: a connection string locally (UseDevelopmentStorage=true); identity-based in Azure.
    storage_connection_string: str | None = Field(None, alias="AzureWebJobsStorage")
    storage_account_name: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_queue_uri: str | None = Field(None, alias="AzureWebJobsStorage__queueServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")

    work_queue: str = Field("mfa-reset-work", alias="WORK_QUEUE_NAME")
    table_prefix: str = Field("mfareset", alias="TABLE_PREFIX")

    # Callout caller verification (issue 3 enforces these).
    callout_audience: str = Field("", alias="CALLOUT_AUDIENCE")
    callout_allowed_callers: list[str] = Field(default_factory=list, alias="CALLOUT_ALLOWED_CALLERS")
    callout_max_body_bytes: int = Field(64 * 1024, alias="CALLOUT_MAX_BODY_BYTES")

    @field_validator("callout_allowed_callers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # App settings are strings: accept "a,b" as well as a JSON list.
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "managed_identity_client_id",
        "storage_connection_string",
        "storage_account_name",
        "storage_table_uri",
        "storage_queue_uri",
        "storage_client_id",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # local.settings.json lists every name; an empty value there means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("table_prefix")
    @classmethod
    def _table_prefix(cls, value: str) -> str:
        if not value.isalnum() or not value[0].isalpha():
            raise ValueError("TABLE_PREFIX must be letters and digits, starting with a letter (Azure table names)")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this worker process, read once."""
    return Settings()
