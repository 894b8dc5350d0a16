"""The pickup page's pure rules: Easy Auth identity, who may deliver, pickup state, the pass plan, the HTML."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from extensions import pickup_rules as rules
from extensions import pickup_view as view
from extensions.pickup_rules import Refusal, Viewer
from graph.entitlement import AssignmentRequest
from graph.errors import GraphCallError
from graph.tap import MintedPass, TapPolicy
from store.pickups import Pickup

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
MEGAN, TOM, HANK = "megan-id", "tom-id", "hank-id"


def pickup(**changes) -> Pickup:
    values = dict(
        id="p" * 32,
        request_id="req-1",
        target_id=TOM,
        target_name="Tom Target",
        deliverer_id=MEGAN,
        state="open",
        created_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(hours=7),
        reset_summary="MFA reset: 9 methods removed and sign-in sessions revoked.",
        csrf_nonce="nonce-123",
    )
    values.update(changes)
    return Pickup(**values)


def policy(**changes) -> TapPolicy:
    values = dict(
        state="enabled",
        default_lifetime=60,
        minimum_lifetime=60,
        maximum_lifetime=480,
        usable_once=False,
        include_target_ids=("all_users",),
        exclude_target_ids=(),
    )
    values.update(changes)
    return TapPolicy(**values)


def principal(oid: str, name: str) -> str:
    claims = [{"typ": rules.OID_CLAIM, "val": oid}, {"typ": "name", "val": name}]
    return base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()


# --- identity ---------------------------------------------------------------------------------------------------
def test_principal_headers_are_ignored_unless_easy_auth_fronts_the_app():
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": MEGAN, "X-MS-CLIENT-PRINCIPAL-NAME": "megan@contoso"}
    assert rules.viewer_from_headers(headers, easy_auth_enabled=False) is None
    assert rules.viewer_from_headers(headers, easy_auth_enabled=True) == Viewer(MEGAN, "megan@contoso")


def test_the_display_name_comes_from_the_principal_claims_and_header_case_does_not_matter():
    headers = {"x-ms-client-principal-id": MEGAN, "x-ms-client-principal": principal(MEGAN, "Megan Manager")}
    assert rules.viewer_from_headers(headers, True) == Viewer(MEGAN, "Megan Manager")


def test_headers_that_disagree_about_the_object_id_are_not_trusted():
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": MEGAN, "X-MS-CLIENT-PRINCIPAL": principal(HANK, "Hank")}
    assert rules.viewer_from_headers(headers, True) is None


@pytest.mark.parametrize("encoded", ["%%%not base64", base64.b64encode(b"not json").decode()])
def test_a_garbled_principal_is_not_trusted(encoded):
    assert (
        rules.viewer_from_headers({"X-MS-CLIENT-PRINCIPAL-ID": MEGAN, "X-MS-CLIENT-PRINCIPAL": encoded}, True) is None
    )


def test_no_principal_id_means_not_signed_in():
    assert rules.viewer_from_headers({"X-MS-CLIENT-PRINCIPAL-NAME": "megan"}, True) is None


# --- who may deliver ------------------------------------------------------------------------------------------
def test_the_target_never_picks_up_their_own_pass():
    assert rules.check_not_target(pickup(), Viewer(TOM.upper(), "Tom")) == Refusal(403, "isTarget")
    assert rules.check_not_target(pickup(), Viewer(MEGAN, "Megan")) is None


def test_the_deliverer_must_still_be_the_manager_now():
    megan = Viewer(MEGAN, "Megan")
    assert rules.check_deliverer(pickup(), megan, current_manager_id=MEGAN, in_helpdesk=False) is None
    assert rules.check_deliverer(pickup(), megan, current_manager_id="dana-id", in_helpdesk=False) == Refusal(
        403, "managerChanged"
    )
    assert rules.check_deliverer(pickup(), megan, current_manager_id=None, in_helpdesk=False).code == "managerChanged"


def test_someone_else_is_refused_unless_in_the_helpdesk_group():
    hank = Viewer(HANK, "Hank")
    assert rules.check_deliverer(pickup(), hank, current_manager_id=HANK, in_helpdesk=False) == Refusal(
        403, "notDeliverer"
    )
    assert rules.check_deliverer(pickup(), hank, current_manager_id=MEGAN, in_helpdesk=True) is None


# --- pickup state -----------------------------------------------------------------------------------------------
def test_open_and_revealed_pickups_pass_the_state_check():
    assert rules.check_open(pickup(), NOW, 8) is None
    assert rules.check_open(pickup(state="revealed", expires_at=NOW - timedelta(hours=1)), NOW, 8) is None


def test_closed_and_expired_pickups_are_gone():
    assert rules.check_open(pickup(state="closed"), NOW, 8) == Refusal(410, "closed")
    assert rules.check_open(pickup(state="expired"), NOW, 8).code == "expired"
    late = rules.check_open(pickup(expires_at=NOW), NOW, 8)
    assert late == Refusal(410, "expired", {"hours": "8"})


def _request(state: str, assignment_state: str | None = "delivered") -> AssignmentRequest:
    raw = {"id": "req-1", "state": state, "assignment": {"id": "a1"}}
    if assignment_state is not None:
        raw["assignment"]["state"] = assignment_state
    return AssignmentRequest.from_json(raw)


def test_the_assignment_must_still_be_delivered():
    assert rules.check_delivered(_request("delivered")) is None
    assert rules.check_delivered(_request("delivered", None)) is None
    assert rules.check_delivered(None).code == "notDelivered"
    assert rules.check_delivered(_request("canceled")) == Refusal(410, "notDelivered", {"state": "canceled"})
    assert rules.check_delivered(_request("delivered", "expired")).values == {"state": "expired"}


# --- the pass plan ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("wanted", "expected"), [(480, 480), (43200, 480), (10, 60), (120, 120)])
def test_the_lifetime_is_clamped_into_the_policy(wanted, expected):
    assert rules.plan_pass(policy(), wanted) == rules.PassPlan(expected, usable_once=False)


def test_a_pass_is_multi_use_unless_the_policy_forces_one_time():
    assert rules.plan_pass(policy(usable_once=True), 480).usable_once is True


def test_a_disabled_method_or_an_impossible_range_needs_an_administrator():
    assert rules.plan_pass(policy(state="disabled"), 480) == Refusal(409, "tapDisabled")
    assert rules.plan_pass(policy(minimum_lifetime=600, maximum_lifetime=100), 480).code == "lifetime"


def test_policy_targets():
    assert rules.in_policy_targets(policy(), set())
    assert not rules.targets_need_groups(policy())
    scoped = policy(include_target_ids=("g-onboarding",))
    assert rules.targets_need_groups(scoped)
    assert rules.in_policy_targets(scoped, {"G-ONBOARDING"})
    assert not rules.in_policy_targets(scoped, {"g-other"})
    excluded = policy(exclude_target_ids=("g-vip",))
    assert not rules.in_policy_targets(excluded, {"g-vip"})


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, "Temporary Access Pass is disabled by the authentication methods policy.", "tapDisabled"),
        (400, "The user is not enabled for Temporary Access Pass by policy.", "notInTargets"),
        (400, "The lifetime 900 is outside the policy's range of 60 to 480 minutes.", "lifetime"),
        (403, "Insufficient privileges to complete the operation.", "mintRefused"),
        (503, "Service unavailable", "mintFailed"),
        (429, "Too many requests", "mintFailed"),
    ],
)
def test_graph_refusals_are_classified_for_the_page(status, message, code):
    refusal = rules.classify_mint_error(GraphCallError(status, "badRequest", message), policy())
    assert refusal.code == code
    assert (refusal.status == 503) == (code == "mintFailed")


# --- the pass object and the HTML ---------------------------------------------------------------------------
CONVERGED = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)


def test_graphs_converged_policy_refusal_is_told_apart_by_the_policy_we_read():
    refusal = GraphCallError(400, "badRequest", CONVERGED)
    assert rules.classify_mint_error(refusal, policy(state="disabled")).code == "tapDisabled"
    assert rules.classify_mint_error(refusal, policy()).code == "notInTargets"
    ranged = GraphCallError(
        400, "badRequest", "Invalid LifetimeInMinutes specified. The valid range between 60 and 480."
    )
    assert rules.classify_mint_error(ranged, policy()).values == {"low": 60, "high": 480}


def test_a_minted_pass_never_prints_its_secret():
    minted = MintedPass("m1", NOW, 480, False, secret="Zq7!secret")
    assert "Zq7!secret" not in repr(minted)
    assert "Zq7!secret" not in str(minted)
    assert minted.expires == NOW + timedelta(hours=8)


def test_pages_escape_what_they_show_and_carry_strict_headers():
    evil = pickup(target_name='<script>alert("x")</script>', reset_summary="<b>&</b>")
    response = view.open_page(evil, Viewer(MEGAN, "<i>Megan</i>"), "/api/pickup/x/reveal")
    body = response.get_body().decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "&lt;i&gt;Megan&lt;/i&gt;" in body
    assert 'lang="en"' in body
    assert 'name="nonce" value="nonce-123"' in body
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in body
    assert f'<style nonce="{nonce}">' in body
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "http://" not in body.replace("https://aka.ms", "")  # no third-party assets


def test_every_refusal_and_problem_renders():
    from extensions import pickup_strings as S

    for code in [*S.REFUSALS, *S.PROBLEMS]:
        values = {"hours": "8", "state": "canceled", "low": 60, "high": 480, "code": "x", "message": "y"}
        response = view.refusal_page(Refusal(403, code, values), Viewer(MEGAN, "Megan"), "Tom")
        assert response.status_code == 403
        assert "{" not in response.get_body().decode().split("<main")[1].split("<script")[0]
