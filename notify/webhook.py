"""The reset channel: Adaptive Cards posted to a Teams Workflows webhook ("When a Teams webhook request is received").

Docs: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
(body {type: "message", attachments: [{contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null,
content: <AdaptiveCard>}]}; the flow answers 202). The URL carries a signature (sig=...): it is a secret, kept in
Key Vault, never logged.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import httpx

from .errors import DeliveryError, from_status, retry_after_seconds
from .message import Audience, Message
from .render import card_attachment
from .transport import Recipient

_SIGNATURE = re.compile(r"(sig=)[^&\s\"'<>]+", re.IGNORECASE)


class _HideSignature(logging.Filter):
    """httpx logs every request URL at INFO, normalised (a :443 in the configured URL is dropped, so the logged
    text need not equal it): any `sig=` value in the formatted line is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg, record.args = _SIGNATURE.sub(r"\1<redacted>", message), None
        return True


_HIDE_SIGNATURE = _HideSignature()


class ChannelWebhook:
    name = "channel"

    def __init__(self, http: httpx.AsyncClient, url: str):
        self._http = http
        self._url = url
        parts = urlsplit(url)
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the channel webhook URL must be https (plain http only to this machine, for local runs)")
        logging.getLogger("httpx").addFilter(_HIDE_SIGNATURE)  # the same filter once, however many webhooks

    def accepts(self, recipient: Recipient) -> bool:
        return recipient.audience is Audience.CHANNEL

    async def send(self, recipient: Recipient, message: Message, delivery_id: str) -> None:
        body = {"type": "message", "attachments": [card_attachment(message)]}
        try:
            response = await self._http.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError("unreachable", type(exc).__name__, retryable=True) from None
        if response.status_code not in (200, 202):
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise from_status(response.status_code, "the channel webhook", retry_after)

    async def close(self) -> None:
        await self._http.aclose()
