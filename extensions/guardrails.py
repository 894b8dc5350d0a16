"""Guardrails of the assignmentRequestCreated stage: each check either passes or names why the reset is denied.

The facts come from Graph and our own records, never from the callout body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from graph.directory import Directory
from graph.entitlement import AssignmentRequest
from store.records import OPEN, ResetStore

from .settings import PRIVILEGED_ROLE_TEMPLATES, Settings


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # shown to the requester in My Access when denied
    target_name: str = ""
    manager_id: str | None = None

    @classmethod
    def deny(cls, reason: str, target_name: str = "") -> Verdict:
        return cls(False, reason, target_name)


NEW_HIRE_MANAGER_GRACE = timedelta(hours=24)


def _when(audit: dict) -> datetime | None:
    """A directory audit's activityDateTime."""
    try:
        return datetime.fromisoformat(str(audit.get("activityDateTime") or "").replace("Z", "+00:00"))
    except ValueError:
        return None


class Guardrails:
    def __init__(self, settings: Settings, directory: Directory, resets: ResetStore):
        self._settings = settings
        self._directory = directory
        self._resets = resets

    async def check(self, request: AssignmentRequest, *, onboarding: bool = False) -> Verdict:
        """`onboarding`: a new-hire package, whose genuine targets had their manager set days ago at most."""
        s = self._settings
        if not request.target_id:
            return Verdict.deny("The request names no target user.")
        target = await self._directory.user(request.target_id)
        if target is None:
            return Verdict.deny("The target user does not exist in the directory.")
        name = target.display_name
        if not target.account_enabled:
            return Verdict.deny(f"{name}'s account is disabled; enable it before resetting MFA.", name)
        if target.user_type.lower() != "member":
            return Verdict.deny(f"{name} is a guest; guests reset MFA in their home tenant.", name)
        if target.id.lower() in {i.lower() for i in s.break_glass_user_ids}:
            return Verdict.deny(f"{name} is an emergency-access account and cannot be reset here.", name)
        memberships = await self._directory.memberships(target.id)
        protected_roles = {r.lower() for r in s.protected_role_template_ids}
        held = sorted(
            memberships.role_names.get(t) or PRIVILEGED_ROLE_TEMPLATES.get(t, t)
            for t in memberships.role_template_ids
            if t.lower() in protected_roles
        )
        if held:
            return Verdict.deny(f"{name} holds a protected role ({', '.join(held)}); ask a privileged admin.", name)
        protected_groups = {g.lower() for g in s.protected_group_ids}
        if any(g.lower() in protected_groups for g in memberships.group_ids):
            return Verdict.deny(f"{name} is in a protected group and cannot be reset here.", name)
        manager = await self._directory.manager(target.id)
        requestor = (request.requestor_id or "").lower()
        is_manager = manager is not None and manager.id.lower() == requestor
        is_self = s.allow_self_request and requestor == target.id.lower()
        if not (is_manager or is_self):
            who = "the target's manager or the target" if s.allow_self_request else "the target's manager"
            return Verdict.deny(f"Only {who} may request an MFA reset for {name}.", name)
        since = datetime.now(UTC) - timedelta(days=s.manager_change_cooldown_days)
        changes = await self._directory.manager_changes(target.id, since) if s.manager_change_cooldown_days else []
        if onboarding and target.created is not None:
            # A new hire's manager is set as the account is made (HR provisioning): changes in its first day are
            # that, not a re-pointing. Any later change still counts, so it cannot fetch a new hire a pass either.
            settled = target.created + NEW_HIRE_MANAGER_GRACE
            changes = [c for c in changes if _when(c) is None or _when(c) > settled]
        if is_manager and changes:
            return Verdict.deny(
                f"{name}'s manager changed in the last {s.manager_change_cooldown_days} days; "
                "an administrator must confirm the change first.",
                name,
            )
        others = [r for r in await self._resets.for_target(target.id) if r["RowKey"] != request.id]
        if any(r.get("State") == OPEN for r in others):
            return Verdict.deny(f"Another MFA reset for {name} is still open.", name)
        day_ago = datetime.now(UTC) - timedelta(hours=24)
        if len([r for r in others if r["CreatedAt"] >= day_ago]) >= s.max_resets_per_target_per_day:
            return Verdict.deny(
                f"{name} already had {s.max_resets_per_target_per_day} MFA resets in 24 hours; try again later.", name
            )
        return Verdict(True, target_name=name, manager_id=manager.id if manager else None)
