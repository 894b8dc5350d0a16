"""Which users a run covers, and the number each one's source attribute holds.

Members of the staging group (transitive, users only) when PHONE_STAGING_GROUP_ID is set, else every enabled
member user (`$filter=accountEnabled eq true and userType eq 'Member'`, paged); by default only users the
userRegistrationDetails report shows as not MFA-registered (as the runbook did). A run over an explicit list of
users (the HTTP function, `--users FILE`) reads exactly those users.
"""

from __future__ import annotations

from dataclasses import dataclass

from graph.batch import BatchItem, chunks, run_batch
from graph.raw import GraphCaller, segment

SELECT = "id,userPrincipalName,accountEnabled,userType,mobilePhone,businessPhones,onPremisesExtensionAttributes"


@dataclass(frozen=True)
class Candidate:
    id: str
    upn: str
    raw_number: str | None


def source_value(user: dict, attribute: str) -> str | None:
    """The raw number in `attribute` (mobilePhone, businessPhones = its first entry, extensionAttributeN)."""
    if attribute == "mobilePhone":
        return user.get("mobilePhone")
    if attribute == "businessPhones":
        phones = user.get("businessPhones") or []
        return phones[0] if phones else None
    return (user.get("onPremisesExtensionAttributes") or {}).get(attribute)


def _candidate(user: dict, attribute: str) -> Candidate:
    return Candidate(user["id"], user.get("userPrincipalName") or user["id"], source_value(user, attribute))


def _eligible(user: dict) -> bool:
    return user.get("accountEnabled") is not False and user.get("userType", "Member") == "Member"


class Selector:
    def __init__(self, graph: GraphCaller, attribute: str, only_unregistered: bool = True):
        self._graph = graph
        self._attribute = attribute
        self._only_unregistered = only_unregistered

    async def unregistered_ids(self) -> set[str]:
        found: set[str] = set()
        path = "/reports/authenticationMethods/userRegistrationDetails"
        async for row in self._graph.pages(path, query={"$filter": "isMfaRegistered eq false", "$top": "999"}):
            found.add(row["id"])
        return found

    async def from_group(self, group_id: str) -> list[Candidate]:
        path = f"/groups/{segment(group_id)}/transitiveMembers/microsoft.graph.user"
        users = [u async for u in self._graph.pages(path, query={"$select": SELECT, "$top": "999"})]
        return await self._finish([u for u in users if _eligible(u)])

    async def all_members(self) -> list[Candidate]:
        query = {"$filter": "accountEnabled eq true and userType eq 'Member'", "$select": SELECT, "$top": "999"}
        users = [u async for u in self._graph.pages("/users", query=query)]
        return await self._finish(users)

    async def listed(self, ids: list[str]) -> tuple[list[Candidate], list[str]]:
        """Explicitly listed users (ids or UPNs), read through $batch; also the ones not found. The
        registration filter does not apply: whoever lists a user asks for that user."""
        found: list[Candidate] = []
        missing: list[str] = []
        unique = list(dict.fromkeys(ids))
        items = [BatchItem(str(i), "GET", f"/users/{segment(uid)}?$select={SELECT}") for i, uid in enumerate(unique)]
        for chunk in chunks(items):
            results = await run_batch(self._graph, chunk)
            for item in chunk:
                result = results.get(item.id)
                if result is not None and result.ok and _eligible(result.body):
                    found.append(_candidate(result.body, self._attribute))
                else:
                    missing.append(unique[int(item.id)])
        return found, missing

    async def _finish(self, users: list[dict]) -> list[Candidate]:
        if self._only_unregistered:
            wanted = await self.unregistered_ids()
            users = [u for u in users if u["id"] in wanted]
        seen: set[str] = set()
        out = []
        for user in users:
            if user["id"] not in seen:
                seen.add(user["id"])
                out.append(_candidate(user, self._attribute))
        return out
