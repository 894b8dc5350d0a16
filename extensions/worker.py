"""The queue-triggered worker: runs the stage playbook for one recorded callout.

Transient failures (Graph throttling or outages, storage hiccups) raise, so the host redelivers the message
(5 tries, then `<queue>-poison`); on the last try, and on any permanent failure, the request is resumed with
the failure, audited and an alert raised, so EM never waits for a callback that will not come.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from graph.errors import GraphCallError
from store.callouts import CalloutKey

from .container import get_container
from .payload import parse_callout
from .telemetry import configure, span
from .workflow import PermanentFailure, WorkItem

bp = func.Blueprint()
log = logging.getLogger(__name__)
MAX_DEQUEUE = 5  # host.json extensions.queues.maxDequeueCount


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE_NAME%", connection="AzureWebJobsStorage")
async def worker(msg: func.QueueMessage) -> None:
    configure()
    container = get_container()
    try:
        data = json.loads(msg.get_body())
        item = WorkItem(str(data["requestId"]), str(data["stage"]), str(data["stageInstanceId"]))
    except (ValueError, KeyError, TypeError):
        log.error("dropping a work message that is not ours (id %s)", msg.id)
        return
    record = await container.callouts.get(CalloutKey(item.request_id, item.stage, item.stage_instance_id))
    if record is None:
        log.error("no recorded callout for request %s stage %s; dropping", item.request_id, item.stage)
        return
    callout = parse_callout(json.loads(record["Body"]))
    wait = callout.waits_for_resume
    last_try = (msg.dequeue_count or 1) >= MAX_DEQUEUE
    try:
        with span("stage " + item.stage, request_id=item.request_id, stage=item.stage, attempt=msg.dequeue_count):
            await container.workflow.run(item, callout, wait)
    except PermanentFailure as exc:
        log.error("request %s stage %s failed: %s", item.request_id, item.stage, exc)
        await container.workflow.fail(item, str(exc), wait)
    except GraphCallError as exc:
        if exc.transient and not last_try:
            log.warning("request %s stage %s: transient %s, will retry", item.request_id, item.stage, exc)
            raise
        log.error("request %s stage %s failed: %s", item.request_id, item.stage, exc)
        await container.workflow.fail(item, f"Graph refused: {exc.code} ({exc.status})", wait)
    except Exception:
        if not last_try:
            raise
        log.exception("request %s stage %s failed on its last try", item.request_id, item.stage)
        await container.workflow.fail(item, "an internal error stopped the reset", wait)
