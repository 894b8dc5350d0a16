"""The one typed settings object, read from app settings (environment) and, locally, local.settings.json.

Every name here is listed in local.settings.sample.json and explained in the README's settings table.
"""

from __future__ import annotations

import json
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Privileged built-in Entra roles (template ids) whose holders are never reset through this workflow:
# https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference
PRIVILEGED_ROLE_TEMPLATES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
}


# NCRONTAB (seconds first): every 5 minutes. The timer reads SWEEP_SCHEDULE itself (see extensions/sweep_timer.py).
DEFAULT_SWEEP_SCHEDULE = "0 */5 * * * *"


class Settings(BaseSettings):
    # enable_decoding off: list settings are plain comma-separated strings in app settings, split below.
    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", case_sensitive=False, enable_decoding=False
    )

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

    # The MFA-reset workflow.
    mfa_reset_package_ids: list[str] = Field(default_factory=list, alias="MFA_RESET_PACKAGE_IDS")
    protected_role_template_ids: list[str] = Field(
        default_factory=lambda: list(PRIVILEGED_ROLE_TEMPLATES), alias="PROTECTED_ROLE_TEMPLATE_IDS"
    )
    break_glass_user_ids: list[str] = Field(default_factory=list, alias="BREAK_GLASS_USER_IDS")
    protected_group_ids: list[str] = Field(default_factory=list, alias="PROTECTED_GROUP_IDS")
    allow_self_request: bool = Field(False, alias="ALLOW_SELF_REQUEST")
    manager_change_cooldown_days: int = Field(7, ge=0, le=365, alias="MANAGER_CHANGE_COOLDOWN_DAYS")
    max_resets_per_target_per_day: int = Field(2, ge=1, le=100, alias="MAX_RESETS_PER_TARGET_PER_DAY")
    reset_method_types: list[str] = Field(default_factory=lambda: ["all"], alias="RESET_METHOD_TYPES")
    pickup_lifetime_hours: float = Field(8, gt=0, le=72, alias="PICKUP_LIFETIME_HOURS")
    pickup_base_url: str = Field("http://127.0.0.1:7071/api/pickup", alias="PICKUP_BASE_URL")

    # The pickup page (issue 4).
    easy_auth_enabled: bool = Field(
        False, alias="EASY_AUTH_ENABLED", description="App Service Authentication fronts the app: trust its headers"
    )
    helpdesk_group_id: str = Field("", alias="HELPDESK_GROUP_ID", description="members may deliver any pass")
    tap_lifetime_minutes: int = Field(480, ge=10, le=43200, alias="TAP_LIFETIME_MINUTES")

    # Bulk phone prepopulation (issue 6, phones/).
    phone_default_region: str = Field(
        "US", alias="PHONE_DEFAULT_REGION", description="ISO 3166 region for numbers without a country code"
    )
    phone_staging_group_id: str = Field("", alias="PHONE_STAGING_GROUP_ID", description="only its members (transitive)")
    phone_source_attribute: str = Field("mobilePhone", alias="PHONE_SOURCE_ATTRIBUTE")
    phone_only_unregistered: bool = Field(True, alias="PHONE_ONLY_UNREGISTERED")
    phone_sync_mode: str = Field("add", alias="PHONE_SYNC_MODE")
    phone_sync_schedule: str = Field("0 0 2 * * *", alias="PHONE_SYNC_SCHEDULE")
    phone_sync_audience: str = Field("", alias="PHONE_SYNC_AUDIENCE")
    phone_sync_allowed_callers: list[str] = Field(default_factory=list, alias="PHONE_SYNC_ALLOWED_CALLERS")
    phone_sync_max_batches: int = Field(16, ge=1, le=64, alias="PHONE_SYNC_MAX_BATCHES")
    phone_sync_max_users_per_request: int = Field(5000, ge=1, le=100000, alias="PHONE_SYNC_MAX_USERS_PER_REQUEST")

    # Notifications (issue 5, notify/): each transport is off until configured.
    notify_email_enabled: bool = Field(False, alias="NOTIFY_EMAIL_ENABLED")
    notify_teams_enabled: bool = Field(False, alias="NOTIFY_TEAMS_ENABLED")
    notify_channel_enabled: bool = Field(False, alias="NOTIFY_CHANNEL_ENABLED")
    acs_endpoint: str = Field("", alias="ACS_ENDPOINT", description="https://<resource>.communication.azure.com")
    # Secrets: SecretStr keeps them out of any repr, log line or validation traceback of the settings.
    acs_connection_string: SecretStr = Field(
        SecretStr(""), alias="ACS_CONNECTION_STRING", description="local only (HMAC key)"
    )
    acs_sender_address: str = Field("", alias="ACS_SENDER_ADDRESS", description="MailFrom of a linked domain")
    acs_emails_per_minute: int = Field(30, ge=1, le=10000, alias="ACS_EMAILS_PER_MINUTE")
    acs_emails_per_hour: int = Field(100, ge=1, le=100000, alias="ACS_EMAILS_PER_HOUR")
    teams_bot_app_id: str = Field("", alias="TEAMS_BOT_APP_ID", description="bot app id (identity client id)")
    teams_bot_service_url: str = Field("https://smba.trafficmanager.net/teams/", alias="TEAMS_BOT_SERVICE_URL")
    teams_app_catalog_id: str = Field("", alias="TEAMS_APP_CATALOG_ID", description="the app's id in the org catalog")
    # Where the Bot Connector publishes the keys that sign the activities it POSTs to /api/messages:
    # https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
    teams_bot_openid_metadata_url: str = Field(
        "https://login.botframework.com/v1/.well-known/openidconfiguration", alias="TEAMS_BOT_OPENID_METADATA_URL"
    )
    teams_channel_webhook_url: SecretStr = Field(
        SecretStr(""), alias="TEAMS_CHANNEL_WEBHOOK_URL", description="Workflows webhook (its sig is a credential)"
    )
    notify_max_attempts: int = Field(4, ge=1, le=10, alias="NOTIFY_MAX_ATTEMPTS")
    notify_retry_base_seconds: float = Field(1.0, ge=0, le=60, alias="NOTIFY_RETRY_BASE_SECONDS")
    notify_budget_seconds: float = Field(30.0, ge=1, le=600, alias="NOTIFY_BUDGET_SECONDS")
    notify_ca_bundle: str = Field("", alias="NOTIFY_CA_BUNDLE", description="local only: extra CA for ACS over https")

    # Onboarding and the completion sweep (issue 7).
    onboarding_package_ids: list[str] = Field(default_factory=list, alias="ONBOARDING_PACKAGE_IDS")
    onboarding_deny_when_registered: bool = Field(True, alias="ONBOARDING_DENY_WHEN_REGISTERED")
    onboarding_ignore_phones: bool = Field(False, alias="ONBOARDING_IGNORE_PHONES")
    sweep_schedule: str = Field(DEFAULT_SWEEP_SCHEDULE, alias="SWEEP_SCHEDULE")
    sweep_max_pickups: int = Field(50, ge=1, le=5000, alias="SWEEP_MAX_PICKUPS_PER_RUN")
    sweep_time_budget_seconds: float = Field(120, ge=5, le=540, alias="SWEEP_TIME_BUDGET_SECONDS")
    sweep_count_windows_hello: bool = Field(False, alias="SWEEP_COUNT_WINDOWS_HELLO")

    @field_validator("phone_source_attribute")
    @classmethod
    def _phone_source(cls, value: str) -> str:
        allowed = {"mobilePhone", "businessPhones"} | {f"extensionAttribute{i}" for i in range(1, 16)}
        value = value.strip().removeprefix("onPremisesExtensionAttributes.")
        if value == "businessPhones[0]":
            value = "businessPhones"
        if value not in allowed:
            raise ValueError("PHONE_SOURCE_ATTRIBUTE must be mobilePhone, businessPhones or extensionAttribute1..15")
        return value

    @field_validator("phone_sync_mode")
    @classmethod
    def _phone_mode(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("add", "authoritative"):
            raise ValueError("PHONE_SYNC_MODE must be add or authoritative")
        return value

    @field_validator(
        "callout_allowed_callers",
        "mfa_reset_package_ids",
        "protected_role_template_ids",
        "break_glass_user_ids",
        "protected_group_ids",
        "reset_method_types",
        "phone_sync_allowed_callers",
        "onboarding_package_ids",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        # App settings are strings: accept "a,b" as well as a JSON list.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
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

    @field_validator("protected_role_template_ids", mode="after")
    @classmethod
    def _never_unprotected(cls, value: list[str]) -> list[str]:
        # An empty setting must not silently make Global Administrators resettable: empty means the default.
        return value or list(PRIVILEGED_ROLE_TEMPLATES)

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
