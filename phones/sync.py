"""One phone run: read each user's mobile phone method, plan, write through $batch (≤ 20) at the pace the
AIMD controller finds, and checkpoint every user in storage (store/phone_runs.py).

Output keeps the runbook's two line kinds, always spelled this way (the App Insights queries in queries.kql
parse exactly these):

    Status: <userPrincipalName>: <action> <number> <detail>
    Stats: Users: N, Numbers added: N, Numbers updated: N, Numbers deleted: N, Unchanged: N, Kept: N,
           No number: N, Invalid: N, Failed: N        (one line; wrapped here)

"Numbers" is always plural (the runbook printed "Number" while its workbook searched for "Numbers").

`action` is one of add, update, delete, unchanged, kept, no_number, invalid, failed ("dry-run add" etc. in a dry
run). The summary is also returned as JSON (`Summary.as_json()`), logged as one line starting with `Summary: `.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graph.batch import RETRYABLE, BatchItem, BatchResult, chunks, run_batch
from graph.raw import GraphCaller
from store.phone_runs import DONE, PhoneRunStore

from .control import Aimd
from .normalize import normalize
from .plan import ACTIONS, Step, plan
from .select import Candidate

log = logging.getLogger("phones")
MAX_REQUEUES = 100  # a user throttled this many times is reported failed, not retried forever


@dataclass
class Summary:
    run_id: str
    mode: str
    dry_run: bool
    users: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    resumed_done: int = 0  # users a previous attempt of this run had finished
    writes_sent: int = 0
    throttled: int = 0
    missing: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    peak_window: float = 0.0
    halvings: int = 0

    def stats_line(self) -> str:
        c = self.counts
        return (
            f"Stats: Users: {self.users}, Numbers added: {c['add']}, Numbers updated: {c['update']}, "
            f"Numbers deleted: {c['delete']}, Unchanged: {c['unchanged']}, Kept: {c['kept']}, "
            f"No number: {c['no_number']}, Invalid: {c['invalid']}, Failed: {c['failed']}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "mode": self.mode,
            "dryRun": self.dry_run,
            "users": self.users,
            "counts": dict(self.counts),
            "resumedDone": self.resumed_done,
            "writesSent": self.writes_sent,
            "throttled": self.throttled,
            "missing": self.missing,
            "peakBatchesInFlight": round(self.peak_window, 2),
            "halvings": self.halvings,
        }


def status_line(step: Step, dry_run: bool = False) -> str:
    action = f"dry-run {step.action}" if dry_run else step.action
    parts = [f"Status: {step.upn}: {action}", step.number or "", step.detail]
    return " ".join(p for p in parts if p)


class PhoneSync:
    def __init__(
        self,
        graph: GraphCaller,
        runs: PhoneRunStore,
        *,
        default_region: str,
        max_batches: int = 16,
        sleep=asyncio.sleep,
        on_step: Callable[[Step], None] | None = None,
    ):
        self._graph = graph
        self._runs = runs
        self._region = default_region
        self._max_batches = max_batches
        self._sleep = sleep
        self._on_step = on_step

    async def run(
        self,
        candidates: list[Candidate],
        *,
        mode: str = "add",
        dry_run: bool = False,
        key: str = "default",
        missing: list[str] | None = None,
    ) -> Summary:
        if dry_run:
            summary = Summary(run_id="dry-run", mode=mode, dry_run=True, users=len(candidates))
            todo = candidates
            run = None
        else:
            run = await self._runs.open_run(key, mode)
            summary = Summary(run_id=run.run_id, mode=mode, dry_run=False, users=len(candidates))
            prior = await self._runs.users(run.run_id) if run.resumed else {}
            todo = []
            for candidate in candidates:
                row = prior.get(candidate.id)
                if row and row.get("State") == DONE:
                    summary.counts[row["Action"]] = summary.counts.get(row["Action"], 0) + 1
                    summary.resumed_done += 1
                else:
                    todo.append(candidate)
        summary.missing = list(missing or [])
        control = Aimd(self._max_batches, sleep=self._sleep)
        queue: asyncio.Queue[tuple[list[Candidate], int]] = asyncio.Queue()
        for start in range(0, len(todo), 20):
            queue.put_nowait((todo[start : start + 20], 0))

        async def worker() -> None:
            while True:
                group, tries = await queue.get()
                try:
                    epoch = await control.acquire()
                    throttled, retry_after, again = False, 0.0, []
                    try:
                        throttled, retry_after, again = await self._chunk(group, tries, mode, run, summary)
                    finally:
                        await control.release(epoch, throttled, retry_after)
                    if again:
                        queue.put_nowait((again, tries + 1))
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(self._max_batches)]
        joined = asyncio.create_task(queue.join())
        try:
            done, _ = await asyncio.wait([joined, *workers], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not joined and task.exception():
                    raise task.exception()  # a crash (storage or Graph down): the run stays open to resume
        finally:
            for task in [*workers, joined]:
                task.cancel()
            await asyncio.gather(*workers, joined, return_exceptions=True)
        summary.peak_window, summary.halvings = control.peak, control.halvings
        if run is not None:
            await self._runs.finish(run, summary.counts)
        log.info(summary.stats_line())
        log.info("Summary: %s", json.dumps(summary.as_json()))
        return summary

    async def _mobiles(self, group: list[Candidate]) -> dict[str, BatchResult]:
        items = [BatchItem(c.id, "GET", f"/users/{c.id}/authentication/phoneMethods") for c in group]
        results: dict[str, BatchResult] = {}
        for chunk in chunks(items):
            results.update(await run_batch(self._graph, chunk, sleep=self._sleep))
        return results

    async def _chunk(self, group: list[Candidate], tries: int, mode: str, run, summary: Summary):
        """Plan and write one group of ≤ 20 users; (throttled?, retry_after, users to try again)."""
        normalized = {c.id: normalize(c.raw_number, self._region) for c in group}
        need_read = [c for c in group if not normalized[c.id].reason]
        reads = await self._mobiles(need_read) if need_read else {}
        steps: list[Step] = []
        for c in group:
            source = normalized[c.id]
            if source.reason:
                steps.append(plan(c.id, c.upn, source, None, mode))
                continue
            read = reads.get(c.id)
            if read is None or not read.ok:
                detail = f"cannot read phone methods: HTTP {read.status if read else 'none'}"
                steps.append(Step(c.id, c.upn, "failed", None, detail))
                continue
            phones = read.body.get("value", []) if isinstance(read.body, dict) else []
            mobile = next((p.get("phoneNumber") for p in phones if p.get("phoneType") == "mobile"), None)
            steps.append(plan(c.id, c.upn, source, mobile, mode))
        finished = [s for s in steps if not s.writes]
        writes = [s for s in steps if s.writes]
        throttled, retry_after, again = False, 0.0, []
        if writes and run is not None:
            await self._runs.claim(run.run_id, [s.user_id for s in writes])
            items = []
            for s in writes:
                method, url, body = s.request()
                items.append(BatchItem(s.user_id, method, url, body))
            summary.writes_sent += len(items)
            results = await run_batch(self._graph, items, attempts=1, sleep=self._sleep)
            by_id = {c.id: c for c in group}
            for s in writes:
                result = results.get(s.user_id)
                if result is not None and result.ok:
                    finished.append(s)
                elif result is not None and result.status in RETRYABLE and tries < MAX_REQUEUES:
                    throttled = throttled or result.status == 429
                    summary.throttled += 1
                    retry_after = max(retry_after, _retry_after(result))
                    again.append(by_id[s.user_id])
                else:
                    finished.append(Step(s.user_id, s.upn, "failed", s.number, _error(result)))
        elif writes:
            finished.extend(writes)  # dry run: the plan, nothing sent
        if run is not None and finished:
            await self._runs.done(
                run.run_id,
                [{"user_id": s.user_id, "action": s.action, "number": s.number, "detail": s.detail} for s in finished],
            )
        for s in finished:
            summary.counts[s.action] += 1
            summary.steps.append(s)
            log.info(status_line(s, run is None))
            if self._on_step:
                self._on_step(s)
        return throttled, retry_after, again


def _retry_after(result: BatchResult) -> float:
    headers = {k.lower(): v for k, v in (result.headers or {}).items()}
    try:
        return min(float(headers.get("retry-after", 1)), 60.0)
    except ValueError:
        return 1.0


def _error(result: BatchResult | None) -> str:
    if result is None:
        return "no answer for this item"
    error = result.body.get("error", {}) if isinstance(result.body, dict) else {}
    return f"HTTP {result.status} {error.get('code', '')}: {error.get('message', '')}".strip()
