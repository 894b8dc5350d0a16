"""The bot's messaging endpoint on the dev host: activities the local tenant's Bot Connector delivers with a channel
token, the one reply a user's message gets, and every request that is not the Bot Connector's refused unanswered."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.tenant import TenantServer
from local.tenant.auth import signing_key
from local.tenant.bot_channel import channel_signing_key, channel_token, inbound_activity
from notify.templates import BOT_REPLY, MY_ACCESS_URL
from tests.conftest import F
from tests.e2e.conftest import Stack
from tests.extensions.tokens import hs256_token

MEGAN = F.U["megan"]  # has the Teams app installed in the fixture


@pytest.fixture
def bot_env(tenant: TenantServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams notifications on and pointed at the tenant's Bot Connector; set before the stack builds the host."""
    for name, value in {
        "NOTIFY_TEAMS_ENABLED": "true",
        "TEAMS_BOT_APP_ID": F.APP["func"][0],
        "TEAMS_BOT_SERVICE_URL": service_url(tenant),
        "TEAMS_APP_CATALOG_ID": F.TEAMS_APP,
        "NOTIFY_RETRY_BASE_SECONDS": "0.05",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bot(bot_env: None, stack: Stack) -> Stack:
    """The stack with the bot's settings in place."""
    return stack


def service_url(tenant: TenantServer) -> str:
    return tenant.url + "/botframework/"


def endpoint(stack: Stack) -> str:
    return f"{stack.host.url}/api/messages"


def deliver(stack: Stack, activity: dict[str, Any], user: str = MEGAN) -> dict[str, Any]:
    """Has the tenant's Bot Connector deliver `activity` (completed as Teams sends it) to our endpoint."""
    body = {"url": endpoint(stack), "activity": activity, "userId": user}
    answer = httpx.post(f"{stack.tenant.url}/_control/bot/incoming", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(stack: Stack, body: bytes | dict[str, Any], authorization: str | None) -> httpx.Response:
    """POSTs straight to our endpoint, as someone other than the Bot Connector could."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(endpoint(stack), content=content, headers=headers, timeout=30)


def message(stack: Stack, text: str = "hello", **fields: Any) -> dict[str, Any]:
    """A message from Megan's 1:1 chat with the bot, as Teams would deliver it."""
    return inbound_activity(stack.tenant.state, service_url(stack.tenant), {"text": text, **fields}, MEGAN)


def replies(stack: Stack) -> list[dict[str, Any]]:
    """Every activity the bot sent through the tenant's Bot Connector."""
    return httpx.get(f"{stack.tenant.url}/_control/bot/activities").json()


# --- what the bot answers ---------------------------------------------------------------------------------


def test_a_message_gets_exactly_one_plain_text_reply_saying_where_to_ask_and_holding_no_pass(bot: Stack):
    """A user's message is answered once, in their conversation, with the fixed text: no pass, My Access."""
    delivered = deliver(bot, {"type": "message", "text": "please send me a temporary access pass"})
    assert delivered["status"] == 200, delivered["body"]
    sent = replies(bot)
    assert len(sent) == 1
    reply = sent[0]
    assert reply["text"] == BOT_REPLY
    assert reply["textFormat"] == "plain"
    assert reply["attachments"] == []
    assert reply["recipient"] == MEGAN
    assert reply["conversation"] == delivered["activity"]["conversation"]["id"]
    assert reply["replyToId"] == delivered["activity"]["id"]
    assert MY_ACCESS_URL in reply["text"]
    assert "never send a Temporary Access Pass" in reply["text"]
    assert "please send me" not in json.dumps(reply)  # what the user wrote is not echoed


def test_the_same_message_delivered_twice_is_answered_once(bot: Stack):
    """A redelivered activity (same conversation and id) does not get a second reply."""
    activity_id = str(time.time_ns())
    first = deliver(bot, {"type": "message", "id": activity_id, "text": "hi"})
    again = deliver(bot, {"type": "message", "id": activity_id, "text": "hi"})
    assert (first["status"], again["status"]) == (200, 200)
    assert len(replies(bot)) == 1


@pytest.mark.parametrize(
    "activity",
    [
        {"type": "conversationUpdate", "membersAdded": [{"id": f"28:{F.APP['func'][0]}"}]},
        {"type": "installationUpdate", "action": "add"},
        {"type": "messageReaction", "reactionsAdded": [{"type": "like"}]},
        {"type": "typing"},
    ],
    ids=["conversationUpdate", "installationUpdate", "messageReaction", "typing"],
)
def test_events_other_than_messages_are_200_and_get_no_reply(bot: Stack, activity: dict[str, Any]):
    """Installing the app (conversationUpdate, installationUpdate) or any other event is acknowledged, unanswered."""
    delivered = deliver(bot, activity)
    assert delivered["status"] == 200, delivered["body"]
    assert replies(bot) == []


def test_a_verified_message_whose_service_url_is_not_the_configured_connector_gets_no_reply(bot: Stack):
    """The bot's token goes only to the configured Bot Connector's origin, even for a genuinely signed activity."""
    elsewhere = f"http://localhost:{bot.tenant.port}/botframework/"  # the same stand-in under another origin
    activity = {**message(bot), "serviceUrl": elsewhere}
    answer = post(bot, activity, f"Bearer {channel_token(bot.tenant.state, elsewhere)}")
    assert answer.status_code == 200, answer.text
    assert replies(bot) == []


def test_neither_the_token_nor_what_the_user_wrote_is_logged(bot: Stack, caplog: pytest.LogCaptureFixture):
    """Everything logged while answering a message and refusing a forgery holds neither token nor text."""
    caplog.set_level(logging.DEBUG)
    text = "my secret words 7f3a9c"
    token = channel_token(bot.tenant.state, service_url(bot.tenant))
    assert post(bot, message(bot, text), f"Bearer {token}").status_code == 200
    forged = channel_token(bot.tenant.state, service_url(bot.tenant), aud="someone-else")
    assert post(bot, message(bot, text), f"Bearer {forged}").status_code == 403
    assert len(replies(bot)) == 1
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "bot message from" in logged  # the endpoint did log what happened
    for secret in (text, token, forged, token.split(".")[2], forged.split(".")[2]):
        assert secret not in logged


# --- what is refused ----------------------------------------------------------------------------------------


def forged_authorization(tenant: TenantServer, case: str) -> str | None:
    """An Authorization header the Bot Connector would never send, by name of what is wrong with it."""
    state, url = tenant.state, service_url(tenant)
    private, kid = channel_signing_key()
    now = int(time.time())
    if case == "none":
        return None
    if case == "not-bearer":
        return "Basic " + base64.b64encode(b"bot:password").decode()
    if case == "hs256-with-the-public-key":
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = {"serviceurl": url, "nbf": now, "exp": now + 3600, "iss": "https://api.botframework.com"}
        return "Bearer " + hs256_token({**claims, "aud": F.APP["func"][0]}, pem, kid)
    if case == "alg-none":
        claims = {"serviceurl": url, "exp": now + 3600, "iss": "https://api.botframework.com", "aud": F.APP["func"][0]}
        return "Bearer " + jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    if case == "another-key-same-kid":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return "Bearer " + channel_token(state, url, key=other)
    if case == "unknown-kid":
        return "Bearer " + channel_token(state, url, kid="not-a-bot-framework-key")
    if case == "the-tenants-entra-key":
        entra, entra_kid = signing_key()
        return "Bearer " + channel_token(state, url, key=entra, kid=entra_kid)
    overrides = {
        "wrong-issuer": {"iss": f"https://sts.windows.net/{state.tenant_id}/"},
        "wrong-audience": {"aud": "https://api.botframework.com"},
        "another-bots-audience": {"aud": F.APP["func"][1]},
        "expired": {"nbf": now - 7200, "exp": now - 600},
        "not-yet-valid": {"nbf": now + 900, "exp": now + 4500},
        "no-expiry": {"exp": None},
        "service-url-mismatch": {"serviceurl": "https://smba.trafficmanager.net/amer/"},
        "no-service-url": {"serviceurl": None},
    }[case]
    return "Bearer " + channel_token(state, url, **overrides)


FORGERIES = [
    "none",
    "not-bearer",
    "hs256-with-the-public-key",
    "alg-none",
    "another-key-same-kid",
    "unknown-kid",
    "the-tenants-entra-key",
    "wrong-issuer",
    "wrong-audience",
    "another-bots-audience",
    "expired",
    "not-yet-valid",
    "no-expiry",
    "service-url-mismatch",
    "no-service-url",
]


@pytest.mark.parametrize("case", FORGERIES)
def test_a_request_without_the_bot_connectors_token_for_this_activity_is_403_and_unanswered(bot: Stack, case: str):
    """Missing, forged, expired, misaddressed or mis-signed tokens are refused and nothing is sent."""
    answer = post(bot, message(bot, "hello"), forged_authorization(bot.tenant, case))
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "forbidden"
    assert replies(bot) == []


def test_a_channel_the_signing_key_does_not_endorse_is_403(bot: Stack):
    """A genuine token on an activity claiming a channel its key may not sign for is refused."""
    token = channel_token(bot.tenant.state, service_url(bot.tenant))
    answer = post(bot, message(bot, channelId="slack"), f"Bearer {token}")
    assert answer.status_code == 403, answer.text
    assert "endorsed" in answer.json()["error"]["message"]
    assert replies(bot) == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "invalidJson"),
        (b"[]", "invalidActivity"),
        (b"", "invalidActivity"),
        ({"serviceUrl": "SERVICE", "channelId": "msteams"}, "invalidActivity"),  # no type
        ({"type": "message", "channelId": "msteams"}, "invalidActivity"),  # no serviceUrl
        ({"type": "message", "serviceUrl": "SERVICE", "channelId": "msteams", "text": "hi"}, "invalidActivity"),
    ],
    ids=["not-json", "array", "empty", "no-type", "no-service-url", "message-without-from-or-conversation"],
)
def test_a_malformed_activity_with_a_genuine_token_is_400_and_unanswered(bot: Stack, body: Any, why: str):
    """A verified request whose body is not an activity we can act on is 400, and nothing is sent."""
    url = service_url(bot.tenant)
    if isinstance(body, dict):
        body = {k: (url if v == "SERVICE" else v) for k, v in body.items()}
    answer = post(bot, body, f"Bearer {channel_token(bot.tenant.state, url)}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == why
    assert replies(bot) == []


def test_the_bot_connectors_keys_are_not_the_tenants_entra_keys(tenant: TenantServer):
    """The local Bot Connector publishes its own metadata and signing key, endorsed for msteams."""
    metadata = httpx.get(tenant.env()["TEAMS_BOT_OPENID_METADATA_URL"]).json()
    assert metadata["issuer"] == "https://api.botframework.com"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = httpx.get(metadata["jwks_uri"]).json()["keys"]
    entra = httpx.get(f"{tenant.url}/{tenant.state.tenant_id}/discovery/v2.0/keys").json()["keys"]
    assert {k["kid"] for k in keys}.isdisjoint({k["kid"] for k in entra})
    assert {k["n"] for k in keys}.isdisjoint({k["n"] for k in entra})
    assert all("msteams" in k["endorsements"] for k in keys)
