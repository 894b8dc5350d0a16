"""The provision.yaml model: what the operator wants the Entra side to look like (see provision.sample.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ConfigError

EM_APP_ID = "810dcf14-1858-4bf2-8134-4c369fa3235b"


class Model(BaseModel):
    # camelCase in YAML like Graph's own names; unknown keys are an error, so a typo never passes silently.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LogicAppEndpoint(Model):
    """The relay Logic App (infra/): the endpoint EM documents, called with a proof-of-possession token."""

    subscription_id: str = Field(alias="subscriptionId")
    resource_group_name: str = Field(alias="resourceGroupName")
    workflow_name: str = Field(alias="workflowName")
    url: str = Field(description="the trigger's callback URL (SAS disabled; app-only creation needs it)")


class DirectEndpoint(Model):
    """UNDOCUMENTED by Microsoft for EM: the function's own URL, with EM's bearer token (azureAdTokenAuthentication)."""

    url: str
    resource_id: str = Field(alias="resourceId", description="the aud EM's token carries: CALLOUT_AUDIENCE")


class Extension(Model):
    endpoint: Literal["logicApp", "directUrl"] = "logicApp"
    logic_app: LogicAppEndpoint | None = Field(None, alias="logicApp")
    direct_url: DirectEndpoint | None = Field(None, alias="directUrl")
    timeout_ms: int = Field(1000, alias="timeoutMs", ge=200, le=2000)
    maximum_retries: int = Field(1, alias="maximumRetries", ge=0, le=1)
    callback_timeout: str = Field("PT1H", alias="callbackTimeout", description="ISO 8601, 5 minutes to 14 days")
    wait_name: str = Field("MFA reset (launch and wait)", alias="waitDisplayName")
    notify_name: str = Field("MFA reset (launch and continue)", alias="notifyDisplayName")

    @model_validator(mode="after")
    def _endpoint_given(self) -> Extension:
        if self.endpoint == "logicApp" and self.logic_app is None:
            raise ValueError("extension.endpoint is logicApp: give extension.logicApp")
        if self.endpoint == "directUrl" and self.direct_url is None:
            raise ValueError("extension.endpoint is directUrl: give extension.directUrl")
        return self


class Package(Model):
    display_name: str = Field(alias="displayName")
    description: str = ""
    policy_name: str = Field("Manager requests, two approvals", alias="policyName")
    # The assignment (and so the onboarding group's TAP-only sign-in) must outlast the pickup's lifetime plus the
    # pass's: 8 h + 8 h by default, hence 24.
    expiry_hours: int = Field(24, alias="expiryHours", ge=1, le=8760)
    approval_stages: list[Literal["manager", "security"]] = Field(["manager", "security"], alias="approvalStages")
    approval_timeout: str = Field("P2D", alias="approvalTimeout")
    allow_self_request: bool = Field(False, alias="allowSelfRequest")
    # Launch-and-wait on created and granted, notifications on approved and removed (the product's playbooks).
    custom_extension_stages: bool = Field(True, alias="customExtensionStages")


class Catalog(Model):
    display_name: str = Field("MFA reset", alias="displayName")
    description: str = "MFA reset and passkey onboarding"


class Strength(Model):
    display_name: str = Field("Passkey or Temporary Access Pass", alias="displayName")
    description: str = "Onboarding: sign in with a Temporary Access Pass to register a passkey, then with the passkey"
    allowed_combinations: list[str] = Field(
        ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"], alias="allowedCombinations"
    )


class ConditionalAccess(Model):
    display_name: str = Field("MFA onboarding: passkey or TAP", alias="displayName")
    # Report-only until an operator has read the sign-in logs and says otherwise.
    state: Literal["enabledForReportingButNotEnforced", "enabled", "disabled"] = "enabledForReportingButNotEnforced"
    exclude_user_ids: list[str] = Field(default_factory=list, alias="excludeUserIds")


class FunctionIdentity(Model):
    """The function app's user-assigned managed identity (azd output MANAGED_IDENTITY_CLIENT_ID)."""

    client_id: str = Field(alias="clientId")
    teams_bot: bool = Field(True, alias="teamsBot", description="grant what the Teams bot needs (issue 5)")


class CalloutApp(Model):
    """The app registration whose app id URI is CALLOUT_AUDIENCE: the audience of the relay's (or EM's) token.
    Tokens are only issued for an application that has a service principal in the tenant, so both are made."""

    enabled: bool = True
    display_name: str = Field("MFA Reset Extension callout", alias="displayName")
    identifier_uri: str = Field("api://mfa-reset-extension", alias="identifierUri", description="CALLOUT_AUDIENCE")


class EasyAuth(Model):
    """The app registration App Service Authentication signs managers in with (the pickup page); its client
    assertion is the function's user-assigned identity through a federated credential, never a secret."""

    enabled: bool = False
    display_name: str = Field("MFA Reset Extension pickup sign-in", alias="displayName")
    function_host: str | None = Field(
        None, alias="functionHost", description="the function app's host name, e.g. func-mfareset-abc.azurewebsites.net"
    )
    # The identity's object (principal) id, the federated credential's subject. Default: the service principal of
    # functionIdentity.clientId, the same user-assigned identity OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID names.
    managed_identity_object_id: str | None = Field(None, alias="managedIdentityObjectId")
    credential_name: str = Field("function-user-assigned-identity", alias="credentialName")

    @model_validator(mode="after")
    def _host_given(self) -> EasyAuth:
        if self.enabled and not self.function_host:
            raise ValueError("easyAuth.enabled: give easyAuth.functionHost (the redirect URI's host)")
        if self.function_host and ("/" in self.function_host or ":" in self.function_host):
            raise ValueError("easyAuth.functionHost is a host name only, e.g. func-mfareset-abc.azurewebsites.net")
        return self

    @property
    def redirect_uri(self) -> str:
        return f"https://{self.function_host}/.auth/login/aad/callback"


class Operator(Model):
    managed_identity_client_id: str | None = Field(None, alias="managedIdentityClientId")


class ProvisionConfig(Model):
    tenant_id: str = Field(alias="tenantId")
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="graphBaseUrl")
    operator: Operator = Field(default_factory=Operator)
    onboarding_group_id: str = Field(alias="onboardingGroupId")
    security_approvers_group_id: str = Field(alias="securityApproversGroupId")
    catalog: Catalog = Field(default_factory=Catalog)
    extension: Extension
    mfa_reset: Package = Field(alias="mfaReset")
    new_hire: Package | None = Field(None, alias="newHire")
    authentication_strength: Strength = Field(default_factory=Strength, alias="authenticationStrength")
    conditional_access: ConditionalAccess = Field(default_factory=ConditionalAccess, alias="conditionalAccess")
    function_identity: FunctionIdentity = Field(alias="functionIdentity")
    callout_app: CalloutApp = Field(default_factory=CalloutApp, alias="calloutApp")
    easy_auth: EasyAuth = Field(default_factory=EasyAuth, alias="easyAuth")


def load(path: Path) -> ProvisionConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return ProvisionConfig.model_validate(raw or {})
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid:\n{exc}") from None
