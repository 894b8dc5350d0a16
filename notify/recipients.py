"""Who receives an event: the people behind its ids (read from Graph through graph/) and the channel."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from graph.directory import Directory, User
from graph.errors import GraphCallError

from .events import Event
from .message import Audience
from .transport import Recipient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    recipients: list[Recipient]
    names: dict[str, str]  # user id → display name
    manager_id: str | None  # the event's, or the target's manager per Graph when the event named none


class Recipients:
    def __init__(self, directory: Directory):
        self._directory = directory

    async def _user(self, user_id: str | None) -> User | None:
        if not user_id:
            return None
        try:
            return await self._directory.user(user_id)
        except GraphCallError as exc:
            log.warning("notify: could not read user %s: %s %s", user_id, exc.status, exc.code)
            return None

    async def _manager_id(self, event: Event, audiences: tuple[Audience, ...]) -> str | None:
        if event.manager_id or Audience.MANAGER not in audiences or not event.target_id:
            return event.manager_id
        try:
            manager = await self._directory.manager(event.target_id)
        except GraphCallError as exc:
            log.warning("notify: could not read the manager of %s: %s %s", event.target_id, exc.status, exc.code)
            return None
        return manager.id if manager else None

    async def resolve(self, event: Event, audiences: tuple[Audience, ...]) -> Resolved:
        """Recipients in audience order (a person in two roles gets the first role's message) and their names."""
        manager_id = await self._manager_id(event, audiences)
        ids = {Audience.REQUESTER: event.requestor_id, Audience.MANAGER: manager_id, Audience.TARGET: event.target_id}
        wanted = sorted({i for i in ids.values() if i})
        users = dict(zip(wanted, await asyncio.gather(*(self._user(i) for i in wanted)), strict=True))
        names = {i: u.display_name for i, u in users.items() if u is not None}
        recipients: list[Recipient] = []
        seen: set[str] = set()
        for audience in audiences:
            if audience is Audience.CHANNEL:
                recipients.append(Recipient(Audience.CHANNEL, name="reset channel"))
                continue
            user_id = ids[audience]
            if not user_id or user_id.lower() in seen:
                continue
            seen.add(user_id.lower())
            user = users.get(user_id)
            if user is not None and (not user.account_enabled and audience is not Audience.TARGET):
                continue  # a disabled requester or manager reads nothing
            recipients.append(
                Recipient(audience, user_id, user.display_name if user else "", user.mail if user else None)
            )
        return Resolved(recipients, names, manager_id)
