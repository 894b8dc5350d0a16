"""Shared pieces of the phone tests: real clients on the local tenant and Azurite, synthetic users, write counts."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx

from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller
from local.tenant import TenantServer
from local.tenant.fixtures.make_default import password

WRITE_METHODS = {"POST", "PATCH", "DELETE"}


def caller(tenant: TenantServer) -> GraphCaller:
    return GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant.graph_url)))


def add_users(tenant: TenantServer, count: int, prefix: str = "bulk") -> list[str]:
    """`count` enabled member users with a valid US mobilePhone and no MFA method, added to the tenant's state."""
    ids = []
    for n in range(count):
        uid = str(uuid.uuid4())
        tenant.state.users[uid] = {
            "id": uid,
            "displayName": f"{prefix} {n}",
            "userPrincipalName": f"{prefix}{n}@contoso.example",
            "accountEnabled": True,
            "userType": "Member",
            "mobilePhone": f"+1 206 {555 - n // 9000} {1000 + n % 9000:04d}",  # valid for any count
            "businessPhones": [],
            "onPremisesExtensionAttributes": {f"extensionAttribute{i}": None for i in range(1, 16)},
            "methods": [password()],
            "defaultMethodId": None,
            "managerId": None,
        }
        ids.append(uid)
    return ids


def mobile_of(tenant: TenantServer, user_id: str) -> str | None:
    user = httpx.get(f"{tenant.url}/_control/state/users/{user_id}").json()
    return next((m["phoneNumber"] for m in user["methods"] if m.get("phoneType") == "mobile"), None)


def phone_writes(tenant: TenantServer, succeeded_only: bool = False) -> Counter:
    """Phone-method writes the tenant saw, per user id (from its request log)."""
    log = httpx.get(f"{tenant.url}/_control/requests").json()
    found: Counter = Counter()
    for entry in log:
        if entry["method"] in WRITE_METHODS and "/authentication/phoneMethods" in entry["path"]:
            if succeeded_only and not 200 <= int(entry.get("status") or 0) < 300:
                continue
            found[entry["path"].split("/users/")[1].split("/")[0]] += 1
    return found


def clock_sleep(tenant: TenantServer):
    """A sleep that advances the tenant's clock instead of waiting: the throttle buckets refill at once."""

    async def sleep(seconds: float) -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{tenant.url}/_control/clock", json={"advanceSeconds": seconds})

    return sleep
