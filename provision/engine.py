"""Plan and apply: find each object provision.yaml describes, compare it, and create or update what differs.

Every Graph call goes through graph.raw.GraphCaller. Endpoints (Graph v1.0), by step:
- groups: group-get
- catalog: entitlementmanagement-list-catalogs ($filter displayName), -post-catalogs, accesspackagecatalog-update
- catalog resource: accesspackagecatalog-list-resources ($filter originId, $expand roles,scopes),
  entitlementmanagement-post-resourcerequests (adminAdd)
- custom extensions: accesspackagecatalog-list-/post-accesspackagecustomworkflowextensions,
  customaccesspackageworkflowextension-update
- access packages: entitlementmanagement-list-/post-accesspackages, accesspackage-update,
  accesspackage-list-/post-resourcerolescopes
- assignment policies: accesspackage-list-assignmentpolicies, accesspackageassignmentpolicy-get
  ($expand=customExtensionStageSettings($expand=customExtension)), entitlementmanagement-post-assignmentpolicies,
  accesspackageassignmentpolicy-update (PUT)
- authentication strength: authenticationstrengthroot-list-/post-policies, authenticationstrengthpolicy-update,
  authenticationstrengthpolicy-updateallowedcombinations
- conditional access: conditionalaccessroot-list-/post-policies, conditionalaccesspolicy-update
- app registrations: application-list ($filter identifierUris/any(x:x eq '...') or displayName eq),
  application-post-applications, application-update, serviceprincipal-post-serviceprincipals,
  application-list-/post-federatedidentitycredentials, federatedidentitycredential-update
- permissions: serviceprincipal-list ($filter appId), serviceprincipal-list-/post-approleassignments,
  rbacapplication-list-/post-roleassignments (entitlementManagement provider, appScopeId /AccessPackageCatalog/{id})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from graph.errors import Forbidden, NotFound
from graph.raw import GraphCaller, segment

from . import desired
from .config import Package, ProvisionConfig
from .diff import CREATE, OK, REVOKE, UPDATE, WARN, Change, differences
from .errors import MissingPermission, NotFoundInTenant
from .permissions import (
    ASSIGNMENT_MANAGER_ROLE,
    BROADER_THAN_NEEDED,
    FUNCTION_GRAPH_ROLES,
    OPERATOR_NEEDS,
    TEAMS_BOT_ROLES,
)

EM = "/identityGovernance/entitlementManagement"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def literal(value: str) -> str:
    """An OData string literal ('' escapes a quote)."""
    return "'" + value.replace("'", "''") + "'"


class Provisioner:
    """One run of plan (apply=False: reads only) or apply. `changes` is the plan, in the order applied."""

    def __init__(self, caller: GraphCaller, cfg: ProvisionConfig, *, apply: bool, revoke_broader: bool = False):
        self.graph = caller
        self.cfg = cfg
        self.apply = apply
        # Revoke the broader app roles a manual setup granted, once the least-privilege set is in place.
        self.revoke_broader = revoke_broader
        self._broader: list[tuple[str, str]] = []  # (permission, appRoleAssignment id) found by app_roles
        self.changes: list[Change] = []
        self.ids: dict[str, str | None] = {}

    # --- plumbing -------------------------------------------------------------------------------------------
    async def call(self, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await self.graph.json(method, path, **kwargs)
        except Forbidden as exc:
            raise MissingPermission(f"{method} {path.split('?')[0]}", OPERATOR_NEEDS[kind], exc.message) from None

    async def items(self, kind: str, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        page = await self.call(kind, "GET", path, query=query)
        found = list((page or {}).get("value", []))
        while page and page.get("@odata.nextLink"):
            page = await self.call(kind, "GET", page["@odata.nextLink"])
            found += (page or {}).get("value", [])
        return found

    def record(self, kind: str, name: str, action: str, details: list[str] | None = None) -> Change:
        change = Change(kind, name, action, details or [])
        self.changes.append(change)
        return change

    async def converge(
        self,
        kind: str,
        name: str,
        current: dict[str, Any] | None,
        want: dict[str, Any],
        create: Callable[[], Awaitable[dict[str, Any] | None]],
        update: Callable[[], Awaitable[Any]],
    ) -> str | None:
        """Create when missing, update when it drifted; the object's id (None in a plan for something new)."""
        if current is None:
            self.record(kind, name, CREATE)
            return ((await create()) or {}).get("id") if self.apply else None
        drift = differences(want, current)
        self.record(kind, name, UPDATE if drift else OK, drift)
        if drift and self.apply:
            await update()
        return current["id"]

    # --- the run --------------------------------------------------------------------------------------------
    async def run(self) -> list[Change]:
        await self.groups()
        catalog_id = await self.catalog()
        resource = await self.catalog_resource(catalog_id)
        extensions = {which: await self.extension(catalog_id, which) for which in (desired.WAIT, desired.NOTIFY)}
        for key, package in (("mfaReset", self.cfg.mfa_reset), ("newHire", self.cfg.new_hire)):
            if package is not None:
                package_id = await self.package(catalog_id, package)
                self.ids[key] = package_id
                await self.role_scope(package_id, resource, package)
                await self.policy(package_id, package, extensions)
        strength_id = await self.strength()
        await self.conditional_access(strength_id)
        principal = await self.function_principal()
        await self.callout_app()
        await self.easy_auth(principal)
        await self.app_roles(principal)
        await self.catalog_role(principal, catalog_id)
        await self.broader_roles(principal)
        return self.changes

    async def groups(self) -> None:
        for label, group_id in (
            ("onboarding group", self.cfg.onboarding_group_id),
            ("security approvers group", self.cfg.security_approvers_group_id),
        ):
            try:
                await self.call("group", "GET", f"/groups/{segment(group_id)}", query={"$select": "id,displayName"})
            except NotFound:
                raise NotFoundInTenant(f"The {label} {group_id} does not exist in the tenant.") from None

    async def catalog(self) -> str | None:
        want = desired.catalog(self.cfg)
        query = {"$filter": f"displayName eq {literal(want['displayName'])}"}
        current = next(iter(await self.items("catalog", f"{EM}/catalogs", query)), None)

        async def create():
            return await self.call("catalog", "POST", f"{EM}/catalogs", body=want)

        async def update():
            await self.call("catalog", "PATCH", f"{EM}/catalogs/{segment(current['id'])}", body=want)

        self.ids["catalog"] = await self.converge("catalog", want["displayName"], current, want, create, update)
        return self.ids["catalog"]

    async def _resource(self, catalog_id: str) -> dict[str, Any] | None:
        query = {"$filter": f"originId eq {literal(self.cfg.onboarding_group_id)}", "$expand": "roles,scopes"}
        path = f"{EM}/catalogs/{segment(catalog_id)}/resources"
        return next(iter(await self.items("catalog resource", path, query)), None)

    async def catalog_resource(self, catalog_id: str | None) -> dict[str, Any] | None:
        name = f"onboarding group {self.cfg.onboarding_group_id}"
        current = await self._resource(catalog_id) if catalog_id else None
        if current is not None:
            self.record("catalog resource", name, OK)
            return current
        self.record("catalog resource", name, CREATE)
        if not self.apply:
            return None
        body = {
            "requestType": "adminAdd",
            "resource": {"originId": self.cfg.onboarding_group_id, "originSystem": "AadGroup"},
            "catalog": {"id": catalog_id},
        }
        await self.call("catalog resource", "POST", f"{EM}/resourceRequests", body=body)
        return await self._resource(catalog_id)  # type: ignore[arg-type]

    async def extension(self, catalog_id: str | None, which: str) -> str | None:
        want = desired.extension(self.cfg, which)
        path = f"{EM}/catalogs/{segment(catalog_id)}/customWorkflowExtensions" if catalog_id else ""
        found = await self.items("custom extension", path) if catalog_id else []
        current = next((e for e in found if e.get("displayName") == want["displayName"]), None)

        async def create():
            return await self.call("custom extension", "POST", path, body=want)

        async def update():
            await self.call("custom extension", "PATCH", f"{path}/{segment(current['id'])}", body=want)

        return await self.converge("custom extension", want["displayName"], current, want, create, update)

    async def package(self, catalog_id: str | None, package: Package) -> str | None:
        want = desired.access_package(package)
        query = {"$filter": f"displayName eq {literal(package.display_name)}", "$expand": "catalog"}
        found = await self.items("access package", f"{EM}/accessPackages", query) if catalog_id else []
        current = next((p for p in found if (p.get("catalog") or {}).get("id") == catalog_id), None)

        async def create():
            body = {**want, "catalog": {"id": catalog_id}}
            return await self.call("access package", "POST", f"{EM}/accessPackages", body=body)

        async def update():
            await self.call("access package", "PATCH", f"{EM}/accessPackages/{segment(current['id'])}", body=want)

        return await self.converge("access package", package.display_name, current, want, create, update)

    async def role_scope(self, package_id: str | None, resource: dict[str, Any] | None, package: Package) -> None:
        member = f"Member_{self.cfg.onboarding_group_id}"
        name = f"{package.display_name}: member of the onboarding group"
        path = f"{EM}/accessPackages/{segment(package_id)}/resourceRoleScopes" if package_id else ""
        found = await self.items("resource role scope", path, {"$expand": "role,scope"}) if package_id else []
        if any((s.get("role") or {}).get("originId") == member for s in found):
            self.record("resource role scope", name, OK)
            return
        self.record("resource role scope", name, CREATE)
        if not self.apply or resource is None:
            return
        role = next(r for r in resource["roles"] if r["originId"] == member)
        scope = next(s for s in resource["scopes"] if s.get("isRootScope", True))
        resource_ref = {k: resource.get(k) for k in ("id", "displayName", "originId", "originSystem")}
        body = {"role": {**role, "resource": resource_ref}, "scope": scope}
        await self.call("resource role scope", "POST", path, body=body)

    async def policy(self, package_id: str | None, package: Package, extensions: dict[str, str | None]) -> None:
        want = desired.policy(self.cfg, package, package_id or "", {k: v or "" for k, v in extensions.items()})
        current = None
        if package_id:
            listed = await self.items(
                "assignment policy", f"{EM}/accessPackages/{segment(package_id)}/assignmentPolicies"
            )
            match = next((p for p in listed if p.get("displayName") == want["displayName"]), None)
            if match is not None:
                query = {"$expand": "customExtensionStageSettings($expand=customExtension)"}
                path = f"{EM}/assignmentPolicies/{segment(match['id'])}"
                current = await self.call("assignment policy", "GET", path, query=query)
                stages = current.get("customExtensionStageSettings") or []
                current["customExtensionStageSettings"] = sorted(stages, key=lambda s: s.get("stage", ""))
        want["customExtensionStageSettings"].sort(key=lambda s: s["stage"])

        async def create():
            return await self.call("assignment policy", "POST", f"{EM}/assignmentPolicies", body=want)

        async def update():
            path = f"{EM}/assignmentPolicies/{segment(current['id'])}"
            await self.call("assignment policy", "PUT", path, body={"id": current["id"], **want})

        compared = {k: v for k, v in want.items() if k != "accessPackage"}
        label = f"{package.display_name}: {package.policy_name}"
        await self.converge("assignment policy", label, current, compared, create, update)

    async def strength(self) -> str | None:
        want = desired.strength(self.cfg)
        path = "/policies/authenticationStrengthPolicies"
        found = await self.items("authentication strength", path)
        current = next((s for s in found if s.get("displayName") == want["displayName"]), None)

        async def create():
            return await self.call("authentication strength", "POST", path, body=want)

        async def update():
            item = f"{path}/{segment(current['id'])}"
            names = {"displayName": want["displayName"], "description": want["description"]}
            await self.call("authentication strength", "PATCH", item, body=names)
            if differences(want["allowedCombinations"], current.get("allowedCombinations")):
                body = {"allowedCombinations": want["allowedCombinations"]}
                await self.call("authentication strength", "POST", f"{item}/updateAllowedCombinations", body=body)

        return await self.converge("authentication strength", want["displayName"], current, want, create, update)

    async def conditional_access(self, strength_id: str | None) -> None:
        want = desired.conditional_access(self.cfg, strength_id or "(new authentication strength)")
        path = "/identity/conditionalAccess/policies"
        found = await self.items("conditional access", path)
        current = next((p for p in found if p.get("displayName") == want["displayName"]), None)

        async def create():
            return await self.call("conditional access", "POST", path, body=want)

        async def update():
            await self.call("conditional access", "PATCH", f"{path}/{segment(current['id'])}", body=want)

        await self.converge("conditional access", want["displayName"], current, want, create, update)

    async def function_principal(self) -> str:
        client_id = self.cfg.function_identity.client_id
        query = {"$filter": f"appId eq {literal(client_id)}", "$select": "id,appId,displayName"}
        found = await self.items("service principal", "/servicePrincipals", query)
        if not found:
            raise NotFoundInTenant(f"No service principal has appId {client_id} (functionIdentity.clientId).")
        return found[0]["id"]

    async def app_roles(self, principal: str) -> None:
        wanted = dict(FUNCTION_GRAPH_ROLES)
        if self.cfg.function_identity.teams_bot:
            wanted.update(TEAMS_BOT_ROLES)
        query = {"$filter": f"appId eq {literal(GRAPH_APP_ID)}", "$select": "id,appRoles"}
        graph_sp = (await self.items("service principal", "/servicePrincipals", query))[0]
        by_value = {r["value"]: r["id"] for r in graph_sp.get("appRoles", [])}
        by_id = {v: k for k, v in by_value.items()}
        path = f"/servicePrincipals/{segment(principal)}/appRoleAssignments"
        assignments = [a for a in await self.items("service principal", path) if a.get("resourceId") == graph_sp["id"]]
        granted = {by_id.get(a["appRoleId"]) for a in assignments}
        self._broader = [
            (by_id[a["appRoleId"]], a["id"]) for a in assignments if by_id.get(a["appRoleId"]) in BROADER_THAN_NEEDED
        ]
        for value, why in wanted.items():
            if value in granted:
                self.record("app role", value, OK)
                continue
            if value not in by_value:
                self.record("app role", value, WARN, [f"Microsoft Graph offers no app role {value} in this tenant"])
                continue
            self.record("app role", value, CREATE, [why])
            if self.apply:
                body = {"principalId": principal, "resourceId": graph_sp["id"], "appRoleId": by_value[value]}
                await self.call("app role", "POST", path, body=body)

    async def broader_roles(self, principal: str) -> None:
        """Broader roles a manual setup granted: a warning, or with --revoke-broader a revocation, which runs last,
        after the least-privilege roles and the catalog role that replace them exist."""
        path = f"/servicePrincipals/{segment(principal)}/appRoleAssignments"
        for value, assignment_id in sorted(self._broader):
            why = f"broader than needed: {BROADER_THAN_NEEDED[value]}"
            if not self.revoke_broader:
                self.record("app role", value, WARN, [why, "revoke with --revoke-broader once the app works"])
                continue
            self.record("app role", value, REVOKE, [why])
            if self.apply:
                await self.call("app role", "DELETE", f"{path}/{segment(assignment_id)}")

    async def catalog_role(self, principal: str, catalog_id: str | None) -> None:
        name = "Access package assignment manager on the catalog"
        scope = f"/AccessPackageCatalog/{catalog_id}"
        path = "/roleManagement/entitlementManagement/roleAssignments"
        query = {"$filter": f"principalId eq {literal(principal)} and appScopeId eq {literal(scope)}"}
        found = await self.items("catalog role", path, query) if catalog_id else []
        if any(a.get("roleDefinitionId") == ASSIGNMENT_MANAGER_ROLE for a in found):
            self.record("catalog role", name, OK)
            return
        self.record("catalog role", name, CREATE, ["resume requests and remove assignments of this catalog only"])
        if self.apply:
            body = {"principalId": principal, "roleDefinitionId": ASSIGNMENT_MANAGER_ROLE, "appScopeId": scope}
            await self.call("catalog role", "POST", path, body=body)

    # --- app registrations ----------------------------------------------------------------------------------
    async def _application(self, identifier_uri: str | None, display_name: str) -> dict[str, Any] | None:
        """An app registration by its app id URI (unique in a tenant), else by display name."""
        if identifier_uri:
            query = {"$filter": f"identifierUris/any(x:x eq {literal(identifier_uri)})"}
            found = await self.items("application", "/applications", query)
            if found:
                return found[0]
        found = await self.items("application", "/applications", {"$filter": f"displayName eq {literal(display_name)}"})
        return found[0] if found else None

    async def _registration(
        self, label: str, want: dict[str, Any], current: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Converge one application; the application object (None in a plan for something new)."""
        created: dict[str, Any] = {}

        async def create():
            created.update(await self.call("application", "POST", "/applications", body=want) or {})
            return created

        async def update():
            await self.call("application", "PATCH", f"/applications/{segment(current['id'])}", body=want)

        await self.converge("application", label, current, want, create, update)
        if current is not None:
            secrets = len(current.get("passwordCredentials") or []) + len(current.get("keyCredentials") or [])
            if secrets:
                detail = f"{secrets} secret(s) or certificate(s): nothing signs in with them, remove them"
                self.record("application", label, WARN, [detail])
        return current or created or None

    async def _app_principal(self, label: str, app: dict[str, Any] | None) -> None:
        """The application's service principal: Entra issues tokens only for an app that has one in the tenant."""
        name = f"{label}: service principal"
        found: list[dict[str, Any]] = []
        if app and app.get("appId"):
            query = {"$filter": f"appId eq {literal(app['appId'])}", "$select": "id,appId"}
            found = await self.items("service principal", "/servicePrincipals", query)
        if found:
            self.record("service principal", name, OK)
            return
        self.record("service principal", name, CREATE)
        if self.apply and app:
            await self.call("application", "POST", "/servicePrincipals", body={"appId": app["appId"]})

    async def callout_app(self) -> None:
        """The app registration whose app id URI is CALLOUT_AUDIENCE, and its service principal."""
        if not self.cfg.callout_app.enabled:
            return
        want = desired.callout_app(self.cfg)
        label = f"callout audience {self.cfg.callout_app.identifier_uri}"
        app = await self._registration(
            label, want, await self._application(want["identifierUris"][0], want["displayName"])
        )
        self.ids["calloutApp"] = (app or {}).get("appId")
        await self._app_principal(label, app)

    async def easy_auth(self, principal: str) -> None:
        """The Easy Auth app registration, its service principal, and the federated credential that lets the
        function's user-assigned identity stand in for a client secret."""
        easy = self.cfg.easy_auth
        if not easy.enabled:
            return
        want = desired.easy_auth_app(self.cfg)
        label = f"Easy Auth {easy.display_name}"
        app = await self._registration(label, want, await self._application(None, want["displayName"]))
        self.ids["easyAuth"] = (app or {}).get("appId")
        await self._app_principal(label, app)
        credential = desired.federated_credential(self.cfg, easy.managed_identity_object_id or principal)
        path = f"/applications/{segment(app['id'])}/federatedIdentityCredentials" if app and app.get("id") else ""
        found = await self.items("federated credential", path) if path else []
        current = next((f for f in found if f.get("name") == credential["name"]), None)

        async def create():
            return await self.call("federated credential", "POST", path, body=credential)

        async def update():
            body = {k: v for k, v in credential.items() if k != "name"}  # the name is immutable
            await self.call("federated credential", "PATCH", f"{path}/{segment(current['id'])}", body=body)

        name = f"{label}: trusts the managed identity {credential['subject']}"
        await self.converge("federated credential", name, current, credential, create, update)
