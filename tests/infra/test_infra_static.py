"""Static checks of infra/ (Bicep cannot be compiled on our machines): settings, roles, the relay's policy."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from extensions.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
API = (INFRA / "app" / "api.bicep").read_text(encoding="utf-8")
RBAC = (INFRA / "app" / "rbac.bicep").read_text(encoding="utf-8")
RELAY = (INFRA / "app" / "relay.bicep").read_text(encoding="utf-8")
EM_APP_ID = "810dcf14-1858-4bf2-8134-4c369fa3235b"
# Read by the code but deliberately not app settings in Azure, with the reason.
NOT_IN_AZURE = {
    "AzureWebJobsStorage": "a connection string; Azure uses the identity-based AzureWebJobsStorage__* settings",
    "IDENTITY_ENDPOINT": "set by the platform",
    "IDENTITY_HEADER": "set by the platform",
}
# Azure roles the code needs (storage clients, telemetry, ACS, Key Vault reference) → built-in role id.
NEEDED_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Communication and Email Service Owner": "09976791-48a7-449e-bb21-39d1a415f350",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}


def bicep_app_settings() -> set[str]:
    block = API.split("var appSettings = [", 1)[1].split("\n]", 1)[0]
    return set(re.findall(r"\{ name: '([A-Za-z0-9_]+)'", block))


def environment_reads() -> set[str]:
    """Names product code reads with os.environ.get / os.getenv (string literals only)."""
    names: set[str] = set()
    for folder in ("extensions", "graph", "notify", "store", "phones"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                    func = ast.unparse(node.func)
                    if func in ("os.environ.get", "os.getenv", "environ.get") and isinstance(node.args[0].value, str):
                        names.add(node.args[0].value)
    return names


def test_every_settings_field_is_an_app_setting_in_api_bicep():
    wanted = {field.alias for field in Settings.model_fields.values() if field.alias} - set(NOT_IN_AZURE)
    assert sorted(wanted - bicep_app_settings()) == []


def test_every_environment_read_is_an_app_setting_in_api_bicep():
    assert sorted(environment_reads() - bicep_app_settings() - set(NOT_IN_AZURE)) == []


def test_storage_connection_is_identity_based_without_a_connection_string():
    settings = bicep_app_settings()
    assert {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential"} <= settings
    assert "AzureWebJobsStorage" not in settings
    assert "allowSharedKeyAccess: false" in (INFRA / "core" / "storage.bicep").read_text(encoding="utf-8")


@pytest.mark.parametrize(("role", "role_id"), sorted(NEEDED_ROLES.items()))
def test_rbac_grants_each_needed_role_with_its_name_in_a_comment(role: str, role_id: str):
    lines = RBAC.splitlines()
    index = next(i for i, line in enumerate(lines) if role_id in line)
    assert role in lines[index - 1], f"{role_id} is not named '{role}' in the comment above it"


def test_every_role_id_in_rbac_bicep_is_named_in_a_comment():
    lines = RBAC.splitlines()
    for index, line in enumerate(lines):
        if re.search(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'", line):
            assert lines[index - 1].strip().startswith("//"), line


def test_relay_policy_admits_only_entitlement_managements_pop_tokens():
    assert f"var emAppId = '{EM_APP_ID}'" in RELAY
    assert "type: 'AADPOP'" in RELAY
    assert "{ name: 'appid', value: emAppId }" in RELAY
    assert "sasAuthenticationPolicy: { state: 'Disabled' }" in RELAY


def test_relay_forwards_with_its_managed_identity_and_returns_the_functions_answer():
    assert "type: 'ManagedServiceIdentity'" in RELAY
    assert "body: '@triggerBody()'" in RELAY
    assert "statusCode: '@coalesce(outputs(\\'forward\\')?[\\'statusCode\\'], 502)'" in RELAY


def test_flex_consumption_python_311_with_an_always_ready_http_instance():
    assert "tier: 'FlexConsumption'" in API
    assert "runtime: { name: 'python', version: '3.11' }" in API
    assert "alwaysReady: [{ name: 'http', instanceCount: 1 }]" in API


def test_monitoring_has_local_authentication_off():
    monitoring = (INFRA / "core" / "monitoring.bicep").read_text(encoding="utf-8")
    assert "DisableLocalAuth: true" in monitoring
    assert "disableLocalAuth: true" in monitoring


def test_no_secret_looking_value_is_an_app_setting():
    block = API.split("var appSettings = [", 1)[1].split("\n]", 1)[0]
    assert "AccountKey=" not in block
    assert "listKeys(" not in API
    assert "@Microsoft.KeyVault(" in block  # the one secret (the webhook URL) is a Key Vault reference


def test_main_bicep_is_subscription_scope_and_azure_yaml_names_the_hook():
    assert "targetScope = 'subscription'" in (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert "infra/hooks/postprovision.py" in (ROOT / "azure.yaml").read_text(encoding="utf-8")


def test_every_module_main_bicep_uses_exists():
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    for module in re.findall(r"module \w+ '([^']+)'", main):
        assert (INFRA / module).is_file(), module


def test_parameters_file_names_only_parameters_main_bicep_declares():
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    declared = set(re.findall(r"^param (\w+)", main, flags=re.MULTILINE))
    given = set(json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"])
    assert given <= declared
