"""One entry point the timer, the HTTP function and the CLI share: select, then sync, with the phone settings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from extensions.settings import Settings
from graph.raw import GraphCaller
from store.phone_runs import PhoneRunStore
from store.tables import Tables

from .plan import Step
from .select import Selector
from .sync import PhoneSync, Summary


def run_key(kind: str, users: list[str] | None, group: str | None, mode: str) -> str:
    """The checkpoint key: the same trigger over the same users resumes its unfinished run."""
    scope = ",".join(sorted(u.lower() for u in users)) if users is not None else f"group:{group or 'all'}"
    return f"{kind}-{hashlib.sha256(f'{mode}|{scope}'.encode()).hexdigest()[:24]}"


async def run_phone_sync(
    settings: Settings,
    graph: GraphCaller,
    tables: Tables,
    *,
    kind: str,
    users: list[str] | None = None,
    group: str | None = None,
    mode: str | None = None,
    dry_run: bool = False,
    on_step: Callable[[Step], None] | None = None,
    on_selected: Callable[[int], None] | None = None,
    sleep=None,
) -> Summary:
    mode = mode or settings.phone_sync_mode
    if mode not in ("add", "authoritative"):
        raise ValueError("mode must be add or authoritative")
    selector = Selector(graph, settings.phone_source_attribute, settings.phone_only_unregistered)
    missing: list[str] = []
    group = group if group is not None else (settings.phone_staging_group_id or None)
    if users is not None:
        candidates, missing = await selector.listed(users)
    elif group:
        candidates = await selector.from_group(group)
    else:
        candidates = await selector.all_members()
    if on_selected:
        on_selected(len(candidates))
    extra = {"sleep": sleep} if sleep else {}
    sync = PhoneSync(
        graph,
        PhoneRunStore(tables),
        default_region=settings.phone_default_region,
        max_batches=settings.phone_sync_max_batches,
        on_step=on_step,
        **extra,
    )
    key = run_key(kind, users, group, mode)
    return await sync.run(candidates, mode=mode, dry_run=dry_run, key=key, missing=missing)
