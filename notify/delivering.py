"""The Notifier that delivers: resolves recipients, renders each message, sends it on every transport that serves
the recipient (in parallel, each retried with backoff) and audits the outcome. It never raises."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from .events import Event
from .message import Context, Message
from .recipients import Recipients
from .retry import Outcome, RetryPolicy, with_retry
from .templates import AUDIENCES, render
from .transport import Recipient, Transport

log = logging.getLogger(__name__)
ACTOR = "notifier"


class Auditor(Protocol):
    async def audit(self, request_id: str, event: str, actor: str = "", detail: str = "", **data: Any) -> None: ...


class DeliveringNotifier:
    def __init__(
        self,
        recipients: Recipients,
        transports: Sequence[Transport],
        auditor: Auditor | None,
        policy: RetryPolicy,
    ):
        self._recipients = recipients
        self.transports = list(transports)
        self._auditor = auditor
        self._policy = policy

    async def notify(self, event: Event) -> None:
        try:
            await self._notify(event)
        except Exception as exc:  # a notification must never fail a reset
            log.error("notify %s for %s failed: %s", event.kind, event.request_id, type(exc).__name__)

    async def _notify(self, event: Event) -> None:
        audiences = AUDIENCES[event.kind]
        resolved = await self._recipients.resolve(event, audiences)
        context = Context.of(event, resolved.names, resolved.manager_id)
        jobs = []
        for recipient in resolved.recipients:
            message = render(context, recipient.audience)
            for transport in self.transports:
                if transport.accepts(recipient):
                    jobs.append((recipient, transport, message))
        outcomes = await asyncio.gather(*(self._deliver(event, r, t, m) for r, t, m in jobs))
        await self._audit(event, [(r, t) for r, t, _ in jobs], outcomes)

    async def _deliver(self, event: Event, recipient: Recipient, transport: Transport, message: Message) -> Outcome:
        # Stable per event, recipient and transport: ACS treats a repeated Operation-Id as the same send.
        key = f"{event.request_id}/{event.kind}/{recipient.label}/{transport.name}"
        delivery_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
        return await with_retry(lambda: transport.send(recipient, message, delivery_id), self._policy)

    async def _audit(self, event: Event, jobs: list[tuple[Recipient, Transport]], outcomes: list[Outcome]) -> None:
        delivered = [f"{t.name}:{r.label}" for (r, t), o in zip(jobs, outcomes, strict=True) if o.ok]
        writes = []
        throttled = sum(o.throttled for o in outcomes)
        for (recipient, transport), outcome in zip(jobs, outcomes, strict=True):
            if outcome.ok or outcome.error is None:
                continue
            level = logging.INFO if outcome.error.code == "notDeliverable" else logging.WARNING
            log.log(level, "notify %s: %s to %s failed after %d attempt(s): %s", event.kind, transport.name,
                    recipient.label, outcome.attempts, outcome.error.code)  # fmt: skip
            writes.append(
                self._write(
                    event.request_id,
                    "notifyThrottled" if outcome.error.code == "throttled" else "notifyFailed",
                    f"{event.kind}: {transport.name} to {recipient.label}: {outcome.error.message}",
                    notification=str(event.kind),
                    transport=transport.name,
                    recipient=recipient.label,
                    code=outcome.error.code,
                    attempts=outcome.attempts,
                    retryAfter=outcome.error.retry_after,
                )
            )
        if throttled:
            log.warning("notify %s: %d attempt(s) throttled", event.kind, throttled)
        summary = f"{event.kind}: {len(delivered)} of {len(jobs)} delivered"
        writes.append(
            self._write(
                event.request_id,
                "notified",
                summary,
                notification=str(event.kind),
                delivered=delivered,
                throttled=throttled,
            )
        )
        await asyncio.gather(*writes)

    async def _write(self, request_id: str, name: str, detail: str, **data: Any) -> None:
        if self._auditor is None:
            return
        try:
            await self._auditor.audit(request_id, name, actor=ACTOR, detail=detail, **data)
        except Exception as exc:
            log.error("notify: auditing %s for %s failed: %s", name, request_id, type(exc).__name__)

    async def close(self) -> None:
        for transport in self.transports:
            try:
                await transport.close()
            except Exception as exc:
                log.warning("closing %s: %s", transport.name, type(exc).__name__)
