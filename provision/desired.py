"""The Graph payloads provision.yaml stands for: pure functions from the config (and ids found) to JSON bodies.

Shapes follow the create pages named in each function; only the properties written here are compared for drift.
"""

from __future__ import annotations

from typing import Any

from .config import Package, ProvisionConfig

# The audience Entra ID accepts in a federated credential (not a secret).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105

WAIT, NOTIFY = "wait", "notify"
REQUEST_WORKFLOW = "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension"


def catalog(cfg: ProvisionConfig) -> dict[str, Any]:
    """entitlementmanagement-post-catalogs."""
    return {
        "displayName": cfg.catalog.display_name,
        "description": cfg.catalog.description,
        "state": "published",
        "isExternallyVisible": False,
    }


def extension(cfg: ProvisionConfig, which: str) -> dict[str, Any]:
    """accesspackagecatalog-post-accesspackagecustomworkflowextensions: only the request-workflow type can
    launch and wait (callbackConfiguration); the notify extension launches and continues."""
    ext = cfg.extension
    body: dict[str, Any] = {
        "@odata.type": REQUEST_WORKFLOW,
        "displayName": ext.wait_name if which == WAIT else ext.notify_name,
        "description": "Guardrails and reset (waits for our resume)" if which == WAIT else "Notifications",
        "clientConfiguration": {
            "@odata.type": "#microsoft.graph.customExtensionClientConfiguration",
            "timeoutInMilliseconds": ext.timeout_ms,
            "maximumRetries": ext.maximum_retries,
        },
    }
    if ext.endpoint == "logicApp" and ext.logic_app is not None:
        # The documented endpoint: the relay Logic App, called with a PoP token bound to its ARM path.
        body["endpointConfiguration"] = {
            "@odata.type": "#microsoft.graph.logicAppTriggerEndpointConfiguration",
            "subscriptionId": ext.logic_app.subscription_id,
            "resourceGroupName": ext.logic_app.resource_group_name,
            "logicAppWorkflowName": ext.logic_app.workflow_name,
            "url": ext.logic_app.url,
        }
        body["authenticationConfiguration"] = {"@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication"}
    elif ext.direct_url is not None:
        # UNDOCUMENTED for entitlement management: httpRequestEndpoint is documented only for custom
        # authentication extensions. Kept for tenants that register the function directly.
        body["endpointConfiguration"] = {
            "@odata.type": "#microsoft.graph.httpRequestEndpoint",
            "targetUrl": ext.direct_url.url,
        }
        body["authenticationConfiguration"] = {
            "@odata.type": "#microsoft.graph.azureAdTokenAuthentication",
            "resourceId": ext.direct_url.resource_id,
        }
    if which == WAIT:
        # The create examples spell the timeout durationBeforeTimeout (the resource page says timeoutDuration).
        body["callbackConfiguration"] = {
            "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration",
            "durationBeforeTimeout": ext.callback_timeout,
        }
    return body


def access_package(package: Package) -> dict[str, Any]:
    """entitlementmanagement-post-accesspackages (the catalog goes in on create only)."""
    return {"displayName": package.display_name, "description": package.description, "isHidden": False}


def _stage(cfg: ProvisionConfig, package: Package, who: str) -> dict[str, Any]:
    """accessPackageApprovalStage: stage 1 the manager (the security group as fallback when there is none)."""
    group = {"@odata.type": "#microsoft.graph.groupMembers", "groupId": cfg.security_approvers_group_id}
    manager = {"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}
    return {
        "durationBeforeAutomaticDenial": package.approval_timeout,
        "isApproverJustificationRequired": True,
        "isEscalationEnabled": False,
        "primaryApprovers": [manager] if who == "manager" else [group],
        "fallbackPrimaryApprovers": [group] if who == "manager" else [],
    }


def policy(cfg: ProvisionConfig, package: Package, package_id: str, extensions: dict[str, str]) -> dict[str, Any]:
    """entitlementmanagement-post-assignmentpolicies: members only, managers may request on behalf, approval
    stages, expiry in hours, and the custom extension stages (created/granted wait, approved/removed notify)."""
    stages = []
    if package.custom_extension_stages:
        plan = {
            "assignmentRequestCreated": WAIT,
            "assignmentRequestApproved": NOTIFY,
            "assignmentRequestGranted": WAIT,
            "assignmentRequestRemoved": NOTIFY,
        }
        stages = [{"stage": s, "customExtension": {"id": extensions[w]}} for s, w in plan.items()]
    return {
        "displayName": package.policy_name,
        "description": f"{package.display_name}: requested by the user's manager",
        "allowedTargetScope": "allMemberUsers",
        "specificAllowedTargets": [],
        "expiration": {"type": "afterDuration", "duration": f"PT{package.expiry_hours}H"},
        "requestorSettings": {
            "enableTargetsToSelfAddAccess": package.allow_self_request,
            "enableTargetsToSelfUpdateAccess": False,
            "enableTargetsToSelfRemoveAccess": False,
            "allowCustomAssignmentSchedule": False,
            "enableOnBehalfRequestorsToAddAccess": True,
            "enableOnBehalfRequestorsToUpdateAccess": False,
            "enableOnBehalfRequestorsToRemoveAccess": False,
            # subjectSet targetManager: the target's manager may request on the target's behalf.
            "onBehalfRequestors": [{"@odata.type": "#microsoft.graph.targetManager", "managerLevel": 1}],
        },
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": bool(package.approval_stages),
            "isApprovalRequiredForUpdate": False,
            "stages": [_stage(cfg, package, who) for who in package.approval_stages],
        },
        "customExtensionStageSettings": stages,
        "accessPackage": {"id": package_id},
    }


def strength(cfg: ProvisionConfig) -> dict[str, Any]:
    """authenticationstrengthroot-post-policies."""
    s = cfg.authentication_strength
    return {"displayName": s.display_name, "description": s.description, "allowedCombinations": s.allowed_combinations}


def conditional_access(cfg: ProvisionConfig, strength_id: str) -> dict[str, Any]:
    """conditionalaccessroot-post-policies: the onboarding group signs in with a passkey or a TAP, for every app."""
    ca = cfg.conditional_access
    return {
        "displayName": ca.display_name,
        "state": ca.state,
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {"includeGroups": [cfg.onboarding_group_id], "excludeUsers": ca.exclude_user_ids},
        },
        "grantControls": {"operator": "OR", "authenticationStrength": {"id": strength_id}},
    }


def callout_app(cfg: ProvisionConfig) -> dict[str, Any]:
    """application-post-applications (https://learn.microsoft.com/graph/api/application-post-applications; shape:
    https://learn.microsoft.com/graph/api/resources/application): single tenant, the app id URI the callout's
    tokens carry as aud (CALLOUT_AUDIENCE), no secrets or certificates (nothing signs in as this app)."""
    app = cfg.callout_app
    return {"displayName": app.display_name, "identifierUris": [app.identifier_uri], "signInAudience": "AzureADMyOrg"}


def easy_auth_app(cfg: ProvisionConfig) -> dict[str, Any]:
    """application-post-applications with a web platform (https://learn.microsoft.com/graph/api/resources/
    webapplication): Easy Auth's callback as the redirect URI and ID token issuance on, as App Service
    Authentication's Entra provider expects
    (https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad)."""
    easy = cfg.easy_auth
    return {
        "displayName": easy.display_name,
        "signInAudience": "AzureADMyOrg",
        "web": {
            "redirectUris": [easy.redirect_uri],
            "implicitGrantSettings": {"enableIdTokenIssuance": True},
        },
    }


def federated_credential(cfg: ProvisionConfig, subject: str) -> dict[str, Any]:
    """application-post-federatedidentitycredentials
    (https://learn.microsoft.com/graph/api/application-post-federatedidentitycredentials; shape:
    https://learn.microsoft.com/graph/api/resources/federatedidentitycredential): trust the user-assigned managed
    identity's tokens — issuer the tenant's v2.0 authority, subject the identity's object (principal) id, audience
    api://AzureADTokenExchange — as "Use a managed identity instead of a secret" in
    https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad describes."""
    return {
        "name": cfg.easy_auth.credential_name,
        "issuer": f"https://login.microsoftonline.com/{cfg.tenant_id}/v2.0",
        "subject": subject,
        "audiences": [TOKEN_EXCHANGE_AUDIENCE],
        "description": "Easy Auth's client assertion: the function app's user-assigned managed identity",
    }
