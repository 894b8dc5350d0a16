"""Timer schedules (NCRONTAB with seconds, TimeSpan) and the admin API that lists and runs functions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import azure.functions as func
import httpx
import pytest

from local.host import DevHost
from local.host.loader import FunctionSpec, Invoker
from local.host.timers import TimerRunner, interval, next_run
from tests.host import sample_app
from tests.host.conftest import KEY

START = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


def test_a_timer_runs_on_demand_through_the_admin_api_with_a_timer_request(host: DevHost):
    url = f"{host.url}/admin/functions/nightly"
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, headers={"x-functions-key": KEY}).status_code == 202
    [timer] = sample_app.calls["timer"]
    assert isinstance(timer, func.TimerRequest)
    assert timer.past_due is False
    assert datetime.fromisoformat(timer.schedule_status["Next"]).hour == 3  # "0 0 3 * * *"


def test_the_admin_api_lists_functions_with_their_triggers_and_routes(host: DevHost):
    assert httpx.get(f"{host.url}/admin/functions").status_code == 401
    listed = {f["name"]: f for f in httpx.get(f"{host.url}/admin/functions", headers={"x-functions-key": KEY}).json()}
    assert listed["items"]["trigger"] == "httpTrigger"
    assert listed["items"]["route"] == "items/{id}/parts/{part?}"
    assert listed["items"]["methods"] == ["GET", "PUT"]
    assert listed["items"]["invoke_url_template"] == f"{host.url}/api/items/{{id}}/parts/{{part?}}"
    assert listed["secret"]["authLevel"] == "FUNCTION"
    assert listed["on_message"]["trigger"] == "queueTrigger"
    assert listed["on_message"]["queue"] == host.pollers[0].queue_name
    assert listed["nightly"] == listed["nightly"] | {"trigger": "timerTrigger", "schedule": "0 0 3 * * *"}


def test_the_admin_api_refuses_unknown_functions_http_functions_and_bad_input(host: DevHost):
    headers = {"x-functions-key": KEY}
    assert httpx.post(f"{host.url}/admin/functions/nope", json={}, headers=headers).status_code == 404
    assert httpx.post(f"{host.url}/admin/functions/items", json={}, headers=headers).status_code == 400
    assert httpx.post(f"{host.url}/admin/functions/on_message", content=b"{", headers=headers).status_code == 400
    nested = httpx.post(f"{host.url}/admin/functions/on_message", json={"input": {"a": 1}}, headers=headers)
    assert nested.status_code == 400
    assert httpx.get(f"{host.url}/admin/host/status").json()["state"] == "Running"


def test_ncrontab_schedules_have_seconds_first():
    assert next_run("0 */5 * * * *", START) == datetime(2026, 1, 1, 0, 5, 0, tzinfo=UTC)
    assert next_run("30 0 3 * * *", START) == datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC)
    assert next_run("*/10 * * * * *", START) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert next_run("0 30 9 * * Mon-Fri", START) == datetime(2026, 1, 1, 9, 30, 0, tzinfo=UTC)  # a Thursday


def test_timespan_schedules_follow_the_documented_formats():
    assert interval("00:10:00") == timedelta(minutes=10)
    assert interval("01:00:00") == timedelta(hours=1)
    assert interval("24:00:00") == timedelta(days=24)  # dd:hh:mm once the first number is 24 or more
    assert interval("25:00:00:00") == timedelta(days=25)
    assert interval("1.00:00:00") == timedelta(days=1)
    assert interval("0 0 3 * * *") is None
    assert next_run("00:10:00", START) == START + timedelta(minutes=10)
    with pytest.raises(ValueError, match="NCRONTAB"):
        next_run("0 0 3 * *  * *", START)


async def test_a_timespan_timer_fires_on_its_interval_and_run_on_startup_fires_at_once():
    seen: list[func.TimerRequest] = []
    twice = asyncio.Event()

    async def tick(timer: func.TimerRequest) -> None:
        seen.append(timer)
        if len(seen) == 2:
            twice.set()

    spec = FunctionSpec(
        name="tick", trigger="timerTrigger", arg_name="timer", fn=tick, schedule="00:00:01", run_on_startup=True
    )
    invoker = Invoker(timedelta(seconds=5))
    runner = TimerRunner(spec, invoker)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.wait_for(twice.wait(), 10)
    stop.set()
    await task
    invoker.close()
    assert [t.past_due for t in seen] == [False, False]
    assert isinstance(seen[0], func.TimerRequest)
