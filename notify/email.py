"""ACS Email transport: azure-communication-email's async EmailClient, HTML + plain text, inside the quota.

Docs: https://learn.microsoft.com/azure/communication-services/quickstarts/email/send-email (EmailClient with the
endpoint and a token credential, or a connection string; message {senderAddress, recipients.to, content{subject,
plainText, html}}; begin_send → poller → {id, status, error}) and Email - Send's Operation-Id
(https://learn.microsoft.com/rest/api/communication/dataplane/email/send): a retry with the same id is the same send.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.communication.email.aio import EmailClient
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from .errors import DeliveryError, NotDeliverable, Throttled, from_status, retry_after_seconds
from .message import Audience, Message
from .quota import SendQuota
from .render import to_html, to_text
from .transport import Recipient

POLL_SECONDS = 20.0  # how long one attempt waits for the send's terminal status


class AcsEmail:
    name = "email"

    def __init__(
        self,
        client: EmailClient,
        sender: str,
        quota: SendQuota,
        credential: AsyncTokenCredential | None = None,
        poll_seconds: float = POLL_SECONDS,
    ):
        self._client = client
        self._credential = credential  # the client does not own it: closed here
        self._sender = sender
        self.quota = quota
        self._poll_seconds = poll_seconds

    def accepts(self, recipient: Recipient) -> bool:
        return recipient.audience is not Audience.CHANNEL

    def body(self, recipient: Recipient, message: Message) -> dict[str, Any]:
        to = {"address": recipient.email, **({"displayName": recipient.name} if recipient.name else {})}
        return {
            "senderAddress": self._sender,
            "recipients": {"to": [to]},
            "content": {"subject": message.subject, "plainText": to_text(message), "html": to_html(message)},
            # Links in these mails go to the pickup page; the tracking redirector must not rewrite them.
            "userEngagementTrackingDisabled": True,
        }

    async def send(self, recipient: Recipient, message: Message, delivery_id: str) -> None:
        if not recipient.email:
            raise NotDeliverable("the user has no mail address")
        wait = self.quota.reserve()
        if wait:
            raise Throttled(f"the email quota ({self.quota.per_minute}/min, {self.quota.per_hour}/h) is used", wait)
        try:
            poller = await self._client.begin_send(
                self.body(recipient, message), operation_id=delivery_id, polling_interval=1
            )
            result = await asyncio.wait_for(poller.result(), self._poll_seconds)
        except HttpResponseError as exc:
            status = exc.status_code or (exc.response.status_code if exc.response is not None else 0)
            if status < 400:
                # A poll answered a terminal Failed or Canceled status (azure-core raises for those): no retry.
                raise DeliveryError("emailFailed", "the service did not deliver the email", retryable=False) from None
            retry_after = retry_after_seconds(exc.response.headers.get("Retry-After") if exc.response else None)
            if status == 429:
                self.quota.pause(60.0 if retry_after is None else retry_after)
            elif status < 500:
                self.quota.release()
            raise from_status(status, "ACS Email", retry_after) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise DeliveryError("unreachable", type(exc).__name__, retryable=True) from None
        except TimeoutError:
            raise DeliveryError("pending", "no terminal status in time", retryable=True) from None
        if (result or {}).get("status") != "Succeeded":
            code = ((result or {}).get("error") or {}).get("code", "unknown")
            raise DeliveryError("emailFailed", f"status {(result or {}).get('status')} ({code})", retryable=False)

    async def close(self) -> None:
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()
