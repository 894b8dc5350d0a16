"""Queue triggers from Azurite with the Functions host's semantics: base64 messages (host.json
messageEncoding), batches, polling that backs off to maxPollingInterval, a failed message reappearing after
visibilityTimeout, and after maxDequeueCount tries the message moved to `<queue>-poison`.

https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os

import azure.functions.queue as fq
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

from store.clients import DEVELOPMENT_STORAGE

from .config import QueueSettings, resolve
from .functions import FunctionSpec

log = logging.getLogger("local.host")
PROCESSING_LEASE_S = 600  # the host keeps a message invisible while the function runs (functionTimeout)


def connection_string(setting: str) -> str:
    value = os.environ.get(setting) or os.environ.get(f"AzureWebJobs{setting}")
    if not value:
        raise RuntimeError(f"queue connection setting {setting} is not set (the dev host needs a connection string)")
    if value.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        return DEVELOPMENT_STORAGE
    return value


class QueuePoller:
    def __init__(self, spec: FunctionSpec, settings: QueueSettings):
        self.spec = spec
        self.queue_name = resolve(spec.queue_name or "")
        self.settings = settings
        self.processed = 0
        self.failed = 0

    def decode(self, content: str) -> bytes:
        if self.settings.message_encoding == "base64":
            return base64.b64decode(content)
        return content.encode()

    async def run(self, stop: asyncio.Event) -> None:
        conn = connection_string(self.spec.connection)
        name = self.queue_name
        async with (
            QueueClient.from_connection_string(conn, name) as queue,
            QueueClient.from_connection_string(conn, f"{name}-poison") as poison,
        ):
            with contextlib.suppress(ResourceExistsError):
                await queue.create_queue()
            delay = 0.05
            maximum = max(self.settings.max_polling_interval.total_seconds(), 0.05)
            while not stop.is_set():
                try:
                    got = await self._poll(queue, poison)
                except Exception:  # Azurite restarting, network blips: keep polling like the host
                    log.exception("polling %s failed", name)
                    got = 0
                delay = 0.05 if got else min(delay * 2, maximum)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _poll(self, queue: QueueClient, poison: QueueClient) -> int:
        messages = [
            m
            async for m in queue.receive_messages(
                messages_per_page=min(self.settings.batch_size, 32),
                visibility_timeout=PROCESSING_LEASE_S,
                max_messages=min(self.settings.batch_size, 32),
            )
        ]
        await asyncio.gather(*(self._process(queue, poison, m) for m in messages))
        return len(messages)

    async def _process(self, queue: QueueClient, poison: QueueClient, message) -> None:
        try:
            body = self.decode(message.content)
        except ValueError:
            log.error("message %s on %s is not valid base64: moved to poison", message.id, self.queue_name)
            await self._poison(queue, poison, message)
            return
        argument = fq.QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            await self.spec.invoke(argument)
        except Exception:
            self.failed += 1
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, dequeue count %s)",
                self.spec.name,
                message.id,
                message.dequeue_count,
            )
            if message.dequeue_count >= self.settings.max_dequeue_count:
                await self._poison(queue, poison, message)
            else:
                await queue.update_message(
                    message, visibility_timeout=int(self.settings.visibility_timeout.total_seconds())
                )
            return
        self.processed += 1
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s)", self.spec.name, message.id)
        await queue.delete_message(message)

    async def _poison(self, queue: QueueClient, poison: QueueClient, message) -> None:
        with contextlib.suppress(ResourceExistsError):
            await poison.create_queue()
        await poison.send_message(message.content)
        await queue.delete_message(message)
        log.warning("Message %s moved to %s-poison", message.id, self.queue_name)
