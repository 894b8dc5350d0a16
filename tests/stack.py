"""The whole local stack for end-to-end tests: local tenant + Azurite + the dev host serving function_app."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from local.tenant import EM_APP_ID, TenantServer
from local.tenant.fixtures import make_default as F

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ID = json.loads((ROOT / "local/tenant/fixtures/default.json").read_text())["entitlementManagement"][
    "accessPackages"
][0]["id"]


def product_settings(tenant: TenantServer, azurite_connection: str, **overrides: str) -> dict[str, str]:
    """App settings that point the function app at this tenant and Azurite, as local.settings.json does."""
    suffix = uuid.uuid4().hex[:8]
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite_connection,
        "TENANT_ID": tenant.state.tenant_id,
        "GRAPH_BASE_URL": tenant.graph_url,
        "AUTHORITY_HOST": tenant.url,
        "WORK_QUEUE_NAME": f"work-{suffix}",
        "TABLE_PREFIX": f"t{suffix}",
        "CALLOUT_AUDIENCE": tenant.state.tenant["calloutAudience"],
        "CALLOUT_ALLOWED_CALLERS": EM_APP_ID,
        "MFA_RESET_PACKAGE_IDS": PACKAGE_ID,
        "BREAK_GLASS_USER_IDS": F.U["bea"],
        "PROTECTED_GROUP_IDS": F.G["protected"],
        "PHONE_SYNC_SCHEDULE": "0 0 2 * * *",  # %PHONE_SYNC_SCHEDULE% in the phone timer's binding
        **tenant.env(),
    }
    values.update(overrides)
    return values


def wait_until(predicate: Callable[[], Any], what: str, seconds: float = 30.0, every: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


class EMControl:
    """The local tenant's EM control API, as a person in My Access would drive it."""

    def __init__(self, tenant: TenantServer):
        self.http = httpx.Client(base_url=tenant.url, timeout=10)

    def point_extensions_at(self, url: str) -> None:
        self.http.post("/_control/em/extensions/url", json={"url": url}).raise_for_status()

    def submit(self, requestor: str, target: str, package: str = PACKAGE_ID, **extra: Any) -> str:
        body = {"requestorId": requestor, "targetId": target, "accessPackageId": package, **extra}
        response = self.http.post("/_control/em/requests", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def state(self, request_id: str) -> dict[str, Any]:
        response = self.http.get(f"/_control/em/requests/{request_id}")
        response.raise_for_status()
        return response.json()

    def approve(self, request_id: str, approver: str) -> None:
        response = self.http.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": approver})
        assert response.status_code in (200, 204), response.text

    def deny(self, request_id: str, approver: str) -> None:
        response = self.http.post(f"/_control/em/requests/{request_id}/deny", json={"approverId": approver})
        assert response.status_code in (200, 204), response.text

    def callouts(self, request_id: str, stage: str) -> list[dict[str, Any]]:
        return [c for c in self.state(request_id)["callouts"] if c.get("stage") == stage]

    def wait_stage_status(self, request_id: str, stage: str, statuses: set[str], seconds: float = 30) -> dict:
        def reached():
            found = [c for c in self.callouts(request_id, stage) if c.get("status") in statuses]
            return found[-1] if found else None

        return wait_until(reached, f"{stage} callout in {statuses}", seconds)
