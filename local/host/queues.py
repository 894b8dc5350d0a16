"""Queue triggers from Azure Storage (Azurite locally) with the Functions host's semantics.

Followed: https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger
(#poison-messages, #peek-lock, #polling-algorithm, #concurrency, #connections) and the host.json table of
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json; where the docs are
short, the storage extension's QueueListener/QueueProcessor (azure-sdk-for-net, WebJobs Storage Queues v5):
- a message is received invisible for 10 minutes and its visibility renewed at half that while the function runs;
- success → delete; failure → visible again after visibilityTimeout, or, once dequeueCount reaches
  maxDequeueCount, its text copied to "<queue>-poison" (created if missing) and the original deleted;
  a message already dequeued more than maxDequeueCount times (a crash on its last try) goes straight there;
- a message that is not valid base64 under messageEncoding base64 goes straight to the poison queue;
- batchSize messages are fetched at once; the next batch is fetched when no more than newBatchThreshold are
  still running;
- polling backs off from 100 ms with randomized exponential steps (≈200 ms, 300 ms, 500 ms, …) up to
  maxPollingInterval while the queue is empty or missing; the listener does not create the queue.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import random
from datetime import timedelta
from typing import Any

import azure.functions.queue as fq
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .loader import FunctionSpec, Invoker
from .settings import MIN_POLLING_INTERVAL, QueueSettings, resolve

log = logging.getLogger("local.host")
PROCESSING_VISIBILITY = timedelta(minutes=10)  # QueueListener's _visibilityTimeout, renewed at half-time
# Azurite's well-known account and default ports, what UseDevelopmentStorage=true means:
# https://learn.microsoft.com/azure/storage/common/storage-use-azurite#connection-strings
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def development_storage(proxy_uri: str | None = None) -> str:
    """The connection string UseDevelopmentStorage=true stands for (ports 10000-10002 on 127.0.0.1)."""
    base = (proxy_uri or "http://127.0.0.1").rstrip("/")
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base}:10000/{DEV_ACCOUNT};QueueEndpoint={base}:10001/{DEV_ACCOUNT};"
        f"TableEndpoint={base}:10002/{DEV_ACCOUNT};"
    )


def _parse(value: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in value.split(";") if "=" in part)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def _setting(name: str) -> str | None:
    # The WebJobs lookup: "ConnectionStrings:<name>" before the root key; env vars spell ":" as "__" too.
    for key in (f"ConnectionStrings:{name}", f"ConnectionStrings__{name}", name):
        if os.environ.get(key):
            return os.environ[key]
    return None


def connection_string(setting: str | None) -> str:
    """The storage connection string a trigger's `connection` names.

    Empty or AzureWebJobsStorage means the host's storage; otherwise "AzureWebJobs<name>" is tried before
    "<name>" (GetWebJobsConnectionStringSection). UseDevelopmentStorage=true maps to Azurite's defaults.
    """
    name = setting or "AzureWebJobsStorage"
    value = _setting(f"AzureWebJobs{name}") or _setting(name)
    if not value:
        if any(key.startswith((f"{name}__", f"AzureWebJobs{name}__")) for key in os.environ):
            raise RuntimeError(
                f"connection {name} is identity-based (<name>__queueServiceUri…); the dev host needs a connection "
                "string (Azurite accepts only shared keys over http)"
            )
        raise RuntimeError(f"queue connection setting {name} is not set (the dev host needs a connection string)")
    parts = _parse(value)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return development_storage(parts.get("developmentstorageproxyuri"))
    return value


class Backoff:
    """RandomizedExponentialBackoffStrategy: 100 ms after messages, then 100 ms + 100 ms·2^(n-1)·(0.8-1.2)."""

    def __init__(self, maximum: timedelta, minimum: timedelta = MIN_POLLING_INTERVAL):
        self.minimum = minimum.total_seconds()
        self.maximum = max(maximum.total_seconds(), self.minimum)
        self.current = self.minimum
        self.exponent = 1

    def next(self, found: bool) -> float:
        if found:
            self.current, self.exponent = self.minimum, 1
        elif self.current < self.maximum:
            step = random.uniform(0.8, 1.2) * 2 ** (self.exponent - 1) * self.minimum
            candidate = self.minimum + step
            if candidate < self.maximum:
                self.current, self.exponent = candidate, self.exponent + 1
            else:
                self.current = self.maximum
        return self.current


class QueuePoller:
    """One queue-triggered function's listener."""

    def __init__(self, spec: FunctionSpec, settings: QueueSettings, invoker: Invoker):
        self.spec = spec
        self.queue_name = resolve(spec.queue_name or "")
        self.settings = settings
        self.invoke = invoker
        self.processed = 0
        self.failed = 0
        self.poisoned = 0
        self._running: set[asyncio.Task] = set()

    def decode(self, content: str) -> bytes:
        if self.settings.message_encoding == "base64":
            return base64.b64decode(content, validate=True)
        return content.encode("utf-8")

    async def run(self, stop: asyncio.Event) -> None:
        conn = connection_string(self.spec.connection)
        backoff = Backoff(self.settings.max_polling_interval)
        async with (
            QueueClient.from_connection_string(conn, self.queue_name) as queue,
            QueueClient.from_connection_string(conn, f"{self.queue_name}-poison") as poison,
        ):
            found_since_delay = False
            while not stop.is_set():
                try:
                    found = await self._poll(queue, poison)
                except (HttpResponseError, OSError) as exc:  # Azurite restarting, network blips: back off and retry
                    log.warning("polling %s failed: %s", self.queue_name, exc)
                    found = 0
                if found:  # like QueueListener: poll again as soon as no more than newBatchThreshold are running
                    found_since_delay = True
                    await self._wait_for_threshold(stop)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff.next(found_since_delay))
                found_since_delay = False
            if self._running:  # graceful stop: let running invocations finish and settle their messages
                await asyncio.wait(self._running, timeout=30)

    async def _wait_for_threshold(self, stop: asyncio.Event) -> None:
        while len(self._running) > self.settings.batch_threshold and not stop.is_set():
            await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)

    async def _poll(self, queue: QueueClient, poison: QueueClient) -> int:
        try:
            messages = [
                m
                async for m in queue.receive_messages(
                    max_messages=self.settings.batch_size,
                    messages_per_page=self.settings.batch_size,
                    visibility_timeout=int(PROCESSING_VISIBILITY.total_seconds()),
                )
            ]
        except ResourceNotFoundError:
            return 0  # the queue does not exist (yet): the host waits for it rather than creating it
        for message in messages:
            task = asyncio.create_task(self._guarded(queue, poison, message))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(messages)

    async def _guarded(self, queue: QueueClient, poison: QueueClient, message: Any) -> None:
        try:
            await self._process(queue, poison, message)
        except Exception:  # a storage error while settling: the message reappears after its lease, as in the host
            log.exception("processing message %s from %s failed", message.id, self.queue_name)

    async def _process(self, queue: QueueClient, poison: QueueClient, message: Any) -> None:
        if message.dequeue_count > self.settings.max_dequeue_count:
            await self._poison(queue, poison, message)
            return
        try:
            body = self.decode(message.content or "")
        except (binascii.Error, ValueError):
            log.error("Message %s on %s is not valid base64 (messageEncoding base64)", message.id, self.queue_name)
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
        keeper = asyncio.create_task(self._keep_invisible(queue, message))
        try:
            await self.invoke(self.spec, argument, f"New queue message detected on '{self.queue_name}'.")
        except Exception:  # logged by the invoker
            self.failed += 1
            await self._settle_failure(queue, poison, message, keeper)
            return
        await _stop(keeper)
        self.processed += 1
        await self._delete(queue, message)

    async def _keep_invisible(self, queue: QueueClient, message: Any) -> None:
        """Renew the processing lease at half its length, keeping the new pop receipt on the message."""
        half = PROCESSING_VISIBILITY.total_seconds() / 2
        while True:
            await asyncio.sleep(half)
            receipt = await queue.update_message(
                message.id, message.pop_receipt, visibility_timeout=int(PROCESSING_VISIBILITY.total_seconds())
            )
            message.pop_receipt = receipt.pop_receipt

    async def _settle_failure(
        self, queue: QueueClient, poison: QueueClient, message: Any, keeper: asyncio.Task
    ) -> None:
        await _stop(keeper)
        if message.dequeue_count >= self.settings.max_dequeue_count:
            await self._poison(queue, poison, message)
            return
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):  # gone or taken over: nothing to release
            await queue.update_message(
                message.id,
                message.pop_receipt,
                visibility_timeout=int(self.settings.visibility_timeout.total_seconds()),
            )

    async def _poison(self, queue: QueueClient, poison: QueueClient, message: Any) -> None:
        log.warning(
            "Message has reached MaxDequeueCount of %s. Moving message to queue '%s-poison'.",
            self.settings.max_dequeue_count,
            self.queue_name,
        )
        try:
            await poison.send_message(message.content)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await poison.create_queue()
            await poison.send_message(message.content)
        self.poisoned += 1
        await self._delete(queue, message)

    async def _delete(self, queue: QueueClient, message: Any) -> None:
        # A pop-receipt mismatch (someone else took it over) or a missing message needs nothing more.
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
            await queue.delete_message(message.id, message.pop_receipt)


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
