"""Timer triggers: NCRONTAB schedules with seconds first ("0 */5 * * * *") or TimeSpan ("00:05:00"), run on
schedule, on start-up when runOnStartup is set, and on demand.

https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import azure.functions.timer as ft
from croniter import croniter

from .config import resolve, timespan
from .functions import FunctionSpec

log = logging.getLogger("local.host")


def next_run(schedule: str, after: datetime) -> datetime:
    fields = schedule.split()
    if len(fields) == 6:  # NCRONTAB: seconds first; croniter takes seconds last
        expression = " ".join([*fields[1:], fields[0]])
        return croniter(expression, after).get_next(datetime)
    if len(fields) == 5:
        return croniter(schedule, after).get_next(datetime)
    return after + timespan(schedule, None)  # type: ignore[arg-type]


async def fire(spec: FunctionSpec, past_due: bool = False) -> None:
    try:
        await spec.invoke(ft.TimerRequest(past_due=past_due))
        log.info("Executed 'Functions.%s' (Succeeded)", spec.name)
    except Exception:
        log.exception("Executed 'Functions.%s' (Failed)", spec.name)
        raise


async def run_timer(spec: FunctionSpec, stop: asyncio.Event) -> None:
    if spec.run_on_startup:
        with contextlib.suppress(Exception):
            await fire(spec)
    while not stop.is_set():
        due = next_run(resolve(spec.schedule or ""), datetime.now(UTC))
        wait = max((due - datetime.now(UTC)).total_seconds(), 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
            return
        with contextlib.suppress(Exception):
            await fire(spec, past_due=(datetime.now(UTC) - due).total_seconds() > 5)
