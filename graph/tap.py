"""Temporary Access Pass: read the tenant's TAP policy and mint one pass, sent to Graph exactly once.

Docs: https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get and
https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods . The pass comes back only
in the create response; a second create replaces the user's pass, so the POST is never retried automatically.
The pass is held only in the MintedPass returned to the caller; it is kept out of repr() so that a log line or
a traceback that prints the object cannot leak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .raw import GraphCaller, segment

TAP_POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
GRAPH_MIN_MINUTES = 10
GRAPH_MAX_MINUTES = 43_200


@dataclass(frozen=True)
class TapPolicy:
    state: str
    default_lifetime: int
    minimum_lifetime: int
    maximum_lifetime: int
    usable_once: bool
    include_target_ids: tuple[str, ...]
    exclude_target_ids: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return self.state.lower() == "enabled"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TapPolicy:
        return cls(
            state=str(raw.get("state") or "disabled"),
            default_lifetime=int(raw.get("defaultLifetimeInMinutes") or 60),
            minimum_lifetime=int(raw.get("minimumLifetimeInMinutes") or GRAPH_MIN_MINUTES),
            maximum_lifetime=int(raw.get("maximumLifetimeInMinutes") or GRAPH_MAX_MINUTES),
            usable_once=bool(raw.get("isUsableOnce")),
            include_target_ids=tuple(str(t.get("id", "")) for t in raw.get("includeTargets") or []),
            exclude_target_ids=tuple(str(t.get("id", "")) for t in raw.get("excludeTargets") or []),
        )


@dataclass(frozen=True)
class MintedPass:
    method_id: str
    start: datetime
    lifetime_minutes: int
    usable_once: bool
    secret: str = field(repr=False)

    @property
    def expires(self) -> datetime:
        return self.start + timedelta(minutes=self.lifetime_minutes)

    def __str__(self) -> str:
        return f"TemporaryAccessPass(method={self.method_id}, expires={self.expires.isoformat()})"


def _parse_time(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class TemporaryAccessPasses:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def policy(self) -> TapPolicy:
        return TapPolicy.from_json(await self._caller.json("GET", TAP_POLICY) or {})

    async def mint(self, user_id: str, lifetime_minutes: int, usable_once: bool) -> MintedPass:
        """Create the user's pass: one POST, never retried (GraphCallError on any error status)."""
        body = {"lifetimeInMinutes": lifetime_minutes, "isUsableOnce": usable_once}
        raw = await self._caller.json(
            "POST",
            f"/users/{segment(user_id)}/authentication/temporaryAccessPassMethods",
            body=body,
            retry=False,
        )
        raw = raw or {}
        return MintedPass(
            method_id=str(raw.get("id", "")),
            start=_parse_time(raw.get("startDateTime")),
            lifetime_minutes=int(raw.get("lifetimeInMinutes") or lifetime_minutes),
            usable_once=bool(raw.get("isUsableOnce", usable_once)),
            secret=str(raw.get("temporaryAccessPass") or ""),
        )
