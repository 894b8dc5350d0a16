"""Pure logic: the per-user plan table and the AIMD controller."""

from __future__ import annotations

import asyncio

import pytest

from phones.control import Aimd
from phones.normalize import normalize
from phones.plan import MOBILE_ID, plan


@pytest.mark.parametrize(
    ("raw", "current", "mode", "action"),
    [
        ("+1 206 555 0102", None, "add", "add"),
        ("+1 206 555 0102", None, "authoritative", "add"),
        ("+1 206 555 0102", "+1 2065550102", "add", "unchanged"),
        ("+1 206 555 0102", "+1 206 555 0102", "authoritative", "unchanged"),
        ("+1 206 555 0109", "+1 2065550102", "add", "kept"),
        ("+1 206 555 0109", "+1 2065550102", "authoritative", "update"),
        (None, "+1 2065550102", "add", "no_number"),
        (None, "+1 2065550102", "authoritative", "delete"),
        (None, None, "authoritative", "no_number"),
        ("not a number", "+1 2065550102", "authoritative", "invalid"),
    ],
)
def test_plan(raw, current, mode, action):
    assert plan("u", "u@x", normalize(raw, "US"), current, mode).action == action


def test_requests_of_the_writes():
    add = plan("u", "u@x", normalize("+1 206 555 0102", "US"), None, "add")
    assert add.request() == (
        "POST",
        "/users/u/authentication/phoneMethods",
        {"phoneNumber": "+1 2065550102", "phoneType": "mobile"},
    )
    update = plan("u", "u@x", normalize("+1 206 555 0109", "US"), "+1 2065550102", "authoritative")
    assert update.request() == (
        "PATCH",
        f"/users/u/authentication/phoneMethods/{MOBILE_ID}",
        {"phoneNumber": "+1 2065550109"},
    )
    delete = plan("u", "u@x", normalize(None, "US"), "+1 2065550102", "authoritative")
    assert delete.request() == ("DELETE", f"/users/u/authentication/phoneMethods/{MOBILE_ID}", None)
    with pytest.raises(ValueError, match="writes nothing"):
        plan("u", "u@x", normalize(None, "US"), None, "add").request()


async def test_aimd_grows_by_one_per_window_and_halves_once_per_episode():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    control = Aimd(16, initial=4, sleep=sleep)
    epochs = [await control.acquire() for _ in range(4)]
    assert control.inflight == 4
    for epoch in epochs:
        await control.release(epoch)
    assert 4.9 < control.window < 5  # four good batches at window 4: about one more batch in flight
    before = control.window
    epochs = [await control.acquire() for _ in range(3)]
    for epoch in epochs:  # three throttled batches of the same episode: one halving, one pause
        await control.release(epoch, throttled=True, retry_after=2)
    assert control.window == pytest.approx(before / 2)
    assert control.halvings == 1
    assert slept == [2]
    await asyncio.wait_for(control.acquire(), 1)  # the gate is open again


async def test_aimd_never_exceeds_its_maximum_nor_drops_below_one():
    control = Aimd(3, initial=1)
    for _ in range(50):
        await control.release(await control.acquire())
    assert control.window == 3
    for _ in range(10):
        await control.release(await control.acquire(), throttled=True)
    assert control.window == 1
