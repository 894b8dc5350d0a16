"""Fixtures for provisioning tests: an empty tenant (no EM objects, no policies, no granted permissions), an
operator identity, and provision.yaml files pointing at the tenant."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from local.tenant import TenantServer
from local.tenant.fixtures import make_default as F

OPERATOR = ("0be7a70e-0000-4000-8000-000000000001", "0be7a70e-0000-4000-8000-0000000000a1")
OPERATOR_ROLES = [
    "EntitlementManagement.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.Read.All",
    "AppRoleAssignment.ReadWrite.All",
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "GroupMember.Read.All",
]
FUNC_APP_ID = F.APP["func"][0]


def empty_tenant(operator_roles: list[str]) -> dict:
    """A tenant with users and groups only: what a fresh Entra tenant looks like before provisioning."""
    full = F.build()
    keep_users = {F.U[n] for n in ("megan", "tom", "sam", "hank", "dana", "bea")}
    func = next(a for a in full["applications"] if a["appId"] == FUNC_APP_ID)
    operator = {
        "appId": OPERATOR[0],
        "servicePrincipalId": OPERATOR[1],
        "displayName": "provision-operator",
        "kind": "managedIdentity",
        "graphRoles": list(operator_roles),
    }
    return {
        "tenant": full["tenant"],
        "applications": [{**func, "graphRoles": []}, operator],
        "users": [u for u in full["users"] if u["id"] in keep_users],
        "groups": [
            {**g, "members": [m for m in g["members"] if m in keep_users]}
            for g in full["groups"]
            if g["id"] in (F.G["onboarding"], F.G["security_approvers"])
        ],
        "directoryRoles": [],
        "policies": {"temporaryAccessPass": full["policies"]["temporaryAccessPass"]},
        "directoryAudits": [],
    }


@contextlib.contextmanager
def tenant_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str) -> Iterator[TenantServer]:
    """An empty tenant whose operator lacks the one permission `missing`; stopped on the way out."""
    tenant = start(tmp_path, monkeypatch, empty_tenant([r for r in OPERATOR_ROLES if r != missing]))
    try:
        yield tenant
    finally:
        tenant.__exit__(None, None, None)


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict) -> TenantServer:
    fixture = tmp_path / "tenant.json"
    fixture.write_text(json.dumps(data), encoding="utf-8")
    server = TenantServer(fixture, port=0, https_port=0)
    server.__enter__()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AZURE_TENANT_ID", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(key, raising=False)
    return server


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantServer]:
    """An empty tenant whose operator holds every permission provisioning needs."""
    server = start(tmp_path, monkeypatch, empty_tenant(OPERATOR_ROLES))
    yield server
    server.__exit__(None, None, None)


def write_config(tmp_path: Path, tenant: TenantServer, **overrides) -> Path:
    config = {
        "tenantId": tenant.state.tenant_id,
        "graphBaseUrl": tenant.graph_url,
        "operator": {"managedIdentityClientId": OPERATOR[0]},
        "onboardingGroupId": F.G["onboarding"],
        "securityApproversGroupId": F.G["security_approvers"],
        "extension": {
            "endpoint": "logicApp",
            "logicApp": {
                "subscriptionId": "00000000-aaaa-4000-8000-000000000000",
                "resourceGroupName": "rg-mfa-reset",
                "workflowName": "mfa-reset-relay",
                # Port 9 on loopback refuses at once: EM's connection test fails fast and never leaves the machine.
                "url": "http://127.0.0.1:9/relay",
            },
        },
        "mfaReset": {"displayName": "MFA reset", "description": "Reset a user's MFA methods"},
        "newHire": {
            "displayName": "New hire onboarding",
            "policyName": "Manager requests, security approves",
            "approvalStages": ["security"],
            "expiryHours": 72,
            "customExtensionStages": False,
        },
        "conditionalAccess": {"excludeUserIds": [F.U["bea"]]},
        "functionIdentity": {"clientId": FUNC_APP_ID},
        **overrides,
    }
    path = tmp_path / "provision.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
