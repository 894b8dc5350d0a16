"""Users, managers, memberships, sign-in sessions and manager-change audits, read the way guardrails need them.

Docs: https://learn.microsoft.com/graph/api/user-get , user-list-manager, user-list-transitivememberof,
user-revokesigninsessions, directoryaudit-list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import NotFound
from .raw import GraphCaller, segment

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
USER_FIELDS = "id,displayName,userPrincipalName,mail,accountEnabled,userType,createdDateTime"


@dataclass(frozen=True)
class User:
    id: str
    display_name: str
    user_principal_name: str | None
    mail: str | None
    account_enabled: bool
    user_type: str
    created: datetime | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> User:
        return cls(
            id=raw["id"],
            display_name=raw.get("displayName") or raw["id"],
            user_principal_name=raw.get("userPrincipalName"),
            mail=raw.get("mail"),
            account_enabled=bool(raw.get("accountEnabled")),
            user_type=raw.get("userType") or "Member",
            created=_when(raw.get("createdDateTime")),
        )


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


@dataclass
class Memberships:
    role_template_ids: set[str] = field(default_factory=set)
    role_names: dict[str, str] = field(default_factory=dict)  # template id → display name
    group_ids: set[str] = field(default_factory=set)


class Directory:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def user(self, user_id: str) -> User | None:
        try:
            raw = await self._caller.json("GET", f"/users/{segment(user_id)}", query={"$select": USER_FIELDS})
        except NotFound:
            return None
        return User.from_json(raw or {})

    async def manager(self, user_id: str) -> User | None:
        try:
            raw = await self._caller.json("GET", f"/users/{segment(user_id)}/manager", query={"$select": USER_FIELDS})
        except NotFound:
            return None
        return User.from_json(raw or {})

    async def memberships(self, user_id: str) -> Memberships:
        found = Memberships()
        path = f"/users/{segment(user_id)}/transitiveMemberOf"
        async for item in self._caller.pages(path, query={"$select": "id,displayName,roleTemplateId"}):
            kind = item.get("@odata.type", "")
            if kind == "#microsoft.graph.directoryRole":
                template = item.get("roleTemplateId") or ""
                found.role_template_ids.add(template)
                found.role_names[template] = item.get("displayName", template)
            elif kind == "#microsoft.graph.group":
                found.group_ids.add(item["id"])
        return found

    async def revoke_sessions(self, user_id: str) -> None:
        await self._caller.json("POST", f"/users/{segment(user_id)}/revokeSignInSessions")

    async def manager_changes(self, user_id: str, since: datetime) -> list[dict[str, Any]]:
        """Directory audits that set or removed this user's manager since `since`."""
        if not GUID.fullmatch(user_id):
            raise ValueError("a user id in an OData filter must be a GUID")
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        query = {
            "$filter": (
                f"activityDateTime ge {stamp} and targetResources/any(t: t/id eq '{user_id}') "
                "and (activityDisplayName eq 'Set manager' or activityDisplayName eq 'Remove manager')"
            )
        }
        return [item async for item in self._caller.pages("/auditLogs/directoryAudits", query=query)]
