"""The reset channel: Adaptive Cards posted to a Teams Workflows webhook ("When a Teams webhook request is received").

Docs: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
(body {type: "message", attachments: [{contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null,
content: <AdaptiveCard>}]}; the flow answers 202). The URL carries a signature (sig=...): it is a secret, kept in
Key Vault, never logged.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx

from .errors import DeliveryError, from_status, retry_after_seconds
from .message import Audience, Message
from .render import card_attachment
from .transport import Recipient


class _HideUrl(logging.Filter):
    """httpx logs every request URL at INFO; the webhook's carries its signature, so it is masked."""

    def __init__(self, url: str):
        super().__init__()
        self._url = url
        parts = urlsplit(url)
        self._masked = f"{parts.scheme}://{parts.netloc}{parts.path}?<redacted>"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) == self._url for a in record.args):
            record.args = tuple(self._masked if str(a) == self._url else a for a in record.args)
        return True


class ChannelWebhook:
    name = "channel"

    def __init__(self, http: httpx.AsyncClient, url: str):
        self._http = http
        self._url = url
        logging.getLogger("httpx").addFilter(_HideUrl(url))

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
