"""Timer triggers: NCRONTAB schedules (six fields, seconds first) and TimeSpan intervals, run on schedule, at
start-up when runOnStartup is set, and on demand through the admin API.

https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer (#ncrontab-expressions, #timespan,
#usage: the function gets a TimerRequest whose past_due says the invocation is later than scheduled).
- NCRONTAB "{second} {minute} {hour} {day} {month} {day-of-week}"; croniter takes seconds as a sixth field at
  the end, so the fields are rotated. Five-field expressions are accepted as plain cron.
- Times are UTC unless WEBSITE_TIME_ZONE (or TZ) names an IANA zone (Windows zone names are not supported).
- TimeSpan: the interval between invocation starts; a run that overruns it is followed immediately.
  "hh:mm:ss" while hh < 24, "dd:hh:mm" when the first number is 24 or more, "d.hh:mm:ss" and "dd:hh:mm:ss".
- One invocation at a time per timer: the schedule does not fire again while a run is outstanding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import azure.functions.timer as ft
from croniter import croniter

from .loader import FunctionSpec, Invoker
from .settings import resolve, timespan

log = logging.getLogger("local.host")
PAST_DUE_AFTER = timedelta(seconds=1)  # how late a run may start before it counts as past due


def schedule_zone() -> tzinfo:
    name = os.environ.get("WEBSITE_TIME_ZONE") or os.environ.get("TZ")
    if not name:
        return UTC
    try:
        return ZoneInfo(name.lstrip(":"))
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r is not an IANA zone the dev host knows: timers run in UTC", name)
        return UTC


def interval(schedule: str) -> timedelta | None:
    """The TimeSpan of a TimeSpan schedule, or None for a cron expression."""
    text = schedule.strip()
    if " " in text:
        return None
    parts = text.split(":")
    if len(parts) == 4 and "." not in parts[0]:  # dd:hh:mm:ss
        days, hours, minutes, seconds = (int(p) for p in parts)
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if len(parts) == 3 and re.fullmatch(r"\d+", parts[0]) and int(parts[0]) >= 24:  # dd:hh:mm
        return timedelta(days=int(parts[0]), hours=int(parts[1]), minutes=int(parts[2]))
    return timespan(text, timedelta(0))


def next_run(schedule: str, after: datetime) -> datetime:
    """The first occurrence of `schedule` after `after` (for a TimeSpan: `after` plus the interval)."""
    span = interval(schedule)
    if span is not None:
        if span <= timedelta(0):
            raise ValueError(f"a TimeSpan schedule must be positive: {schedule!r}")
        return after + span
    fields = schedule.split()
    if len(fields) == 6:  # NCRONTAB: seconds first; croniter takes seconds last
        expression = " ".join([*fields[1:], fields[0]])
    elif len(fields) == 5:
        expression = schedule
    else:
        raise ValueError(f"not an NCRONTAB expression or TimeSpan: {schedule!r}")
    return croniter(expression, after).get_next(datetime)


class TimerRunner:
    """Runs one timer function on its schedule; fire() runs it now (admin API)."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker):
        self.spec = spec
        self.invoke = invoker
        self.schedule = resolve(spec.schedule or "")
        next_run(self.schedule, datetime.now(UTC))  # a bad schedule fails the start, as in the host
        self.last: datetime | None = None
        self.next: datetime | None = None
        self._lock = asyncio.Lock()

    async def fire(
        self, past_due: bool = False, reason: str = "This function was programmatically called via the host APIs."
    ) -> None:
        async with self._lock:
            now = datetime.now(UTC)
            status = {
                "Last": (self.last or now).isoformat(),
                "Next": (self.next or next_run(self.schedule, now.astimezone(schedule_zone()))).isoformat(),
                "LastUpdated": now.isoformat(),
            }
            request = ft.TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
            self.last = now
            await self.invoke(self.spec, request, reason)

    async def run(self, stop: asyncio.Event) -> None:
        if self.spec.run_on_startup:
            with contextlib.suppress(Exception):  # failures are logged by the invoker
                await self.fire()
        span = interval(self.schedule)
        started = datetime.now(UTC)
        while not stop.is_set():
            now = datetime.now(UTC)
            if span is not None:  # intervals count from the previous start; an overrun fires at once
                self.next = max(started + span, now)
            else:
                self.next = next_run(self.schedule, now.astimezone(schedule_zone())).astimezone(UTC)
            log.info("The next occurrence of '%s' is %s", self.spec.name, self.next.isoformat())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max((self.next - datetime.now(UTC)).total_seconds(), 0))
                return
            started = datetime.now(UTC)
            late = started - self.next > PAST_DUE_AFTER
            with contextlib.suppress(Exception):
                await self.fire(past_due=late, reason=f"Timer fired at {started.isoformat()}")
