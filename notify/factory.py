"""Builds the Notifier from settings: the enabled transports behind a DeliveringNotifier, else a RecordingNotifier."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from azure.communication.email.aio import EmailClient
from azure.identity.aio import ManagedIdentityCredential

from extensions.settings import Settings
from graph.directory import Directory
from graph.raw import GraphCaller
from graph.teams import TeamsApps

from .delivering import Auditor, DeliveringNotifier
from .email import AcsEmail
from .notifier import Notifier, RecordingNotifier
from .quota import SendQuota
from .recipients import Recipients
from .retry import RetryPolicy
from .teams import TeamsBot
from .transport import Transport
from .webhook import ChannelWebhook

log = logging.getLogger(__name__)


def _email(settings: Settings) -> AcsEmail | None:
    connection = settings.acs_connection_string.get_secret_value()
    if not settings.acs_sender_address or not (settings.acs_endpoint or connection):
        log.error("NOTIFY_EMAIL_ENABLED needs ACS_SENDER_ADDRESS and ACS_ENDPOINT: email is off")
        return None
    # retry_total=0: our retry honours the time budget; the SDK's would sleep through a 60 s Retry-After.
    options: dict[str, Any] = {"retry_total": 0}
    if settings.notify_ca_bundle:
        options["connection_verify"] = settings.notify_ca_bundle
    credential = None
    if settings.acs_connection_string.get_secret_value():
        client = EmailClient.from_connection_string(settings.acs_connection_string.get_secret_value(), **options)
    else:
        credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
        client = EmailClient(settings.acs_endpoint, credential, **options)
    quota = SendQuota(settings.acs_emails_per_minute, settings.acs_emails_per_hour)
    return AcsEmail(client, settings.acs_sender_address, quota, credential)


def _teams(settings: Settings, graph: GraphCaller) -> TeamsBot | None:
    app_id = settings.teams_bot_app_id or settings.managed_identity_client_id
    if not app_id or not settings.tenant_id:
        log.error("NOTIFY_TEAMS_ENABLED needs TEAMS_BOT_APP_ID (the identity's client id) and TENANT_ID: Teams is off")
        return None
    return TeamsBot(
        httpx.AsyncClient(timeout=httpx.Timeout(10.0)),
        ManagedIdentityCredential(client_id=settings.managed_identity_client_id),
        app_id=app_id,
        service_url=settings.teams_bot_service_url,
        tenant_id=settings.tenant_id,
        apps=TeamsApps(graph),
        teams_app_id=settings.teams_app_catalog_id,
    )


def _channel(settings: Settings) -> ChannelWebhook | None:
    if not settings.teams_channel_webhook_url.get_secret_value():
        log.error("NOTIFY_CHANNEL_ENABLED needs TEAMS_CHANNEL_WEBHOOK_URL: the channel is off")
        return None
    url = settings.teams_channel_webhook_url.get_secret_value()
    try:
        return ChannelWebhook(httpx.AsyncClient(timeout=httpx.Timeout(10.0)), url)
    except ValueError as exc:  # the message never repeats the URL: its sig is a credential
        log.error("TEAMS_CHANNEL_WEBHOOK_URL refused (%s): the channel is off", exc)
        return None


def build_notifier(settings: Settings, graph: GraphCaller, auditor: Auditor | None) -> Notifier:
    """A misconfigured transport is logged and left out; it never stops the resets."""
    transports: list[Transport | None] = [
        _email(settings) if settings.notify_email_enabled else None,
        _teams(settings, graph) if settings.notify_teams_enabled else None,
        _channel(settings) if settings.notify_channel_enabled else None,
    ]
    enabled = [t for t in transports if t is not None]
    if not enabled:
        return RecordingNotifier()
    policy = RetryPolicy(
        settings.notify_max_attempts, settings.notify_retry_base_seconds, settings.notify_budget_seconds
    )
    return DeliveringNotifier(Recipients(Directory(graph)), enabled, auditor, policy)


def teams_transport(notifier: Notifier) -> TeamsBot | None:
    """The notifier's Teams bot, which also answers users who write to it; None when Teams is off."""
    return next((t for t in getattr(notifier, "transports", ()) if isinstance(t, TeamsBot)), None)
