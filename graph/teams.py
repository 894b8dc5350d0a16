"""Installs our Teams app (whose bot is our managed identity) for a user, so the bot may message them.

Docs: https://learn.microsoft.com/graph/api/userteamwork-post-installedapps (POST /users/{id}/teamwork/installedApps
{"teamsApp@odata.bind": "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{teamsAppId}"} → 201 without a body;
least-privileged application permission TeamsAppInstallation.ReadWriteSelfForUser.All, which reaches only the
calling app's own Teams app). Installing an app that is already installed answers 409.
"""

from __future__ import annotations

from .errors import GraphCallError
from .raw import GraphCaller, segment

# The bind is always the public Graph URL of the catalog entry (the documented form), whatever root we call.
CATALOG = "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/"


class TeamsApps:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def install_for_user(self, user_id: str, teams_app_id: str) -> bool:
        """Install the app in the user's personal scope; False when it was installed already."""
        body = {"teamsApp@odata.bind": CATALOG + segment(teams_app_id)}
        try:
            await self._caller.json("POST", f"/users/{segment(user_id)}/teamwork/installedApps", body=body)
        except GraphCallError as exc:
            if exc.status == 409:
                return False
            raise
        return True
