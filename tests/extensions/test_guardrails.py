"""Each guardrail of the created stage denies with a reason the requester can read, using Graph's facts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from extensions.guardrails import Guardrails
from extensions.settings import Settings
from graph.client import graph_client
from graph.directory import Directory
from graph.entitlement import AssignmentRequest
from graph.raw import GraphCaller
from local.tenant import TenantServer
from local.tenant.fixtures import make_default as F
from store.records import Reset, ResetStore
from store.tables import Tables


def request_for(target: str, requestor: str) -> AssignmentRequest:
    return AssignmentRequest(
        id=str(uuid.uuid4()), state="submitted", status="Accepted", request_type="onBehalfAdd",
        requestor_id=requestor, target_id=target, target_name=None, access_package_id="p", assignment_id="a",
        justification=None, raw={},
    )  # fmt: skip


@pytest.fixture
async def parts(tenant_env: TenantServer, azurite) -> AsyncIterator[tuple[Directory, ResetStore]]:
    """The Graph directory facade on the local tenant and a reset store on fresh Azurite tables."""
    caller = GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant_env.graph_url)))
    tables = Tables(TableServiceClient.from_connection_string(azurite.connection_string), f"g{uuid.uuid4().hex[:8]}")
    yield Directory(caller), ResetStore(tables)
    await tables.close()


def guardrails(parts, **settings) -> Guardrails:
    directory, resets = parts
    defaults = {"BREAK_GLASS_USER_IDS": F.U["bea"], "PROTECTED_GROUP_IDS": F.G["protected"]}
    return Guardrails(Settings(**{**defaults, **settings}), directory, resets)


async def test_a_managers_request_for_a_plain_member_passes(parts):
    verdict = await guardrails(parts).check(request_for(F.U["tom"], F.U["megan"]))
    assert verdict.allowed
    assert verdict.manager_id == F.U["megan"]


@pytest.mark.parametrize(
    ("target", "requestor", "reason"),
    [
        (str(uuid.uuid4()), F.U["megan"], "does not exist"),
        (F.U["dee"], F.U["megan"], "disabled"),
        (F.U["gus"], F.U["megan"], "guest"),
        (F.U["bea"], F.U["dana"], "emergency-access"),
        (F.U["alex"], F.U["dana"], "Global Administrator"),
        (F.U["hank"], F.U["dana"], "Authentication Administrator"),
        (F.U["tom"], F.U["hank"], "Only the target's manager"),
        (F.U["tom"], F.U["tom"], "Only the target's manager"),
        (F.U["priya"], F.U["megan"], "manager changed in the last 7 days"),
    ],
)
async def test_each_guardrail_denies_with_a_readable_reason(parts, target: str, requestor: str, reason: str):
    verdict = await guardrails(parts).check(request_for(target, requestor))
    assert not verdict.allowed
    assert reason in verdict.reason


async def test_membership_of_a_protected_group_denies_even_when_nested(parts):
    verdict = await guardrails(parts, PROTECTED_GROUP_IDS=F.G["all_staff"]).check(
        request_for(F.U["nora"], F.U["megan"])
    )
    assert "protected group" in verdict.reason


async def test_a_self_request_passes_only_when_allowed(parts):
    verdict = await guardrails(parts, ALLOW_SELF_REQUEST="true").check(request_for(F.U["tom"], F.U["tom"]))
    assert verdict.allowed


async def test_another_open_reset_of_the_target_denies(parts):
    _, resets = parts
    await resets.create(Reset(str(uuid.uuid4()), F.U["tom"], F.U["megan"], "p"))
    verdict = await guardrails(parts).check(request_for(F.U["tom"], F.U["megan"]))
    assert "still open" in verdict.reason


async def test_too_many_resets_in_a_day_denies(parts):
    _, resets = parts
    for _ in range(2):
        await resets.create(Reset(str(uuid.uuid4()), F.U["tom"], F.U["megan"], "p", state="completed"))
    verdict = await guardrails(parts).check(request_for(F.U["tom"], F.U["megan"]))
    assert "2 MFA resets in 24 hours" in verdict.reason


async def test_resets_older_than_a_day_do_not_count(parts):
    _, resets = parts
    old = datetime.now(UTC) - timedelta(hours=25)
    for _ in range(3):
        await resets.create(Reset(str(uuid.uuid4()), F.U["tom"], F.U["megan"], "p", state="completed", created_at=old))
    assert (await guardrails(parts).check(request_for(F.U["tom"], F.U["megan"]))).allowed


async def test_the_manager_change_window_is_configurable(parts):
    verdict = await guardrails(parts, MANAGER_CHANGE_COOLDOWN_DAYS="0").check(request_for(F.U["priya"], F.U["megan"]))
    assert verdict.allowed


def created_ago(tenant: TenantServer, user: str, age: timedelta) -> None:
    tenant.state.users[F.U[user]]["createdDateTime"] = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_new_hires_fresh_manager_does_not_block_onboarding_but_still_blocks_a_reset(parts, tenant_env):
    """The fixture sets Priya's manager a day ago: within a day of creating her account, that is HR provisioning."""
    created_ago(tenant_env, "priya", timedelta(days=1, hours=2))
    request = request_for(F.U["priya"], F.U["megan"])
    assert (await guardrails(parts).check(request, onboarding=True)).allowed
    assert "manager changed" in (await guardrails(parts).check(request)).reason


async def test_a_new_hires_manager_changed_days_after_creation_blocks_onboarding(parts, tenant_env):
    """Re-pointing a days-old account's manager is not provisioning: the cooldown applies to onboarding too."""
    created_ago(tenant_env, "priya", timedelta(days=3))
    verdict = await guardrails(parts).check(request_for(F.U["priya"], F.U["megan"]), onboarding=True)
    assert "manager changed" in verdict.reason


async def test_an_older_account_whose_manager_just_changed_is_refused_onboarding_too(parts, tenant_env):
    tenant_env.state.users[F.U["priya"]]["createdDateTime"] = "2024-01-01T00:00:00Z"
    verdict = await guardrails(parts).check(request_for(F.U["priya"], F.U["megan"]), onboarding=True)
    assert "manager changed" in verdict.reason
