"""The local tenant's in-memory directory, loaded from a JSON fixture; every route module reads and writes it.

One TenantState per server. Handlers run on the server's event loop only, so no locking is needed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import not_found

DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "default.json"

# Entitlement Management's first-party application id (the caller of custom extensions).
EM_APP_ID = "810dcf14-1858-4bf2-8134-4c369fa3235b"


def _relative_times(record: dict[str, Any]) -> dict[str, Any]:
    """Fixture times like "-1d" or "-3h" mean that long before the tenant starts (so fixtures do not age)."""
    value = record.get("activityDateTime", "")
    if isinstance(value, str) and value[:1] == "-" and value[-1:] in ("d", "h"):
        amount = float(value[1:-1])
        delta = timedelta(days=amount) if value.endswith("d") else timedelta(hours=amount)
        record["activityDateTime"] = (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    return record


def missing(object_id: str):
    """Graph's 404 for an id that names nothing."""
    return not_found(
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present."
    )


@dataclass
class TenantState:
    """Everything the tenant knows. Plain dicts shaped like Graph's JSON, keyed by id."""

    tenant: dict[str, Any]
    applications: dict[str, dict[str, Any]]  # by appId (client id)
    users: dict[str, dict[str, Any]]  # by id; each holds "methods": [...] and "managerId"
    groups: dict[str, dict[str, Any]]  # by id; each holds "members": [ids]
    directory_roles: dict[str, dict[str, Any]]  # by id; each holds "members": [ids]
    policies: dict[str, Any]
    directory_audits: list[dict[str, Any]]
    entitlement: dict[str, Any]  # catalogs, customExtensions, accessPackages, assignmentRequests, ...
    fixture: dict[str, Any]
    clock_offset: timedelta = field(default_factory=timedelta)
    # Routes may keep their own bookkeeping here (throttle buckets, sent mail, ...), keyed by module name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fixture(cls, path: Path | str | None = None) -> TenantState:
        data = json.loads(Path(path or DEFAULT_FIXTURE).read_text(encoding="utf-8"))
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantState:
        data = copy.deepcopy(data)
        return cls(
            tenant=data["tenant"],
            applications={a["appId"]: a for a in data.get("applications", [])},
            users={u["id"]: u for u in data.get("users", [])},
            groups={g["id"]: g for g in data.get("groups", [])},
            directory_roles={r["id"]: r for r in data.get("directoryRoles", [])},
            policies=data.get("policies", {}),
            directory_audits=[_relative_times(a) for a in data.get("directoryAudits", [])],
            entitlement=data.get("entitlementManagement", {}),
            fixture=data,
        )

    @property
    def tenant_id(self) -> str:
        return self.tenant["id"]

    def now(self) -> datetime:
        """The tenant's clock: real UTC time plus whatever the control API advanced it by."""
        return datetime.now(UTC) + self.clock_offset

    def user(self, id_or_upn: str) -> dict[str, Any]:
        """A user by object id or userPrincipalName (case-insensitive), as Graph resolves /users/{id|upn}."""
        found = self.users.get(id_or_upn)
        if found is not None:
            return found
        lowered = id_or_upn.lower()
        for candidate in self.users.values():
            if candidate.get("userPrincipalName", "").lower() == lowered:
                return candidate
        raise missing(id_or_upn)

    def group(self, group_id: str) -> dict[str, Any]:
        found = self.groups.get(group_id)
        if found is None:
            raise missing(group_id)
        return found

    def directory_object(self, object_id: str) -> tuple[str, dict[str, Any]]:
        """Any directory object by id, with its kind: user, group, directoryRole or servicePrincipal."""
        if object_id in self.users:
            return "user", self.users[object_id]
        if object_id in self.groups:
            return "group", self.groups[object_id]
        if object_id in self.directory_roles:
            return "directoryRole", self.directory_roles[object_id]
        for app in self.applications.values():
            if app.get("servicePrincipalId") == object_id:
                return "servicePrincipal", app
        raise missing(object_id)
