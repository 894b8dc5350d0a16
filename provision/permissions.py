"""Who needs what: the function identity's least-privilege Graph app roles, and what an operator needs per step.

Sources: each Graph page's permissions table (named per entry) and the per-method UserAuthMethod-* permissions
(https://learn.microsoft.com/graph/api/phoneauthenticationmethod-get lists UserAuthMethod-Phone.ReadWrite.All, and
so on for each method type's page).
"""

from __future__ import annotations

# Graph application permissions the function app's identity needs, and why (the least privileged the pages list).
FUNCTION_GRAPH_ROLES: dict[str, str] = {
    "User.Read.All": "read targets, requestors and managers (user-get, user-list-manager)",
    "GroupMember.Read.All": "transitive group and role membership for guardrails (user-list-transitivememberof)",
    "AuditLog.Read.All": "recent manager changes (directoryaudit-list) and the registration report",
    "Directory.Read.All": "directoryaudit-list needs it together with AuditLog.Read.All",
    "User.RevokeSessions.All": "revoke sign-in sessions, the narrowest permission (user-revokesigninsessions)",
    "UserAuthenticationMethod.Read.All": "list a user's methods (authentication-list-methods has no granular read)",
    "Policy.Read.AuthenticationMethod": "read the TAP policy's lifetimes (TAP method configuration get)",
    # Deleting each method type and minting a TAP: the per-method permissions instead of
    # UserAuthenticationMethod.ReadWrite.All.
    **{
        f"UserAuthMethod-{kind}.ReadWrite.All": f"delete {what} during a reset"
        for kind, what in (
            ("Phone", "phone methods (and prepopulate mobile numbers)"),
            ("Email", "email methods"),
            ("Passkey", "FIDO2 passkeys"),
            ("MicrosoftAuthApp", "Microsoft Authenticator registrations"),
            ("SoftwareOATH", "software OATH tokens"),
            ("HardwareOATH", "hardware OATH tokens"),
            ("WindowsHello", "Windows Hello for Business keys"),
            ("PlatformCred", "platform credentials"),
        )
    },
    "UserAuthMethod-TAP.ReadWrite.All": "mint the Temporary Access Pass on the pickup page and delete leftovers",
}
TEAMS_BOT_ROLES = {
    "TeamsAppInstallation.ReadWriteSelfForUser.All": "install our own Teams app (the bot) for a recipient",
}
# Broader permissions a previous manual setup may have granted; the least-privilege set above replaces them.
BROADER_THAN_NEEDED = {
    "UserAuthenticationMethod.ReadWrite.All": "replaced by the UserAuthMethod-*.ReadWrite.All permissions",
    "EntitlementManagement.ReadWrite.All": "replaced by the catalog role Access package assignment manager",
    "User.ReadWrite.All": "replaced by User.Read.All and User.RevokeSessions.All",
    "Directory.ReadWrite.All": "never needed",
}
# Entitlement management's built-in role that may resume and remove assignments of one catalog's packages
# (https://learn.microsoft.com/entra/id-governance/entitlement-management-delegate).
ASSIGNMENT_MANAGER_ROLE = "e2182095-804a-4656-ae11-64734e9b7ae5"

EM_NEED = "EntitlementManagement.ReadWrite.All (application) or the Identity Governance Administrator role"
# What an operator needs for each kind of step: application permission(s), or the Entra role when signed in.
OPERATOR_NEEDS: dict[str, str] = {
    "group": "GroupMember.Read.All or Group.Read.All (application), or any directory reader role",
    "catalog": EM_NEED,
    "catalog resource": EM_NEED + ", and owner of the onboarding group when signed in",
    "custom extension": EM_NEED + ", and Logic App Contributor on the relay Logic App (Azure RBAC)",
    "access package": EM_NEED,
    "resource role scope": EM_NEED,
    "assignment policy": EM_NEED,
    "catalog role": EM_NEED + " (rbacapplication-post-roleassignments)",
    "authentication strength": "Policy.ReadWrite.ConditionalAccess (application), or the Conditional Access "
    "Administrator role (authenticationstrengthroot-post-policies)",
    "conditional access": "Policy.ReadWrite.ConditionalAccess and Policy.Read.All (application), or the Conditional "
    "Access Administrator role (conditionalaccessroot-post-policies)",
    "service principal": "Application.Read.All (application), or the Cloud Application Administrator role",
    # application-post-applications, serviceprincipal-post-serviceprincipals and application-update list
    # Application.ReadWrite.OwnedBy as the least privileged application permission (Application.ReadWrite.All
    # higher): the operator owns what it creates and may change only applications it owns.
    "application": "Application.ReadWrite.OwnedBy (application; it may change only applications it owns, so an "
    "app registration made by hand needs Application.ReadWrite.All or the operator added as its owner), or a role "
    "that may create app registrations, such as Application Developer or Cloud Application Administrator, when "
    "signed in (application-post-applications, serviceprincipal-post-serviceprincipals)",
    "federated credential": "Application.ReadWrite.OwnedBy on an application the operator owns, or "
    "Application.ReadWrite.All (application-post-federatedidentitycredentials)",
    "app role": "AppRoleAssignment.ReadWrite.All and Application.Read.All (application), or the Privileged Role "
    "Administrator role (serviceprincipal-post-approleassignments)",
}
