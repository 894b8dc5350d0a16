"""Each mode against the local tenant through the real clients; dry run writes nothing; crash and resume; throttling."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from azure.data.tables.aio import TableServiceClient

from local.tenant import TenantServer
from local.tenant.fixtures import make_default as F
from phones.select import Selector
from phones.sync import PhoneSync
from store.phone_runs import PhoneRunStore
from store.tables import Tables
from tests.phones.helpers import add_users, caller, clock_sleep, mobile_of, phone_writes


@pytest.fixture
async def runs(azurite) -> AsyncIterator[PhoneRunStore]:
    tables = Tables(TableServiceClient.from_connection_string(azurite.connection_string), f"p{uuid.uuid4().hex[:8]}")
    yield PhoneRunStore(tables)
    await tables.close()


def sync_for(tenant: TenantServer, runs: PhoneRunStore, region: str = "US", **kw) -> PhoneSync:
    return PhoneSync(caller(tenant), runs, default_region=region, sleep=clock_sleep(tenant), **kw)


async def test_add_only_over_unregistered_members(tenant_env: TenantServer, runs):
    graph = caller(tenant_env)
    candidates = await Selector(graph, "mobilePhone").all_members()
    # Only members without MFA: nora (German national number), omar (no mobilePhone), ivan ("not a number").
    assert {c.id for c in candidates} >= {F.U["nora"], F.U["omar"], F.U["ivan"]}
    assert F.U["tom"] not in {c.id for c in candidates}
    assert F.U["gus"] not in {c.id for c in candidates}
    assert F.U["dee"] not in {c.id for c in candidates}
    summary = await sync_for(tenant_env, runs, region="DE").run(candidates, key="t-add")
    assert mobile_of(tenant_env, F.U["nora"]) == "+49 15123456789"
    assert mobile_of(tenant_env, F.U["omar"]) is None
    assert mobile_of(tenant_env, F.U["ivan"]) is None
    actions = {s.user_id: s.action for s in summary.steps}
    assert actions[F.U["nora"]] == "add"
    assert actions[F.U["omar"]] == "no_number"
    assert actions[F.U["ivan"]] == "invalid"
    assert summary.stats_line().startswith("Stats: Users: ")
    assert "Numbers added: 1," in summary.stats_line()
    assert summary.as_json()["counts"]["invalid"] == 1


async def test_staging_group_with_business_phones_and_all_users(tenant_env: TenantServer, runs):
    graph = caller(tenant_env)
    candidates = await Selector(graph, "businessPhones", only_unregistered=False).from_group(F.G["phone_staging"])
    assert {c.id for c in candidates} == {F.U["nora"], F.U["priya"], F.U["omar"], F.U["ivan"]}
    summary = await sync_for(tenant_env, runs).run(candidates, key="t-group")
    assert mobile_of(tenant_env, F.U["omar"]) == "+33 142685300"
    assert mobile_of(tenant_env, F.U["priya"]) == "+44 2079460018"  # no business phone: hers stays
    assert summary.counts["add"] == 1
    assert sum(phone_writes(tenant_env).values()) == 1


def _diverge(tenant: TenantServer) -> None:
    """Tom's attribute now differs from his mobile method; Megan's attribute is empty (her default is the app)."""
    tenant.state.users[F.U["tom"]]["mobilePhone"] = "+1 206 555 0109"
    tenant.state.users[F.U["megan"]]["mobilePhone"] = None


async def test_add_only_leaves_existing_numbers_alone(tenant_env: TenantServer, runs):
    _diverge(tenant_env)
    graph = caller(tenant_env)
    candidates, missing = await Selector(graph, "mobilePhone").listed([F.U["tom"], F.U["megan"], "nobody@x.example"])
    assert missing == ["nobody@x.example"]
    summary = await sync_for(tenant_env, runs).run(candidates, mode="add", key="t-keep")
    assert {s.action for s in summary.steps} == {"kept", "no_number"}
    assert mobile_of(tenant_env, F.U["tom"]) == "+1 2065550102"
    assert mobile_of(tenant_env, F.U["megan"]) == "+1 2065550101"
    assert not phone_writes(tenant_env)


async def test_authoritative_updates_and_deletes(tenant_env: TenantServer, runs):
    _diverge(tenant_env)
    graph = caller(tenant_env)
    candidates, _ = await Selector(graph, "mobilePhone").listed([F.U["tom"], F.U["megan"], F.U["priya"]])
    summary = await sync_for(tenant_env, runs).run(candidates, mode="authoritative", key="t-auth")
    actions = {s.user_id: s.action for s in summary.steps}
    assert actions == {F.U["tom"]: "update", F.U["megan"]: "delete", F.U["priya"]: "unchanged"}
    assert mobile_of(tenant_env, F.U["tom"]) == "+1 2065550109"
    assert mobile_of(tenant_env, F.U["megan"]) is None
    assert mobile_of(tenant_env, F.U["priya"]) == "+44 2079460018"


async def test_dry_run_plans_and_writes_nothing(tenant_env: TenantServer, runs, azurite):
    _diverge(tenant_env)
    graph = caller(tenant_env)
    candidates, _ = await Selector(graph, "mobilePhone").listed([F.U["tom"], F.U["megan"], F.U["nora"]])
    summary = await sync_for(tenant_env, runs, region="DE").run(candidates, mode="authoritative", dry_run=True)
    actions = {s.user_id: s.action for s in summary.steps}
    assert actions == {F.U["tom"]: "update", F.U["megan"]: "delete", F.U["nora"]: "add"}
    assert not phone_writes(tenant_env)
    assert mobile_of(tenant_env, F.U["tom"]) == "+1 2065550102"
    assert mobile_of(tenant_env, F.U["nora"]) is None
    # and nothing in storage either: no run table was even created
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        names = [t.name async for t in service.list_tables()]
    assert not any(name.endswith("phoneusers") and name.startswith(runs._tables._prefix) for name in names)


class CrashAfter:
    """The real caller, except that after `n` write batches reached Graph the process "dies" (an exception
    after the batch was delivered: its writes landed, their checkpoints were never written)."""

    def __init__(self, real, n: int):
        self._real, self._n = real, n

    def __getattr__(self, name):
        return getattr(self._real, name)

    async def json(self, method, path, **kwargs):
        answer = await self._real.json(method, path, **kwargs)
        requests = (kwargs.get("body") or {}).get("requests", [])
        if path == "/$batch" and any(r["method"] != "GET" for r in requests):
            self._n -= 1
            if self._n <= 0:
                raise RuntimeError("simulated crash")
        return answer


async def test_a_crash_in_the_middle_is_finished_by_the_next_run_without_writing_anyone_twice(
    tenant_env: TenantServer, runs
):
    ids = add_users(tenant_env, 70)
    graph = caller(tenant_env)
    candidates, _ = await Selector(graph, "mobilePhone").listed(ids)
    first = PhoneSync(CrashAfter(graph, 2), runs, default_region="US", max_batches=1, sleep=clock_sleep(tenant_env))
    with pytest.raises(RuntimeError, match="simulated crash"):
        await first.run(candidates, key="t-crash")
    landed = sum(1 for uid in ids if mobile_of(tenant_env, uid))
    assert 0 < landed < len(ids)
    summary = await sync_for(tenant_env, runs).run(candidates, key="t-crash")
    assert all(mobile_of(tenant_env, uid) for uid in ids)
    writes = phone_writes(tenant_env)
    assert set(writes) == set(ids)
    assert max(writes.values()) == 1, "a user was written twice"
    assert summary.counts["add"] + summary.counts["unchanged"] == len(ids)
    assert summary.counts["failed"] == 0
    # a third run of the same key is a new run: everything is unchanged now, nothing is written
    again = await sync_for(tenant_env, runs).run(candidates, key="t-crash")
    assert again.counts["unchanged"] == len(ids)
    assert max(phone_writes(tenant_env).values()) == 1


async def test_throttling_and_5xx_storms_lose_nothing_and_duplicate_nothing(tenant_env: TenantServer, runs):
    ids = add_users(tenant_env, 60)
    httpx.put(f"{tenant_env.url}/_control/throttle", json={"limits": {"writes": 8}}).raise_for_status()
    httpx.put(
        f"{tenant_env.url}/_control/faults",
        json={"seed": 7, "faults": [{"pattern": "phoneMethods$", "method": "POST", "status": 503, "rate": 0.2}]},
    ).raise_for_status()
    graph = caller(tenant_env)
    candidates, _ = await Selector(graph, "mobilePhone").listed(ids)
    summary = await sync_for(tenant_env, runs, max_batches=4).run(candidates, key="t-storm")
    assert summary.throttled > 0, "the storm did not happen: the test would prove nothing"
    assert summary.counts["add"] == len(ids)
    assert summary.counts["failed"] == 0
    assert all(mobile_of(tenant_env, uid) for uid in ids)
    succeeded = phone_writes(tenant_env, succeeded_only=True)
    assert set(succeeded) == set(ids)
    assert max(succeeded.values()) == 1
    assert summary.halvings > 0
