"""What the completion sweep reads and removes: a user's passkeys (and Windows Hello) and Temporary Access Passes.

Docs: https://learn.microsoft.com/graph/api/authentication-list-methods (each method with createdDateTime; a
pass with isUsable and methodUsabilityReason), https://learn.microsoft.com/graph/api/resources/fido2authenticationmethod
(passkeys, including those in Microsoft Authenticator, are fido2 methods) and
https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethod-delete (204).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import NotFound
from .raw import GraphCaller, segment

FIDO2 = "#microsoft.graph.fido2AuthenticationMethod"
WINDOWS_HELLO = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"
TAP = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
# A pass that can no longer sign anyone in (OneTimeUsed: a one-time pass was used; Expired: its lifetime ended).
SPENT = {"expired", "onetimeused"}


@dataclass(frozen=True)
class Credential:
    """One registered phishing-resistant credential, or one pass."""

    id: str
    kind: str  # fido2, windowsHelloForBusiness, temporaryAccessPass
    label: str
    created: datetime | None
    usable: bool = True
    usability: str = ""

    @property
    def spent(self) -> bool:
        return self.kind == "temporaryAccessPass" and self.usability.lower() in SPENT


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse(raw: dict[str, Any]) -> Credential | None:
    kinds = {FIDO2: "fido2", WINDOWS_HELLO: "windowsHelloForBusiness", TAP: "temporaryAccessPass"}
    kind = kinds.get(raw.get("@odata.type", ""))
    if kind is None:
        return None
    name = raw.get("displayName") or raw.get("model") or ""
    return Credential(
        id=raw["id"],
        kind=kind,
        label=f"{kind} ({name})" if name else kind,
        created=_time(raw.get("createdDateTime")),
        usable=bool(raw.get("isUsable", True)),
        usability=str(raw.get("methodUsabilityReason") or ""),
    )


def passkeys_since(found: list[Credential], since: datetime, windows_hello: bool) -> list[Credential]:
    """Passkeys registered at or after `since` (a credential without a creation time never counts)."""
    kinds = {"fido2", "windowsHelloForBusiness"} if windows_hello else {"fido2"}
    return [c for c in found if c.kind in kinds and c.created is not None and c.created >= since]


class Passkeys:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def credentials(self, user_id: str) -> list[Credential]:
        """The user's passkeys, Windows Hello credentials and passes, from one list call."""
        page = await self._caller.json("GET", f"/users/{segment(user_id)}/authentication/methods")
        parsed = (parse(item) for item in (page or {}).get("value", []))
        return [c for c in parsed if c is not None]

    async def delete_pass(self, user_id: str, method_id: str) -> bool:
        """Delete one pass; False when it was already gone."""
        path = f"/users/{segment(user_id)}/authentication/temporaryAccessPassMethods/{segment(method_id)}"
        try:
            await self._caller.json("DELETE", path)
        except NotFound:
            return False
        return True
