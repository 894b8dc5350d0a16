"""The sweep timer (SWEEP_SCHEDULE, every 5 minutes by default): one bounded, resumable pass of extensions.sweep."""

from __future__ import annotations

import logging
import os

import azure.functions as func

from graph.entitlement import Entitlement
from graph.passkeys import Passkeys
from store.sweep import SweepStore

from .container import Container, get_container
from .settings import DEFAULT_SWEEP_SCHEDULE
from .sweep import Sweep, SweepReport

bp = func.Blueprint()
log = logging.getLogger(__name__)

# Read here rather than as %SWEEP_SCHEDULE%: the host refuses to load a binding whose setting is missing, and the
# sweep should run on its default without anyone having to add the setting.
SCHEDULE = os.environ.get("SWEEP_SCHEDULE", "").strip() or DEFAULT_SWEEP_SCHEDULE


def sweep_for(container: Container) -> Sweep:
    return Sweep(
        container.settings,
        Passkeys(container.graph),
        Entitlement(container.graph),
        container.resets,
        container.pickups,
        SweepStore(container.tables),
        container.notifier,
    )


@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
async def sweep_timer(timer: func.TimerRequest) -> None:
    report: SweepReport = await sweep_for(get_container()).run()
    if report.stopped:
        log.warning("sweep ended early (%s); the next run continues", report.stopped)
