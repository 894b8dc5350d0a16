"""EM custom-extension callouts: the extension settings EM accepts, the Logic App trigger body, the bearer token
and the HTTP call with EM's timeout and retry rules.

Documentation followed:
- Extension settings: https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequestworkflowextension
  and https://learn.microsoft.com/graph/api/resources/customcalloutextension ; client settings (200–2,000 ms,
  default 1,000; 0 or 1 retry): https://learn.microsoft.com/graph/api/resources/customextensionclientconfiguration ;
  callback wait 5 minutes – 14 days: https://learn.microsoft.com/graph/api/resources/customextensioncallbackconfiguration
- Body: the flat PascalCase HTTP-trigger schema EM puts on the Logic Apps it creates ("Trigger Logic Apps with custom
  extensions in entitlement management", https://learn.microsoft.com/entra/id-governance/entitlement-management-logic-apps-integration
  and the catalog's generated trigger schema), whose fields are the Graph model
  https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequestcalloutdata in PascalCase.
- Caller identity: EM's first-party app 810dcf14-1858-4bf2-8134-4c369fa3235b with a v1 token whose aud is
  azureAdTokenAuthentication.resourceId (https://learn.microsoft.com/graph/api/resources/azureadtokenauthentication).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import aiohttp

from .auth import issue_token
from .em_shapes import iso_duration, stamp, subject
from .errors import bad_request
from .state import EM_APP_ID, TenantState

REQUEST_WORKFLOW = "microsoft.graph.accessPackageAssignmentRequestWorkflowExtension"
ASSIGNMENT_WORKFLOW = "microsoft.graph.accessPackageAssignmentWorkflowExtension"
CONNECTION_TEST = "CustomExtensionConnectionTest"
RESUME_PATH = "/identityGovernance/entitlementManagement/assignmentRequests/{id}/resume"


def kind(extension: dict[str, Any]) -> str:
    return (extension.get("@odata.type") or "").lstrip("#")


def callback_duration(extension: dict[str, Any]) -> str | None:
    """The launch-and-wait timeout, or None for launch and continue.

    The examples spell it durationBeforeTimeout, the resource page timeoutDuration: both are read.
    """
    callback = extension.get("callbackConfiguration") or {}
    return callback.get("durationBeforeTimeout") or callback.get("timeoutDuration")


def waits_for_callback(extension: dict[str, Any]) -> bool:
    # Only the request-workflow type supports launch and wait (the pre-expiration type does not).
    return kind(extension) == REQUEST_WORKFLOW and callback_duration(extension) is not None


def client_settings(extension: dict[str, Any]) -> tuple[int, int]:
    """(timeout ms, retries). Unset timeout: the documented default 1,000 ms. Unset retries: "the default for the
    service applies" and the docs do not say which; we assume 1, the most EM ever does."""
    client = extension.get("clientConfiguration") or {}
    timeout = client.get("timeoutInMilliseconds")
    retries = client.get("maximumRetries")
    return (1000 if timeout is None else int(timeout)), (1 if retries is None else int(retries))


def validate_extension(extension: Any) -> dict[str, Any]:
    """400 for what EM's create-extension call refuses; returns the extension with an id."""
    if not isinstance(extension, dict):
        raise bad_request("The custom extension must be a JSON object.")
    if kind(extension) not in (REQUEST_WORKFLOW, ASSIGNMENT_WORKFLOW):
        raise bad_request(f"@odata.type must be #{REQUEST_WORKFLOW} or #{ASSIGNMENT_WORKFLOW}.")
    endpoint = extension.get("endpointConfiguration") or {}
    if not endpoint.get("url"):
        raise bad_request("endpointConfiguration.url is required (logicAppTriggerEndpointConfiguration).")
    timeout, retries = client_settings(extension)
    if not 200 <= timeout <= 2000:
        raise bad_request("clientConfiguration.timeoutInMilliseconds must be between 200 and 2000.")
    if retries not in (0, 1):
        raise bad_request("clientConfiguration.maximumRetries must be 0 or 1.")
    duration = callback_duration(extension)
    if duration is not None:
        if kind(extension) != REQUEST_WORKFLOW:
            raise bad_request("Only accessPackageAssignmentRequestWorkflowExtension supports launch and wait.")
        try:
            wait = iso_duration(duration)
        except ValueError as exc:
            raise bad_request(f"callbackConfiguration.durationBeforeTimeout: {exc}") from None
        if not timedelta(minutes=5) <= wait <= timedelta(days=14):
            raise bad_request("callbackConfiguration.durationBeforeTimeout must be between 5 minutes and 14 days.")
    return {"id": str(uuid.uuid4()), **extension}


def _pascal(value: Any) -> Any:
    """Answers travel with PascalCase keys like the rest of the body (the docs show only `Value`; unconfirmed)."""
    if isinstance(value, dict):
        return {(k if k.startswith("@") else k[:1].upper() + k[1:]): _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _person(state: TenantState, object_id: str) -> dict[str, Any]:
    """Target/Requestor: Id (the accessPackageSubject), ObjectId, DisplayName; Email and PrincipalName are sent
    when the directory has them (the trigger schema does not promise them, so consumers must not rely on them)."""
    who = subject(state, object_id)
    out: dict[str, Any] = {"Id": who["id"], "ObjectId": who["objectId"], "DisplayName": who["displayName"]}
    if who.get("email"):
        out["Email"] = who["email"]
    if who.get("principalName"):
        out["PrincipalName"] = who["principalName"]
    return out


def callout_body(
    state: TenantState,
    *,
    request: dict[str, Any],
    assignment: dict[str, Any],
    package: dict[str, Any],
    catalog: dict[str, Any],
    policy: dict[str, Any],
    stage: str,
    instance_id: str,
    extension: dict[str, Any],
) -> dict[str, Any]:
    """The trigger body of one stage, field for field as the generated Logic App schema lists them."""
    target = _person(state, assignment["_targetId"])
    target = {"ConnectedOrganization": None, **target}  # member users belong to no connected organization
    body: dict[str, Any] = {
        "AccessPackageAssignmentRequestId": request["id"],
        "CallbackUriPath": RESUME_PATH.format(id=request["id"]),
        "CustomExtensionStageInstanceId": instance_id,
        "Stage": stage,
        "RequestType": request["requestType"],
        "Answers": _pascal(request.get("answers") or []),
        "State": request["state"],
        "Status": request["status"],
        "AccessPackage": {
            "Id": package["id"],
            "DisplayName": package.get("displayName"),
            "Description": package.get("description"),
        },
        "AccessPackageCatalog": {
            "Id": catalog.get("id"),
            "DisplayName": catalog.get("displayName"),
            "Description": catalog.get("description"),
        },
        "Assignment": {
            "Id": assignment["id"],
            "Target": target,
            "State": assignment["state"],
            "Status": assignment["status"],
            "AssignmentPolicy": {"Id": policy["id"], "DisplayName": policy.get("displayName")},
        },
    }
    if request.get("_requestorId"):
        body["Requestor"] = _person(state, request["_requestorId"])
    duration = callback_duration(extension)
    if waits_for_callback(extension):
        body["CallbackConfiguration"] = {"DurationBeforeTimeout": duration}
    return body


def connection_test_body(catalog: dict[str, Any]) -> dict[str, Any]:
    """The test call EM makes when an extension is created. Its body is undocumented beyond the Stage name."""
    return {
        "Stage": CONNECTION_TEST,
        "CustomExtensionStageInstanceId": str(uuid.uuid4()),
        "AccessPackageCatalog": {
            "Id": catalog.get("id"),
            "DisplayName": catalog.get("displayName"),
            "Description": catalog.get("description"),
        },
    }


def token_for(state: TenantState, extension: dict[str, Any], relay_app_id: str | None) -> str:
    """EM's app-only v1 token for the extension's resource (or the configured relay identity's)."""
    authn = extension.get("authenticationConfiguration") or {}
    # azureAdPopTokenAuthentication binds a PoP token to the Logic App's ARM path, which cannot be reproduced
    # locally: such extensions get a plain bearer for the tenant's configured callout audience instead.
    audience = authn.get("resourceId") or state.tenant.get("calloutAudience")
    app_id = relay_app_id or EM_APP_ID
    principal = state.applications.get(app_id, {}).get("servicePrincipalId", app_id)
    claims = {"aud": audience, "appid": app_id, "appidacr": "2", "idtyp": "app", "oid": principal, "sub": principal}
    return issue_token(state, claims)


async def post(
    state: TenantState,
    extension: dict[str, Any],
    body: dict[str, Any],
    instance: dict[str, Any],
    sent: list[dict[str, Any]],
    relay_app_id: str | None,
) -> bool:
    """POST the body with EM's timeout; retry once where allowed. True when the endpoint answered 2xx."""
    timeout_ms, retries = client_settings(extension)
    timeout_ms = min(max(timeout_ms, 200), 2000)
    url = (extension.get("endpointConfiguration") or {}).get("url")
    for attempt in range(1, min(max(retries, 0), 1) + 2):
        instance["_attempts"] = instance.get("_attempts", 0) + 1
        record = {
            "url": url,
            "stage": body.get("Stage"),
            "customExtensionStageInstanceId": body.get("CustomExtensionStageInstanceId"),
            "customExtensionId": extension.get("id"),
            "attempt": attempt,
            "sentAt": stamp(state.now()),
            "body": body,
            "status": None,
            "error": None,
        }
        sent.append(record)
        headers = {
            "Authorization": f"Bearer {token_for(state, extension, relay_app_id)}",
            "client-request-id": str(uuid.uuid4()),
        }
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000)
                ) as response,
            ):
                record["status"] = instance["_lastHttpStatus"] = response.status
                if 200 <= response.status < 300:
                    # A Logic App answers with its run id; EM keeps it as the instance's externalCorrelationId.
                    instance["externalCorrelationId"] = response.headers.get("x-ms-workflow-run-id")
                    return True
                # A 4xx is a definite answer; the docs allow retries for timed-out or failed connections.
                if response.status < 500 and response.status != 429:
                    return False
        except (TimeoutError, aiohttp.ClientError) as exc:
            record["error"] = type(exc).__name__
            instance["_lastHttpStatus"] = None
    return False
