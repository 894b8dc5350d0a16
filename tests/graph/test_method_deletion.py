"""Deleting a user's methods through one sequential $batch survives throttled items and never reports a
throttled method as kept."""

from __future__ import annotations

import httpx
import pytest

from extensions.settings import Settings
from graph.batch import BatchItem, run_batch
from graph.client import graph_client
from graph.errors import IncompleteDeletion
from graph.methods import Methods
from graph.raw import GraphCaller
from local.tenant import TenantServer
from local.tenant.fixtures import make_default as F

PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"
PHONE = "#microsoft.graph.phoneAuthenticationMethod"


@pytest.fixture
def caller(tenant_env: TenantServer) -> GraphCaller:
    """The product's raw Graph caller on a tenant that refuses mixed batches, as Graph does."""
    httpx.put(f"{tenant_env.url}/_control/batch", json={"sequencing": "strict"}).raise_for_status()
    return GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant_env.graph_url)))


def faults(tenant: TenantServer, *rules: dict) -> None:
    httpx.put(f"{tenant.url}/_control/faults", json=list(rules)).raise_for_status()


def methods_of(tenant: TenantServer, user: str) -> list[str]:
    return [m["@odata.type"] for m in tenant.state.users[user]["methods"]]


async def test_a_throttled_item_early_in_a_chain_resends_the_whole_rest_of_the_chain(tenant_env, caller):
    faults(tenant_env, {"pattern": "/softwareOathMethods/", "status": 429, "remaining": 1, "retryAfter": 0})
    tom = F.U["tom"]
    listed = await caller.json("GET", f"/users/{tom}/authentication/methods")
    deletable = [m for m in listed["value"] if m["@odata.type"] != PASSWORD and "hardware" not in m["@odata.type"]]
    collection = {
        "phone": "phoneMethods", "fido2": "fido2Methods", "email": "emailMethods",
        "softwareOath": "softwareOathMethods", "microsoftAuthenticator": "microsoftAuthenticatorMethods",
        "windowsHelloForBusiness": "windowsHelloForBusinessMethods",
        "temporaryAccessPass": "temporaryAccessPassMethods", "platformCredential": "platformCredentialMethods",
    }  # fmt: skip
    # softwareOath first, so every later item sits behind the throttled one in the chain
    # (the default phone stays: Graph refuses it while the beta-only hardware token remains)
    deletable = [m for m in deletable if m["id"] != F.MOBILE_ID]
    deletable.sort(key=lambda m: "softwareOath" not in m["@odata.type"])
    items = []
    for index, method in enumerate(deletable):
        kind = method["@odata.type"].removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
        url = f"/users/{tom}/authentication/{collection[kind]}/{method['id']}"
        items.append(BatchItem(f"i{index}", "DELETE", url, depends_on=[f"i{index - 1}"] if index else []))

    results = await run_batch(caller, items, base_delay=0)

    assert {r.id: r.status for r in results.values()} == {item.id: 204 for item in items}
    assert [t for t in methods_of(tenant_env, tom) if "hardware" not in t] == [PASSWORD, PHONE]


async def test_deletion_throttled_to_the_end_raises_a_retryable_error_naming_what_is_left(tenant_env, caller):
    faults(tenant_env, {"pattern": "/fido2Methods/", "method": "DELETE", "status": 429, "rate": 1.0, "retryAfter": 0})
    methods = Methods(caller)

    with pytest.raises(IncompleteDeletion) as raised:
        await methods.delete_all(F.U["tom"])

    assert raised.value.transient
    report = raised.value.report
    # The batch is one chain: what comes after the throttled passkey waits for the retry too.
    assert "fido2" in {m.type for m in report.remaining}
    assert {"email", "softwareOath", "windowsHelloForBusiness"} <= {m.type for m in report.deleted}
    assert "softwareOath" in {m.type for m in report.deleted}


async def test_a_retry_after_throttling_finishes_the_deletion(tenant_env, caller):
    faults(tenant_env, {"pattern": "/fido2Methods/", "method": "DELETE", "status": 429, "rate": 1.0, "retryAfter": 0})
    methods = Methods(caller)
    with pytest.raises(IncompleteDeletion):
        await methods.delete_all(F.U["tom"])
    faults(tenant_env)

    report = await methods.delete_all(F.U["tom"])

    assert report.remaining == []
    assert methods_of(tenant_env, F.U["tom"]) == [PASSWORD]
